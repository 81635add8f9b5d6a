"""Issue 17: video sample tables are judged from the index, not from a prefix of the packets.

* a sample-table bomb (20 M samples declared in 800 kB) is refused before FFmpeg builds its
  index or anything decodes (probe, check, frames, prep --video-mode frames);
* a file whose packets run past the scan budget gets its duration from the index (stts), so
  2 hours behind a 10 s header is video.too_long;
* an extreme sample aspect ratio is an error;
* ``frames -o DIR`` rerun removes the earlier run's frames that frames.json no longer lists,
  and runs in a worker with --timeout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import mediaprep
from mediaprep.cli import main
from tests.fixtures.hostile import mp4_h264


def _codes(report) -> set[str]:
    return {f.code for f in report.findings if f.severity == "error"}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("index")
    files = {
        "bomb": mp4_h264(sample_count=20_000_000, stts=[(20_000_000, 1)], timescale=2_000_000,
                         header_seconds=10, samples_per_chunk=100, overlap=True),
        "long": mp4_h264(sample_count=400_010, stts=[(400_000, 1), (10, 680_000)],
                         timescale=1000, header_seconds=10),
        "sar": mp4_h264(sample_count=20, stts=[(20, 1)], timescale=10, header_seconds=2,
                        pasp=(65535, 1)),
        "anamorphic": mp4_h264(sample_count=20, stts=[(20, 1)], timescale=10,
                               header_seconds=2, pasp=(4, 3)),
        "plain": mp4_h264(sample_count=40, stts=[(40, 1)], timescale=10, header_seconds=4),
    }
    out = {}
    for name, data in files.items():
        out[name] = d / f"{name}.mp4"
        out[name].write_bytes(data)
    return out


def test_sample_table_bomb_is_refused_by_probe_and_check(media: dict[str, Path]) -> None:
    info = mediaprep.probe(media["bomb"])
    assert info.error_code == "file.unreadable"
    assert "20,000,000" in info.error and "sample" in info.error
    report = mediaprep.check(media["bomb"])
    assert "file.unreadable" in _codes(report)
    assert not report.ok


def test_sample_table_bomb_frames_and_prep_frames(media: dict[str, Path],
                                                  tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["frames", str(media["bomb"]), "-o", str(tmp_path / "f"),
                               "--timeout", "120"])
    assert res.exit_code == 1, res.output
    assert "file.unreadable" in res.output and "sample table" in res.output
    assert not list((tmp_path / "f").glob("frame_*.jpg"))
    res = runner.invoke(main, ["prep", str(media["bomb"]), "-o", str(tmp_path / "p"), "-q",
                               "--no-cache", "--video-mode", "frames", "--timeout", "120"])
    assert res.exit_code == 1, res.output
    line = json.loads((tmp_path / "p" / "parts.jsonl").read_text().splitlines()[0])
    assert not line["ok"]
    assert "file.unreadable" in {f["code"] for f in line["findings"]}


def test_duration_past_the_scan_comes_from_the_index(media: dict[str, Path]) -> None:
    info = mediaprep.probe(media["long"])
    assert info.error_code is None
    assert info.duration == pytest.approx(7200, rel=0.01)
    assert "video.too_long" in _codes(mediaprep.check(media["long"], video_mode="file"))
    # as frames it is fixable (prep samples it), but the finding is still said
    assert "video.too_long" in {f.code for f in mediaprep.check(media["long"]).findings}


def test_ordinary_files_keep_their_duration(media: dict[str, Path]) -> None:
    info = mediaprep.probe(media["plain"])
    assert info.error_code is None
    assert info.duration == pytest.approx(4.0)
    assert info.frame_count == 40
    assert mediaprep.check(media["plain"]).ok


def test_extreme_sample_aspect_ratio_is_an_error(media: dict[str, Path]) -> None:
    report = mediaprep.check(media["sar"])
    errors = [f for f in report.findings if f.severity == "error"]
    assert [f.code for f in errors] == ["video.resolution"]
    assert "65535:1" in errors[0].message and not errors[0].fixable
    # ordinary anamorphic video is not
    assert mediaprep.check(media["anamorphic"]).ok


def test_frames_rerun_removes_only_its_own_stale_frames(media: dict[str, Path],
                                                        tmp_path: Path) -> None:
    out = tmp_path / "f"
    runner = CliRunner()
    res = runner.invoke(main, ["frames", str(media["plain"]), "-o", str(out), "--fps", "2"])
    assert res.exit_code == 0, res.output
    first = sorted(p.name for p in out.glob("frame_*.jpg"))
    assert len(first) == 8
    others = ["frame_1.jpg", "frame_000001.png", "notes.txt", "frame_0000001.jpg"]
    for name in others:
        (out / name).write_bytes(b"user")
    (out / "sub").mkdir()
    (out / "sub" / "frame_000007.jpg").write_bytes(b"user")
    res = runner.invoke(main, ["frames", str(media["plain"]), "-o", str(out), "--fps", "2",
                               "--max-frames", "3"])
    assert res.exit_code == 0, res.output
    listed = [f["file"] for f in json.loads((out / "frames.json").read_text())["frames"]]
    assert len(listed) == 3
    assert sorted(p.name for p in out.glob("frame_??????.jpg")) == sorted(listed)
    for name in others:
        assert (out / name).read_bytes() == b"user"
    assert (out / "sub" / "frame_000007.jpg").read_bytes() == b"user"


def test_frames_timeout_gives_up_in_a_worker(media: dict[str, Path], tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["frames", str(media["long"]), "-o", str(tmp_path / "f"),
                                    "--timeout", "0.05"])
    assert res.exit_code == 1, res.output
    assert "file.unreadable" in res.output and "too long" in res.output
    assert not (tmp_path / "f" / "frames.json").exists()
