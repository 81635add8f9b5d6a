"""Issue 25 item 8: frames are never taken faster than the video has them (the processor
samples at min(fps, the video's fps)): a 1 fps clip asked at 2 fps gives each source frame
once, not twice."""

from __future__ import annotations

from pathlib import Path

import mediaprep
from tests.videogen import make_video


def test_frames_of_a_slow_clip_are_not_repeated(tmp_path: Path) -> None:
    path = make_video(tmp_path / "slow.mp4", n_frames=10, fps=1, width=64, height=48)
    p = mediaprep.prepare(path, video_mode="frames", fps=2)
    assert p.ok, p.findings
    assert p.timestamps is not None and len(p.timestamps) == 10
    assert p.fps == 1.0
    assert len(set(p.timestamps)) == len(p.timestamps)


def test_fps_message_names_why_it_changed(tmp_path: Path) -> None:
    path = make_video(tmp_path / "slow.mp4", n_frames=10, fps=1, width=64, height=48)
    p = mediaprep.prepare(path, video_mode="frames", fps=2)
    msgs = [f.message for f in p.findings if f.code == "param.fps"]
    assert msgs and "video's own" in msgs[0] and "max_frames" not in msgs[0]
