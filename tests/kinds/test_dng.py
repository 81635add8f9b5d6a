"""Issue 25 item 3: a DNG (a TIFF with DNGVersion) is sent as its largest embedded JPEG
preview with ``image.raw_preview``, or refused when it has none."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mediaprep
from tests.conftest import REALMEDIA_PHONES


def _jpeg(size: tuple[int, int]) -> bytes:
    arr = np.random.default_rng(5).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _dng(previews: bool = True, orientation: int | None = None,
         preview: bytes | None = None) -> bytes:
    """A little-endian DNG: IFD 0 an uncompressed 32x24 RGB thumbnail (as Canon writes), its
    SubIFDs a 640x480 JPEG preview and the lossless-JPEG CFA raw data (4000x3000)."""
    thumb = bytes(32 * 24 * 3)
    preview = preview or _jpeg((640, 480))
    raw = b"\xff\xd8\xff\xc3" + bytes(60)  # lossless JPEG (SOF3) of CFA data: not a preview
    blobs = [thumb, preview, raw]
    data_at, pos = [], 8
    for b in blobs:
        data_at.append(pos)
        pos += len(b) + (len(b) & 1)

    def ifd(entries: list[tuple[int, int, list[int]]], next_ifd: int = 0) -> bytes:
        out = struct.pack("<H", len(entries))
        for tag, typ, values in sorted(entries):
            if typ == 1:
                out += struct.pack("<HHI", tag, typ, len(values)) + bytes(values).ljust(4, b"\0")
            elif typ == 3:
                out += struct.pack("<HHI", tag, typ, 1) + struct.pack("<HH", values[0], 0)
            else:
                out += struct.pack("<HHII", tag, typ, 1, values[0])
        return out + struct.pack("<I", next_ifd)

    def image(sub: int, w: int, h: int, comp: int, photo: int, at: int, n: int,
              spp: int = 3) -> list[tuple[int, int, list[int]]]:
        return [(254, 4, [sub]), (256, 4, [w]), (257, 4, [h]), (258, 3, [8]),
                (259, 3, [comp]), (262, 3, [photo]), (273, 4, [at]), (277, 3, [spp]),
                (278, 4, [h]), (279, 4, [n])]

    sub1_at = pos
    sub1 = ifd(image(1, 640, 480, 7, 6, data_at[1], len(preview)))
    sub2_at = sub1_at + len(sub1)
    sub2 = ifd(image(0, 4000, 3000, 7, 32803, data_at[2], len(raw), spp=1))
    ifd0_at = sub2_at + len(sub2)
    subs = [sub1_at, sub2_at] if previews else [sub2_at]
    entries = image(1, 32, 24, 1, 2, data_at[0], len(thumb)) + [(50706, 1, [1, 4, 0, 0])]
    if orientation is not None:
        entries.append((274, 3, [orientation]))  # Orientation, for every image of the file
    # two SubIFD offsets need an array: write them after IFD 0
    ifd0 = ifd(entries + [(330, 4, [0])])
    arr_at = ifd0_at + len(ifd0)
    entries = [e for e in entries] + [(330, 13, [arr_at if len(subs) > 1 else subs[0]])]
    ifd0 = ifd(entries)
    if len(subs) > 1:  # patch the count of the SubIFDs entry
        ifd0 = _with_count(ifd0, 330, len(subs))
    body = b"".join(b + b"\0" * (len(b) & 1) for b in blobs)
    return (b"II*\0" + struct.pack("<I", ifd0_at) + body + sub1 + sub2 + ifd0
            + b"".join(struct.pack("<I", s) for s in subs))


def _with_count(ifd: bytes, tag: int, count: int) -> bytes:
    n = struct.unpack_from("<H", ifd)[0]
    out = bytearray(ifd)
    for i in range(n):
        at = 2 + 12 * i
        if struct.unpack_from("<H", out, at)[0] == tag:
            struct.pack_into("<I", out, at + 4, count)
    return bytes(out)


def test_dng_sends_its_largest_preview(tmp_path: Path) -> None:
    path = tmp_path / "IMG_0001.dng"
    path.write_bytes(_dng())
    rep = mediaprep.check(path)
    assert rep.ok, rep.findings
    assert rep.codes() == ["image.raw_preview"]
    assert (rep.info.width, rep.info.height) == (640, 480)
    assert rep.info.raw_size == (4000, 3000)
    p = mediaprep.prepare(path)
    assert p.ok, p.findings
    assert p.mime == "image/jpeg" and p.data == _jpeg((640, 480))  # the preview, byte for byte
    assert [c.kind for c in p.changes] == ["converted"] and "DNG" in p.fixes[0]


def test_dng_preview_is_resized_when_above_the_limits(tmp_path: Path) -> None:
    path = tmp_path / "IMG_0002.dng"
    path.write_bytes(_dng())
    p = mediaprep.prepare(path, max_side=320)
    assert p.ok, p.findings
    assert Image.open(io.BytesIO(p.data or b"")).size == (320, 240)


def test_dng_without_a_preview_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "IMG_0003.dng"
    path.write_bytes(_dng(previews=False))
    rep = mediaprep.check(path)
    assert not rep.ok and rep.codes() == ["file.unsupported_format"]
    assert "no embedded JPEG preview" in rep.findings[0].message
    assert "IMG_0003.dng" in rep.findings[0].message
    assert not mediaprep.prepare(path).ok


@pytest.mark.skipif(not (REALMEDIA_PHONES / "images").is_dir(), reason="no realmedia-phones")
def test_real_cinema_dng_has_no_preview() -> None:
    rep = mediaprep.check(REALMEDIA_PHONES / "images" / "iio_Blackmagic.dng")
    assert rep.codes() == ["file.unsupported_format"], rep.findings


def _halves(size: tuple[int, int] = (640, 480)) -> bytes:
    """A JPEG red on its left half, blue on its right: which way it was turned shows."""
    img = Image.new("RGB", size, (220, 30, 30))
    img.paste((30, 30, 220), (size[0] // 2, 0, size[0], size[1]))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_a_dng_s_orientation_turns_its_preview_upright(tmp_path: Path, orientation: int) -> None:
    """A camera held upright writes Orientation 6 or 8 in the DNG's IFD 0 and stores its
    preview as the sensor saw it: the model gets the picture as a raw viewer shows it."""
    path = tmp_path / "portrait.dng"
    path.write_bytes(_dng(orientation=orientation, preview=_halves()))
    rep = mediaprep.check(path)
    assert rep.info.orientation == orientation
    r = mediaprep.prepare(path)
    assert r.ok, r.findings
    sent = Image.open(io.BytesIO(r.data)).convert("RGB")
    want = Image.open(io.BytesIO(_halves())).convert("RGB").transpose(
        {6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90,
         3: Image.Transpose.ROTATE_180}[orientation])
    assert sent.size == want.size
    diff = np.abs(np.asarray(sent, dtype=int) - np.asarray(want, dtype=int)).mean()
    assert diff < 6, diff
    assert any(c.kind == "rotated" and "DNG orientation" in (c.why or "") for c in r.changes)


def test_an_upright_dng_s_preview_is_still_sent_byte_identical(tmp_path: Path) -> None:
    preview = _halves()
    path = tmp_path / "upright.dng"
    path.write_bytes(_dng(orientation=1, preview=preview))
    r = mediaprep.prepare(path)
    assert r.ok and r.data == preview
