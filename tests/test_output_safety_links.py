"""`prep -o DIR` never loses a user's file (issue 17, items 1-3).

- A symbolic link where mediaprep keeps its state (``DIR/.mediaprep``, its journal, its lock)
  is refused (exit 2): every write and removal there would happen in the folder it points to.
  Links elsewhere in DIR (parts.jsonl, an output folder, state files replaced by rename) are
  replaced or left alone, never written through.
- The sweep of half-written files removes only what the atomic-write helper made, in runs
  that died: a user's ``.x.tmp`` in DIR or ``DIR/.git/objects/.pack.tmp`` stays; a killed
  run's own temporaries go on the rerun.
- ``--batch-requests`` never overwrites an input, parts.jsonl, the state folder or the report.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from mediaprep.cli import main

CLI = [sys.executable, "-c", "from mediaprep.cli import main; main()"]

# A test double for prep's per-input work, plugged in through the public executor seam
# (``--executor double:LeaveExecutor``): an input named leave* is a worker killed mid-write:
# it makes its output's temporary through the one atomic-write helper, with its run's marker,
# writes half of it and hangs.
DOUBLE = textwrap.dedent('''
    import functools, time
    from pathlib import Path
    from mediaprep.batch.executors import LocalExecutor
    from mediaprep.output import temp_path_for, writing_for_run

    def leaving(fn, job):
        if Path(job.task.source).name.startswith("leave"):
            with writing_for_run(job.run_id):
                out = Path(job.task.out_dir) / (job.task.stem + ".png")
                # and half a report thumbnail, which the worker writes too
                thumb = Path(job.task.out_dir, "report_files", "0" * 32 + ".jpg")
                thumb.parent.mkdir(parents=True, exist_ok=True)
                temp_path_for(thumb).write_bytes(b"half a thumbnail")
                temp_path_for(out).write_bytes(b"half an output")
            time.sleep(60)
        return fn(job)

    class LeaveExecutor(LocalExecutor):
        def run(self, tasks, fn, **options):
            return super().run(tasks, functools.partial(leaving, fn), **options)
''')


def _with_double(tmp_path: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a prep run through the double."""
    dbl = _double(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(dbl), str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    return [sys.executable, "-m", "mediaprep", *args, "--executor", "double:LeaveExecutor"], env



def _png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buf, "PNG")
    return buf.getvalue()


def run(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def media(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "a.png").write_bytes(_png())
    (src / "sub" / "b.png").write_bytes(_png((30, 30, 200)))
    return src


def user_folder(root: Path) -> dict[Path, bytes]:
    """A folder of a user's files, some named like temporaries and like journal records."""
    root.mkdir(parents=True)
    files = {
        root / "thesis.docx": b"four years of work",
        root / ".draft.tmp": b"a user's own temporary",
        root / ".photo.jpg.abc123.part": b"a download in progress",
        root / ("a" * 40 + ".json"): b'{"mine": true}\n',
    }
    for p, data in files.items():
        p.write_bytes(data)
    return files


def assert_unchanged(files: dict[Path, bytes]) -> None:
    for p, data in files.items():
        assert p.read_bytes() == data, f"{p} was changed or removed"
    folders = {p.parent for p in files}
    assert {q for f in folders for q in f.iterdir()} == set(files), "files were added"


# --- item 1: links where mediaprep keeps its state -----------------------------------------


@pytest.mark.parametrize("where", [".mediaprep", ".mediaprep/journal"])
@pytest.mark.parametrize("first", [True, False], ids=["fresh", "after-a-run"])
def test_a_state_folder_that_is_a_link_is_refused(media: Path, tmp_path: Path, where: str,
                                                  first: bool) -> None:
    out = tmp_path / "out"
    if not first:
        assert run("prep", media, "-o", out, "--no-cache", "-q").exit_code == 0
        link = out / where
        for p in sorted(link.iterdir()):
            if p.is_dir():
                for q in p.iterdir():
                    q.unlink()
                p.rmdir()
            else:
                p.unlink()
        link.rmdir()
    mine = user_folder(tmp_path / "precious")
    link = out / where
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(tmp_path / "precious", target_is_directory=True)
    r = run("prep", media, "-o", out, "--no-cache", "-q")
    assert r.exit_code == 2, r.output
    assert "symbolic link" in r.output and where.split("/")[-1] in r.output
    assert "Traceback" not in r.output
    assert_unchanged(mine)


def test_a_lock_file_that_is_a_link_is_refused(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    mine = user_folder(tmp_path / "precious")
    (out / ".mediaprep").mkdir(parents=True)
    (out / ".mediaprep" / "lock").symlink_to(tmp_path / "precious" / "thesis.docx")
    r = run("prep", media, "-o", out, "--no-cache", "-q")
    assert r.exit_code == 2 and "symbolic link" in r.output, r.output
    assert_unchanged(mine)


def test_links_to_user_files_among_dirs_files_are_replaced_not_written_through(
        media: Path, tmp_path: Path) -> None:
    """parts.jsonl and the state files that are replaced by rename: the link is replaced, what
    it pointed to stays; a stale link named like a journal record is removed, not its target."""
    out = tmp_path / "out"
    assert run("prep", media, "-o", out, "--no-cache", "-q").exit_code == 0
    mine = user_folder(tmp_path / "precious")
    state = out / ".mediaprep"
    targets = {out / "parts.jsonl": "thesis.docx", state / "parts.sig": ".draft.tmp",
               state / "runs": ".photo.jpg.abc123.part",
               state / "journal" / ("b" * 40 + ".json"): "a" * 40 + ".json"}
    for link, name in targets.items():
        link.unlink(missing_ok=True)
        link.symlink_to(tmp_path / "precious" / name)
    (media / "c.png").write_bytes(_png((0, 200, 0)))  # something to do
    r = run("prep", media, "-o", out, "--no-cache", "-q")
    assert r.exit_code == 0, r.output
    assert_unchanged(mine)
    lines = (out / "parts.jsonl").read_text().splitlines()
    assert len(lines) == 3 and not (out / "parts.jsonl").is_symlink()


# --- item 2: the sweep ---------------------------------------------------------------------


def _lookalikes(out: Path) -> dict[Path, bytes]:
    """A user's files in DIR named like temporaries (old mediaprep patterns and others)."""
    files = {
        out / ".x.tmp": b"x", out / ".y.part": b"y", out / ".a.jpg.x1y2.part": b"a",
        out / ".mediaprep-q1w2.mp4": b"q", out / ".b.png.zz.tmp": b"b",
        out / "sub" / ".clip.abc.part.mp4": b"c", out / ".mp-tmp-notes": b"n",
        out / ".git" / "objects" / ".pack.tmp": b"pack",
        out / ".git" / "objects" / ".mp-tmp-0123456789ab-01234567-x.png": b"git's",
        out / "notes.txt": b"mine",
    }
    for p, data in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return files


def test_users_temporary_looking_files_survive_prep(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = _lookalikes(out)
    for _ in range(2):  # a first run, and a rerun
        r = run("prep", media, "-o", out, "--no-cache", "-q")
        assert r.exit_code == 0, r.output
        for p, data in files.items():
            assert p.read_bytes() == data, f"{p.relative_to(out)} was removed"


def _double(tmp_path: Path) -> Path:
    dbl = tmp_path / "double"
    dbl.mkdir()
    (dbl / "double.py").write_text(DOUBLE)
    return dbl


def _temporaries(out: Path) -> list[Path]:
    """The helper's temporaries in DIR (not the user's lookalikes, not in .git)."""
    return sorted(p for p in out.rglob(".mp-tmp-*") if ".git" not in p.parts
                  and re.match(r"\.mp-tmp-[0-9a-f]{12}-[0-9a-f]{8}-", p.name))


def _wait_for(pred: Any, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # a safety net, not a timing assertion
    while not pred():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the worker never wrote its temporary"
        time.sleep(0.05)


def test_a_killed_runs_temporaries_are_swept_on_the_rerun(media: Path, tmp_path: Path) -> None:
    """SIGKILL while a worker is writing: its temporaries stay (an output's, a thumbnail's);
    the rerun removes them (and only them: a user's lookalikes stay), and a link into a user's
    folder is not swept through."""
    out = tmp_path / "out"
    files = _lookalikes(out)
    (media / "sub" / "leave.png").write_bytes(_png((9, 9, 9)))
    cmd, env = _with_double(tmp_path, "prep", str(media), "-o", str(out), "--no-cache", "-q",
                            "-j", "1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        # the leave* worker's temporary (another input's output or thumbnail may have one
        # for a moment too)
        _wait_for(lambda: any(p.name.endswith("-leave.png") for p in _temporaries(out)), proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    # the worker's half output (and the parent's half parts.jsonl, if an input had ended)
    left = [p for p in _temporaries(out) if p.name.endswith("-leave.png")]
    assert [p.parent for p in left] == [out / "sub"]
    # the same name, carrying the killed run's marker, in a user's folder behind a link
    precious = user_folder(tmp_path / "precious")
    decoy = tmp_path / "precious" / left[0].name
    decoy.write_bytes(b"the user's")
    precious[decoy] = b"the user's"
    (out / "elsewhere").symlink_to(tmp_path / "precious", target_is_directory=True)
    (media / "elsewhere").mkdir()
    (media / "elsewhere" / "e.png").write_bytes(_png((1, 2, 3)))

    r = subprocess.run([*CLI, "prep", str(media), "-o", str(out), "--no-cache", "-q"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr  # elsewhere/e.png: its output would leave DIR
    assert _temporaries(out) == []
    for p, data in files.items():
        assert p.read_bytes() == data, f"{p.relative_to(out)} was removed"
    assert_unchanged(precious)
    lines = [json.loads(x) for x in (out / "parts.jsonl").read_text().splitlines()]
    assert {x["path"].split("/in/")[-1]: x["ok"] for x in lines} == {
        "a.png": True, "elsewhere/e.png": False, "sub/b.png": True, "sub/leave.png": True}


def test_a_worker_killed_by_the_timeout_leaves_no_temporary(media: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = _lookalikes(out)
    (media / "leave.png").write_bytes(_png((9, 9, 9)))
    cmd, env = _with_double(tmp_path, "prep", str(media), "-o", str(out), "--no-cache", "-q",
                            "-j", "1", "--timeout", "2")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    assert "took too long" in (out / "parts.jsonl").read_text()
    assert _temporaries(out) == []
    for p, data in files.items():
        assert p.read_bytes() == data


# --- item 3: --batch-requests never overwrites what it must not ----------------------------


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("which", ["input", "input-other-spelling", "link-to-input",
                                   "frames-member", "parts", "journal-record", "lock",
                                   "state-folder-new-file", "report"])
def test_batch_requests_over_an_input_or_dirs_own_file_is_refused(
        media: Path, tmp_path: Path, which: str) -> None:
    out = tmp_path / "out"
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(4):
        (frames / f"f{i}.png").write_bytes(_png((i * 50, 0, 0)))
    base = ["prep", media, "--frames-dir", frames, "-o", out, "--no-cache", "-q"]
    assert run(*base).exit_code == 0
    (out / "report.html").write_text("<html>the report</html>")
    record = out / ".mediaprep" / "journal.idx"  # the journal of a finished run
    assert record.is_file()
    (tmp_path / "link.png").symlink_to(media / "a.png")
    dest = {"input": media / "sub" / "b.png",
            "input-other-spelling": media / "sub" / ".." / "a.png",
            "link-to-input": tmp_path / "link.png",
            "frames-member": frames / "f1.png",
            "parts": out / "parts.jsonl",
            "journal-record": record,
            "lock": out / ".mediaprep" / "lock",
            "state-folder-new-file": out / ".mediaprep" / "requests.jsonl",
            "report": out / "report.html"}[which]
    target = Path(os.path.realpath(dest))
    before = _digest(target) if target.exists() else None
    state = {p: _digest(p) for p in out.rglob("*") if p.is_file()}
    r = run(*base, "--batch-requests", dest, "--prompt", "Describe.")
    assert r.exit_code == 2, r.output
    assert "--batch-requests" in r.output and "Traceback" not in r.output
    if before is None:
        assert not target.exists()
    else:
        assert _digest(target) == before
    assert not dest.is_symlink() or which != "link-to-input" or dest.resolve() == target
    assert {p: _digest(p) for p in out.rglob("*") if p.is_file()} == state


def test_batch_requests_beside_the_outputs_is_still_fine(media: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run("prep", media, "-o", out, "--no-cache", "-q", "--batch-requests",
            out / "batch.jsonl", "--prompt", "Describe.")
    assert r.exit_code == 0, r.output
    assert len((out / "batch.jsonl").read_text().splitlines()) == 2
    assert _temporaries(out) == []
