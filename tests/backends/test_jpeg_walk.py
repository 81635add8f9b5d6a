"""The JPEG structure walk reads every byte of the entropy-coded data a block at a time: damage
anywhere in it (past the first block, straddling two blocks) is refused as before, and what
belongs there (FF00 stuffing, restart markers, fill bytes) is not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import mediaprep
from mediaprep.backends.pillow import JPEG_SCAN_BLOCK


def _noisy_jpeg(w: int, h: int, **options) -> bytes:
    px = np.random.default_rng(5).integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, "JPEG", quality=95, **options)
    return buf.getvalue()


@pytest.fixture(scope="module")
def big() -> bytes:
    data = _noisy_jpeg(2000, 1500)
    assert len(data) > 2 * JPEG_SCAN_BLOCK + 4096  # entropy data spans three blocks
    return data


def _sos_end(data: bytes) -> int:
    sos = data.find(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


def _stuffed_ff_near(data: bytes, at: int) -> int:
    """A stuffed 0xFF (FF00) at or after ``at``: replacing its 00 leaves the bytes around it as
    a real encoder wrote them."""
    i = data.find(b"\xff\x00", at)
    assert i > 0
    return i


def _codes(path) -> list[str]:
    return [f.code for f in mediaprep.check(path).findings]


@pytest.mark.parametrize("where", ["second block", "block edge", "last block"])
@pytest.mark.parametrize("stray", [0xD8, 0xC0, 0xDA])  # a second SOI, SOF, a bad SOS
def test_a_stray_marker_anywhere_in_the_scan_is_refused(big, tmp_path, where, stray):
    start = _sos_end(big)
    at = {"second block": start + JPEG_SCAN_BLOCK + 1000,
          # the 0xFF is the last byte of the first block, its marker byte the next block's first
          "block edge": start + JPEG_SCAN_BLOCK - 1,
          "last block": len(big) - 5000}[where]
    data = bytearray(big)
    if where == "block edge":
        data[at : at + 2] = bytes([0xFF, stray])
    else:
        at = _stuffed_ff_near(big, at)
        data[at + 1] = stray
    if stray == 0xDA:  # an SOS of the wrong length naming no component
        data[at + 2 : at + 4] = b"\x00\x03"
    path = tmp_path / f"stray_{stray:x}.jpg"
    path.write_bytes(bytes(data))
    report = mediaprep.check(path)
    assert not report.ok
    assert "file.unreadable" in _codes(path), report.findings
    assert any(path.name in f.message for f in report.findings)


def test_the_undamaged_file_passes(big, tmp_path):
    path = tmp_path / "ok.jpg"
    path.write_bytes(big)
    assert mediaprep.check(path).ok


def test_restart_markers_and_fill_bytes_are_part_of_the_data(tmp_path):
    data = _noisy_jpeg(1200, 900, restart_marker_blocks=4)
    assert sum(data.count(bytes([0xFF, 0xD0 + k])) for k in range(8)) > 100
    # fill bytes before the end-of-image marker (allowed before any marker)
    end = data.rfind(b"\xff\xd9")
    data = data[:end] + b"\xff\xff\xff" + data[end:]
    path = tmp_path / "rst.jpg"
    path.write_bytes(data)
    report = mediaprep.check(path)
    assert report.ok, report.findings


def test_a_progressive_jpeg_counts_its_scans_past_block_edges(tmp_path):
    data = _noisy_jpeg(2000, 1500, progressive=True)
    assert len(data) > JPEG_SCAN_BLOCK
    path = tmp_path / "prog.jpg"
    path.write_bytes(data)
    scans = data.count(b"\xff\xda")
    assert mediaprep.check(path, limits={"image.max_jpeg_scans": scans}).ok
    over = mediaprep.check(path, limits={"image.max_jpeg_scans": scans - 1})
    assert "image.decompression_bomb" in [f.code for f in over.findings]


@pytest.mark.parametrize("stray", [0xD8, 0xC0])
def test_a_stray_marker_after_thousands_of_restart_markers_is_refused(tmp_path, stray):
    """A restart marker every MCU: the walk steps over the first few one at a time, then
    filters the rest of the block at once; a marker past them is still found."""
    data = bytearray(_noisy_jpeg(1600, 1200, restart_marker_blocks=1))
    rst = [i for k in range(8) for i in _find_all(data, bytes([0xFF, 0xD0 + k]))]
    assert len(rst) > 2000
    at = _stuffed_ff_near(data, sorted(rst)[1500])
    data[at + 1] = stray
    path = tmp_path / "rst_stray.jpg"
    path.write_bytes(bytes(data))
    assert "file.unreadable" in _codes(path)
    clean = tmp_path / "rst_clean.jpg"
    clean.write_bytes(_noisy_jpeg(1600, 1200, restart_marker_blocks=1))
    assert mediaprep.check(clean).ok


def _find_all(data: bytes | bytearray, needle: bytes) -> list[int]:
    out, i = [], data.find(needle)
    while i >= 0:
        out.append(i)
        i = data.find(needle, i + 1)
    return out
