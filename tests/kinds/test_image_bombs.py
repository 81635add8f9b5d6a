"""Issue 17 items 8-10: CPU and memory bombs refused before decoding, the iCCP bomb named, an
APNG's lying acTL, Pillow's DecompressionBombWarning kept off stderr."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

import mediaprep
from tests.fixtures.generate import jpeg_header_only
from tests.fixtures.hostile import (
    apng_lying_actl,
    avif_declaring,
    gif_screen_bomb,
    ico_holding_png,
    jpeg_many_scans,
    png_iccp_bomb,
    png_idat_bomb,
    webp_canvas_bomb,
)

ROOT = Path(__file__).resolve().parents[2]


def codes(report) -> list[str]:
    return [f.code for f in report.findings]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_jpeg_with_thousands_of_scans_is_refused_by_its_structure(tmp_path):
    p = _write(tmp_path, "scans.jpg", jpeg_many_scans(20_000, side=64))
    info = mediaprep.probe(p, deep=True)
    assert info.error_code == "image.decompression_bomb"
    assert "scans" in info.error
    report = mediaprep.check(p)
    assert codes(report) == ["image.decompression_bomb"]
    assert "scans.jpg" in report.findings[0].message


def test_jpeg_scans_at_the_limit_pass(tmp_path):
    # a progressive JPEG from Pillow holds ~10 scans; 80 more stays under 100
    p = _write(tmp_path, "ok.jpg", jpeg_many_scans(80, side=64))
    assert "image.decompression_bomb" not in codes(mediaprep.check(p))
    p = _write(tmp_path, "over.jpg", jpeg_many_scans(95, side=64))
    assert "image.decompression_bomb" in codes(mediaprep.check(p))
    # the row is overridable
    assert "image.decompression_bomb" not in codes(
        mediaprep.check(p, limits={"image.max_jpeg_scans": 1000}))


@pytest.mark.parametrize("name,data", [
    ("canvas.webp", webp_canvas_bomb()),
    ("screen.gif", gif_screen_bomb()),
    ("declares.avif", avif_declaring()),
    ("icon.ico", ico_holding_png(png_idat_bomb(13000, 13000))),
    ("pointer.cur", ico_holding_png(png_idat_bomb(13000, 13000), kind=2)),
], ids=["webp", "gif", "avif", "ico", "cur"])
def test_canvas_bombs_are_refused_before_decoding(tmp_path, name, data):
    p = _write(tmp_path, name, data)
    info = mediaprep.probe(p, deep=True)
    assert info.error_code == "image.decompression_bomb", info.error
    assert "pixels per byte" in info.error
    out = tmp_path / "out"
    result = mediaprep.prepare(p, out_dir=out)
    assert not result.ok
    assert "image.decompression_bomb" in [f.code for f in result.findings]


def _bmp_cursor(side: int = 32) -> bytes:
    """A real-shaped CUR: one 32-bit BMP entry (height doubled for the AND mask)."""
    dib = struct.pack("<IiiHHIIiiII", 40, side, 2 * side, 1, 32, 0, 0, 0, 0, 0, 0)
    pixels = bytes([10, 10, 200, 255]) * side * side
    mask = bytes(4 * side)  # 1 bit a pixel, rows padded to 32 bits: all shown
    payload = dib + pixels + mask
    entry = struct.pack("<BBBBHHII", side, side, 0, 0, 1, 1, len(payload), 6 + 16)
    return struct.pack("<HHH", 0, 2, 1) + entry + payload


def test_a_small_cursor_is_read_as_a_cur_image(tmp_path):
    p = _write(tmp_path, "pointer.cur", _bmp_cursor())
    info = mediaprep.probe(p)
    assert (info.kind, info.format, info.error_code) == ("image", "cur", None)
    assert (info.width, info.height) == (32, 32)
    assert mediaprep.prepare(p).ok  # converted to a format the target takes


def test_raising_the_pixel_ceiling_lets_a_canvas_through(tmp_path):
    p = _write(tmp_path, "screen.gif", gif_screen_bomb())
    report = mediaprep.check(p, limits={"image.max_decode_pixels": 5_000_000_000})
    assert "image.decompression_bomb" not in codes(report)


def _padded_jpeg_header(w: int, h: int, total: int) -> bytes:
    """A header-only JPEG padded with COM segments to ``total`` bytes (a photo's size)."""
    data = jpeg_header_only(w, h)
    pad = bytearray()
    while len(data) + len(pad) < total:
        n = min(65533, total - len(data) - len(pad))
        pad += b"\xff\xfe" + struct.pack(">H", n + 2) + bytes(n)
    return data[:2] + bytes(pad) + data[2:]


def test_a_200_megapixel_photo_is_not_a_bomb(tmp_path):
    # 16320x12240 in 3 MB: ~66 pixels per byte, decoded at 1/2 for the 8K box
    p = _write(tmp_path, "phone.jpg", _padded_jpeg_header(16320, 12240, 3_000_000))
    info = mediaprep.probe(p)
    assert info.error_code != "image.decompression_bomb", info.error
    assert (info.width, info.height) == (16320, 12240)
    # the same header in a few hundred bytes claims a bomb's ratio
    p = _write(tmp_path, "tiny.jpg", jpeg_header_only(16320, 12240))
    assert mediaprep.probe(p).error_code == "image.decompression_bomb"


def test_iccp_bomb_is_named_as_a_profile_bomb(tmp_path):
    p = _write(tmp_path, "iccp.png", png_iccp_bomb())
    report = mediaprep.check(p)
    assert codes(report) == ["image.decompression_bomb"]
    msg = report.findings[0].message
    assert "ICC" in msg and "iCCP" in msg
    assert "pixels" not in msg


def test_apng_frames_are_counted_from_its_chunks(tmp_path):
    p = _write(tmp_path, "lying.png", apng_lying_actl())
    info = mediaprep.probe(p)
    assert info.error_code is None
    assert (info.frames or 1) == 1


def test_prep_keeps_pillows_bomb_warning_off_stderr(tmp_path):
    # 9500x9500 (90 MP) is above Pillow's warning threshold (89.5 MP), below our guard
    p = _write(tmp_path, "big.png", png_idat_bomb(9500, 9500))
    proc = subprocess.run(
        [sys.executable, "-m", "mediaprep", "prep", str(p), "-o", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert "DecompressionBombWarning" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stdout + proc.stderr
