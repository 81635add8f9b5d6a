"""Frames taken from real files are the frames shown at their times (a full decode says which),
also where the demuxer seeks short: a truncated Matroska file with no cues."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from mediaprep.backends.av_frames import extract_frames
from tests.conftest import REALMEDIA

REAL = REALMEDIA
CLIPS = ["videos/ft_fixture2.mkv", "videos/mb_rotate-buck-bunny.mp4"]


def _shown_at(path: Path, times: list[float]) -> list[float]:
    """pts (s) of the frame shown at each time, from decoding every frame."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        pts = sorted(float(f.pts * s.time_base) for f in c.decode(s) if f.pts is not None)
    # times count from the first frame shown
    return [max(p for p in pts if p <= pts[0] + t + 1e-6) for t in times]


@pytest.mark.parametrize("rel", CLIPS)
def test_frames_are_the_frames_shown_at_their_times(rel):
    path = REAL / rel
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    _, frames, _ = extract_frames(str(path), fps=2)
    got = list(frames)
    assert len(got) >= 4
    want = _shown_at(path, [f.timestamp for f in got])
    assert [round(f.pts, 3) for f in got] == [round(p, 3) for p in want]
