"""Memory stays bounded while frames are taken (issue 28 item 6): no decoded frame outlives
its turn. Reading a frame's side data (its display matrix) tied the frame and its buffers in a
reference cycle that only the garbage collector frees, and a frames run makes too few Python
objects for the collector to run often: a 30 s 1080p clip at 2 fps grew from 80 to 330 MB.
Here the collector is off while frames are taken, so any such cycle stays counted."""

from __future__ import annotations

import gc

import av
import pytest

from mediaprep.backends.av_frames import extract_frames
from tests.videogen import make_video


def _live_video_frames() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, av.VideoFrame))


@pytest.mark.parametrize("rotation", [None, 90])
def test_frames_taken_leave_no_decoded_frame_behind(tmp_path, rotation):
    clip = make_video(tmp_path / "clip.mp4", n_frames=120, fps=30, width=160, height=120, gop=15,
                      rotation=rotation)
    gc.collect()
    before = _live_video_frames()
    gc.disable()
    try:
        plan, frames, _ = extract_frames(str(clip), fps=5)
        taken = 0
        for f in frames:
            f.image.close()
            taken += 1
        left = _live_video_frames() - before
    finally:
        gc.enable()
    assert taken == 20
    assert left <= 2  # the first frame's, read once for the stream's display matrix
