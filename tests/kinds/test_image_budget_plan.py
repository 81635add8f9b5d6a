"""Fitting a byte budget through mediaprep.prepare: planned before decoding, few encodes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

import mediaprep
from mediaprep.backends.pillow_encode import PREFER_DOWNSCALE_BELOW, encode_to_budget
from mediaprep.backends.sniff import data_url_size
from mediaprep.kinds.image import DRAFT_SNAP, draft_size, jpeg_quality_of


def _photo(w: int, h: int, seed: int = 0, noise: float = 8.0) -> Image.Image:
    rng = np.random.default_rng(seed)
    low = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(
        (w, h), Image.Resampling.BICUBIC
    )
    arr = np.asarray(low).astype(np.int16) + rng.normal(0, noise, (h, w, 3)).astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _url_size(r: mediaprep.Prepared) -> int:
    assert r.data is not None
    return data_url_size(len(r.data), r.mime or "image/jpeg")


def test_jpeg_quality_read_from_the_header() -> None:
    for q in (30, 50, 75, 95):
        buf = io.BytesIO()
        Image.new("RGB", (16, 16)).save(buf, "JPEG", quality=q)
        assert abs(jpeg_quality_of(Image.open(buf).quantization) - q) <= 1.5
    assert jpeg_quality_of(None) is None


def test_draft_size_snaps_only_near_the_plan() -> None:
    full, want = (8000, 6000), (5760, 4320)
    assert draft_size(full, want, None) == want
    assert draft_size(full, want, (6000, 4500)) == want  # plan bigger than the box
    assert draft_size(full, want, (4200, 3150)) == (4000, 3000)  # 1/2 is >= 85% of the plan
    assert draft_size(full, want, (int(4000 / DRAFT_SNAP) + 8, 3600)) == want
    assert draft_size(full, want, (1000, 750)) == (1000, 750)  # 1/8


def test_tight_budget_decodes_a_big_jpeg_at_a_dct_scale(tmp_path: Path) -> None:
    src = tmp_path / "big.jpg"
    _photo(4000, 3000, seed=1).save(src, "JPEG", quality=95)
    budget = 200_000
    r = mediaprep.prepare(src, limits={"image.max_data_url_bytes": budget})
    assert r.ok
    assert _url_size(r) <= budget * 0.98
    dw, dh = r.stats["decoded"]
    assert (dw, dh) in ((2000, 1500), (1000, 750))  # never the full 4000x3000
    w, h = r.stats["size"]
    assert w <= dw and abs(w / h - 4 / 3) < 0.01
    assert r.stats["encodes"] <= 2
    assert r.stats["quality"] >= PREFER_DOWNSCALE_BELOW  # pixels went before quality did


def test_generous_budget_decodes_in_full_and_encodes_once(tmp_path: Path) -> None:
    src = tmp_path / "big.jpg"
    _photo(3000, 2000, seed=2).save(src, "JPEG", quality=95)
    r = mediaprep.prepare(src, limits={"image.max_data_url_bytes": 2_500_000})
    assert r.ok and r.stats["decoded"] == [3000, 2000] and r.stats["size"] == [3000, 2000]
    assert r.stats["encodes"] == 1


def test_hopeless_png_is_not_tried_as_png(tmp_path: Path) -> None:
    src = tmp_path / "photo.png"
    _photo(2000, 1500, seed=3).save(src, "PNG", compress_level=1)
    r = mediaprep.prepare(src, limits={"image.max_data_url_bytes": 400_000})
    assert r.ok and r.mime == "image/jpeg"
    assert any("planned too big, not tried" in s for s in r.stats["encode_steps"])
    assert r.stats["encodes"] <= 2
    assert _url_size(r) <= 400_000 * 0.98


def test_png_that_may_fit_is_still_tried(tmp_path: Path) -> None:
    src = tmp_path / "flat.png"
    Image.new("RGB", (1500, 1000), (200, 30, 30)).save(src, "PNG")
    r = mediaprep.prepare(src, limits={"image.max_data_url_bytes": 400_000})
    assert r.ok and r.fixes == ["passed through unchanged"]
    r = mediaprep.prepare(Image.open(src), limits={"image.max_data_url_bytes": 400_000})
    assert r.ok and r.mime == "image/png"  # encoded, and as PNG


def test_low_quality_is_traded_for_fewer_pixels() -> None:
    img = _photo(2400, 1800, seed=4)
    raw_budget = 120_000
    plain = encode_to_budget(img, format="jpeg", max_bytes=raw_budget)
    policy = encode_to_budget(
        img, format="jpeg", max_bytes=raw_budget, prefer_downscale_below=PREFER_DOWNSCALE_BELOW
    )
    assert plain.quality is not None and plain.quality < PREFER_DOWNSCALE_BELOW
    assert (policy.width, policy.height) < (plain.width, plain.height)
    assert policy.quality is not None and policy.quality >= PREFER_DOWNSCALE_BELOW
    assert len(policy.data) <= raw_budget * 0.98
    assert any(s.startswith("planned downscale") for s in policy.steps)


def test_sample_prediction_lands_in_one_encode() -> None:
    img = _photo(2000, 1500, seed=5)
    for budget in (150_000, 400_000, 900_000):
        r = encode_to_budget(img, format="jpeg", max_bytes=budget)
        assert len(r.data) <= budget * 0.98
        assert r.encodes <= 2, r.steps
        assert r.sample_encodes >= 1


def test_png_predicted_over_the_budget_from_a_sample_is_not_encoded(tmp_path: Path) -> None:
    """Issue 28: a noisy photo saved as PNG re-encodes to ~0.95x its bytes, above what the
    header-only floor (PNG_RECOMPRESS_FLOOR x input) expects: a strip sample predicts the full
    encode, and the seconds of a lossless encode that cannot fit are not spent."""
    from mediaprep.tuning import PNG_RECOMPRESS_FLOOR

    src = tmp_path / "noisy.png"
    _photo(2000, 1500, seed=6, noise=30.0).save(src, "PNG")
    size = src.stat().st_size
    budget = int(size * 0.95)  # a data URL of ~0.71x the input's bytes
    assert PNG_RECOMPRESS_FLOOR * size < budget * 3 / 4  # the floor alone would try the PNG
    r = mediaprep.prepare(src, limits={"image.max_data_url_bytes": budget})
    assert r.ok and r.mime == "image/jpeg"
    steps = r.stats["encode_steps"]
    assert any("predicted" in s and "not tried" in s for s in steps), steps
    assert not any("zlib 6" in s for s in steps), steps  # no full PNG encode
    assert r.stats["sample_encodes"] >= 1
    assert _url_size(r) <= budget


def test_png_predicted_to_fit_is_encoded_as_png(tmp_path: Path) -> None:
    src = tmp_path / "noisy.png"
    img = _photo(2000, 1500, seed=6, noise=30.0)
    img.save(src, "PNG")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    budget = int(len(buf.getvalue()) * 4 / 3 * 1.05) + 1000  # its zlib-6 PNG fits, just
    r = mediaprep.prepare(Image.open(src), limits={"image.max_data_url_bytes": budget})
    assert r.ok and r.mime == "image/png", r.fixes
    assert r.stats["sample_encodes"] >= 1  # predicted, then encoded once


def test_a_draft_decode_keeps_the_picture_of_a_full_decode_and_lanczos(tmp_path: Path) -> None:
    """A JPEG fitted to a quarter of its side or less is decoded DCT-scaled (libjpeg's own area
    filter) before the Lanczos step: the picture sent is the one a full decode and Lanczos
    give, within the re-encode's own noise."""
    rng = np.random.default_rng(3)
    low = Image.fromarray(rng.integers(0, 256, (8, 12, 3), dtype=np.uint8))
    smooth = np.asarray(low.resize((6000, 4000), Image.Resampling.BICUBIC), np.int16)
    grain = rng.normal(0, 5, (4000, 6000, 1)).astype(np.int16)
    src = tmp_path / "big.jpg"
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(src, quality=92)
    r = mediaprep.prepare(src, out_dir=tmp_path / "out", max_side=1200)
    assert r.ok and r.stats["decoded"] == [1500, 1000]  # 1/4 scale, not the whole 24 MP
    with Image.open(r.outputs[0]) as out:
        sent = np.asarray(out.convert("RGB"), np.int16)
        assert out.size == (1200, 800)
    with Image.open(src) as full:
        careful = full.resize((1200, 800), Image.Resampling.LANCZOS)
    diff = np.abs(sent - np.asarray(careful, np.int16))
    assert diff.mean() < 1.5
