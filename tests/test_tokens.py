"""Tests for mediaprep.tokens (Kimi K2.5-family vision-token estimates)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediaprep.tokens import (
    KIMI_K25,
    VISION_MODELS_WITH_ESTIMATE,
    KimiVisionConfig,
    TokenEstimate,
    estimate_image,
    estimate_video,
    frames_for_video,
    image_tokens,
    model_resize,
    video_chunk_tokens,
    video_tokens,
)

sides = st.integers(min_value=1, max_value=200_000)


# --- worked values (acceptance tests of the issue) -----------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    [
        (28, 28, 1),
        (1024, 1024, 1369),
        (1920, 1080, 2691),
        (3840, 2160, 4214),
        (7168, 7168, 4096),
    ],
)
def test_worked_values(width: int, height: int, tokens: int) -> None:
    assert image_tokens(width, height) == tokens


def test_4k_model_resize() -> None:
    assert model_resize(3840, 2160) == (2392, 1345)


def test_small_and_fitting_images_are_kept() -> None:
    assert model_resize(28, 28) == (28, 28)
    assert model_resize(1920, 1080) == (1920, 1080)
    assert model_resize(1, 1) == (1, 1)
    assert image_tokens(1, 1) == 1
    assert image_tokens(29, 28) == 2  # padding rounds up to the next 28 px


def test_7168_square_is_quartered() -> None:
    assert model_resize(7168, 7168) == (1792, 1792)


def test_long_side_is_capped() -> None:
    # 512 patches per side at most: the long side lands at 7168 px, the short side shrinks.
    assert model_resize(20000, 100) == (7168, 35)
    assert image_tokens(20000, 100) == 256 * 2


def test_constants_match_preprocessor_config() -> None:
    cfg = KIMI_K25
    assert (cfg.patch_size, cfg.merge_kernel_size) == (14, 2)
    assert (cfg.in_patch_limit, cfg.patch_limit_on_one_side) == (16384, 512)
    assert (cfg.in_patch_limit_each_frame, cfg.in_patch_limit_video) == (4096, None)
    assert (cfg.sample_fps, cfg.temporal_merge_kernel_size) == (2.0, 4)
    assert (cfg.factor, cfg.max_side_px) == (28, 7168)
    assert "preprocessor_config.json" in cfg.source
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.patch_size = 16  # type: ignore[misc]


def test_models_share_the_k25_processor() -> None:
    assert set(VISION_MODELS_WITH_ESTIMATE) == {"kimi-k2.5", "kimi-k2.6", "kimi-k2.7-code"}
    assert all(cfg is KIMI_K25 for cfg in VISION_MODELS_WITH_ESTIMATE.values())


# --- properties --------------------------------------------------------------------------------


@given(sides, sides)
def test_resize_never_upscales_and_respects_side_limits(width: int, height: int) -> None:
    new_w, new_h = model_resize(width, height)
    assert 1 <= new_w <= min(width, 7168)
    assert 1 <= new_h <= min(height, 7168)
    # At most 512 patches per side, before and after padding (the reference asserts the latter).
    assert math.ceil(new_w / 14) <= 512 and math.ceil(new_h / 14) <= 512
    assert 2 * math.ceil(new_w / 28) <= 512 and 2 * math.ceil(new_h / 28) <= 512


@given(sides, sides)
def test_tokens_are_the_padded_grid(width: int, height: int) -> None:
    new_w, new_h = model_resize(width, height)
    tokens = image_tokens(width, height)
    assert tokens == math.ceil(new_w / 28) * math.ceil(new_h / 28)
    assert 1 <= tokens <= 256 * 256


@given(sides, sides)
def test_patch_budget(width: int, height: int) -> None:
    # scale <= sqrt(16384 / (fw * fh)), so W' * H' <= 16384 * W * H / (fw * fh).
    new_w, new_h = model_resize(width, height)
    fw, fh = max(1, width // 14), max(1, height // 14)
    assert new_w * new_h * fw * fh <= 16384 * width * height * (1 + 1e-9)


@given(st.integers(min_value=1, max_value=512 * 14), st.integers(min_value=1, max_value=512 * 14))
def test_images_within_budget_are_not_resized(width: int, height: int) -> None:
    if max(1, width // 14) * max(1, height // 14) <= 16384:
        assert model_resize(width, height) == (width, height)
        wider = width + 28
        if wider <= 512 * 14 and (wider // 14) * max(1, height // 14) <= 16384:
            assert image_tokens(width, height) < image_tokens(wider, height)


@given(st.integers(min_value=1, max_value=512), st.integers(min_value=1, max_value=512))
def test_exact_patch_multiples_stay_within_4096_patches(pw: int, ph: int) -> None:
    # When both sides are whole 14-px patches the unpadded grid keeps the 16384-patch budget.
    new_w, new_h = model_resize(pw * 14, ph * 14)
    assert (new_w // 14) * (new_h // 14) <= 16384


def test_tokens_can_exceed_4096_for_images() -> None:
    # Not a hard cap: floored patch counts in the budget and the 28-px padding overshoot it.
    assert image_tokens(3840, 2160) > 4096
    assert image_tokens(7176, 500) == 4428


def test_huge_dimensions_are_pure_arithmetic() -> None:
    assert model_resize(10**12, 10**12) == (1792, 1792)
    assert image_tokens(2**63, 3) == 256
    assert model_resize(10**18, 10**18 // 2)[0] <= 7168


# --- video --------------------------------------------------------------------------------------


def test_video_chunk_rule() -> None:
    chunk = video_chunk_tokens(1920, 1080)
    assert model_resize(1920, 1080, patch_limit=4096) == (1196, 672)
    assert chunk == 43 * 24
    for n in (1, 2, 3, 4):
        assert video_tokens(n, 1920, 1080) == chunk
    assert video_tokens(5, 1920, 1080) == 2 * chunk
    assert video_tokens(8, 1920, 1080) == 2 * chunk
    assert video_tokens(9, 1920, 1080) == 3 * chunk


@given(st.integers(min_value=1, max_value=5000), sides, sides)
def test_video_tokens_scale_with_chunks(n: int, width: int, height: int) -> None:
    chunk = video_chunk_tokens(width, height)
    assert video_tokens(n, width, height) == math.ceil(n / 4) * chunk
    assert chunk <= image_tokens(width, height)


def test_video_total_budget_when_configured() -> None:
    cfg = dataclasses.replace(KIMI_K25, in_patch_limit_video=8192)
    # 8 frames -> 1024 patches each; 1 frame -> per-frame limit (4096) still applies.
    assert video_tokens(8, 1920, 1080, cfg=cfg) == 2 * math.ceil(
        model_resize(1920, 1080, patch_limit=1024)[0] / 28
    ) * math.ceil(model_resize(1920, 1080, patch_limit=1024)[1] / 28)
    assert video_tokens(1, 1920, 1080, cfg=cfg) == video_chunk_tokens(1920, 1080)


def test_frames_for_video() -> None:
    assert frames_for_video(10.0, 2.0, 2000) == 20
    assert frames_for_video(10.3, 2.0, 2000) == 21  # round(20.6)
    assert frames_for_video(3600.0, 2.0, 2000) == 2000
    assert frames_for_video(0.1, 0.1, 2000) == 1
    assert frames_for_video(10.0, 2.0, 2000, source_fps=1.0) == 10


# --- report shape -------------------------------------------------------------------------------


def test_token_estimate_json() -> None:
    est = estimate_image(1024, 1024)
    # the bare processor arithmetic: vision tokens only, and it says so
    assert est == TokenEstimate(estimate=1369, model="kimi-k2.5", counts=("vision",))
    assert est.to_json() == {"estimate": 1369, "model": "kimi-k2.5", "counts": ["vision"]}
    assert json.loads(json.dumps(est.to_json())) == est.to_json()
    assert estimate_video(5, 1920, 1080, model="kimi-k2.6").to_json() == {
        "estimate": 2064,
        "model": "kimi-k2.6",
        "counts": ["vision"],
    }
    assert estimate_image(28, 28, model="kimi-k2.7-code").estimate == 1


# --- invalid input ------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(0, 10), (10, 0), (-1, 10), (10, -5)])
def test_non_positive_dimensions(width: int, height: int) -> None:
    with pytest.raises(ValueError):
        image_tokens(width, height)
    with pytest.raises(ValueError):
        model_resize(width, height)
    with pytest.raises(ValueError):
        video_tokens(4, width, height)


def test_invalid_arguments() -> None:
    with pytest.raises(TypeError):
        image_tokens(10.5, 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        image_tokens(True, 10)
    with pytest.raises(ValueError):
        image_tokens(2**64, 10)
    with pytest.raises(ValueError):
        video_tokens(0, 100, 100)
    with pytest.raises(ValueError):
        model_resize(100, 100, patch_limit=0)
    with pytest.raises(ValueError):
        estimate_image(100, 100, model="kimi-k2-thinking")
    for args in ((0.0, 2.0, 10), (10.0, 0.0, 10), (10.0, 2.0, 0), (math.nan, 2.0, 10)):
        with pytest.raises(ValueError):
            frames_for_video(*args)
    with pytest.raises(ValueError):
        frames_for_video(10.0, 2.0, 10, source_fps=-1.0)


def test_config_is_a_plain_dataclass() -> None:
    assert isinstance(KIMI_K25, KimiVisionConfig)
