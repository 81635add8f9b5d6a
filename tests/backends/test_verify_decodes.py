"""What the pass-through's decode (``verify_decodes``) buys over ``check``: damaged files whose
structure ``check`` accepts, which only decoding refuses. A cheaper verify must still refuse
each of these (issue 28 item 2: ``bench/bench_passthrough.py`` measures what it costs).

Also refused only by the verify: a large PNG whose rows are damaged
(tests/kinds/test_image_passthrough.py::test_large_png_with_damaged_rows_is_refused_by_prep)."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

import mediaprep


def _pixels() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.clip(rng.normal(128, 40, (600, 800, 3)), 0, 255).astype(np.uint8)


def _encode(fmt: str, **options) -> bytearray:
    buf = io.BytesIO()
    Image.fromarray(_pixels()).save(buf, fmt, **options)
    return bytearray(buf.getvalue())


def _segment(data: bytearray, marker: int) -> int:
    at = data.find(bytes([0xFF, marker]))
    assert at > 0
    return at


def jpeg_bad_sampling() -> bytes:
    """The first component's sampling factors 5x5 (libjpeg allows 1-4)."""
    data = _encode("JPEG", quality=90)
    data[_segment(data, 0xC0) + 11] = 0x55
    return bytes(data)


def jpeg_bad_progression() -> bytes:
    """A progressive JPEG whose first scan starts at coefficient 70 (Ss is at most 63)."""
    data = _encode("JPEG", quality=90, progressive=True)
    sos = _segment(data, 0xDA)
    data[sos + 5 + 2 * data[sos + 4]] = 70
    return bytes(data)


def jpeg_undefined_huffman_table() -> bytes:
    """A scan whose first component names Huffman tables 7 (a JPEG defines at most 0-3)."""
    data = _encode("JPEG", quality=90)
    data[_segment(data, 0xDA) + 6] = 0x77
    return bytes(data)


def _webp_cut(data: bytearray) -> bytes:
    """The image chunk of a simple WebP cut to half its data, every size field made to agree:
    the container is whole, the coded picture is not."""
    keep = (len(data) - 20) // 2
    payload = bytes(data[20 : 20 + keep]) + b"\0" * (keep % 2)
    body = b"WEBP" + bytes(data[12:16]) + struct.pack("<I", keep) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_lossy_cut() -> bytes:
    return _webp_cut(_encode("WEBP", quality=80))


def webp_lossless_cut() -> bytes:
    return _webp_cut(_encode("WEBP", lossless=True))


ONLY_THE_DECODE_REFUSES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "jpeg_bad_sampling": ("jpg", jpeg_bad_sampling),
    "jpeg_bad_progression": ("jpg", jpeg_bad_progression),
    "jpeg_undefined_huffman_table": ("jpg", jpeg_undefined_huffman_table),
    "webp_lossy_cut": ("webp", webp_lossy_cut),
    "webp_lossless_cut": ("webp", webp_lossless_cut),
}


@pytest.mark.parametrize("name", sorted(ONLY_THE_DECODE_REFUSES))
def test_check_accepts_and_prep_refuses_what_only_decoding_finds(tmp_path, name):
    ext, make = ONLY_THE_DECODE_REFUSES[name]
    path = tmp_path / f"{name}.{ext}"
    path.write_bytes(make())
    assert mediaprep.check(path).ok  # the structure is whole: only a decode finds the damage
    prepared = mediaprep.prepare(path)
    assert not prepared.ok and prepared.part is None
    unreadable = [f for f in prepared.findings if f.code == "file.unreadable"]
    assert unreadable and path.name in unreadable[0].message
