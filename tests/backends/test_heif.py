"""Issue 25 item 2, HEIF half: a HEIF/HEIC/AVIF carrying data its primary image does not use
(a Samsung/Android motion photo's video in a trailing ``mpvd`` box or in an item of its own,
thumbnails, depth and gain maps, other pictures) is sent without it, rewritten losslessly
(``iloc`` offsets moved, the dropped items' entries gone), as a ``stripped`` change counted
against the byte budget; what the primary's rendering needs is kept."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mediaprep
from mediaprep.backends import heif
from mediaprep.backends.pillow import JPEG_TRAILER_KEPT_BYTES
from tests.conftest import REALMEDIA_PHONES
from tests.videogen import make_video

pillow_heif = pytest.importorskip("pillow_heif")

SAMSUNG = REALMEDIA_PHONES / "images" / "imm_samsung-one-ui-6.heic"


# ------------------------------------------------------------------------------ files


def _heic(size: tuple[int, int] = (256, 192), *, alpha: bool = False, **save: object) -> bytes:
    """A noisy picture as HEIC, written by pillow-heif (ftyp, meta, mdat); with ``alpha``, an
    alpha plane (opaque: DashScope's processor drops alpha, so a transparent one is flattened
    and converted)."""
    im = Image.effect_noise(size, 40).convert("RGB")
    if alpha:
        im.putalpha(255)
    buf = io.BytesIO()
    pillow_heif.from_pillow(im).save(buf, quality=60, **save)
    return buf.getvalue()


def _mp4(tmp_path: Path) -> bytes:
    return make_video(tmp_path / "clip.mp4", n_frames=20, width=160, height=120).read_bytes()


def _meta(data: bytes) -> tuple[heif.Box, heif.HeifMeta]:
    walk = heif.top_level_boxes(io.BytesIO(data), len(data))
    box = next(b for b in walk.boxes if b.kind == b"meta")
    return box, heif.read_meta(data[box.payload:box.end])


def _with_item(heic: bytes, payload: bytes, content_type: bytes,
               ref: bytes | None = None) -> bytes:
    """``heic`` with one more item, a ``mime`` item of ``content_type`` holding ``payload`` in
    an mdat box of its own at the end; with ``ref``, an iref entry of that type from it to
    the primary image. The other items' iloc offsets move by what the meta box grew."""
    box, meta = _meta(heic)
    assert box.end < len(heic)  # meta before mdat, as pillow-heif writes
    new_id = max(meta.all_items) + 1
    infe = heif.make_box(b"infe", b"\x02\0\0\0" + new_id.to_bytes(2, "big") + b"\0\0mime\0"
                         + content_type + b"\0")
    new_ref = b"" if ref is None else heif.make_box(
        ref, new_id.to_bytes(2, "big") + b"\0\1" + meta.primary.to_bytes(2, "big"))

    def build(grown: int, at: int) -> bytes:
        entries = [heif.ItemLocation(loc.item, loc.method, loc.data_ref,
                                     loc.base + (grown if loc.method == 0 else 0), loc.extents)
                   for loc in meta.locations]  # method 1: in idat, where it stays
        entries.append(heif.ItemLocation(new_id, 0, 0, 0, [(0, at, len(payload))]))
        out = bytearray(meta.payload[:4])
        for child in meta.children:
            raw = meta.payload[child.start:child.end]
            if child.kind == b"iinf":
                assert raw[8] == 0  # version 0: a 16-bit entry count
                n = int.from_bytes(raw[12:14], "big")
                raw = heif.make_box(b"iinf", raw[8:12] + (n + 1).to_bytes(2, "big")
                                    + raw[14:] + infe)
            elif child.kind == b"iloc":
                raw = heif.write_iloc(meta.iloc, entries, raw[9:12])
            elif child.kind == b"iref":
                assert raw[8] == 0  # version 0: 16-bit item ids
                raw = heif.make_box(b"iref", raw[8:] + new_ref)
            out += raw
        if meta.child(b"iref") is None and new_ref:
            out += heif.make_box(b"iref", b"\0\0\0\0" + new_ref)
        return heif.make_box(b"meta", bytes(out))

    grown = len(build(0, 0)) - box.size
    tail = heif.make_box(b"mdat", payload)
    at = len(heic) + grown + 8
    return heic[:box.start] + build(grown, at) + heic[box.end:] + tail


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False))


def _av_pictures(data: bytes) -> set[bytes]:
    """Each picture (a tile of a grid) FFmpeg's HEIF reader finds, decoded, as RGB bytes."""
    av = pytest.importorskip("av")
    found: dict[int, bytes] = {}
    with av.open(io.BytesIO(data)) as container:
        for packet in container.demux(video=list(range(len(container.streams.video)))):
            for frame in packet.decode():
                found.setdefault(packet.stream.index, frame.to_ndarray(format="rgb24").tobytes())
    return set(found.values())


def _prep(data: bytes, tmp_path: Path, name: str = "photo.heic", **options: object
          ) -> mediaprep.Prepared:
    path = tmp_path / name
    path.write_bytes(data)
    return mediaprep.prepare(path, target="dashscope", **options)


# ------------------------------------------------------------------------------ stripped


def test_an_unreferenced_video_item_is_dropped(tmp_path: Path) -> None:
    heic = _heic()
    motion = _with_item(heic, _mp4(tmp_path), b"video/mp4")
    assert np.array_equal(_pixels(motion), _pixels(heic))  # the fixture is a valid HEIF
    p = _prep(motion, tmp_path)
    assert p.ok, p.findings
    assert [c.kind for c in p.changes] == ["stripped"]
    assert "a video" in (p.changes[0].why or "")
    data = p.data or b""
    assert len(data) < len(motion)
    assert data == heic  # the item's entries gone, the offsets moved back: as before it came


def test_a_trailing_mpvd_box_is_dropped(tmp_path: Path) -> None:
    """Samsung and Google motion photos append the video after the HEIF's boxes."""
    heic = _heic()
    p = _prep(heic + heif.make_box(b"mpvd", _mp4(tmp_path)), tmp_path)
    assert p.ok, p.findings
    assert [c.kind for c in p.changes] == ["stripped"]
    assert "mpvd" in (p.changes[0].why or "")
    assert p.data == heic  # nothing else moved: the file pillow-heif wrote, byte for byte


def test_other_pictures_are_dropped(tmp_path: Path) -> None:
    """A file of two pictures, the primary the second (as libheif's zPug_3.heic has it): the
    first goes, and what is left decodes to the primary's pixels in libheif and in FFmpeg."""
    buf = io.BytesIO()
    two = pillow_heif.from_pillow(Image.effect_noise((256, 192), 60).convert("RGB"))
    two.add_from_pillow(Image.effect_noise((96, 64), 40).convert("RGB"))
    two.save(buf, quality=60, primary_index=1)
    whole = buf.getvalue()
    p = _prep(whole, tmp_path)
    assert p.ok and [c.kind for c in p.changes] == ["stripped"], p.findings
    assert "another picture" in (p.changes[0].why or "")
    data = p.data or b""
    assert len(data) < len(whole) // 2
    assert len(pillow_heif.open_heif(io.BytesIO(data))) == 1
    assert np.array_equal(_pixels(data), _pixels(whole))
    kept = _av_pictures(data)
    assert len(kept) == 1 and kept <= _av_pictures(whole)


def test_a_grid_image_keeps_its_tiles(tmp_path: Path) -> None:
    heic = _heic((256, 192), tile_size=64)  # a grid item deriving from 12 tiles
    _box, meta = _meta(heic)
    assert len(meta.all_items) > 10
    motion = _with_item(heic, _mp4(tmp_path), b"video/mp4") + heif.make_box(b"free", bytes(4000))
    p = _prep(motion, tmp_path)
    assert p.ok and [c.kind for c in p.changes] == ["stripped"], p.findings
    assert "padding" in (p.changes[0].why or "")
    data = p.data or b""
    assert np.array_equal(_pixels(data), _pixels(heic))
    assert _meta(data)[1].all_items == meta.all_items


def test_the_strip_is_counted_against_the_byte_limit(tmp_path: Path) -> None:
    heic = _heic()
    path = tmp_path / "motion.heic"
    path.write_bytes(heic + heif.make_box(b"mpvd", _mp4(tmp_path)))
    rep = mediaprep.check(path, target="dashscope")
    assert rep.info.image_bytes == len(heic)
    assert any("mpvd" in note for note in rep.info.notes)
    cap = (len(heic) + path.stat().st_size) // 2
    rep = mediaprep.check(path, target="dashscope", transport="url",
                          limits={"image.max_bytes.url": cap})
    assert rep.ok and not rep.findings, rep.findings


# ------------------------------------------------------------------------------ left alone


def test_data_the_primary_needs_is_left_alone(tmp_path: Path) -> None:
    """Its alpha plane, its Exif and XMP, and a metadata item that describes it (cdsc) stay:
    the file is sent as it is."""
    heic = _heic(alpha=True, exif=Image.Exif().tobytes(), xmp=b"<x:xmpmeta/>" * 400)
    described = _with_item(heic, b"<rdf/>" * 1000, b"application/rdf+xml", ref=b"cdsc")
    p = _prep(described, tmp_path)
    assert p.ok and p.fixes == ["passed through unchanged"], (p.fixes, p.findings)
    assert p.data == described


def test_the_same_data_not_referenced_is_dropped(tmp_path: Path) -> None:
    heic = _heic(alpha=True)
    loose = _with_item(heic, b"<rdf/>" * 1000, b"application/rdf+xml")
    p = _prep(loose, tmp_path)
    assert p.ok and [c.kind for c in p.changes] == ["stripped"], p.findings
    data = p.data or b""
    assert len(data) <= len(loose) - 6000
    assert np.array_equal(_pixels(data), _pixels(heic))  # alpha included
    assert _pixels(data).shape[2] == 4


def test_a_little_unused_data_is_sent_along(tmp_path: Path) -> None:
    """Up to JPEG_TRAILER_KEPT_BYTES, as for a JPEG's trailer: not worth a rewrite."""
    heic = _heic()
    padded = heic + heif.make_box(b"free", bytes(JPEG_TRAILER_KEPT_BYTES - 8))
    p = _prep(padded, tmp_path)
    assert p.ok and p.fixes == ["passed through unchanged"] and p.data == padded


def test_an_image_sequence_is_not_rewritten() -> None:
    from tests.fixtures.hostile import avif_timed

    data = avif_timed(4, 100)
    assert heif.plan_strip(io.BytesIO(data), len(data)) is None  # its moov points into mdat


# ------------------------------------------------------------------------------ hostile


def test_a_primary_past_the_end_is_still_refused(tmp_path: Path) -> None:
    heic = _heic()
    box, meta = _meta(heic)
    (loc,) = meta.locations
    ((idx, off, length),) = loc.extents
    longer = heif.ItemLocation(loc.item, loc.method, loc.data_ref, loc.base,
                               [(idx, off, length + 50_000)])
    iloc = meta.child(b"iloc")
    assert iloc is not None
    at = box.payload + iloc.start  # meta's children are placed from its payload
    liar = heic[:at] + heif.write_iloc(meta.iloc, [longer], heic[at + 9:at + 12]) + heic[
        at + iloc.size:]
    assert len(liar) == len(heic)
    for data in (liar, liar + heif.make_box(b"mpvd", bytes(20_000))):
        path = tmp_path / "liar.heic"
        path.write_bytes(data)
        rep = mediaprep.check(path, target="dashscope")
        assert "file.unreadable" in rep.codes()
        assert any("runs past the end" in f.message for f in rep.findings)
        assert heif.plan_strip(io.BytesIO(data), len(data)) is None
        assert not mediaprep.prepare(path, target="dashscope").ok


def test_a_cut_mpvd_box_is_refused(tmp_path: Path) -> None:
    whole = _heic() + heif.make_box(b"mpvd", bytes(20_000))
    path = tmp_path / "cut.heic"
    path.write_bytes(whole[:-5000])
    rep = mediaprep.check(path, target="dashscope")
    assert "file.unreadable" in rep.codes()
    assert any("mpvd box runs past the end" in f.message for f in rep.findings)


# ------------------------------------------------------------------------------ a real phone


@pytest.mark.skipif(not SAMSUNG.is_file(), reason="no realmedia-phones")
def test_real_samsung_motion_heic() -> None:
    """3000x4000, a 48-tile grid with a thumbnail, then padding, the video in an mpvd box and
    Samsung's sefd trailer. On DashScope a HEIC above 4K is converted anyway (only JPEG and PNG
    are taken there); where HEIC is taken, the strip is sent."""
    whole = SAMSUNG.read_bytes()
    rep = mediaprep.check(SAMSUNG, target="dashscope")
    assert rep.info.image_bytes is not None and rep.info.image_bytes < len(whole) * 0.15
    p = mediaprep.prepare(SAMSUNG, target="dashscope",
                          limits={"image.formats_above_tier": "jpeg,png,heic"})
    assert p.ok and [c.kind for c in p.changes] == ["stripped"], p.findings
    assert "mpvd" in (p.changes[0].why or "") and "thumbnail" in (p.changes[0].why or "")
    data = p.data or b""
    assert len(data) == rep.info.image_bytes
    assert np.array_equal(_pixels(data), _pixels(whole))
    tiles = _av_pictures(data)
    assert len(tiles) > 1 and tiles <= _av_pictures(whole)  # FFmpeg reads the same tiles
