"""Issue 25 items 1-2: a JPEG with more after its first image (a Pixel/Samsung motion photo's
MP4, an Ultra HDR gain map in MPF) is read by walking its segments, and prep sends the first
image only, stripped losslessly, the strip recorded as a change and counted against the budget.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mediaprep
from tests.conftest import REALMEDIA_PHONES
from tests.videogen import make_video


def _photo(size: tuple[int, int] = (640, 480), quality: int = 90) -> bytes:
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _motion_photo(tmp_path: Path) -> tuple[Path, bytes]:
    """A Pixel-style ``PXL_…MP.jpg``: a JPEG with an MP4 appended after its EOI."""
    jpeg = _photo()
    clip = make_video(tmp_path / "clip.mp4", n_frames=20, width=160, height=120)
    path = tmp_path / "PXL_20260101_120000000.MP.jpg"
    path.write_bytes(jpeg + clip.read_bytes())
    return path, jpeg


def test_motion_photo_is_read_and_sent_without_its_video(tmp_path: Path) -> None:
    path, jpeg = _motion_photo(tmp_path)
    rep = mediaprep.check(path)
    assert rep.ok, rep.findings
    assert rep.info.image_bytes == len(jpeg)
    p = mediaprep.prepare(path)
    assert p.ok, p.findings
    assert p.data == jpeg  # the first image, byte for byte: lossless
    assert [c.kind for c in p.changes] == ["stripped"]
    change = p.changes[0]
    assert "video" in (change.why or "") and change.after is not None
    assert "stripped" in p.fixes[0]


def test_motion_photo_over_the_budget_only_with_its_video_passes(tmp_path: Path) -> None:
    """The strip is counted against the byte limit: a photo whose video alone breaks the
    limit is sent unchanged (stripped), not re-encoded."""
    path, jpeg = _motion_photo(tmp_path)
    whole = path.stat().st_size
    cap = (len(jpeg) + whole) // 2  # between the JPEG and the whole file
    rep = mediaprep.check(path, transport="url", limits={"image.max_bytes.url": cap})
    assert rep.ok and not rep.findings, rep.findings


def test_ultra_hdr_gain_map_is_stripped(tmp_path: Path) -> None:
    """An MPF file (primary JPEG + a gain-map JPEG after it) is sent as its primary image."""
    primary = Image.open(io.BytesIO(_photo((400, 300))))
    gain = Image.open(io.BytesIO(_photo((200, 150), quality=70)))
    path = tmp_path / "ultrahdr.jpg"
    primary.save(path, "MPO", save_all=True, append_images=[gain])
    assert Image.open(path).format == "MPO"
    p = mediaprep.prepare(path)
    assert p.ok, p.findings
    assert [c.kind for c in p.changes] == ["stripped"]
    assert "MPF" in (p.changes[0].why or "")
    whole = path.read_bytes()
    data = p.data or b""
    assert whole.startswith(data) and len(data) < len(whole)
    out = Image.open(io.BytesIO(data))
    out.load()  # the primary image, whole (its MPF index still names the gone gain map)
    assert out.size == (400, 300)


def test_padding_after_the_image_is_sent_along(tmp_path: Path) -> None:
    path = tmp_path / "padded.jpg"
    path.write_bytes(_photo() + b"\0" * 100)
    p = mediaprep.prepare(path)
    assert p.ok and not p.changes


@pytest.mark.skipif(not (REALMEDIA_PHONES / "images").is_dir(), reason="no realmedia-phones")
def test_real_gain_map_jpeg() -> None:
    path = REALMEDIA_PHONES / "images" / "uhdr_sample_display_p3.jpg"
    rep = mediaprep.check(path)
    assert rep.ok, rep.findings


def test_mpo_scaled_down_is_re_encoded_not_converted_from_jpeg_to_jpeg(tmp_path: Path) -> None:
    """An MPO is sent as the JPEG it starts with: when prep must re-encode it, the record says
    so ("re-encoded to JPEG ..."), not "converted from JPEG to JPEG"."""
    path = tmp_path / "pair.mpo"
    left, right = Image.new("RGB", (640, 480), (200, 40, 40)), Image.new("RGB", (640, 480))
    left.save(path, "MPO", save_all=True, append_images=[right])
    assert mediaprep.probe(path).format == "mpo"
    p = mediaprep.prepare(path, max_side=320)
    assert p.ok, p.findings
    encoded = [c for c in p.changes if c.kind in ("converted", "re-encoded")]
    assert [c.kind for c in encoded] == ["re-encoded"], p.changes
    assert encoded[0].after is not None and encoded[0].after.startswith("JPEG 320x240")
    assert not any("from JPEG to JPEG" in fix for fix in p.fixes), p.fixes
