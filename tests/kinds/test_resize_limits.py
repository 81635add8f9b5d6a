"""Issue 25 items 10-11: every resize keeps every limit that held before it (a 200:1 panorama
stays within 200:1), and --resize model sends the size the model keeps (the fixed point of its
processor's resize), so the model does not resample the pixels again."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from PIL import Image

import mediaprep
from mediaprep.tokens import model_resize

MAX_RATIO = 200  # DashScope's image.max_aspect_ratio (an error above it)


def _ratio(size: tuple[int, int]) -> float:
    return max(size) / min(size)


def _panorama(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGB", size, (40, 90, 160)).save(path, "PNG")
    return path


@pytest.mark.parametrize("resize_model", [False, True])
@pytest.mark.parametrize("size", [(40000, 200), (200, 40000), (39999, 200)])
def test_panorama_at_the_limit_stays_within_it(tmp_path: Path, size: tuple[int, int],
                                               resize_model: bool) -> None:
    path = _panorama(tmp_path / "pano.png", size)
    rep = mediaprep.check(path)
    assert [f.code for f in rep.findings if f.severity != "info"] == ["image.resolution"]
    p = mediaprep.prepare(path, resize_model=resize_model)
    assert p.ok, p.findings
    out = Image.open(io.BytesIO(p.data or b"")).size
    assert _ratio(out) <= MAX_RATIO, out
    assert max(out) <= (7168 if resize_model else 7680)
    assert mediaprep.check(io.BytesIO(p.data or b"")).ok


def test_panorama_in_the_8k_box_rounds_the_short_side_up(tmp_path: Path) -> None:
    p = mediaprep.prepare(_panorama(tmp_path / "pano.png", (40000, 200)))
    assert Image.open(io.BytesIO(p.data or b"")).size == (7680, 39)  # not 7680x38 (202:1)


def _fixed_point(w: int, h: int) -> tuple[int, int]:
    size = (w, h)
    while model_resize(*size) != size:
        size = model_resize(*size)
    return size


def test_resize_model_sends_what_the_model_keeps(tmp_path: Path) -> None:
    """4981x1761: the processor's one step gives 3026x1070, which it shrinks again to
    3023x1068; prep sends the size the model keeps."""
    assert model_resize(4981, 1761) != model_resize(*model_resize(4981, 1761))
    path = tmp_path / "wide.jpg"
    Image.new("RGB", (4981, 1761), (120, 60, 30)).save(path, quality=70)
    p = mediaprep.prepare(path, resize_model=True)
    assert p.ok, p.findings
    out = Image.open(io.BytesIO(p.data or b"")).size
    assert out == _fixed_point(4981, 1761)
    assert model_resize(*out) == out  # the model keeps it as it is
    assert math.isclose(_ratio(out), 4981 / 1761, rel_tol=0.01)
