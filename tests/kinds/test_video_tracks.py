"""Issue 25 item 5: an MP4 with several video tracks (a Pixel motion photo's: the clip and a
1-2 frame high-resolution "top shot") is sent with its main track only, remuxed; the probe and
the frames read that track."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

import mediaprep
from tests.videogen import index_pattern, read_index


def _two_tracks(path: Path) -> Path:
    """Track 1: a 2-frame 320x240 "top shot" (first, and larger: FFmpeg's pick); track 2:
    the 3 s 64x48 clip at 10 fps whose frames carry their index."""
    with av.open(str(path), "w") as out:
        top = out.add_stream("libx264", rate=Fraction(1))
        top.width, top.height, top.pix_fmt = 320, 240, "yuv420p"
        main = out.add_stream("libx264", rate=Fraction(10))
        main.width, main.height, main.pix_fmt = 64, 48, "yuv420p"
        for s in (top, main):
            s.options = {"preset": "ultrafast", "qp": "12"}
        for i in range(2):
            f = av.VideoFrame.from_ndarray(np.full((240, 320, 3), 200, np.uint8), "rgb24")
            f = f.reformat(format="yuv420p")
            f.pts = i
            out.mux(top.encode(f))
        out.mux(top.encode(None))
        for i in range(30):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(index_pattern(i)), "rgb24")
            f = f.reformat(format="yuv420p")
            f.pts = i
            out.mux(main.encode(f))
        out.mux(main.encode(None))
    return path


def test_main_track_is_probed_and_sent_alone(tmp_path: Path) -> None:
    path = _two_tracks(tmp_path / "PXL_motion.mp4")
    info = mediaprep.probe(path)
    assert (info.width, info.height) == (64, 48) and info.video_streams == 2
    assert info.duration is not None and abs(info.duration - 3.0) < 0.2
    out = tmp_path / "out"
    p = mediaprep.prepare(path, out_dir=out)
    assert p.ok, p.findings
    assert [c.kind for c in p.changes] == ["remuxed"]
    assert "2 video tracks" in (p.changes[0].why or "")
    with av.open(str(p.outputs[0])) as c:
        assert len(c.streams.video) == 1
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == (64, 48)
        frames = [read_index(fr.to_ndarray(format="rgb24")) for fr in c.decode(s)]
    assert frames == list(range(30))


def test_frames_come_from_the_main_track(tmp_path: Path) -> None:
    path = _two_tracks(tmp_path / "PXL_motion.mp4")
    p = mediaprep.prepare(path, video_mode="frames", fps=2)
    assert p.ok, p.findings
    assert p.output_info is None or p.output_info.width in (None, 64)
    assert p.timestamps and p.timestamps[-1] > 2.0


def test_one_track_still_passes_through(tmp_path: Path) -> None:
    from tests.videogen import make_video

    path = make_video(tmp_path / "one.mp4", n_frames=30, fps=10)
    p = mediaprep.prepare(path)
    assert p.ok and not p.changes
