"""Each source frame is taken once (issue 25 item 8): a time whose frame on screen is the one
taken at the time before is left out, and every frame kept keeps the first time it answers.
A clip whose first frame is held 1.5 s (as a phone's slow-motion clip starts) gave that frame
three times at 2 fps; a variable-rate clip slower than the asked fps gave each frame twice."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from click.testing import CliRunner

import mediaprep
from mediaprep.backends.av_frames import extract_frames
from mediaprep.cli import main
from tests.videogen import make_video, read_index

TB = Fraction(1, 30)


def _held_first(tmp_path: Path) -> Path:
    """Frame 0 on screen for 1.5 s, then 30 fps for 2 s (frames 1..60)."""
    return make_video(tmp_path / "held.mp4", pts=[0, *range(45, 105)], time_base=TB, fps=30,
                      width=64, height=48)


def test_a_held_first_frame_is_taken_once(tmp_path):
    plan, frames, _ = extract_frames(str(_held_first(tmp_path)), fps=2)
    got = list(frames)
    # 0.5 s and 1.0 s showed frame 0 again; the muxer gives the last frame 1.5 s too, so
    # 4.0 s and 4.5 s show frame 60 again
    assert plan.repeats == 4
    assert [f.timestamp for f in got] == [0.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert [read_index(f.image) for f in got] == [0, 1, 16, 31, 46, 60]
    assert [f.index for f in got] == [0, 1, 16, 31, 46, 60]
    assert plan.timestamps == [f.timestamp for f in got]
    assert plan.fps == 2.0  # the rate the kept times come from


def test_a_variable_rate_clip_slower_than_fps_gives_each_frame_once(tmp_path):
    # 10 frames, one a second, but no steady rate to read (one gap of 1.5 s)
    pts = [0, 30, 60, 105, 135, 165, 195, 225, 255, 285]
    clip = make_video(tmp_path / "slow.mp4", pts=pts, time_base=TB, fps=1, width=64, height=48)
    plan, frames, _ = extract_frames(str(clip), fps=2)
    got = list(frames)
    idx = [read_index(f.image) for f in got]
    assert idx == list(range(10))
    assert [f.timestamp for f in got] == [0.0, 1.0, 2.0, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5]
    assert plan.repeats == 11  # 21 times over 10.5 s


def test_repeats_stay_when_too_few_frames_would_be_left(tmp_path):
    """Two frames over 4 s: a caller that needs 4 frames still gets 4 (as before)."""
    clip = make_video(tmp_path / "two.mp4", pts=[0, 60], time_base=TB, fps=30, width=64,
                      height=48)
    plan, frames, _ = extract_frames(str(clip), fps=1, min_frames=4)
    assert plan.repeats == 0 and len(list(frames)) == 4
    plan, frames, _ = extract_frames(str(clip), fps=1)
    assert plan.repeats == 2 and [f.timestamp for f in frames] == [0.0, 2.0]


def test_frames_command_writes_each_source_frame_once(tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["frames", str(_held_first(tmp_path)), "-o", str(out),
                                    "--fps", "2"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "frames.json").read_text())
    assert [f["index"] for f in manifest["frames"]] == [0, 1, 16, 31, 46, 60]
    assert [f["timestamp"] for f in manifest["frames"]] == [0.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert len(list(out.glob("frame_*.jpg"))) == 6


def test_prepare_says_repeats_were_left_out(tmp_path):
    p = mediaprep.prepare(_held_first(tmp_path), video_mode="frames", fps=2)
    assert p.ok, p.findings
    assert p.timestamps == [0.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert any("4 repeated frames left out" in (c.why or "") for c in p.changes)


def test_a_240_fps_slow_motion_clip_gives_the_frame_on_screen_at_each_time(tmp_path):
    """A phone's slow-motion capture stored at 240 fps: at 2 fps every frame sent is the
    source frame on screen at its time, none twice, and the estimate samples the file at the
    asked rate, not the source's."""
    clip = make_video(tmp_path / "slowmo.mp4", n_frames=480, fps=240, width=64, height=48)
    plan, frames, _ = extract_frames(str(clip), fps=2)
    got = list(frames)
    assert [f.timestamp for f in got] == [0.0, 0.5, 1.0, 1.5]
    assert [read_index(f.image) for f in got] == [0, 120, 240, 360]
    assert plan.repeats == 0
    rep = mediaprep.check(clip, fps=2)
    assert rep.info.fps == 240
    est = mediaprep.Settings().estimator
    assert rep.tokens["estimate"] == est.video(4, 64, 48)  # 4 frames at 2 fps, one chunk
