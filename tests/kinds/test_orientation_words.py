"""Issue 25 item 15: a HEIF/AVIF's rotation (irot/imir) is not called "EXIF orientation"."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

import mediaprep


def test_avif_rotation_is_named_for_irot(tmp_path: Path) -> None:
    path = tmp_path / "turned.avif"
    img = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, "AVIF", exif=exif.tobytes())
    info = mediaprep.probe(path)
    if info.orientation in (None, 1):
        import pytest

        pytest.skip("this libavif writes no orientation")
    p = mediaprep.prepare(path)
    assert p.ok, p.findings
    rotated = [c for c in p.changes if c.kind == "rotated"]
    assert rotated and "irot/imir" in (rotated[0].why or "") and "EXIF" not in rotated[0].why
