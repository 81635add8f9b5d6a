"""A HEIF's primary image is the one a viewer shows, and it need not be the file's first
(libheif's zPug_3.heic has its primary second of three). Probe, check, prepare and the report's
preview must all take the primary: prepare once converted image 0 while check judged the
primary's size."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import mediaprep

pillow_heif = pytest.importorskip("pillow_heif")


def _two_images(path: Path) -> Path:
    pillow_heif.register_heif_opener()
    heif = pillow_heif.from_pillow(Image.new("RGB", (96, 64), (220, 20, 20)))  # image 0: red
    heif.add_from_pillow(Image.new("RGB", (64, 48), (20, 20, 220)))  # the primary: blue
    heif.save(path, quality=80, primary_index=1)
    return path


def test_a_converted_heif_sends_its_primary_image_not_its_first(tmp_path: Path) -> None:
    src = _two_images(tmp_path / "two.heic")
    assert (mediaprep.probe(src).width, mediaprep.probe(src).height) == (64, 48)
    out = mediaprep.prepare(src, target="moonshot", out_dir=tmp_path / "out")  # HEIC -> JPEG
    assert out.ok and out.outputs[0].suffix == ".jpg"
    with Image.open(out.outputs[0]) as im:
        assert im.size == (64, 48)
        r, g, b = im.convert("RGB").getpixel((32, 24))
    assert b > 150 and r < 80, (r, g, b)


def test_a_passed_through_heif_is_verified_and_previewed_at_its_primary(tmp_path: Path) -> None:
    src = _two_images(tmp_path / "two.heic")
    out = mediaprep.prepare(src, target="dashscope", preview=True)
    assert out.ok and "passed through unchanged" in out.fixes
    assert out.preview is not None and out.preview.size == (64, 48)
    r, g, b = out.preview.getpixel((32, 24))
    assert b > 150 and r < 80, (r, g, b)
