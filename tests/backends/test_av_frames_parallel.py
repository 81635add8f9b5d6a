"""Two decoders over alternate chunks of targets give exactly the frames one decoder gives."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from mediaprep.backends.av_frames import extract_frames, iter_frames
from tests.videogen import index_pattern, make_video, read_index


def _clip(tmp_path, **kw):
    # 640x480: 60 targets are enough work for a second decoder (PARALLEL_MIN_WORK)
    return make_video(tmp_path / "clip.mp4", n_frames=240, fps=24, width=640, height=480,
                      gop=12, bframes=2, frame_fn=lambda i: index_pattern(i, 640, 480), **kw)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: one decoder")
def test_two_decoders_take_the_frames_one_decoder_takes(tmp_path) -> None:
    clip = _clip(tmp_path)
    plan, frames, info = extract_frames(str(clip), fps=6, max_frames=2000)
    assert info["decoders"] == 2  # this clip does go to two decoders
    got = list(frames)
    one = list(iter_frames(str(clip), plan))  # the single-decoder path, same plan
    assert [(f.timestamp, f.index, f.pts) for f in got] == \
        [(f.timestamp, f.index, f.pts) for f in one]
    assert [read_index(f.image) for f in got] == [f.index for f in got]
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image))
               for a, b in zip(got, one, strict=True))
    assert info["decoded"] > 0 and len(got) == len(plan.timestamps) == 60


def test_a_consumer_that_stops_early_stops_the_decoders(tmp_path) -> None:
    clip = _clip(tmp_path)
    before = {t.name for t in threading.enumerate()}
    _, frames, info = extract_frames(str(clip), fps=6, max_frames=2000)
    assert info["decoders"] == 2
    first = next(frames)
    assert first.index == 0
    frames.close()  # the generator's finally stops both decoders
    for t in threading.enumerate():
        if t.name.startswith("mediaprep-frames-") and t.name not in before:
            t.join(30)
            assert not t.is_alive()


def test_a_file_object_or_little_work_uses_one_decoder(tmp_path) -> None:
    clip = make_video(tmp_path / "small.mp4", n_frames=40, fps=10, gop=10)
    _, frames, info = extract_frames(str(clip), fps=10)
    assert info["decoders"] == 1 and len(list(frames)) == 40  # 64x48: not worth a second open
    big = _clip(tmp_path)
    with open(big, "rb") as fh:
        _, frames, info = extract_frames(fh, fps=6)
        assert info["decoders"] == 1 and len(list(frames)) == 60  # one stream, one reader
