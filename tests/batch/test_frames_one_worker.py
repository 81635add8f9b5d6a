"""``mediaprep frames`` of one input forks its worker from the command itself (issue 28 item 6:
start-up): no fork server is started, which would launch a second interpreter and import
mediaprep, PyAV, numpy and Pillow again before the first frame. The worker still isolates the
input: a timeout still ends the run with the input's error, and the caller lives on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.videogen import make_video

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys, psutil
from mediaprep.batch import frames_to_folder
from mediaprep.settings import make_settings
out = frames_to_folder(sys.argv[1], sys.argv[2], make_settings(None), timeout=float(sys.argv[3]))
left = [p.cmdline() for p in psutil.Process().children(recursive=True)]
print(json.dumps({"ok": out.ok, "error": out.error, "left": left}))
"""


def _run(clip: Path, out: Path, timeout: float = 120.0) -> dict:
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(clip), str(out), str(timeout)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_one_input_starts_no_fork_server(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", n_frames=40, fps=10)
    got = _run(clip, tmp_path / "out")
    assert got["ok"], got
    assert got["left"] == []  # a fork server would still be running here
    manifest = json.loads((tmp_path / "out" / "frames.json").read_text())
    assert len(manifest["frames"]) == 8


def test_a_forked_worker_is_still_killed_at_the_timeout(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", n_frames=40, fps=10)
    got = _run(clip, tmp_path / "out", timeout=0.001)
    assert not got["ok"] and got["error"].startswith("file.unreadable"), got
    assert got["left"] == []
