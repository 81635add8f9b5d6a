"""``mediaprep frames VIDEO -o DIR`` replaces and removes only the files an earlier frames run
recorded writing in its frames.json, never the input nor a file it did not write, and refuses
(exit 2, nothing written) a frames.json that is not mediaprep's (issue 22, item 2)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mediaprep.cli import main

USER = b"\xff\xd8 a user's own frame \xff\xd9"


def frames(*args: object) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["frames", *map(str, args)])
    return res.exit_code, res.output + (res.stderr if res.stderr_bytes is not None else "")


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def _listed(out: Path) -> list[str]:
    return [f["file"] for f in json.loads((out / "frames.json").read_text())["frames"]]


def test_frames_json_records_what_mediaprep_wrote(generated, tmp_path: Path) -> None:
    out = tmp_path / "f"
    code, text = frames(generated["video_2s"], "-o", out, "--fps", "4")
    assert code == 0, text
    manifest = json.loads((out / "frames.json").read_text())
    assert manifest["generator"] == "mediaprep"
    written = {w["file"]: w for w in manifest["written"]}
    assert sorted(written) == _listed(out) and len(written) == 8
    for name, w in written.items():
        st = (out / name).stat()
        assert (w["size"], w["mtime_ns"]) == (st.st_size, st.st_mtime_ns)


def test_a_rerun_removes_its_own_stale_frames_but_not_one_the_user_changed(
        generated, tmp_path: Path) -> None:
    out = tmp_path / "f"
    assert frames(generated["video_2s"], "-o", out, "--fps", "4")[0] == 0
    with open(out / "frame_000006.jpg", "ab") as fh:  # the user's now
        fh.write(b"annotated")
    edited = (out / "frame_000006.jpg").read_bytes()
    code, text = frames(generated["video_2s"], "-o", out, "--fps", "4", "--max-frames", "4")
    assert code == 0, text
    assert _listed(out) == [f"frame_{i:06d}.jpg" for i in range(4)]
    left = sorted(p.name for p in out.glob("frame_*.jpg"))
    assert left == [*_listed(out), "frame_000006.jpg"]  # 4, 5 and 7 were mediaprep's
    assert (out / "frame_000006.jpg").read_bytes() == edited
    assert "frame_000006.jpg" not in {w["file"] for w in
                                      json.loads((out / "frames.json").read_text())["written"]}


def test_a_changed_frame_the_run_would_replace_stops_it(generated, tmp_path: Path) -> None:
    out = tmp_path / "f"
    assert frames(generated["video_2s"], "-o", out, "--fps", "4")[0] == 0
    (out / "frame_000002.jpg").write_bytes(USER)
    before = _files(out)
    code, text = frames(generated["video_2s"], "-o", out, "--fps", "4")
    assert code == 2
    assert "frame_000002.jpg" in text and "did not write" in text
    assert _files(out) == before


def test_an_earlier_ffmpeg_extraction_is_neither_replaced_nor_removed(
        generated, tmp_path: Path) -> None:
    out = tmp_path / "f"
    out.mkdir()
    for i in range(1, 11):  # ffmpeg -i v.mp4 frame_%06d.jpg
        (out / f"frame_{i:06d}.jpg").write_bytes(USER + bytes([i]))
    before = _files(out)
    code, text = frames(generated["video_2s"], "-o", out, "--fps", "4")
    assert code == 2
    assert "frame_000001.jpg and 9 more" in text
    assert _files(out) == before  # no frame, no frames.json
    # frames it would not write are left alone, and the run goes on
    for i in range(1, 11):
        (out / f"frame_{i:06d}.jpg").rename(out / f"frame_{i + 100:06d}.jpg")
    code, text = frames(generated["video_2s"], "-o", out, "--fps", "4", "--max-frames", "8")
    assert code == 0, text
    for i in range(1, 11):
        assert (out / f"frame_{i + 100:06d}.jpg").read_bytes() == USER + bytes([i])
    assert len(_listed(out)) == 8


def test_the_input_named_like_a_frame_is_never_replaced_nor_removed(
        generated, tmp_path: Path) -> None:
    out = tmp_path / "f"
    out.mkdir()
    video = out / "frame_000050.jpg"
    shutil.copy(generated["video_2s"], video)
    data = video.read_bytes()
    code, text = frames(video, "-o", out, "--fps", "4")  # up to 2,000 frames: 50 is taken
    assert code == 2 and "frame_000050.jpg" in text
    assert _files(out) == {"frame_000050.jpg": data}
    code, text = frames(video, "-o", out, "--fps", "4", "--max-frames", "8")
    assert code == 0, text
    assert video.read_bytes() == data
    # a rerun after an earlier one: still never the input
    code, text = frames(video, "-o", out, "--fps", "4", "--max-frames", "5")
    assert code == 0, text
    assert video.read_bytes() == data
    assert sorted(_files(out)) == sorted([*_listed(out), "frame_000050.jpg", "frames.json"])


@pytest.mark.parametrize("what", ["another tool's", "an earlier format's", "not json", "link"])
def test_a_frames_json_that_is_not_mediaprep_s_is_not_replaced(
        generated, tmp_path: Path, what: str) -> None:
    out = tmp_path / "f"
    out.mkdir()
    target = tmp_path / "elsewhere.json"
    target.write_text('{"mine": true}')
    manifest = out / "frames.json"
    if what == "link":
        manifest.symlink_to(target)
    else:
        manifest.write_text({
            "another tool's": '{"tool": "ffmpeg", "frames": ["frame_000001.jpg"]}',
            "an earlier format's": '{"video": "v.mp4", "fps": 2, "frames": []}',
            "not json": "frame_000001.jpg 0.0\n"}[what])
    before = _files(out)
    code, text = frames(generated["video_2s"], "-o", out, "--fps", "4")
    assert code == 2
    assert "frames.json was not written by mediaprep" in text
    assert _files(out) == before
    assert not list(out.glob("frame_*"))
    assert target.read_text() == '{"mine": true}'


def test_a_failed_run_leaves_none_of_its_frames(generated, tmp_path: Path) -> None:
    """A clip too short for frames: what the run claimed is given up, nothing else."""
    from tests.fixtures.generate import encode_video

    out = tmp_path / "f"
    out.mkdir()
    (out / "frame_000900.jpg").write_bytes(USER)
    clip = tmp_path / "one_frame.mp4"
    encode_video(clip, n_frames=1, fps=10)
    code, _ = frames(clip, "-o", out, "--max-frames", "8")
    assert code == 1
    assert _files(out) == {"frame_000900.jpg": USER}


def test_a_killed_runs_frames_are_known_to_the_next_run(tmp_path: Path) -> None:
    """Killed (the whole process tree, SIGKILL) while writing frames: the next run takes the
    folder, replaces or removes the frames the killed one wrote, and is not refused."""
    from tests.fixtures.generate import encode_video

    clip = tmp_path / "long.mp4"
    encode_video(clip, n_frames=600, fps=10, size=(640, 480))
    out = tmp_path / "f"
    checkout = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [checkout, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "mediaprep", "frames", str(clip), "-o",
                             str(out), "--fps", "10", "--max-frames", "600"],
                            cwd=checkout, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # a bound on the wait, not a timing assertion
    while not (out / "frame_000010.jpg").exists() and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        pytest.skip("the run ended before it could be killed")
    claim = json.loads((out / "frames.json").read_text())
    assert claim["complete"] is False
    # The kill may land while a frame is half-written (its temporary, named by the killed
    # run's marker); make that moment certain. Another run's temporary, not recorded here,
    # and a user's own dot-file stay.
    (out / f".mp-tmp-{claim['run']}-0123abcd-frame_000011.jpg").write_bytes(b"\xff\xd8 half")
    unknown = out / ".mp-tmp-0123456789ab-0123abcd-frame_000012.jpg"
    unknown.write_bytes(b"not this run's")
    (out / ".notes.tmp").write_bytes(b"the user's")
    code, text = frames(clip, "-o", out, "--fps", "2", "--max-frames", "6")
    assert code == 0, text
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*_listed(out), "frames.json", unknown.name, ".notes.tmp"])
