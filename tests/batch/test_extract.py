"""The frames command is a library call: frames_to_folder does the work, the CLI prints it."""

from __future__ import annotations

import json

import pytest

from mediaprep.batch import FramesOutputError, frames_to_folder
from mediaprep.batch.frames_dir import FramesDirRefused
from mediaprep.settings import Settings
from tests.videogen import make_video


def test_frames_to_folder_writes_frames_and_their_record(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", n_frames=30, fps=10)  # 3 s
    out = tmp_path / "out"
    outcome = frames_to_folder(str(clip), out, Settings(fps=2), timeout=60)
    assert outcome.ok and outcome.error is None
    record = json.loads((out / "frames.json").read_text())
    assert record == outcome.manifest and record["generator"] == "mediaprep"
    names = sorted(p.name for p in out.glob("frame_*.jpg"))
    assert len(names) == len(record["frames"]) == 6


def test_frames_to_folder_says_why_an_input_gives_none(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    outcome = frames_to_folder(str(text), tmp_path / "out", Settings(), timeout=60)
    assert not outcome.ok and outcome.error and outcome.manifest is None
    assert not (tmp_path / "out" / "frames.json").exists()


def test_frames_to_folder_refuses_a_folder_that_is_not_its_own(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", n_frames=30, fps=10)
    out = tmp_path / "out"
    out.mkdir()
    (out / "frames.json").write_text('{"from": "ffmpeg"}')
    with pytest.raises(FramesDirRefused):
        frames_to_folder(str(clip), out, Settings(), timeout=60)
    assert json.loads((out / "frames.json").read_text()) == {"from": "ffmpeg"}


def test_frames_to_folder_output_that_cannot_be_made_is_the_outputs_error(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", n_frames=30, fps=10)
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder's parent should be")
    # refused up front (its frames.json cannot be read) or when the worker cannot make it:
    # either way the output's error (CLI: exit 2), never the input's
    with pytest.raises((FramesOutputError, FramesDirRefused)):
        frames_to_folder(str(clip), blocker / "out", Settings(), timeout=60)
