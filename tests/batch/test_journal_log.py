"""The journal's logs (one per worker): a record is read whole or not at all, wherever a writer
was stopped, and an append that fails leaves nothing behind it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mediaprep.batch.journal_log import append_record, close_log, log_files, read_logs


def _line(i: int) -> bytes:
    return (json.dumps({"path": f"in{i}.jpg", "ok": True}) + "\n").encode()


def _write(folder: Path, n: int) -> None:
    for i in range(n):
        append_record(folder, None, {"name": f"r{i}"}, _line(i))
    close_log()


def test_records_come_back_in_order_with_their_lines(tmp_path: Path) -> None:
    _write(tmp_path, 4)
    got = list(read_logs(tmp_path))
    assert [meta["name"] for meta, _ in got] == ["r0", "r1", "r2", "r3"]
    for i, (meta, at) in enumerate(got):
        with open(at.path, "rb") as fh:
            fh.seek(at.offset)
            assert fh.read(at.size) == _line(i)
        assert meta["line"] == {"size": len(_line(i)), "stamp": at.stamp}
    stamps = [at.stamp for _, at in got]
    assert stamps == sorted(set(stamps))  # later records, later stamps


def test_a_log_cut_anywhere_gives_only_whole_records(tmp_path: Path) -> None:
    """A worker killed mid-append leaves a torn tail: every cut, byte by byte, reads as the
    records before it, never as part of one."""
    _write(tmp_path / "whole", 3)
    (log,) = log_files(tmp_path / "whole")
    data = log.read_bytes()
    ends = [at.offset + at.size for _, at in read_logs(tmp_path / "whole")]
    cut_dir = tmp_path / "cut"
    cut_dir.mkdir()
    for cut in range(len(data)):
        (cut_dir / log.name).write_bytes(data[:cut])
        got = [meta["name"] for meta, _ in read_logs(cut_dir)]
        assert got == [f"r{i}" for i, end in enumerate(ends) if end <= cut], cut


def test_an_append_that_fails_is_cut_back_and_the_next_starts_a_new_log(tmp_path: Path) -> None:
    """A file size limit (as a full disk) stops the third record halfway: the log is cut back
    to the two whole ones, and the next record goes to a new log."""
    code = f"""
import errno, resource, signal
from mediaprep.batch.journal_log import append_record
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
line = b'"' + b"x" * 1000 + b'"\\n'
append_record({str(tmp_path)!r}, None, {{"name": "r0"}}, line)
append_record({str(tmp_path)!r}, None, {{"name": "r1"}}, line)
resource.setrlimit(resource.RLIMIT_FSIZE, (2600, resource.RLIM_INFINITY))
try:
    append_record({str(tmp_path)!r}, None, {{"name": "r2"}}, line)
except OSError as exc:
    assert exc.errno == errno.EFBIG, exc
else:
    raise SystemExit("the append past the limit did not fail")
append_record({str(tmp_path)!r}, None, {{"name": "r3"}}, line)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    logs = log_files(tmp_path)
    assert len(logs) == 2
    got = list(read_logs(tmp_path))
    assert sorted(meta["name"] for meta, _ in got) == ["r0", "r1", "r3"]
    first = [at for meta, at in got if meta["name"] == "r1"][0]
    assert Path(first.path).stat().st_size == first.offset + first.size  # nothing after it
