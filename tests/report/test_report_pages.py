"""What the report's pictures say and how its page holds a big run (issue 25 item 15: captions
in words and video previews turned upright; issue 28 item 5: a page that opens at 10^6 rows).
Through the CLI, the public report functions, and headless Chromium where the page's script
matters."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html import unescape
from pathlib import Path, PurePath

import pytest
from PIL import Image

import mediaprep
from mediaprep.report import render
from mediaprep.report.html import write_prep_report
from mediaprep.report.page import CHUNK_ROWS, PAGE_ROWS
from tests.report.test_html import EXAMPLES, browse, parse, run
from tests.videogen import make_audio_only, make_video

#: Python's own words, which a reader must never see as a caption
PYTHON_TEXT = re.compile(r"Errno|object has no attribute|index out of range|cannot identify "
                         r"image file|Traceback|NoneType|\w+Error\b")


def placeholders(text: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'<div class="ph[^"]*"[^>]*><span>(.*?)</span>',
                                            text)]


# --- captions (issue 25.15) ----------------------------------------------------------------------


def test_a_failed_inputs_placeholder_says_its_finding_not_pythons_error(tmp_path: Path) -> None:
    media = tmp_path / "in"
    media.mkdir()
    (media / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    make_audio_only(media / "song.mp4")
    (media / "notes.jpg").write_bytes(b"this is text, not a picture\n" * 4)
    res = run("check", media, "--format", "html", "-o", tmp_path / "check.html")
    assert res.exit_code == 1
    checked = (tmp_path / "check.html").read_text()
    assert prep_failed(media, tmp_path / "out")
    prepped = (tmp_path / "out" / "report.html").read_text()
    for text in (checked, prepped):
        notes = placeholders(text)
        assert len(notes) == 3, notes
        for note in notes:
            assert note.startswith("no preview: ") and not PYTHON_TEXT.search(note), note
            assert str(media) not in note  # the card names the file; the note says why
        # each says what its finding says (the reason on the card), without the name
        reasons = {unescape(m) for m in re.findall(
            r'<p class="reason"><code>[^<]*</code> (.*?)</p>', text)}
        assert {n.removeprefix("no preview: ") for n in notes} == reasons


def prep_failed(media: Path, out: Path) -> bool:
    return run("prep", media, "-o", out, "--no-cache", "-q").exit_code == 1


def test_a_passed_input_whose_preview_fails_says_why_in_words(tmp_path: Path) -> None:
    """An input that passed (a report saved elsewhere, the file since replaced) but cannot be
    shown: the placeholder says so in words."""
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(b"not a JPEG at all")
    report = {"files": [{"path": str(fake), "kind": "image", "ok": True, "findings": []}]}
    notes = placeholders(render(report, "html"))
    assert notes == ["no preview: a format this page cannot show"]


# --- video previews turned by the display matrix (issue 25.15) ----------------------------------


def _quadrant_frame(i: int) -> Image.Image:
    """64x48 grey with a red block in the stored top-left corner."""
    img = Image.new("RGB", (64, 48), (128, 128, 128))
    img.paste((230, 20, 20), (0, 0, 24, 18))
    return img


def _red_corner(img: Image.Image) -> tuple[int, int]:
    """Which corner is red: (0 left / 1 right, 0 top / 1 bottom)."""
    rgb = img.convert("RGB")
    w, h = rgb.size
    corners = {(x, y): rgb.getpixel((int((0.1 + 0.8 * x) * (w - 1)), int((0.1 + 0.8 * y) *
                                                                         (h - 1))))
               for x in (0, 1) for y in (0, 1)}
    return max(corners, key=lambda c: corners[c][0] - corners[c][1])


def _page_images(text: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(s)))
            for s in re.findall(r'src="data:image/jpeg;base64,([^"]+)"', text)]


@pytest.mark.parametrize("rotation", [90, -90])
def test_video_previews_are_turned_as_the_frames_sent_are(tmp_path: Path, rotation: int) -> None:
    media = tmp_path / "in"
    media.mkdir()
    clip = make_video(media / "phone.mp4", n_frames=40, fps=10, width=64, height=48,
                      rotation=rotation, frame_fn=_quadrant_frame)
    # what the model gets: the frames prepare sends, upright (48x64)
    sent = mediaprep.prepare(clip, out_dir=tmp_path / "frames", stem=PurePath("f"),
                             video_mode="frames")
    with Image.open(sent.outputs[0]) as frame:
        assert frame.size == (48, 64)
        upright = _red_corner(frame)
    assert upright != (0, 0)  # the turn moved the corner: the test can tell
    # sent as a video file (a strip) and checked (the input's first frame)
    assert run("prep", media, "-o", tmp_path / "out", "--no-cache", "-q").exit_code == 0
    res = run("check", media, "--format", "html", "-o", tmp_path / "check.html")
    assert res.exit_code == 0, res.output
    for page in (tmp_path / "out" / "report.html", tmp_path / "check.html"):
        shown = _page_images(page.read_text())
        assert shown, page
        for img in shown:
            assert img.height > img.width, (page, img.size)
            assert _red_corner(img) == upright, page


# --- a page at any number of rows (issue 28.5) --------------------------------------------------


def _line(i: int, failed: bool) -> dict[str, object]:
    name = f"in/photo-{i:07d}.jpg"
    if failed:
        return {"path": name, "kind": "image", "ok": False, "outputs": [], "findings": [
            {"code": "file.unreadable", "severity": "error",
             "message": f"{name}: truncated: the JPEG has no end-of-image marker"}]}
    return {"path": name, "kind": "image", "ok": True, "outputs": [], "findings": []}


def synthetic_run(out: Path, n: int, failed_every: int = 0) -> Path:
    """DIR/parts.jsonl of ``n`` inputs sent as URLs (no media work), one in ``failed_every``
    failed (0: none)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "parts.jsonl", "w") as fh:
        for i in range(n):
            failed = bool(failed_every) and i % failed_every == failed_every - 1
            fh.write(json.dumps(_line(i, failed)) + "\n")
    return out


def test_a_big_run_pages_its_cards_failed_first(tmp_path: Path) -> None:
    n = PAGE_ROWS + CHUNK_ROWS + 300
    out = synthetic_run(tmp_path / "out", n, failed_every=500)
    page = write_prep_report(out)
    text = page.read_text()
    rows = parse(text).rows
    assert len(rows) == PAGE_ROWS  # the rest are in the chunk files
    n_failed = n // 500
    assert [r["status"] for r in rows[:n_failed + 1]] == ["failed"] * n_failed + ["unchanged"]
    chunks = sorted(p.name for p in (out / "report_files").glob("rows-*.js"))
    assert chunks == ["rows-000001.js", "rows-000002.js"]
    assert f"all {n:,}" in text and f"failed {n_failed:,}" in text  # the tabs count them all
    # every input is on the page or in a chunk, once
    names = [r["name"] for r in rows]
    for c in chunks:
        names += re.findall(r'data-name=\\"([^"\\]+)\\"', (out / "report_files" / c).read_text())
    assert sorted(names) == sorted(f"in/photo-{i:07d}.jpg" for i in range(n))
    # a smaller run later: the chunk files it no longer needs are removed, the page is whole
    synthetic_run(out, 10)
    text = write_prep_report(out).read_text()
    assert len(parse(text).rows) == 10 and not list((out / "report_files").glob("rows-*"))
    assert 'id="more"' not in text


# Scrolls until the page says the list has ended or a rows file is missing (each chunk is a real
# file load, which a busy machine may finish late in Chromium's virtual time), at most 1,400
# steps; then counts.
SCROLL = """<script>
(function(){var n=0;function step(){window.scrollTo(0,document.body.scrollHeight);
var more=document.getElementById('more');
var said=more?more.textContent:'end of the list';
if(++n<1400&&said!='end of the list'&&said.indexOf('is missing')<0)setTimeout(step,20);
else document.body.setAttribute('data-rows',
document.querySelectorAll('article.row:not(.hide)').length)}setTimeout(step,20)})();
</script></body>"""

FILTER = """<script>
setTimeout(function(){var q=document.getElementById('q');q.value='photo-0002345';
q.dispatchEvent(new Event('input'));setTimeout(function(){document.body.setAttribute('data-rows',
[].map.call(document.querySelectorAll('article.row:not(.hide)'),function(r){
return r.dataset.name}).join(' '))},3000)},50);
</script></body>"""


def test_the_page_loads_the_rest_as_the_reader_scrolls_and_filters(tmp_path: Path) -> None:
    n = PAGE_ROWS + CHUNK_ROWS + 500
    out = synthetic_run(tmp_path / "out", n)
    page = write_prep_report(out)
    text = page.read_text()
    scrolled = out / "scrolled.html"  # beside the page: the chunks are found the same way
    scrolled.write_text(text.replace("</body>", SCROLL, 1))
    dom = browse(scrolled, "--dump-dom", "--virtual-time-budget=30000").stdout
    assert re.search(r'data-rows="(\d+)"', dom).group(1) == str(n)
    assert "end of the list" in dom
    # a name only a chunk holds: the filter walks the chunks and shows that card alone
    filtered = out / "filtered.html"
    filtered.write_text(text.replace("</body>", FILTER, 1))
    dom = browse(filtered, "--dump-dom", "--virtual-time-budget=30000").stdout
    assert re.search(r'data-rows="([^"]*)"', dom).group(1) == "in/photo-0002345.jpg"
    # copied without its folder: the page still shows its first cards and says what is missing
    alone = tmp_path / "alone" / "report.html"
    alone.parent.mkdir()
    shutil.copyfile(scrolled, alone)
    dom = browse(alone, "--dump-dom", "--virtual-time-budget=10000").stdout
    assert re.search(r'data-rows="(\d+)"', dom).group(1) == str(PAGE_ROWS)
    assert "keep report_files/ beside this page" in dom


def test_a_small_run_stays_one_page_with_its_pictures_inline(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("prep", EXAMPLES, "-o", out, "--no-cache", "-q").exit_code == 0
    text = (out / "report.html").read_text()
    assert 'id="more"' not in text and not list((out / "report_files").glob("rows-*"))
    assert "data:image/jpeg;base64," in text
