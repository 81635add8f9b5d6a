"""The HTML report (issue 15, SPEC section 5): DIR/report.html from prep, check --format html,
both opened in a real browser (headless Chromium; skipped only when it cannot be found)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from mediaprep.cli import main
from mediaprep.report.changes import KINDS, changes_of, count_changes, describe_counts
from mediaprep.report.html import MAX_SHEET_FRAMES, even_sample

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NAMES = ["clip.ts", "icon.gif", "short_clip.mp4", "sideways_photo.jpg", "thin_banner.png"]


def run(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browse(page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    exe = chromium()
    if exe is None:
        pytest.skip("chromium not found (.ci/run installs the Debian chromium package)")
    with tempfile.TemporaryDirectory(prefix="mediaprep-chromium-") as profile:
        return subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=180, check=True)


class Page(HTMLParser):
    """Rows (article.row) of a rendered page: their name, classes, images and text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.srcs: list[str] = []
        self.depth = 0
        self.head_text: list[str] = []
        self.in_header = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.srcs.append(str(a[key]))
        if tag == "header":
            self.in_header = True
        if tag == "article":
            self.rows.append({"name": a.get("data-name"), "status": a.get("data-status"),
                              "imgs": [], "text": []})
            self.depth = 1
        elif self.depth and tag == "article":
            self.depth += 1
        if self.depth and tag == "img":
            self.rows[-1]["imgs"].append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self.depth = 0
        if tag == "header":
            self.in_header = False

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.rows[-1]["text"].append(data)
        elif self.in_header:
            self.head_text.append(data)


def parse(dom: str) -> Page:
    p = Page()
    p.feed(dom)
    for r in p.rows:
        r["text"] = " ".join(" ".join(r["text"]).split())
    return p


@pytest.fixture(scope="module")
def prepped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    res = run("prep", EXAMPLES, "-o", out, "--no-cache", "-q")
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def dom(prepped: Path) -> Page:
    return parse(browse(prepped / "report.html", "--dump-dom").stdout)


def row_of(page: Page, name: str) -> dict[str, Any]:
    found = [r for r in page.rows if r["name"].endswith(name)]
    assert len(found) == 1, (name, [r["name"] for r in page.rows])
    return found[0]


def test_parts_lines_carry_the_kinds_of_change(prepped: Path) -> None:
    lines = {Path(json.loads(t)["path"]).name: json.loads(t)
             for t in (prepped / "parts.jsonl").read_text().splitlines()}
    assert {n: changes_of(line) for n, line in lines.items()} == {
        "clip.ts": ["remuxed"], "icon.gif": ["converted"], "short_clip.mp4": ["sent as frames"],
        "sideways_photo.jpg": ["rotated", "re-encoded"],
        "thin_banner.png": ["padded", "re-encoded"]}
    assert {c["kind"] for c in lines["thin_banner.png"]["changes"]} <= set(KINDS)
    counts = count_changes(lines.values())
    assert describe_counts(counts) == ("1 rotated, 1 converted, 1 padded, 2 re-encoded, "
                                       "1 remuxed, 1 sent as frames")


def test_report_in_chromium_names_every_input_with_its_pictures(prepped: Path,
                                                                dom: Page) -> None:
    assert sorted(Path(r["name"]).name for r in dom.rows) == NAMES
    for r in dom.rows:
        thumbs = [i for i in r["imgs"] if "thumb" in (i.get("class") or "")]
        assert thumbs, r["name"]
        for img in r["imgs"]:
            assert img.get("loading") == "lazy"
            src = img["src"]
            # a small run's page carries its pictures inline (it stands alone when copied)
            assert src.startswith("data:image/jpeg;base64,")
            with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
                assert im.format == "JPEG" and max(im.size) <= 256
    clip = row_of(dom, "short_clip.mp4")  # 1.5 s: sent as 4 frames, each labelled with its time
    frames = [i for i in clip["imgs"] if "fr" in (i.get("class") or "").split()]
    assert len(frames) == 4
    for label in ("0.000 s", "0.375 s", "0.750 s", "1.125 s"):
        assert label in clip["text"]
    assert "sent as frames" in clip["text"]
    video = row_of(dom, "clip.ts")  # a video file: a strip, its duration, fps and max_frames
    assert "remuxed" in video["text"] and "3.00 s" in video["text"]
    assert "max_frames 2000" in video["text"] and "fps" in video["text"]


def test_report_says_rotated_padded_and_the_totals(dom: Page) -> None:
    assert "rotated" in row_of(dom, "sideways_photo.jpg")["text"].split("·")[-1]
    assert "padded" in row_of(dom, "thin_banner.png")["text"]
    assert "image.too_small" in row_of(dom, "thin_banner.png")["text"]
    head = " ".join(" ".join(dom.head_text).split())
    for text in ("5 inputs", "5 prepared", "0 failed", "1 rotated", "1 padded",
                 "1 sent as frames", "0 transcoded", "estimated tokens"):
        assert text.lower() in head.lower(), (text, head)
    # nothing on the page asks the network for anything
    assert all(not s.startswith(("http:", "https:", "//")) for s in dom.srcs)


def test_report_screenshot_is_not_blank(prepped: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    browse(prepped / "report.html", f"--screenshot={shot}", "--window-size=1280,2000")
    with Image.open(shot) as im:
        rgb = im.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200  # text, thumbnails, not a blank page
    white = sum(n for n, c in colours if min(c) >= 250)
    assert white < 0.9 * rgb.width * rgb.height


def test_failed_inputs_come_first_with_the_reason(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(EXAMPLES / "icon.gif", src / "a.gif")
    (src / "z_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    out = tmp_path / "out"
    assert run("prep", src, "-o", out, "--no-cache", "-q").exit_code == 1
    page = parse((out / "report.html").read_text())
    assert [r["status"] for r in page.rows] == ["failed", "changed"]
    assert page.rows[0]["name"].endswith("z_broken.png")
    assert "file.unreadable" in page.rows[0]["text"] or "file." in page.rows[0]["text"]


def test_no_report_turns_it_off(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("prep", EXAMPLES / "icon.gif", "-o", out, "--no-cache", "-q",
               "--no-report").exit_code == 0
    assert (out / "parts.jsonl").exists() and not (out / "report.html").exists()
    assert not (out / "report_files").exists()  # no thumbnails made for no report


def test_rerun_reuses_thumbnails_and_drops_stale_ones(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for n in ("icon.gif", "sideways_photo.jpg"):
        shutil.copy(EXAMPLES / n, src / n)
    out = tmp_path / "out"
    assert run("prep", src, "-o", out, "--no-cache", "-q").exit_code == 0
    thumbs = out / "report_files"
    first = {p.name: p.stat().st_mtime_ns for p in thumbs.iterdir()}
    assert run("prep", src, "-o", out, "--no-cache", "-q").exit_code == 0
    assert {p.name: p.stat().st_mtime_ns for p in thumbs.iterdir()} == first
    (src / "icon.gif").unlink()
    assert run("prep", src, "-o", out, "--no-cache", "-q").exit_code == 0
    assert len(list(thumbs.iterdir())) < len(first)


def test_a_thumbnail_that_cannot_be_made_is_a_placeholder(tmp_path: Path) -> None:
    # a file prep passes through by URL has no picture here: the page still shows the row
    page_path = tmp_path / "r.html"
    report = {"target": "dashscope", "files": [
        {"path": str(tmp_path / "gone.jpg"), "kind": "image", "ok": True, "findings": []}],
        "summary": {"files": 1, "passed": 1, "failed": 0, "errors": 0, "warnings": 0}}
    from mediaprep.report import render

    page_path.write_text(render(report, "html"))
    page = parse(page_path.read_text())
    assert len(page.rows) == 1 and page.rows[0]["imgs"] == []
    assert 'class="ph' in page_path.read_text()


def test_contact_sheet_sample_past_64_frames() -> None:
    assert even_sample(10) == list(range(10))
    picks = even_sample(301)
    assert len(picks) == MAX_SHEET_FRAMES and picks[0] == 0 and picks[-1] == 300
    gaps = {b - a for a, b in zip(picks, picks[1:], strict=False)}
    assert max(gaps) - min(gaps) <= 1


@pytest.fixture()
def cwd_root() -> Iterator[None]:
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        yield
    finally:
        os.chdir(old)


def test_check_format_html_in_chromium(tmp_path: Path, cwd_root: None) -> None:
    res = run("check", "examples", "--format", "html", "-q")
    assert res.exit_code == 1  # the examples need prep: gif, ts, 1.5 s clip, 8 px banner
    page_path = tmp_path / "check.html"
    page_path.write_text(res.stdout)
    page = parse(browse(page_path, "--dump-dom").stdout)
    assert sorted(Path(r["name"]).name for r in page.rows) == NAMES
    for r in page.rows:  # inputs inline: the page stands alone
        assert len(r["imgs"]) == 1 and r["imgs"][0]["src"].startswith("data:image/jpeg;base64,")
    assert "image.too_small" in row_of(page, "thin_banner.png")["text"]
    assert row_of(page, "thin_banner.png")["status"] == "failed"
    assert row_of(page, "sideways_photo.jpg")["status"] == "passed"
    assert [r["status"] for r in page.rows][:4] == ["failed"] * 4  # failed first
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", res.stdout)
    assert not re.search(r"<(script|link)[^>]+(src|href)=[\"'](?!data:)", res.stdout)


# --- what changed, in words (issue 15 item 3) ----------------------------------------------

#: prepare's own arithmetic: in parts.jsonl, never on a card or a status line
JARGON = re.compile(r"counted|zlib|\bq=\d|\d B \(|fits\)|too big\)|passed through unchanged|"
                    r"\bmode [A-Z]")


def test_cards_say_what_changed_in_words(prepped: Path, dom: Page) -> None:
    for r in dom.rows:
        assert not JARGON.search(r["text"]), r["text"]
    banner = row_of(dom, "thin_banner.png")["text"]
    assert "padded from 300x8 to 300x11" in banner and "PNG 300x11, lossless" in banner
    assert "as its EXIF orientation says" in row_of(dom, "sideways_photo.jpg")["text"]
    assert "converted from GIF to PNG" in row_of(dom, "icon.gif")["text"]
    # the JSON's fixes are the same words, made from its typed change records
    lines = {Path(json.loads(t)["path"]).name: json.loads(t)
             for t in (prepped / "parts.jsonl").read_text().splitlines()}
    banner_line = lines["thin_banner.png"]
    assert not any(JARGON.search(f) for f in banner_line["fixes"])
    assert [c["kind"] for c in banner_line["changes"]] == ["padded", "re-encoded"]
    assert banner_line["changes"][0] == {"kind": "padded", "from": "300x8", "to": "300x11",
                                         "why": "each side must exceed 10 px"}


def test_realmedia_cards_and_status_lines_agree_without_jargon(tmp_path: Path) -> None:
    from mediaprep.report.changes import words_of
    from tests.conftest import REALMEDIA

    if REALMEDIA is None or not (REALMEDIA / "images").is_dir():
        pytest.skip("no real media")
    src = tmp_path / "in"
    src.mkdir()
    names = ["pil_hopper_orientation_6.webp", "pil_xmp_tags_orientation.png", "pil_7x13.png",
             "pil_p_trns_single.png", "pil_hopper_orientation_8.jpg", "pil_pil_sample_cmyk.jpg"]
    for n in names:
        shutil.copy(REALMEDIA / "images" / n, src / n)
    out = tmp_path / "out"
    res = run("prep", src, "-o", out, "--no-cache", "-j", "0")
    assert res.exit_code == 0, res.output
    page = parse((out / "report.html").read_text())
    lines = {Path(json.loads(t)["path"]).name: json.loads(t)
             for t in (out / "parts.jsonl").read_text().splitlines()}
    status = {Path(s.split(": ", 1)[0]).name: s for s in res.stdout.splitlines() if ": " in s}
    assert not any(JARGON.search(f) for line in lines.values() for f in line["fixes"]
                   if f != "passed through unchanged")
    for n in names:
        card = row_of(page, n)["text"]
        assert not JARGON.search(card), card
        assert not JARGON.search(status[n]), status[n]
        words = words_of(lines[n])
        for w in words:  # the card and the status line say the same words
            assert w in card and w in status[n], (w, card, status[n])
    assert "as its EXIF orientation says" in status["pil_hopper_orientation_6.webp"]
    assert "padded from 7x13 to 11x13" in status["pil_7x13.png"]


# --- thumbnails: made by the workers, and still there after a resume or a cache hit ----------


def _pictures(out: Path) -> dict[int, bytes]:
    """The page's pictures in order (inline), each one a thumbnail kept in DIR/report_files."""
    page = parse((out / "report.html").read_text())
    srcs = [i["src"] for r in page.rows for i in r["imgs"]]
    assert srcs and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    pictures = dict(enumerate(base64.b64decode(s.split(",", 1)[1]) for s in srcs))
    kept = {f.read_bytes() for f in (out / "report_files").glob("*.jpg")}
    assert set(pictures.values()) <= kept
    return pictures


def _tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and "journal" not in p.parts and p.name not in (
                "lock", "runs", "parts.idx", "parts.sig", "journal.idx", "report.sig")}


def test_thumbnails_survive_resume_and_cache_and_are_deterministic(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    one, two, three = tmp_path / "one", tmp_path / "two", tmp_path / "three"
    assert run("prep", EXAMPLES, "-o", one, "--cache-dir", cache, "-q", "-j", "2"
               ).exit_code == 0
    first = _pictures(one)
    assert len(parse((one / "report.html").read_text()).rows) == len(NAMES)
    # a resume (every input a journal hit) whose thumbnails were removed makes them again
    shutil.rmtree(one / "report_files")
    assert run("prep", EXAMPLES, "-o", one, "--cache-dir", cache, "-q", "-j", "2"
               ).exit_code == 0
    assert _pictures(one) == first
    # every input from the cache: the same page and pictures, byte for byte
    assert run("prep", EXAMPLES, "-o", two, "--cache-dir", cache, "-q", "-j", "2"
               ).exit_code == 0
    assert _pictures(two) == first
    assert (two / "report.html").read_bytes() == (one / "report.html").read_bytes()
    # prepared afresh, in this process: the same DIR contents as the workers made
    assert run("prep", EXAMPLES, "-o", three, "--no-cache", "-q", "-j", "0").exit_code == 0
    assert _tree(three) == _tree(one)


def test_a_strip_shows_distinct_moments_even_for_an_open_gop_decoder() -> None:
    # VVC's decoder gives an open GOP's leading pictures after each seek: the old strip showed
    # the clip's start twice (0.000 s and 0.040 s) and decoded a GOP per seek
    from mediaprep.report.html import video_thumbs
    from tests.conftest import REALMEDIA

    clip = REALMEDIA / "videos" / "mp4ff_vvc_400kbps_2s.mp4"
    if not clip.is_file():
        pytest.skip("no real media")
    try:
        pics, meta = video_thumbs(clip, 3)
    except Exception as exc:  # noqa: BLE001 - an FFmpeg without a VVC decoder
        pytest.skip(f"no VVC decode here: {exc}")
    times = [t for *_, t in pics]
    assert times == sorted(times) and times[0] == 0.0
    assert all(b - a >= meta["duration"] / 3 / 2 for a, b in zip(times, times[1:],
                                                                  strict=False)), times
    for data, w, h, _ in pics:
        assert data[:2] == b"\xff\xd8" and max(w, h) <= 256


def test_every_real_video_strip_starts_at_the_start_with_real_times() -> None:
    """The strip of each real video: ascending finite times from its start. HEVC holds a
    keyframe's picture back until it is drained: the strip of mb_video-h265.mp4 once began at
    8.333 s (the second keyframe, decoded to get the first out); a drained frame has no time of
    its own (ft_fixture2.mpg then showed one picture of three); and a drained decoder left so
    failed the next seek (mb_hevc.ts had no strip)."""
    import math

    from mediaprep.report.html import video_thumbs
    from tests.conftest import REALMEDIA

    videos = REALMEDIA / "videos"
    if not videos.is_dir():
        pytest.skip("no real media")
    strips = {}
    for clip in sorted(videos.iterdir()):
        try:
            strips[clip.name] = [t for *_, t in video_thumbs(clip, 3)[0]]
        except Exception:  # noqa: BLE001 - audio only, corrupt, no samples: a placeholder
            continue
    assert len(strips) >= 25
    for name, times in strips.items():
        assert all(math.isfinite(t) for t in times), (name, times)
        assert times == sorted(times) and times[0] <= 0.05, (name, times)
    if "mb_video-h265.mp4" in strips:
        assert strips["mb_video-h265.mp4"][0] == 0.0
    if "ft_fixture2.mpg" in strips:
        assert len(strips["ft_fixture2.mpg"]) == 3
    assert "mb_hevc.ts" in strips or not (videos / "mb_hevc.ts").exists()


def test_prepares_own_pixels_give_the_same_thumbnails_as_the_files(tmp_path: Path) -> None:
    """A passed-through image's thumbnail comes from the pixels prepare's verify decoded, and a
    PNG prepare encoded from the pixels it encoded (no decode again); each is byte for byte the
    one a decode of the file gives (a resume whose thumbnails are gone makes them from the
    files)."""
    import numpy as np
    import pillow_heif

    import mediaprep

    pillow_heif.register_heif_opener()
    media = tmp_path / "in"
    media.mkdir()
    rng = np.random.default_rng(7)
    noise = Image.fromarray(rng.integers(0, 255, (2100, 2400, 3), dtype=np.uint8))
    noise.save(media / "big.jpg", quality=85)  # 1/8 scale covers a 256 px thumbnail
    noise.resize((640, 480)).save(media / "photo.webp", quality=80)
    noise.resize((512, 384)).save(media / "phone.heic", quality=70)
    noise.resize((1200, 900)).save(media / "small.jpg", quality=85)  # decoded at 1/4 for it
    noise.resize((300, 200)).save(media / "plain.png")  # verified by inflating: no pixels
    sideways = noise.resize((320, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # turned upright by prepare: a PNG encoded from its pixels
    sideways.save(media / "sideways.png", exif=exif)
    # a palette GIF with a comment becomes a PNG; the comment must not reach the thumbnail
    noise.resize((120, 90)).convert("P").save(media / "said.gif", comment=b"hello")
    has = {p.name: mediaprep.prepare(p, preview=True).preview is not None
           for p in sorted(media.iterdir())}
    assert has == {"big.jpg": True, "phone.heic": True, "photo.webp": True,
                   "plain.png": False, "small.jpg": True, "sideways.png": True,
                   "said.gif": True}
    assert max(mediaprep.prepare(media / "big.jpg", preview=True).preview.size) == 256
    upright = mediaprep.prepare(media / "sideways.png", preview=True)
    assert "rotated" in upright.change_kinds() and upright.preview.size == (160, 256)

    out = tmp_path / "out"
    assert run("prep", media, "-o", out, "--no-cache", "-q", "-j", "0").exit_code == 0
    first = _pictures(out)
    shutil.rmtree(out / "report_files")
    assert run("prep", media, "-o", out, "--no-cache", "-q", "-j", "0").exit_code == 0
    assert _pictures(out) == first and len(first) >= 5


def test_the_thumbnail_folder_never_reaches_files_that_are_not_its_own(tmp_path: Path) -> None:
    """A link where .mediaprep/thumbs goes is neither written through nor pruned (the page
    carries its pictures inline); in the real folder, only names the report gives are pruned."""
    media = tmp_path / "in"
    media.mkdir()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(media / "a.png")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.jpg").write_bytes(b"the user's")
    (precious / ("0" * 32 + ".jpg")).write_bytes(b"named like ours, still the user's")
    linked = tmp_path / "linked"
    (linked / ".mediaprep").mkdir(parents=True)
    (linked / "report_files").symlink_to(precious, target_is_directory=True)
    assert run("prep", media, "-o", linked, "--no-cache", "-q", "-j", "0").exit_code == 0
    assert sorted(p.name for p in precious.iterdir()) == ["0" * 32 + ".jpg", "keep.jpg"]
    assert (precious / "keep.jpg").read_bytes() == b"the user's"
    page = (linked / "report.html").read_text()
    assert "data:image/jpeg;base64," in page  # the picture is still shown

    real = tmp_path / "real"
    assert run("prep", media, "-o", real, "--no-cache", "-q", "-j", "0").exit_code == 0
    thumbs = real / "report_files"
    (thumbs / "notes.txt").write_text("mine")
    stale = thumbs / ("f" * 32 + ".jpg")
    stale.write_bytes(b"a thumbnail of an input no longer named")
    (real / "parts.jsonl").unlink()  # the report is built again, and prunes
    assert run("prep", media, "-o", real, "--no-cache", "-q", "-j", "0").exit_code == 0
    assert (thumbs / "notes.txt").read_text() == "mine" and not stale.exists()
