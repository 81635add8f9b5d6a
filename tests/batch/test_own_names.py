"""Every output name of a ``prep`` run is its own (issue 22, items 3, 4 and 6).

- Names are decided over the whole set of inputs: a hashed name given to a colliding stem is
  never another input's own name (``a.png``, ``a.gif``, ``a-<hash of a.gif>.png``), also when
  the file system ignores case; the same inputs in any order get the same names.
- ``--batch-requests`` is never a path the run writes (an output, a frames folder, DIR's own
  files) nor an input; a file directly in DIR with a name no output can have is fine, and is
  not cleaned as a stale output.
- Names mediaprep owns in DIR (parts.jsonl, report.html, .mediaprep) are never an output's:
  a clip ``parts.jsonl.mp4`` sent as frames does not get the folder ``DIR/parts.jsonl/``.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mediaprep.batch import prep_many
from mediaprep.batch.tasks import plan_prep
from mediaprep.cli import main
from mediaprep.output import RESERVED_NAMES, plan_stems
from mediaprep.settings import make_settings
from tests.videogen import make_video


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, "PNG")
    return buf.getvalue()


def _gif(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, "GIF")
    return buf.getvalue()


def _hash8(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


def _lines(out: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(t) for t in (out / "parts.jsonl").read_text().splitlines()]
    return {Path(line["path"]).name: line for line in lines}


def _colour(path: Path) -> tuple[int, ...]:
    with Image.open(path) as im:
        return im.convert("RGB").getpixel((20, 15))


def _near(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(abs(x - y) <= 12 for x, y in zip(a, b, strict=True))


# --- item 3: names over the whole set of inputs -----------------------------------------------


@pytest.mark.parametrize("spelling", ["a-{h}.png", "A-{H}.png"])
def test_a_hashed_name_is_never_another_inputs_own_name(tmp_path: Path, spelling: str) -> None:
    src = tmp_path / "in"
    src.mkdir()
    h = _hash8("a.gif")
    third = spelling.format(h=h, H=h.upper())
    colours = {"a.png": (220, 20, 20), "a.gif": (20, 220, 20), third: (20, 20, 220)}
    (src / "a.png").write_bytes(_png(colours["a.png"]))
    (src / "a.gif").write_bytes(_gif(colours["a.gif"]))
    (src / third).write_bytes(_png(colours[third]))
    out = tmp_path / "out"
    result = prep_many([src], out, jobs=0, cache=False, html_report=False)
    assert result.failed == 0
    lines = _lines(out)
    outputs = {name: line["outputs"] for name, line in lines.items()}
    flat = [o.casefold() for names in outputs.values() for o in names]
    assert len(flat) == len(set(flat)) == 3, outputs  # one file each, even ignoring case
    for name, line in lines.items():  # and each holds its own input's picture
        assert _near(_colour(out / line["outputs"][0]), colours[name]), (name, outputs)

    again = prep_many([src], out, jobs=0, cache=False, html_report=False)
    assert again.from_journal == 3  # a rerun: same names, nothing flips
    assert {n: line["outputs"] for n, line in _lines(out).items()} == outputs


def test_names_do_not_depend_on_the_order_of_the_inputs(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    files = ["a.png", "a.gif", f"a-{_hash8('a.gif')}.png", "A.bmp", "b.png"]
    for i, name in enumerate(files):
        path = src / name
        (path.write_bytes(_gif((i * 40, 10, 10))) if name.endswith(".gif")
         else Image.new("RGB", (40, 30), (i * 40, 10, 10)).save(path))
    paths = [str(src / f) for f in files]
    s = make_settings(None)
    forward = {t.source: t.stem for t in plan_prep(paths, tmp_path / "o", s)}
    backward = {t.source: t.stem for t in plan_prep(paths[::-1], tmp_path / "o", s)}
    assert forward == backward
    assert len({stem.casefold() for stem in forward.values()}) == len(files)
    one = prep_many(paths, tmp_path / "o1", jobs=0, cache=False, html_report=False)
    two = prep_many(paths[::-1], tmp_path / "o2", jobs=0, cache=False, html_report=False)
    assert one.failed == two.failed == 0
    assert ({n: line["outputs"] for n, line in _lines(tmp_path / "o1").items()}
            == {n: line["outputs"] for n, line in _lines(tmp_path / "o2").items()})


def test_two_urls_with_one_name_get_two_outputs(tmp_path: Path) -> None:
    """``h/a.png?v=1`` and ``?v=2`` are two inputs with one display name: two stems."""
    s = make_settings(None)
    urls = ["https://example.com/a.png?v=1", "https://example.com/a.png?v=2"]
    stems = [t.stem for t in plan_prep(urls, tmp_path, s)]
    assert len(set(stems)) == 2, stems
    assert stems == [t.stem for t in plan_prep(urls, tmp_path, s)]
    assert stems == [t.stem for t in plan_prep(urls[::-1], tmp_path, s)][::-1]


def test_a_folder_named_like_an_output_file_does_not_take_its_name(tmp_path: Path) -> None:
    """``c.tif`` converted becomes ``c.jpg``; an input folder ``c.jpg/`` must not be in its
    way (the file or the folder, whichever came second, failed with FileExistsError)."""
    src = tmp_path / "in"
    (src / "c.jpg").mkdir(parents=True)
    Image.new("RGB", (40, 30), (10, 200, 10)).save(src / "c.tif")
    (src / "c.jpg" / "b.png").write_bytes(_png((10, 10, 200)))
    out = tmp_path / "out"
    result = prep_many([src], out, make_settings(None, max_side=20), jobs=0, cache=False,
                       html_report=False)
    assert result.failed == 0, result.summary()
    outputs = {n: line["outputs"] for n, line in _lines(out).items()}
    assert outputs["c.tif"][0].endswith(".jpg") and outputs["b.png"] == ["c.jpg/b.png"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("aAb./-0123456789ef"), min_size=1,
                        max_size=10), min_size=2, max_size=7, unique=True),
       st.randoms(use_true_random=False))
def test_planned_stems_are_distinct_free_and_order_free(names: list[str], rnd: Any) -> None:
    names = [*names, *(n + ".mp4" for n in RESERVED_NAMES)]
    stems = plan_stems(names)
    shuffled = names[:]
    rnd.shuffle(shuffled)
    assert dict(zip(shuffled, plan_stems(shuffled), strict=True)) == dict(
        zip(names, stems, strict=True))
    keys = [s.as_posix().casefold() for s in stems]
    assert len(set(keys)) == len(keys), stems
    folders = {p.as_posix().casefold() for s in stems for p in s.parents if p.parts}
    assert not folders & set(keys), stems
    reserved = {n.casefold() for n in RESERVED_NAMES}
    assert not {s.parts[0].casefold() for s in stems} & reserved, stems


# --- item 6: names mediaprep owns -------------------------------------------------------------


def test_a_clip_named_like_dirs_own_files_does_not_take_them(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name in ("parts.jsonl.mp4", "report.html.mp4", "Parts.JSONL.webm"):
        make_video(src / name, n_frames=20, fps=10,
                   container_format="webm" if name.endswith("webm") else None,
                   codec="libvpx" if name.endswith("webm") else "libx264",
                   pix_fmt="yuv420p")
    (src / "report.html").mkdir()  # a folder of that name among the inputs
    (src / "report.html" / "x.png").write_bytes(_png((30, 30, 200)))
    out = tmp_path / "out"
    s = make_settings(None, video_mode="frames")
    result = prep_many([src], out, s, jobs=0, cache=False)
    assert result.failed == 0, result.summary()
    assert (out / "parts.jsonl").is_file() and (out / "report.html").is_file()
    lines = _lines(out)
    tops = {o.split("/")[0].casefold() for line in lines.values() for o in line["outputs"]}
    assert not tops & {n.casefold() for n in RESERVED_NAMES}, tops
    again = prep_many([src], out, s, jobs=0, cache=False)  # the next run is not stopped
    assert again.failed == 0 and again.from_journal == len(lines)
    assert {n: line["outputs"] for n, line in _lines(out).items()} == {
        n: line["outputs"] for n, line in lines.items()}


# --- item 4: --batch-requests is never a path the run writes ----------------------------------


def run(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def _digests(root: Path) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
            if p.is_file()}


@pytest.fixture()
def prepared(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """A finished run: an image and a clip sent as frames (``DIR/clip/``)."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(_png((200, 30, 30)))
    make_video(src / "clip.mp4", n_frames=20, fps=10)
    out = tmp_path / "out"
    r = run("prep", src, "-o", out, "--no-cache", "-q", "--video-mode", "frames")
    assert r.exit_code == 0, r.output
    outputs = [o for line in _lines(out).values() for o in line["outputs"]]
    return src, out, outputs


@pytest.mark.parametrize("which", ["image-output", "image-output-case", "frame", "frames-json",
                                   "frames-folder", "new-file-in-frames-folder",
                                   "an-output-name-not-yet-made", "report-case",
                                   "hidden", "out-itself"])
def test_batch_requests_over_the_runs_own_paths_is_refused(
        prepared: tuple[Path, Path, list[str]], which: str) -> None:
    src, out, outputs = prepared
    image = next(o for o in outputs if "/" not in o)
    frame = next(o for o in outputs if o.startswith("clip/"))
    dest = {"image-output": out / image,
            "image-output-case": out / image.upper(),
            "frame": out / frame,
            "frames-json": out / "clip" / "frames.json",
            "frames-folder": out / "clip",
            "new-file-in-frames-folder": out / "clip" / "requests.jsonl",
            "an-output-name-not-yet-made": out / "a.webp",
            "report-case": out / "Report.HTML",
            "hidden": out / ".requests.jsonl",
            "out-itself": out}[which]
    before = _digests(out)
    r = run("prep", src, "-o", out, "--no-cache", "-q", "--video-mode", "frames",
            "--transport", "base64", "--batch-requests", dest, "--prompt", "Describe.")
    assert r.exit_code == 2, r.output
    assert "--batch-requests" in r.output and "Traceback" not in r.output
    assert _digests(out) == before  # refused before any work
    for line in _lines(out).values():  # parts.jsonl still names files that are there
        assert all((out / o).is_file() for o in line["outputs"])


def test_batch_requests_named_like_a_frames_folder_to_come_is_refused(tmp_path: Path) -> None:
    """``requests.jsonl.mp4`` sent as frames goes to ``DIR/requests.jsonl/``."""
    src = tmp_path / "in"
    src.mkdir()
    make_video(src / "requests.jsonl.mp4", n_frames=20, fps=10)
    out = tmp_path / "out"
    r = run("prep", src, "-o", out, "--no-cache", "-q", "--video-mode", "frames",
            "--batch-requests", out / "Requests.jsonl", "--prompt", "Describe.")
    assert r.exit_code == 2, r.output
    assert not (out / "Requests.jsonl").exists() and not (out / "parts.jsonl").exists()


def test_batch_requests_in_dir_is_fine_and_never_cleaned(
        prepared: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    src, out, _ = prepared
    dest = out / "requests.jsonl"
    r = run("prep", src, "-o", out, "--no-cache", "-q", "--video-mode", "frames",
            "--batch-requests", dest, "--prompt", "Describe.")
    assert r.exit_code == 0, r.output
    assert len(dest.read_text().splitlines()) == 2
    kept = dest.read_bytes()
    other = tmp_path / "other"
    other.mkdir()
    (other / "z.png").write_bytes(_png((1, 2, 3)))
    r = run("prep", other, "-o", out, "--no-cache", "-q", "--clean")
    assert r.exit_code == 0, r.output
    assert dest.read_bytes() == kept  # not an output of an earlier run: --clean leaves it
    assert not list((out / "clip").glob("frame_*.jpg"))  # while the earlier run's went
