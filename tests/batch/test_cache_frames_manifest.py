"""A video sent as frames gets its frames folder's frames.json whether it was prepared or
served from the cache: a run with a warm cache gives the folder a cold run gives."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from click.testing import CliRunner

from mediaprep.cli import main


def _prep(src: Path, out: Path, cache: Path) -> None:
    r = CliRunner().invoke(main, ["prep", str(src), "-o", str(out), "-q", "-j", "0",
                                  "--no-report", "--cache-dir", str(cache)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output


def _files(root: Path) -> dict[str, bytes]:
    out = {}
    for top, ds, fs in os.walk(root):
        ds[:] = [d for d in ds if d != ".mediaprep"]
        for f in fs:
            p = Path(top) / f
            out[p.relative_to(root).as_posix()] = p.read_bytes()
    return out


def test_a_cache_hit_writes_the_frames_json_a_cold_run_writes(generated, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(generated["video_1_9s"], src / "clip.mp4")
    cache = tmp_path / "cache"
    _prep(src, tmp_path / "cold", cache)
    cold = _files(tmp_path / "cold")
    assert "clip/frames.json" in cold  # prepare writes it beside the frames

    _prep(src, tmp_path / "warm", cache)  # every output from the cache
    warm = _files(tmp_path / "warm")
    assert warm.keys() == cold.keys()
    assert {k: v for k, v in warm.items() if k != "parts.jsonl"} == \
        {k: v for k, v in cold.items() if k != "parts.jsonl"}

    # the same bytes under another name: served from the cache, and its frames.json names it
    other = tmp_path / "in2"
    other.mkdir()
    shutil.copy(generated["video_1_9s"], other / "film.mp4")
    _prep(other, tmp_path / "renamed", cache)
    renamed = _files(tmp_path / "renamed")
    manifest = json.loads(renamed["film/frames.json"])
    expected = json.loads(cold["clip/frames.json"])
    assert manifest["video"].endswith("film.mp4")
    assert {**manifest, "video": None} == {**expected, "video": None}
    _prep(other, tmp_path / "renamed-cold", tmp_path / "cache2")
    assert _files(tmp_path / "renamed-cold")["film/frames.json"] == renamed["film/frames.json"]


def test_a_cache_hit_never_writes_frames_through_a_linked_frames_folder(
        generated, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(generated["video_1_9s"], src / "clip.mp4")
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    _prep(src, out, cache)  # the cache holds the clip's frames; DIR/clip/ is a run's own
    user = tmp_path / "user"
    user.mkdir()
    (user / "mine.txt").write_text("mine")
    # the run's frames folder swapped for a link to a user's folder (a folder no run made
    # would stop the clip before its worker: tests/batch/test_output_ownership.py)
    shutil.rmtree(out / "clip")
    (out / "clip").symlink_to(user, target_is_directory=True)
    r = CliRunner().invoke(main, ["prep", str(src), "-o", str(out), "-q", "-j", "0",
                                  "--no-report", "--cache-dir", str(cache)],
                           catch_exceptions=False)
    assert r.exit_code == 1, r.output  # the clip fails: its frames folder is not ours
    assert sorted(p.name for p in user.iterdir()) == ["mine.txt"]
    assert (user / "mine.txt").read_text() == "mine"
    line = json.loads((out / "parts.jsonl").read_text())
    assert not line["ok"] and "would leave" in json.dumps(line["findings"])
