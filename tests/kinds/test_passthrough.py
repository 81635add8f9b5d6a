"""Issue 16 item 3: a pass-through sends the input's own bytes, proved to decode (a JPEG at 1/8
scale) without probing them again; damaged entropy data is still refused."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

import mediaprep


def _jpeg(size=(800, 600), quality=90) -> bytes:
    img = Image.effect_noise(size, 60).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _mid_entropy(data: bytes) -> int:
    sos = data.find(b"\xff\xda")
    assert sos > 0
    return (sos + len(data)) // 2


def _sent(p) -> bytes:
    return base64.b64decode(p.part["image_url"]["url"].split(",", 1)[1])


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_compliant_image_passes_through_byte_identical(fmt):
    buf = io.BytesIO()
    Image.effect_noise((640, 480), 40).convert("RGB").save(buf, fmt)
    raw = buf.getvalue()
    p = mediaprep.prepare(raw)
    assert p.ok, p.findings
    assert p.fixes == ["passed through unchanged"]
    assert _sent(p) == raw


def test_passthrough_output_info_is_the_inputs_own(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(_jpeg())
    p = mediaprep.prepare(path)
    assert p.ok and p.fixes == ["passed through unchanged"]
    # the bytes sent are the input's: its probe describes them (no second probe of a copy)
    assert p.output_info is not None and p.output_info.path == p.info.path
    assert (p.output_info.width, p.output_info.height) == (800, 600)


@pytest.mark.parametrize("damage", ["sof", "soi", "sos"])
def test_marker_in_the_middle_of_entropy_data_is_refused(damage, tmp_path):
    """A 1/8-scale decode still reads every entropy-coded segment: a stray marker halfway
    through the scan breaks it as a full decode would."""
    data = bytearray(_jpeg((1600, 1200)))
    mid = _mid_entropy(bytes(data))
    stray = {"sof": b"\xff\xc0\x00\x11", "soi": b"\xff\xd8\x00\x00",
             "sos": b"\xff\xda\x00\x0c"}[damage]
    data[mid:mid + 4] = stray
    path = tmp_path / f"damaged_{damage}.jpg"
    path.write_bytes(bytes(data))
    p = mediaprep.prepare(path)
    assert not p.ok and p.part is None
    codes = [f.code for f in p.findings]
    assert "file.unreadable" in codes
    assert any(path.name in f.message for f in p.findings if f.code == "file.unreadable")


def test_truncated_mid_entropy_jpeg_is_refused(tmp_path):
    data = _jpeg((1600, 1200))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[:_mid_entropy(data)])
    p = mediaprep.prepare(path)
    assert not p.ok
    assert "file.unreadable" in [f.code for f in p.findings]


def test_input_file_is_not_modified(tmp_path):
    path = tmp_path / "photo.jpg"
    raw = _jpeg()
    path.write_bytes(raw)
    mediaprep.prepare(path, out_dir=tmp_path / "out", transport="path", dialect="dashscope")
    assert path.read_bytes() == raw
