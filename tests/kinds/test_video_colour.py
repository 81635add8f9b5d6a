"""Issue 24 item 4: HDR video (PQ, HLG) is tone-mapped wherever mediaprep decodes it (the
transcode, frames, the report's pictures), a transcode is tagged BT.709, and --hdr keep sends
the file as it is. Compared with FFmpeg's zscale + tonemap=hable render of the same clip."""

from __future__ import annotations

import av
import numpy as np
import pytest

import mediaprep
from mediaprep.backends.av import video_strip
from mediaprep.backends.colour import mean_delta_e, saturation
from tests.conftest import REALMEDIA_PHONES
from tests.fixtures.colour import ffmpeg_tone_mapped, have_ffmpeg, write_hdr_clip

TONE_MAP_MAX_DELTA_E = 6.0

pytestmark = pytest.mark.skipif(
    not have_ffmpeg(filters=("zscale", "tonemap"), encoders=("libx265",)),
    reason="the FFmpeg CLI with zscale, tonemap and libx265 makes the HDR clips")


def _first_frame(path) -> tuple[np.ndarray, av.codec.context.CodecContext]:
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        frame = next(c.decode(video=0))
        return frame.to_ndarray(format="rgb24"), (cc.color_primaries, cc.color_trc,
                                                  cc.colorspace)


@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_an_hdr_clip_is_transcoded_to_tagged_sdr_like_ffmpeg(tmp_path, transfer):
    path = write_hdr_clip(tmp_path / f"{transfer}.mp4", transfer)
    (f,) = [f for f in mediaprep.check(path).findings if f.code == "video.hdr"]
    assert f.severity == "info" and f.fixable
    prepared = mediaprep.prepare(path, out_dir=tmp_path / "out", video_mode="file")
    assert prepared.ok, prepared.findings
    (change,) = [c for c in prepared.changes if c.kind == "transcoded"]
    assert "tone-mapped" in change.why
    sent, tags = _first_frame(prepared.outputs[0])
    assert tags == (1, 1, 1)  # BT.709 primaries, transfer and matrix
    ref = ffmpeg_tone_mapped(path).reshape(sent.shape)
    naive, _ = _first_frame(path)  # a decoder that does not tone-map
    assert mean_delta_e(sent, ref) <= TONE_MAP_MAX_DELTA_E
    assert saturation(sent) > saturation(naive) + 20


def test_hdr_keep_sends_the_clip_as_it_is(tmp_path):
    path = write_hdr_clip(tmp_path / "pq.mp4", "pq")
    assert "video.hdr" not in mediaprep.check(path, hdr="keep").codes()
    prepared = mediaprep.prepare(path, out_dir=tmp_path / "out", video_mode="file", hdr="keep")
    assert prepared.ok and prepared.outputs[0].read_bytes() == path.read_bytes()


def test_frames_of_an_hdr_clip_are_tone_mapped(tmp_path):
    path = write_hdr_clip(tmp_path / "hlg.mp4", "hlg")
    prepared = mediaprep.prepare(path, out_dir=tmp_path / "out", video_mode="frames",
                                 preview=True)
    assert prepared.ok, prepared.findings
    from PIL import Image

    frame = np.asarray(Image.open(prepared.outputs[0]).convert("RGB"))
    ref = ffmpeg_tone_mapped(path).reshape(192, 320, 3)
    if frame.shape != ref.shape:
        ref = np.asarray(Image.fromarray(ref).resize(frame.shape[1::-1]))
    assert mean_delta_e(frame, ref) <= TONE_MAP_MAX_DELTA_E


def test_the_report_picture_of_an_hdr_clip_is_tone_mapped(tmp_path):
    path = write_hdr_clip(tmp_path / "pq.mp4", "pq")
    prepared = mediaprep.prepare(path, out_dir=tmp_path / "out", video_mode="file",
                                 preview=True)
    naive, _ = _first_frame(path)
    # the input's picture is the probe's frame; the transcode's (other pixels) is decoded from
    # the output by the report's strip, not taken from the input
    assert 0 not in prepared.previews
    (out_pic, _), = video_strip(prepared.outputs[0], 1)[0]
    for pic in (prepared.previews["input"], out_pic):
        assert saturation(np.asarray(pic)) > saturation(naive) + 20


def test_a_real_hdr10_clip_is_flagged():
    path = REALMEDIA_PHONES / "videos" / "ax_hdr10-av1.mp4"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    report = mediaprep.check(path)
    assert "video.hdr" in report.codes() and report.info.hdr == "PQ"
