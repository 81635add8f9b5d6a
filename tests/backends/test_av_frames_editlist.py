"""Frames follow the presentation timeline after an edit list (issue 25 item 6), as the FFmpeg
CLI's ``-ss`` does: an HEVC clip with B-frames whose first 0.4 s are an edit list's hidden
pre-roll (the shape of an iPhone clip trimmed in place) gives, at every time, the frame FFmpeg
shows there. Before, the frame at the first keyframe after the pre-roll was the one shown
0.13 s earlier: the hidden keyframe was not counted, so the later one was taken for the
stream's start and never sought to, after the decoder had been drained for it."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mediaprep.backends.av_frames import extract_frames
from tests.conftest import REALMEDIA_PHONES
from tests.videogen import cut_with_edit_list, make_video, read_index

FPS = 30
CUT = 0.4  # seconds of pre-roll the edit list hides: source frames 0..11
HIDDEN = round(CUT * FPS)


def _have_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:  # noqa: BLE001 - any failure means: not built in
        return False
    return True


def _hevc_clip(tmp_path: Path) -> Path:
    if not _have_encoder("libx265"):
        pytest.skip("PyAV has no libx265 encoder")
    src = make_video(tmp_path / "src.mp4", n_frames=90, fps=FPS, width=128, height=96,
                     codec="libx265", gop=30,
                     options={"x265-params": "keyint=30:min-keyint=30:bframes=4:log-level=error"})
    return cut_with_edit_list(src, tmp_path / "trimmed.mp4", CUT)


def _ffmpeg_frame(path: Path, t: float) -> Image.Image:
    """The FFmpeg CLI's frame at ``t`` (an output-side ``-ss``: FFmpeg decodes up to ``t``; an
    input-side one lands on the wrong side of an open-GOP HEVC keyframe in FFmpeg 5.1)."""
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ss", f"{t}",
                          "-frames:v", "1", "-f", "image2pipe", "-vcodec", "png", "-"],
                         capture_output=True, check=True).stdout
    return Image.open(io.BytesIO(out)).convert("RGB")


def test_edit_list_preroll_clip_gives_the_frame_shown_at_each_time(tmp_path):
    clip = _hevc_clip(tmp_path)
    plan, frames, info = extract_frames(str(clip), fps=5)
    got = list(frames)
    assert info["start_time"] == 0.0
    assert [f.timestamp for f in got] == plan.timestamps
    assert len(got) == 13  # 78 frames shown at 30 fps: 2.6 s
    for f in got:
        assert read_index(f.image) == HIDDEN + round(f.timestamp * FPS), f.timestamp
        assert f.pts == pytest.approx(f.timestamp)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the FFmpeg CLI is not installed")
def test_edit_list_preroll_frames_are_ffmpegs_frames(tmp_path):
    clip = _hevc_clip(tmp_path)
    _, frames, _ = extract_frames(str(clip), fps=5)
    for f in frames:
        ref = _ffmpeg_frame(clip, f.timestamp)
        diff = np.abs(np.asarray(f.image, dtype=np.int16) - np.asarray(ref, dtype=np.int16))
        assert diff.mean() < 1.0, f.timestamp


def test_h264_edit_list_preroll(tmp_path):
    src = make_video(tmp_path / "src.mp4", n_frames=90, fps=FPS, width=128, height=96, gop=30,
                     bframes=3)
    clip = cut_with_edit_list(src, tmp_path / "trimmed.mp4", CUT)
    _, frames, _ = extract_frames(str(clip), fps=5)
    assert [read_index(f.image) for f in frames] == [HIDDEN + 6 * k for k in range(13)]


# The phones' clips: each frame is the frame FFmpeg shows at that frame's own time, and that
# time is the last frame time at or before the sampling time (FFmpeg's -ss gives the first
# frame at or after it, so the sampling time itself is not compared). HDR clips are left out:
# FFmpeg does not tone-map.
PHONE_CLIPS = ["videos/ax_edit_list_positive_shift.mp4", "videos/ax_sample_sef_slow_motion.mp4",
               "videos/pp_quicktime-hvc1.mov", "videos/lp_pairedVideo.mov"]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the FFmpeg CLI is not installed")
@pytest.mark.parametrize("rel", PHONE_CLIPS)
def test_phone_clips_follow_ffmpegs_timeline(rel):
    path = REALMEDIA_PHONES / rel
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        shown = sorted(float(p.pts * s.time_base) for p in c.demux(s)
                       if p.pts is not None and not p.is_discard)
    start = shown[0]
    _, frames, info = extract_frames(str(path), fps=2)
    got = list(frames)
    assert len(got) >= 2
    assert info["start_time"] == pytest.approx(start)
    for f in got:
        at = f.pts - start
        assert at <= f.timestamp + 1e-6
        assert not [p for p in shown if at + 1e-6 < p - start <= f.timestamp + 1e-6]
        ref = _ffmpeg_frame(path, round(at, 6)).resize(f.image.size)
        diff = np.abs(np.asarray(f.image, dtype=np.int16) - np.asarray(ref, dtype=np.int16))
        assert diff.mean() < 2.5, (rel, f.timestamp)
