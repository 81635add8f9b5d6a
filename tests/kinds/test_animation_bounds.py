"""Issue 22 items 14 and 17: an animation sent as frames is judged by what compositing it costs
before any frame is decoded, and goes at a frame count and fps that keep its real length."""

from __future__ import annotations

import pytest

import mediaprep
from tests.fixtures.hostile import avif_timed, gif_many_frames, gif_timed


def _length(res) -> float:
    n = len(res.part["video"])
    return n / res.fps


def test_a_gif_of_3000_frames_on_a_4000_px_screen_is_refused_before_compositing():
    data = gif_many_frames(3000, 4000)
    assert len(data) < 70_000
    report = mediaprep.check(data, animation="frames")
    [bomb] = [f for f in report.findings if f.code == "image.decompression_bomb"]
    assert bomb.severity == "error" and "image.max_animation_pixels" in bomb.message
    assert "3,000 frames" in bomb.message and "4000x4000" in bomb.message
    res = mediaprep.prepare(data, animation="frames")
    assert not res.ok and "image.decompression_bomb" in [f.code for f in res.findings]
    # the first frame alone is what the default sends: not refused
    assert "image.decompression_bomb" not in [f.code for f in mediaprep.check(data).findings]


def test_the_animation_cost_limit_is_a_limit_row():
    data = gif_many_frames(100, 400)  # 16 M pixels composited
    assert mediaprep.check(data, animation="frames",
                           limits={"image.max_animation_pixels": 10_000_000}).findings
    res = mediaprep.prepare(data, animation="frames",
                            limits={"image.max_animation_pixels": 10_000_000})
    assert not res.ok
    assert mediaprep.prepare(data, animation="frames").ok


def test_a_15_s_gif_of_300_frames_goes_as_15_s():
    res = mediaprep.prepare(gif_timed(300, 50), animation="frames")
    assert res.ok, res.findings
    assert res.fps == 10.0 and len(res.part["video"]) == 150
    assert _length(res) == pytest.approx(15.0)
    assert res.timestamps[:3] == pytest.approx([0.0, 0.1, 0.2])


def test_an_avif_sequence_of_10_ms_frames_keeps_its_3_s():
    """10 ms is 10 ms in AVIF (the browsers' 100 ms rule is a GIF and WebP one)."""
    res = mediaprep.prepare(avif_timed(300, 10), animation="frames")
    assert res.ok, res.findings
    assert _length(res) == pytest.approx(3.0)


def test_a_slow_animation_repeats_frames_to_stay_within_the_fps_range():
    res = mediaprep.prepare(gif_timed(4, 20_000), animation="frames")  # 80 s, 0.05 fps
    assert res.ok and res.fps == 0.1
    assert len(res.part["video"]) == 8 and _length(res) == pytest.approx(80.0)


def test_more_frames_than_the_cap_keep_the_length():
    res = mediaprep.prepare(gif_timed(300, 100), animation="frames",
                            limits={"frames.max": 100})  # 30 s, 10 fps natural
    assert res.ok and len(res.part["video"]) == 100
    assert _length(res) == pytest.approx(30.0)
