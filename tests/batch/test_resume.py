"""SIGKILL in the middle of `mediaprep prep`, rerun the same command: the same result as an
uninterrupted run, no partial file anywhere, inputs untouched, finished inputs not redone."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

N_IMAGES = 36
CLI = [sys.executable, "-c", "from mediaprep.cli import main; main()"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, generated: dict[str, Path]) -> Path:
    """Noisy images big enough that each takes a moment to scale down, and a video."""
    root = tmp_path_factory.mktemp("resume_in")
    rng = np.random.default_rng(7)
    for i in range(N_IMAGES):
        px = rng.integers(0, 255, size=(450, 600, 3), dtype=np.uint8)
        fmt = ("png", "jpg", "webp")[i % 3]
        Image.fromarray(px).save(root / f"img_{i:02d}.{fmt}")
    (root / "clip.mp4").write_bytes(generated["video_audio"].read_bytes())
    return root


def _state(folder: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir())}


def _prep(inputs: Path, out: Path, cache: Path) -> list[str]:
    return [*CLI, "prep", str(inputs), "-o", str(out), "-j", "2", "--max-side", "300",
            "--cache-dir", str(cache), "-q"]


def _outputs(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and ".mediaprep" not in p.parts}


def _records(journal: Path) -> list[dict]:
    """The journal records the workers appended to their logs (whole ones only)."""
    from mediaprep.batch.journal_log import read_logs

    return [meta for meta, _at in read_logs(journal)]


def _wait_for_records(proc: subprocess.Popen[str] | subprocess.Popen[bytes], out: Path,
                      n: int) -> Path:
    """Wait until the run has finished ``n`` inputs (journal records); return the journal."""
    journal = out / ".mediaprep" / "journal"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.is_dir() and len(_records(journal)) >= n:
            return journal
        assert proc.poll() is None, "the run ended before it could be stopped"
        time.sleep(0.02)
    raise AssertionError(f"{n} inputs were not finished in 120 s")


def test_sigkill_mid_prep_then_rerun_equals_an_uninterrupted_run(inputs, tmp_path):
    before = _state(inputs)
    # the reference: one uninterrupted run (its own cache, so nothing is shared)
    ref = tmp_path / "ref"
    done = subprocess.run(_prep(inputs, ref, tmp_path / "ref-cache"), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    out = tmp_path / "out"
    # with the cache on: a rerun could take finished inputs from the cache, but must take them
    # from the journal (their records keep their inodes; a cache hit would write new ones)
    cmd = _prep(inputs, out, tmp_path / "cache")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = _wait_for_records(proc, out, 6)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    # the kill landed mid-run: no parts.jsonl yet, and not every input was finished
    assert not (out / "parts.jsonl").exists()
    finished = _records(journal)
    assert 6 <= len(finished) < N_IMAGES + 1
    # workers and the fork server follow their parent instead of running on as orphans
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, alive

    # inputs the killed run had finished (and recorded) are not worked on again: their
    # outputs are not rewritten (a cache hit would write new ones)
    survivors = {}
    for meta in finished:
        for o in meta["outputs"]:
            survivors[str(out / o["name"])] = os.stat(out / o["name"]).st_ino
    # a worker killed in the middle of an append leaves a torn record: never read
    logs = sorted(journal.glob("*.log"))
    with open(logs[0], "ab") as fh:
        fh.write(b'{"name":"' + b"0" * 40 + b'","stamp":1,"line":{"size":5')

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert (out / "parts.jsonl").read_bytes() == (ref / "parts.jsonl").read_bytes()
    lines = (out / "parts.jsonl").read_text().splitlines()
    assert len(lines) == N_IMAGES + 1 and all(json.loads(x)["ok"] for x in lines)
    assert _outputs(out) == _outputs(ref)
    for name, ino in survivors.items():
        assert os.stat(name).st_ino == ino, f"{name} was written again"
    # nothing partial: no temporary files, every output decodes to the end
    strays = [p for p in out.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert strays == []
    for p in out.iterdir():
        if p.suffix in (".png", ".jpg", ".webp"):
            with Image.open(p) as im:
                im.load()
    assert _state(inputs) == before
    # the logs are gone once parts.jsonl and the journal's index hold their records
    assert list(journal.iterdir()) == []


def test_ctrl_c_mid_prep_says_so_exits_130_and_a_rerun_finishes(inputs, tmp_path):
    out = tmp_path / "out"
    cmd = _prep(inputs, out, tmp_path / "cache")
    cmd.remove("-q")
    # a terminal's Ctrl-C reaches the whole process group: parent, fork server and workers
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _wait_for_records(proc, out, 4)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again" in err
    assert "Traceback" not in err and "Aborted!" not in err
    assert not (out / "parts.jsonl").exists()
    assert [p for p in out.rglob("*") if p.is_file() and p.name.startswith(".")] == []

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    lines = (out / "parts.jsonl").read_text().splitlines()
    assert len(lines) == N_IMAGES + 1 and all(json.loads(x)["ok"] for x in lines)
