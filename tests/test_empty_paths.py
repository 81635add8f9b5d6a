"""An empty or blank path is an error, never the current folder (issue 22, item 5): an unset
shell variable (``prep "$DIR" -o out``) must not prepare the whole working directory."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import mediaprep
from mediaprep.batch import BatchError, check_many, prep_many
from mediaprep.cli import main
from mediaprep.resource import ResourceError

BLANKS = ["", " ", "\t\n"]


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture()
def cwd_of_images(tmp_path: Path) -> Iterator[Path]:
    """A working directory holding images, which an empty path would take."""
    for i in range(5):
        (tmp_path / f"img{i}.png").write_bytes(_png((i * 50, 20, 20)))
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.mark.parametrize("blank", BLANKS)
@pytest.mark.parametrize("call", ["prepare", "check", "probe"])
def test_the_library_refuses_a_blank_path(cwd_of_images: Path, call: str, blank: str) -> None:
    before = _tree(cwd_of_images)
    fn = getattr(mediaprep, call)
    with pytest.raises(ResourceError, match="empty path"):
        fn(blank)
    if call == "prepare":  # with an output folder too
        with pytest.raises(ResourceError, match="empty path"):
            fn(blank, out_dir=cwd_of_images / "out")
    with pytest.raises(ResourceError, match="empty path"):  # a frame list with one blank
        fn([str(cwd_of_images / "img0.png"), blank])
    assert _tree(cwd_of_images) == before


@pytest.mark.parametrize("blank", BLANKS)
def test_the_batch_api_refuses_a_blank_path(cwd_of_images: Path, blank: str) -> None:
    before = _tree(cwd_of_images)
    out = cwd_of_images.parent / "out"
    with pytest.raises(BatchError, match="empty path"):
        prep_many([blank], out, jobs=0, cache=False)
    with pytest.raises(BatchError, match="empty path"):
        prep_many(["img0.png"], blank, jobs=0, cache=False)
    with pytest.raises(BatchError, match="empty path"):
        prep_many(["img0.png"], out, jobs=0, cache=False, frames_dirs=[blank])
    with pytest.raises(BatchError, match="empty path"):
        check_many([blank], jobs=0)
    assert _tree(cwd_of_images) == before and not out.exists()


@pytest.mark.parametrize("args", [
    ["prep", "", "-o", "out"],
    ["prep", " ", "-o", "out"],
    ["prep", "img0.png", "-o", ""],
    ["prep", "img0.png", "-o", "out", "--frames-dir", ""],
    ["prep", "img0.png", "-o", "out", "--manifest", ""],
    ["check", ""],
    ["check", "img0.png", ""],
    ["probe", ""],
    ["frames", "", "-o", "out"],
    ["frames", "img0.png", "-o", " "],
], ids=lambda a: " ".join(repr(x) for x in a))
def test_the_cli_makes_a_blank_path_a_usage_error(cwd_of_images: Path, args: list[str]) -> None:
    before = _tree(cwd_of_images)
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    assert "empty path" in r.output and "Traceback" not in r.output
    assert _tree(cwd_of_images) == before  # nothing written, not even the output folder
