"""The journal's records as appended by the workers: one log file per worker process.

A record is an input's metadata (one JSON line, carrying its record ``name`` and the ``size`` of
the line after it) followed by its ``parts.jsonl`` line, appended in one ``write`` to the log of
the process that finished the input: ``DIR/.mediaprep/journal/<run>-<8 hex>.log``.

Why a log: a file (and a rename) per input cost about 1.6 ms each on ext4, several times the
media work of a small image; an append to a file already open costs microseconds. Safety is
the log's: a record is read only when its metadata parses and its line is whole (the size it
announces, ending in a newline), so a worker killed mid-append leaves a torn tail that nothing
reads, and an append that fails truncates the log back and opens a new one, so a torn record
is only ever a log's last. The parent indexes the records as inputs end (journal.idx) and
removes the logs once ``parts.jsonl`` and the index hold everything; a run killed before that
leaves its logs, and the rerun reads them (:func:`read_logs`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..output import is_run_id

__all__ = ["JOURNAL_FOLDER", "KEY_SIZE", "LineAt", "SortedKeys", "append_record", "close_log",
           "log_files", "read_logs", "record_key"]

JOURNAL_FOLDER = "journal"  # DIR/.mediaprep/journal: the logs
# <run marker>-<8 hex>.log: the only names the journal's cleanup removes as logs
LOG_NAME = re.compile(r"^[0-9a-f]{12}-[0-9a-f]{8}\.log\Z")
NO_RUN = "0" * 12  # the marker of records written outside a prep run (the library's own use)
MAX_META_BYTES = 16 << 20  # a record's metadata line (a long video's frame list fits easily)
KEY_SIZE = 20  # a record name's 40 hex digits as bytes, as the indexes keep it
_FLAGS = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
          | getattr(os, "O_CLOEXEC", 0))


def record_key(name: str) -> bytes | None:
    """A record name (journal.record_name: 40 lowercase hex digits) as the index keys it, 20
    bytes; None for any other string (never a record of this index)."""
    if len(name) != 40 or name.lower() != name:
        return None
    try:
        key = bytes.fromhex(name)
    except ValueError:
        return None
    return key if len(key) == KEY_SIZE else None


_MAX_BUCKET_BITS = 16  # a fan-out table of up to 2^16 entries, about one for 3 keys


class SortedKeys:
    """Sorted record keys inside one bytes object (``stride`` bytes apart, each row starting
    with its key), found by their first bits in a fan-out table, then a binary search in that
    bucket: about one comparison a lookup (a binary search over all of 10^5 keys calls
    ``__getitem__`` 17 times), without an object per key. The table has about one entry (4
    bytes) for 2 to 4 keys, up to 2^16 entries."""

    def __init__(self, data: bytes | bytearray, stride: int = KEY_SIZE) -> None:
        self.data = data
        self.stride = stride
        n = len(data) // stride
        self.shift = 16 - min(_MAX_BUCKET_BITS, max(1, n.bit_length() - 2))
        self.buckets = self._buckets(n) if n else None

    def __len__(self) -> int:
        return len(self.data) // self.stride

    def __getitem__(self, i: int) -> bytes:
        at = i * self.stride
        return bytes(self.data[at:at + KEY_SIZE])

    def _bucket(self, key: bytes | bytearray, at: int = 0) -> int:
        return (key[at] << 8 | key[at + 1]) >> self.shift

    def _buckets(self, n: int) -> array[int]:
        """Where the keys of each bucket begin (and, one further, end)."""
        width = 1 << (16 - self.shift)
        starts = array("I" if n < 1 << 32 else "q", [0]) * (width + 1)
        for i in range(n):
            starts[self._bucket(self.data, i * self.stride) + 1] += 1
        for b in range(width):
            starts[b + 1] += starts[b]
        return starts

    def find(self, key: bytes) -> int | None:
        """The row of ``key`` (None: none)."""
        if self.buckets is None or len(key) != KEY_SIZE:
            return None
        bucket = self._bucket(key)
        lo, hi = self.buckets[bucket], self.buckets[bucket + 1]
        i = bisect_left(self, key, lo, hi)
        return i if i < hi and self[i] == key else None


@dataclass(frozen=True)
class LineAt:
    """Where a record's ``parts.jsonl`` line is: ``size`` bytes (newline included) at
    ``offset`` in ``path`` (a log, or the ``parts.jsonl`` in place). ``stamp``: the record's.
    ``head``: in a log, the length of the record's metadata line, which ends at ``offset``."""

    path: str
    offset: int
    size: int
    stamp: int
    head: int = 0


class _Log:
    """This process's open log for one journal folder and run."""

    def __init__(self, journal_dir: str, run_id: str) -> None:
        self.key = (os.getpid(), journal_dir, run_id)
        self.path = os.path.join(journal_dir, f"{run_id}-{secrets.token_hex(4)}.log")
        os.makedirs(journal_dir, exist_ok=True)
        self.fd = os.open(self.path, _FLAGS, 0o666)
        self.end = 0

    def append(self, data: bytes) -> int:
        """Append ``data``; its offset. On an error the log is cut back to where it was."""
        start = self.end
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, start)
            raise
        self.end = start + len(data)
        return start

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


_lock = threading.Lock()  # a Dask worker runs tasks in threads: one append at a time
_current: _Log | None = None
_last_stamp = 0


def _stamp() -> int:
    """A record's stamp: its time in ns, strictly increasing in a process (two records of one
    input are told apart by it, and the later wins)."""
    global _last_stamp
    _last_stamp = max(_last_stamp + 1, time.time_ns())
    return _last_stamp


def append_record(journal_dir: str | os.PathLike[str], run_id: str | None,
                  meta: dict[str, Any], line: bytes) -> LineAt:
    """Append a record (``meta`` and the ``parts.jsonl`` ``line``, with its newline) to this
    process's log; where its line is. ``meta`` gets its ``stamp`` and the line's size."""
    global _current
    jdir = os.fspath(journal_dir)
    run = run_id if is_run_id(run_id) else NO_RUN
    with _lock:
        meta["stamp"] = _stamp()
        meta["line"] = {"size": len(line), "stamp": meta["stamp"]}
        head = (json.dumps(meta, separators=(",", ":"), ensure_ascii=True) + "\n").encode()
        log = _current
        if log is None or log.key != (os.getpid(), jdir, run):  # a fork, or another run
            if log is not None and log.key[0] == os.getpid():
                log.close()
            log = _current = _Log(jdir, run)
        try:
            offset = log.append(head + line)
        except BaseException:
            log.close()  # the next record starts a new log: a torn record stays the last
            _current = None
            raise
    return LineAt(log.path, offset + len(head), len(line), meta["stamp"], len(head))


def close_log() -> None:
    """Close this process's log (the parent's, when it prepared inputs itself)."""
    global _current
    with _lock:
        if _current is not None and _current.key[0] == os.getpid():
            _current.close()
        _current = None


def log_files(journal_dir: str | os.PathLike[str]) -> list[Path]:
    """The logs in a journal folder, oldest first (by time, then name)."""
    found = []
    with contextlib.suppress(OSError), os.scandir(journal_dir) as entries:
        for e in entries:
            if LOG_NAME.match(e.name) and e.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    found.append((e.stat(follow_symlinks=False).st_mtime_ns, e.name, e.path))
    return [Path(p) for _t, _n, p in sorted(found)]


def read_logs(journal_dir: str | os.PathLike[str]) -> Iterator[tuple[dict[str, Any], LineAt]]:
    """Every whole record in the folder's logs, oldest log first; a log's torn or damaged
    tail ends its reading. Bounded memory: lines are skipped, never read."""
    for path in log_files(journal_dir):
        with contextlib.suppress(OSError), open(path, "rb") as fh:
            yield from _records_in(fh, os.fstat(fh.fileno()).st_size, str(path))


def _records_in(fh: Any, size: int, path: str) -> Iterator[tuple[dict[str, Any], LineAt]]:
    while True:
        head = fh.readline(MAX_META_BYTES)
        meta = _meta_of(head)
        if meta is None:
            return
        start = fh.tell()
        length = meta["line"]["size"]
        if start + length > size:
            return
        fh.seek(start + length - 1)
        if fh.read(1) != b"\n":
            return
        yield meta, LineAt(path, start, length, meta["stamp"], len(head))


def _meta_of(head: bytes) -> dict[str, Any] | None:
    """A record's metadata line as :func:`append_record` writes it, else None."""
    if not head.endswith(b"\n"):
        return None
    try:
        meta = json.loads(head)
    except ValueError:
        return None
    if not (isinstance(meta, dict) and isinstance(meta.get("name"), str)
            and type(meta.get("stamp")) is int and isinstance(meta.get("line"), dict)):
        return None
    length = meta["line"].get("size")
    return meta if type(length) is int and length > 0 else None
