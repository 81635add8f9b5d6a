"""Issue 22 items 10, 11 and 13: videos whose opening alone would cost without bound (999
streams, a 20,000-entry edit list, frames no codec level allows) are refused from their
headers, before FFmpeg decodes anything, with a finding that names the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

import mediaprep
from tests.fixtures.generate import encode_video
from tests.fixtures.hostile import mkv_many_streams, mp4_elst_bomb, mp4_h264, mp4_patch


def _error(report) -> tuple[str, str]:
    [f] = [f for f in report.findings if f.severity == "error"]
    return f.code, f.message


@pytest.fixture(scope="module")
def streams_999(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("streams") / "many.mkv"
    p.write_bytes(mkv_many_streams(999, frames=2))
    return p


def test_a_container_of_999_streams_is_refused_before_its_streams_are_probed(streams_999):
    code, message = _error(mediaprep.check(streams_999))
    assert code == "file.unreadable"
    assert "more than 64 streams" in message and "video.max_streams" in message


def test_the_stream_limit_is_a_limit_row(tmp_path):
    p = tmp_path / "six.mkv"
    p.write_bytes(mkv_many_streams(6, size=(64, 48), frames=25))
    assert mediaprep.check(p).ok
    code, message = _error(mediaprep.check(p, limits={"video.max_streams": 4}))
    assert code == "file.unreadable" and "more than 4 streams" in message


def test_an_mp4_with_more_tracks_than_the_limit_is_refused_from_its_moov(tmp_path):
    # FFmpeg itself fails to open an MP4 with more tracks than it may set up ("Cannot allocate
    # memory"): the moov's trak count says why first
    p = tmp_path / "tracks.mp4"
    p.write_bytes(mkv_many_streams(6, size=(64, 48), frames=25, fmt="mp4"))
    code, message = _error(mediaprep.check(p, limits={"video.max_streams": 4}))
    assert code == "file.unreadable" and "6 streams" in message


def test_an_edit_list_of_20000_entries_is_refused_up_front(tmp_path):
    p = tmp_path / "elst.mp4"
    p.write_bytes(mp4_elst_bomb(20_000))  # FFmpeg's index: 40 M entries, 1.1 GB to check
    assert p.stat().st_size < 300_000
    code, message = _error(mediaprep.check(p))
    assert code == "file.unreadable" and "edit list holds 20,000 entries" in message
    prepared = mediaprep.prepare(p)
    assert not prepared.ok
    assert [f.code for f in prepared.findings if f.severity == "error"] == ["file.unreadable"]


def test_a_short_edit_list_is_read(tmp_path):
    p = tmp_path / "elst.mp4"
    p.write_bytes(mp4_h264(sample_count=50, stts=[(50, 1)], timescale=25, header_seconds=2,
                           edits=2))
    assert mediaprep.check(p).info.error is None


def test_frames_no_codec_level_allows_are_refused_before_decoding(tmp_path):
    p = tmp_path / "huge.mp4"
    p.write_bytes(mp4_h264(sample_count=3, stts=[(3, 1)], timescale=1, header_seconds=3,
                           declare=16000))
    assert p.stat().st_size < 2000
    code, message = _error(mediaprep.check(p))
    assert code == "file.unreadable"
    assert "16000x16000" in message and "video.max_frame_pixels" in message
    assert "h264" in message  # the codec whose levels allow no such frame
    prepared = mediaprep.prepare(p)
    assert not prepared.ok and prepared.outputs == []


def test_the_frame_size_judged_is_the_bitstream_s_not_the_sample_entry_s(tmp_path):
    """An MP4 whose tkhd and avc1 say 65,535 x 65,535 over a 64x48 SPS is read as 64x48 (the
    decoder goes by the SPS); one whose SPS says more than its sample entry is refused."""
    src = tmp_path / "v.mp4"
    encode_video(src, n_frames=20, fps=10)
    lying = tmp_path / "lying.mp4"
    lying.write_bytes(mp4_patch(src.read_bytes(), size=(65535, 65535)))
    report = mediaprep.check(lying)
    assert report.ok and (report.info.width, report.info.height) == (64, 48)
    hidden = tmp_path / "hidden.mp4"
    data = bytearray(mp4_h264(sample_count=3, stts=[(3, 1)], timescale=1, header_seconds=3,
                              declare=9008))
    hidden.write_bytes(mp4_patch(bytes(data), size=(16, 16)))
    code, message = _error(mediaprep.check(hidden))
    assert code == "file.unreadable" and "9008x9008" in message


@pytest.fixture(scope="module")
def three_hours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("long") / "three_hours.mp4"
    encode_video(p, n_frames=109, fps=1, pts_step=100)  # a frame every 100 s: 10,900 s
    return p


def test_a_video_too_long_for_frames_within_the_fps_range_is_refused(three_hours, tmp_path):
    """250 base64 frames over 10,900 s would go at 0.023 fps, below the table's 0.1."""
    report = mediaprep.check(three_hours)
    [sparse] = [f for f in report.findings if f.code == "param.fps"]
    assert sparse.severity == "error" and "2,500 s or less" in sparse.message
    assert not [f for f in report.findings if f.fixable and f.severity == "error"]
    res = mediaprep.prepare(three_hours, out_dir=tmp_path / "out")
    assert not res.ok and res.part is None and res.fps is None
    assert "param.fps" in [f.code for f in res.findings]


def test_the_frames_that_fit_are_sent_within_the_fps_range(three_hours, tmp_path):
    res = mediaprep.prepare(three_hours, out_dir=tmp_path / "out", transport="url",
                            url_prefix="https://media.example/",
                            limits={"request.max_media_urls": 2000})
    assert res.ok and 0.1 <= res.fps <= 10
    assert len(res.part["video"]) / res.fps == pytest.approx(10_900, rel=0.01)


def test_a_video_sent_as_frames_by_choice_is_judged_too(tmp_path):
    p = tmp_path / "long.mp4"
    encode_video(p, n_frames=31, fps=1, pts_step=100)  # 3,100 s: a file may go, frames not
    assert mediaprep.check(p).ok
    report = mediaprep.check(p, video_mode="frames")
    assert [f.code for f in report.findings if f.severity == "error"] == ["param.fps"]
