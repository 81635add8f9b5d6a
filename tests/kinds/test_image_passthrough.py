"""Issue 16 item 3: the pass-through's cheaper proofs refuse what the full decode refused.

A PNG is verified by inflating its IDAT stream and reading each row's filter type (not
unfiltered into pixels); a JPEG marker that libjpeg's marker reader refuses is found by the
probe's marker walk, so check refuses it as prep does."""

from __future__ import annotations

import base64
import io
import random
import struct
import zlib

import pytest
from PIL import Image

import mediaprep
from tests.fixtures.generate import png_chunk

DAMAGED = [f"jpeg_stray_{m}" for m in ("sof", "soi", "sos", "dht", "dqt")] + [
    f"jpeg_progressive_stray_{m}" for m in ("sof", "soi", "sos", "dht", "dqt")] + [
    f"png_{k}_damaged" for k in ("filter", "short", "crc")]


@pytest.fixture(scope="module")
def hostile(hostile_corpus: dict) -> dict:
    return hostile_corpus


def _errors(findings) -> list[str]:
    return [f.code for f in findings if f.severity == "error"]


@pytest.mark.parametrize("name", DAMAGED)
def test_damaged_image_data_is_refused_by_check_and_prep(hostile: dict, name: str) -> None:
    path = hostile[name].path
    report = mediaprep.check(path)
    assert _errors(report.findings) == ["file.unreadable"]
    assert path.name in report.findings[0].message
    prepared = mediaprep.prepare(path)
    assert not prepared.ok and prepared.part is None
    assert "file.unreadable" in _errors(prepared.findings)


def _sent(p) -> bytes:
    return base64.b64decode(p.part["image_url"]["url"].split(",", 1)[1])


def _big_png(**save) -> bytes:
    rng = random.Random(5)
    img = Image.frombytes("RGB", (400, 300), rng.randbytes(400 * 300 * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG", **save)
    return buf.getvalue()


@pytest.mark.parametrize("save", [{}, {"interlace": 1}], ids=["plain", "interlaced"])
def test_large_png_passes_through_byte_identical(save) -> None:
    raw = _big_png(**save)
    p = mediaprep.prepare(raw)
    assert p.ok and p.fixes == ["passed through unchanged"], p.findings
    assert _sent(p) == raw


def _rebuild(raw: bytes, transform) -> bytes:
    """``raw`` with its IDAT stream inflated, passed through ``transform``, recompressed into
    one IDAT (CRCs right)."""
    pos, idat, head = 8, b"", b""
    while pos < len(raw):
        n, kind = struct.unpack_from(">I4s", raw, pos)
        if kind == b"IHDR":
            head = raw[pos:pos + 12 + n]
        elif kind == b"IDAT":
            idat += raw[pos + 8:pos + 8 + n]
        pos += 12 + n
    data = transform(bytearray(zlib.decompress(idat)))
    return (raw[:8] + head + png_chunk(b"IDAT", zlib.compress(bytes(data)))
            + png_chunk(b"IEND", b""))


def _bad_filter(data: bytearray) -> bytearray:
    data[(400 * 3 + 1) * 200] = 9  # row 200's filter type
    return data


@pytest.mark.parametrize("damage", [_bad_filter, lambda d: d[:-5000]],
                         ids=["filter_type", "rows_missing"])
def test_large_png_with_damaged_rows_is_refused_by_prep(damage, tmp_path) -> None:
    """Above the shallow check's inflate size only prep's verify reads the data: it refuses
    what Pillow's full decode refused."""
    path = tmp_path / "damaged.png"
    path.write_bytes(_rebuild(_big_png(), damage))
    p = mediaprep.prepare(path)
    assert not p.ok and p.part is None
    assert "file.unreadable" in _errors(p.findings)
    assert any(path.name in f.message for f in p.findings if f.code == "file.unreadable")


def test_heic_passes_through_byte_identical() -> None:
    pytest.importorskip("pillow_heif")
    from mediaprep.backends.pillow import register_plugins

    register_plugins()
    buf = io.BytesIO()
    Image.effect_noise((640, 480), 40).convert("RGB").save(buf, "HEIF", quality=80)
    raw = buf.getvalue()
    p = mediaprep.prepare(raw)
    assert p.ok and p.fixes == ["passed through unchanged"], p.findings
    assert _sent(p) == raw
