"""mediaprep.backends.colour: the colour difference it measures by, profiles judged by their
numbers, and the tone map against FFmpeg's."""

from __future__ import annotations

import numpy as np
import pytest

from mediaprep.backends.colour import Cicp, delta_e2000, judge_profile, tone_map
from tests.fixtures.colour import (
    ICC_CASES,
    ffmpeg_tone_mapped,
    have_ffmpeg,
    hdr_chart,
    icc_profile,
    write_hdr_avif,
)

# Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula", table 1: pairs 1, 7,
# 13, 19, 25 and 34 (Lab 1, Lab 2, the published difference)
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),
    ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


@pytest.mark.parametrize(("lab1", "lab2", "expected"), SHARMA)
def test_delta_e2000_matches_the_published_pairs(lab1, lab2, expected):
    assert float(delta_e2000(np.array(lab1), np.array(lab2))) == pytest.approx(expected, abs=1e-4)


def test_a_profile_is_judged_by_its_primaries_not_its_name():
    samsung = judge_profile(icc_profile(*ICC_CASES["samsung_p3"]))
    apple = judge_profile(icc_profile(*ICC_CASES["apple_p3"]))
    odd = judge_profile(icc_profile(*ICC_CASES["srgb_named_oddly"]))
    assert "sRGB" in samsung.name  # the name says sRGB ...
    assert samsung.shift == pytest.approx(apple.shift, abs=0.01)  # ... the numbers say P3
    assert samsung.visible and not samsung.same_as_srgb
    assert odd.same_as_srgb and not odd.visible  # sRGB under a camera's name


@pytest.mark.parametrize(("case", "low", "high"), [
    ("apple_p3", 2.0, 3.0), ("adobe_rgb", 2.5, 3.5), ("rec2020", 4.0, 5.5), ("prophoto", 6.5, 9.0)])
def test_wider_gamuts_shift_further_when_ignored(case, low, high):
    assert low < judge_profile(icc_profile(*ICC_CASES[case])).shift < high


def test_an_unreadable_profile_is_no_verdict():
    assert judge_profile(b"not a profile at all" * 10) is None


def test_sdr_with_bt709_primaries_is_untouched_by_the_tone_map_path():
    rgb = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
    got = tone_map(rgb, Cicp(1, 13))
    assert np.abs(got.astype(int) - (rgb * 255 + 0.5).astype(int)).max() <= 1


needs_ffmpeg = pytest.mark.skipif(
    not have_ffmpeg(filters=("zscale", "tonemap"), encoders=("libaom-av1",)),
    reason="the FFmpeg CLI with zscale, tonemap and libaom-av1 makes the references")


@needs_ffmpeg
@pytest.mark.parametrize(("transfer", "code"), [("pq", 16), ("hlg", 18)])
def test_tone_map_is_within_6_delta_e_of_ffmpeg_hable(tmp_path, transfer, code):
    """The numpy operator against FFmpeg's zscale + tonemap=hable on the same HDR chart, both
    from the 10-bit file's decoded signal (measured: PQ 2.1, HLG 3.1; the naive read of the
    signal as sRGB is 11.9 and 6.1)."""
    from PIL import Image

    from mediaprep.backends.colour import mean_delta_e

    path = write_hdr_avif(tmp_path / f"{transfer}.avif", transfer)
    ref = ffmpeg_tone_mapped(path).reshape(160, 240, 3)
    signal = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
    got = tone_map(signal, Cicp(9, code, 9))
    assert mean_delta_e(got, ref) <= 6.0
    assert mean_delta_e(got, ref) < mean_delta_e((signal * 255).astype(np.uint8), ref) - 2


def test_hdr_chart_white_is_brighter_than_sdr_white_after_pq_decoding():
    from mediaprep.backends.colour import pq_to_nits

    chart = hdr_chart("pq").astype(np.float64) / 65535
    nits = pq_to_nits(chart)
    assert nits[0, 0].max() == pytest.approx(1000, rel=0.01)  # the highlight strip
    assert nits[-1, -1].max() < 60  # a dark grey patch
