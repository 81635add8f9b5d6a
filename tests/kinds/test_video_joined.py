"""Issue 22 item 8: MPEG-TS segments joined with ``cat`` (timestamps restart at each) keep
every frame when prepared, are judged whole by check (every segment's picture size), and a
frame that is dropped is said in a finding."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

import mediaprep
from mediaprep.cli import main
from tests.fixtures.hostile import ts_joined


def _frames_in(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.size)


def _prep(src: Path, out: Path) -> mediaprep.Prepared:
    return mediaprep.prepare(src, out_dir=out)


@pytest.fixture(scope="module")
def joined(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("joined")
    path = folder / "joined.ts"
    path.write_bytes(ts_joined(folder))
    return path


def test_check_reads_the_whole_joined_stream(joined):
    info = mediaprep.check(joined).info
    assert info.frame_count == 150
    assert info.duration == pytest.approx(6.0, abs=0.05)
    assert info.fps == pytest.approx(25.0, rel=0.01)
    assert any("3 segments joined" in n for n in info.notes)


def test_prep_keeps_every_frame_of_joined_segments(joined, tmp_path):
    prepared = _prep(joined, tmp_path / "out")
    assert prepared.ok, prepared.findings
    assert "remuxed" in [c.kind for c in prepared.changes]
    out = prepared.outputs[0]
    assert _frames_in(out) == 150
    assert mediaprep.check(out).info.duration == pytest.approx(6.0, abs=0.05)
    assert not [f for f in prepared.findings if f.code == "video.frames_dropped"]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI")
def test_segments_with_b_frames_made_by_ffmpeg(tmp_path):
    """The issue's own recipe: x264's defaults (B-frames: pts ahead of dts) and ``cat``."""
    parts = []
    for i in range(3):
        seg = tmp_path / f"seg{i}.ts"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                        "testsrc=size=320x240:rate=25:duration=2", "-c:v", "libx264",
                        "-pix_fmt", "yuv420p", "-f", "mpegts", str(seg)], check=True)
        parts.append(seg.read_bytes())
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(parts))
    prepared = _prep(joined, tmp_path / "out")
    assert prepared.ok, prepared.findings
    assert _frames_in(prepared.outputs[0]) == 150


def test_a_larger_segment_in_the_middle_is_judged_and_kept(tmp_path):
    path = tmp_path / "mixed.ts"
    path.write_bytes(ts_joined(tmp_path, ((320, 240), (2880, 1620), (320, 240)), frames=20,
                               fps=10))
    report = mediaprep.check(path)
    assert (report.info.width, report.info.height) == (2880, 1620)
    assert "video.resolution" in [f.code for f in report.findings]
    prepared = _prep(path, tmp_path / "out")
    assert prepared.ok, prepared.findings
    # one MP4 track holds one picture size
    assert "transcoded" in [c.kind for c in prepared.changes]
    assert _frames_in(prepared.outputs[0]) == 60


def test_frames_of_a_joined_stream_follow_its_one_timeline(joined, tmp_path):
    out = tmp_path / "frames"
    result = CliRunner().invoke(main, ["frames", str(joined), "-o", str(out), "--fps", "2"])
    assert result.exit_code == 0, result.output
    index = [f["index"] for f in json.loads((out / "frames.json").read_text())["frames"]]
    assert len(index) == 12
    assert index == sorted(set(index)) and index[-1] > 125  # later segments are reached


def test_frames_that_cannot_be_kept_are_said_in_a_finding(tmp_path):
    from tests.fixtures.hostile import mkv_repeated_timestamps

    path = tmp_path / "repeats.mkv"
    path.write_bytes(mkv_repeated_timestamps(tmp_path))
    # Moonshot takes no MKV: it is remuxed into an MP4, which cannot hold a repeated timestamp
    prepared = mediaprep.prepare(path, out_dir=tmp_path / "out", target="moonshot")
    assert prepared.ok, prepared.findings
    dropped = [f for f in prepared.findings if f.code == "video.frames_dropped"]
    assert len(dropped) == 1 and dropped[0].severity == "warning"
    assert dropped[0].actual == 2 and "2 of its 52 frames" in dropped[0].message
    assert _frames_in(prepared.outputs[0]) == 50
