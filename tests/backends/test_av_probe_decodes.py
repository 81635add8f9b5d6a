"""Issue 28 (frames at 0.1 fps, 10x the FFmpeg CLI): the probe of an MP4 decodes its first
frame once. FFmpeg's stream-info pass at open decoded it too (45 ms for a 1080p H.264
keyframe); the pixel format, colour and pixel shape that pass found are read from the probe's
own decode of the first frame, so what the probe says stays the same, including facts only the
bitstream holds (an SPS's colour description and sample aspect ratio, no colr or pasp box)."""

from __future__ import annotations

import pickle
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import pytest
from click.testing import CliRunner
from PIL import Image

import mediaprep
from mediaprep.backends.av_frames import extract_frames, iter_frames
from mediaprep.cli import main
from tests.conftest import REALMEDIA


def _tagged_mp4(path: Path, *, n_frames: int = 20, gop: int = 250) -> Path:
    """An H.264 MP4 at 10 fps, a keyframe every ``gop`` frames, whose colour description
    (BT.709) and sample aspect ratio (2:1) are in the SPS only: the container says neither."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.codec_context.time_base = Fraction(1, 10)
        vs.codec_context.gop_size = gop
        vs.options = {"preset": "ultrafast", "x264-params":
                      "colorprim=bt709:transfer=bt709:colormatrix=bt709:sar=2/1"}
        for i in range(n_frames):
            frame = av.VideoFrame(64, 48, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(i * 9 + 40) % 256]) * plane.buffer_size)
            frame.pts = i
            frame.time_base = Fraction(1, 10)
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    return path


def _decoder_setups(run) -> int:
    """How many times an H.264 decoder set itself up for a picture while ``run()`` ran: FFmpeg
    says "Reinit context" (verbose) once per decoder that decodes a frame."""
    level = av.logging.get_level()
    av.logging.set_level(av.logging.VERBOSE)
    try:
        with av.logging.Capture(True) as logs:
            run()
    finally:
        av.logging.set_level(level)
    return sum(1 for _level, name, text in logs if name == "h264" and "Reinit context" in text)


def test_the_probe_of_an_mp4_decodes_its_first_frame_once(tmp_path):
    clip = _tagged_mp4(tmp_path / "clip.mp4")
    holder: list = []
    assert _decoder_setups(lambda: holder.append(mediaprep.probe(clip))) == 1
    [info] = holder
    assert info.error is None and info.pix_fmt == "yuv420p"


def test_facts_only_the_bitstream_holds_are_read_from_the_probe_s_decode(tmp_path):
    clip = _tagged_mp4(tmp_path / "clip.mp4")
    info = mediaprep.probe(clip)
    assert info.pix_fmt == "yuv420p"
    assert info.cicp == [1, 1, 1, 0]
    assert info.sample_aspect_ratio == 2.0
    # the frames are shown at the SPS's pixel shape: 64x48 at 2:1 is 128x48
    out = tmp_path / "frames"
    res = CliRunner().invoke(main, ["frames", str(clip), "-o", str(out), "--fps", "2"])
    assert res.exit_code == 0, res.output
    pictures = sorted(out.glob("*.jpg"))
    assert pictures
    for p in pictures:
        with Image.open(p) as im:
            assert im.size == (128, 48)


@pytest.mark.skipif(not (REALMEDIA / "videos" / "dec_video_90.mov").exists(),
                    reason="realmedia corpus absent")
def test_a_phone_clip_s_colour_from_its_sps_is_read():
    info = mediaprep.probe(REALMEDIA / "videos" / "dec_video_90.mov")
    assert info.error is None
    assert (info.pix_fmt, info.cicp, info.rotation) == ("yuv420p", [1, 1, 1, 0], 270)


def test_frames_take_the_start_from_the_probe_s_decode_of_it(tmp_path):
    """Three targets in three GOPs: the first is the probe's decoded frame (the extraction
    decodes two keyframes, not three), and every frame is the one a forward decode gives."""
    clip = _tagged_mp4(tmp_path / "gops.mp4", n_frames=60, gop=20)
    info = mediaprep.probe(clip)
    plan, frames, meta = extract_frames(str(clip), fps=0.5, scan=info.scan)
    taken = [(f.pts, f.image.tobytes()) for f in frames]
    assert plan.timestamps == [0.0, 2.0, 4.0] and len(taken) == 3
    assert meta["decoded"] == 2
    forward = [(f.pts, f.image.tobytes()) for f in iter_frames(str(clip), plan, seek=False)]
    assert taken == forward


def test_a_start_in_the_next_target_s_gop_is_decoded_by_the_extraction(tmp_path):
    """At 2 fps every target of a 2 s GOP is decoded forward from its keyframe: the probe's
    frame is not used there (the walk decodes that keyframe anyway), and the frames match."""
    clip = _tagged_mp4(tmp_path / "gop.mp4", n_frames=40, gop=20)
    info = mediaprep.probe(clip)
    plan, frames, meta = extract_frames(str(clip), fps=2, scan=info.scan)
    taken = [(f.pts, f.image.tobytes()) for f in frames]
    forward = [(f.pts, f.image.tobytes()) for f in iter_frames(str(clip), plan, seek=False)]
    assert len(taken) == 8 and taken == forward


def test_what_check_and_prep_return_for_a_video_pickles(tmp_path):
    """Workers pickle their results to the parent: the probe's decoded first frame (an FFmpeg
    frame, which does not pickle) is never part of what a check or a prep returns."""
    clip = _tagged_mp4(tmp_path / "clip.mp4", n_frames=30, gop=10)
    report = mediaprep.check(clip)
    assert report.info.scan is not None
    assert pickle.loads(pickle.dumps(report)).info.width == 64
    result = mediaprep.prepare(clip, out_dir=tmp_path / "out")
    assert result.ok
    pickle.dumps(result)
