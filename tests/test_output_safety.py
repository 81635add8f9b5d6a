"""Output safety: names derived from inputs stay inside ``-o DIR`` and never overwrite each other.

Output names come from input names (``../``, absolute paths, Windows drives, odd Unicode: RTL
overrides, zero-width and full-width characters, control characters, undecodable bytes, names
too long for the file system). Every one must land inside the output folder, as a writable
name, and two inputs must never share an output.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path, PurePath

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import mediaprep
from mediaprep.cli import main
from mediaprep.output import atomic_write, inside, output_stems, safe_relative
from mediaprep.resource import Resource

HOSTILE_NAMES = [
    "../../etc/passwd.jpg",
    "../x.jpg",
    "a/../../b.jpg",
    "/etc/cron.d/evil.png",
    "//server/share/x.jpg",
    "C:\\Windows\\System32\\x.jpg",
    "..\\..\\x.jpg",
    "C:x.jpg",
    "．．／．．／etc／passwd.jpg",  # full-width dots and solidus (NFKC: ../../etc/passwd)
    "‥／x.jpg",  # two-dot leader
    "evil\u202egpj.exe",  # right-to-left override
    "zero\u200bwidth\u200d.jpg",
    "ctrl\x00\x01\x1b[31m.jpg",
    "new\nline\r.jpg",
    "bad\udcff\udcfebytes.jpg",  # undecodable file-name bytes (surrogateescape)
    "漢字" * 100 + ".jpg",  # 600 bytes of UTF-8: over NAME_MAX
    "😀" * 80 + ".png",
    "." * 300,
    "-rf.jpg",
    " .jpg",
    "",
    "CON.jpg",
]


def _jpeg(colour=(10, 200, 30), size=(32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _assert_safe(root: Path, rel: PurePath) -> Path:
    assert not rel.is_absolute()
    assert ".." not in rel.parts and "." not in rel.parts
    for part in rel.parts:
        assert part and "/" not in part and "\\" not in part and "\x00" not in part
        assert len(part.encode("utf-8")) <= 200
    target = inside(root, rel)
    assert target.resolve().is_relative_to(root.resolve())
    return target


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_stay_inside_and_are_writable(tmp_path: Path, name: str) -> None:
    rel = safe_relative(name)
    target = _assert_safe(tmp_path, rel)
    atomic_write(target.with_name(target.name + "-frame_000001.jpg"), b"ok")
    assert list(tmp_path.rglob("*-frame_000001.jpg"))


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_any_name_stays_inside(name: str) -> None:
    root = Path("/tmp/mediaprep-out-root")
    _assert_safe(root, safe_relative(name))
    # the stem used for outputs, with an extension added, is still a single clean component
    stem = safe_relative(name).with_suffix("")
    _assert_safe(root, stem.with_name(stem.name + ".jpg"))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("aA./\\_- .é漢"), min_size=1, max_size=12),
                min_size=2, max_size=6, unique=True))
def test_distinct_inputs_get_distinct_stems(names: list[str]) -> None:
    """No two inputs share a stem, and no stem is another's folder (a video's frames go there),
    also when the file system ignores case."""
    stems = output_stems(names)
    keys = [s.as_posix().lower() for s in stems.values()]
    assert len(set(keys)) == len(keys), stems
    folders = {p.as_posix().lower() for s in stems.values() for p in s.parents if p.parts}
    assert not folders & set(keys), stems


@pytest.mark.parametrize("name", HOSTILE_NAMES[:12])
def test_library_prepare_keeps_outputs_inside(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    prepared = mediaprep.prepare(Resource(name=name, data=_jpeg()), out_dir=out)
    assert prepared.ok, prepared.findings
    assert prepared.outputs
    for p in prepared.outputs:
        assert p.resolve().is_relative_to(out.resolve())
    assert {p.resolve() for p in tmp_path.rglob("*") if p.is_file()} == {
        p.resolve() for p in prepared.outputs}


def _prep(paths: list[Path], out: Path, *extra: str) -> list[dict]:
    res = CliRunner().invoke(main, ["prep", *map(str, paths), "-o", str(out), "-q", *extra])
    assert res.exit_code == 0, res.output
    return [json.loads(line) for line in (out / "parts.jsonl").read_text().splitlines()]


def _outputs(lines: list[dict], out: Path) -> list[Path]:
    files = [out / rel for line in lines for rel in line["outputs"]]
    for f in files:
        assert f.resolve().is_relative_to(out.resolve())
    return files


def test_same_name_in_different_folders(tmp_path: Path) -> None:
    colours = {"a": (250, 10, 10), "b": (10, 10, 250), "c/deep": (10, 250, 10)}
    paths = []
    for folder, colour in colours.items():
        p = tmp_path / "in" / folder / "photo.jpg"
        p.parent.mkdir(parents=True)
        p.write_bytes(_jpeg(colour))
        paths.append(p)
    out = tmp_path / "out"
    lines = _prep(paths, out, "--transport", "path", "--dialect", "dashscope")
    files = _outputs(lines, out)
    assert len(files) == len(set(files)) == 3
    for line, colour in zip(lines, colours.values(), strict=True):
        with Image.open(out / line["outputs"][0]) as im:
            r, g, b = im.convert("RGB").getpixel((16, 12))
        assert max((r, g, b)) == (r, g, b)[colour.index(max(colour))]  # its own picture


def test_names_that_clean_or_convert_to_the_same_output(tmp_path: Path) -> None:
    """``a b.jpg``/``a_b.jpg`` clean to one name; ``x.png``/``x.heic``/``X.bmp`` all become
    PNGs or JPEGs named x; each still gets its own output."""
    src = tmp_path / "in"
    src.mkdir()
    names = ["a b.jpg", "a_b.jpg", "a\u200bb.jpg", "x.png", "x.bmp", "X.jpg"]
    for i, n in enumerate(names):
        img = Image.new("RGB", (40, 30), (i * 40, 0, 0))
        fmt = {"jpg": "JPEG", "png": "PNG", "bmp": "BMP"}[n.rsplit(".", 1)[1]]
        img.save(src / n, fmt)
    out = tmp_path / "out"
    lines = _prep(sorted(src.iterdir()), out, "--transport", "path", "--dialect", "dashscope")
    files = _outputs(lines, out)
    assert len(files) == len(names)
    assert len({f.as_posix().lower() for f in files}) == len(names)


def test_a_videos_frames_folder_does_not_take_an_images_name(tmp_path: Path,
                                                              generated: dict[str, Path]) -> None:
    """``clip.mp4`` sent as frames writes ``clip/frame_000000.jpg``; an input at that very
    place keeps its own output."""
    src = tmp_path / "in"
    (src / "clip").mkdir(parents=True)
    (src / "clip.mp4").write_bytes(generated["video_2s"].read_bytes())
    (src / "clip" / "frame_000000.jpg").write_bytes(_jpeg((250, 250, 0)))
    out = tmp_path / "out"
    lines = _prep([src / "clip.mp4", src / "clip" / "frame_000000.jpg"], out,
                  "--video-mode", "frames", "--transport", "path", "--dialect", "dashscope")
    files = _outputs(lines, out)
    assert len(files) == len(set(files))
    image_line = next(line for line in lines if line["kind"] == "image")
    with Image.open(out / image_line["outputs"][0]) as im:
        assert im.convert("RGB").getpixel((5, 5))[2] < 60  # still the yellow picture


def test_output_folder_symlink_escape_is_refused(tmp_path: Path) -> None:
    """A link inside DIR pointing out of it cannot carry an output outside DIR."""
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, out / "photo")
    with pytest.raises(ValueError):
        inside(out, PurePath("photo/x.jpg"))
    prepared = mediaprep.prepare(Resource(name="photo.mp4", data=b""), out_dir=out)
    assert not prepared.ok
    assert list(outside.iterdir()) == []
