"""``mediaprep probe`` says where an image's orientation comes from (issue 25, item 15).

An AVIF's rotation is written in its ``irot``/``imir`` item properties, not in EXIF (Pillow
reports them as an orientation); probe called it "EXIF orientation". It now words it as prep's
``rotated`` change does: "irot/imir orientation N" for AVIF/HEIF, "EXIF orientation N" else.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, features

from mediaprep.cli import main
from tests.conftest import REALMEDIA

needs_avif = pytest.mark.skipif(not features.check("avif"), reason="Pillow without AVIF")


def probe(path: Path) -> str:
    result = CliRunner().invoke(main, ["probe", str(path)])
    assert result.exit_code == 0, result.output
    return result.stdout


def exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def boxes(path: Path) -> set[str]:
    data = path.read_bytes()
    return {name for name in ("irot", "imir", "Exif") if name.encode() in data}


@needs_avif
@pytest.mark.parametrize(("orientation", "written"), [(6, {"irot"}), (5, {"irot", "imir"})])
def test_avif_rotation_is_called_irot_imir(tmp_path: Path, orientation: int,
                                           written: set[str]) -> None:
    path = tmp_path / "turned.avif"
    # Pillow writes the orientation asked for as irot/imir boxes, and no EXIF at all
    Image.new("RGB", (64, 32), (30, 90, 200)).save(path, exif=exif_orientation(orientation))
    assert boxes(path) == written
    line = probe(path)
    assert f"irot/imir orientation {orientation}" in line, line
    assert "EXIF" not in line


def test_jpeg_rotation_is_called_exif(tmp_path: Path) -> None:
    path = tmp_path / "turned.jpg"
    Image.new("RGB", (64, 32), (30, 90, 200)).save(path, exif=exif_orientation(6))
    line = probe(path)
    assert "EXIF orientation 6" in line, line
    assert "irot" not in line


def test_heic_rotation_is_applied_by_its_decoder_not_called_exif(tmp_path: Path) -> None:
    """pillow-heif writes the rotation as an irot box and its decoder applies it: probe shows
    the picture as displayed (32x64) and claims no EXIF orientation."""
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    path = tmp_path / "turned.heic"
    Image.new("RGB", (64, 32), (30, 90, 200)).save(path, exif=exif_orientation(6))
    assert "irot" in boxes(path)
    line = probe(path)
    assert ", 32x64," in line, line
    assert "EXIF orientation" not in line


@needs_avif
def test_real_avif_with_irot_and_imir() -> None:
    path = REALMEDIA / "images" / "pil_rot1mir0.avif"
    if not path.is_file():
        pytest.skip("../shared/realmedia is absent")
    line = probe(path)
    assert "irot/imir orientation 5" in line, line
