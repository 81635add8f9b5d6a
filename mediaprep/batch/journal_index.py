"""Every journal record of an output folder: those of the last finished run, in one file
(``DIR/.mediaprep/journal.idx``), those in the logs of runs since that did not finish, and those
written now; the index is written once at the end of a run.

Why one file: a rerun over 10^5 finished inputs must not open and parse 10^5 record files to
learn that nothing changed; with the index a hit costs stat calls, a binary search and the
parse of its own row.
Why so little in memory: records held as Python objects cost 1.7 KB each (3.3 GB to read the
index of 10^6 inputs). What stays in memory is a record's name (20 bytes) and where its row is:
in journal.idx (a sorted column of names and one of offsets) or in a worker's log (32 packed
bytes). A record is parsed when it is asked for, from its row.

The file (version 3): a header line, then one line per record, sorted by name: the record's
metadata line as the worker appended it to its log (copied, never encoded again), which starts
with its name (``{"name":"<40 hex digits>",...``). A file that is not that (another version,
damaged, out of order) is not read: its inputs are prepared again (or taken from the cache).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import struct
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..output import PARTS_FILE, atomic_writer
from .journal_log import JOURNAL_FOLDER, KEY_SIZE, LineAt, read_logs, record_key

if TYPE_CHECKING:
    from .parts_file import LineIndex

__all__ = ["JOURNAL_INDEX_FILE", "JournalIndex", "Record", "paused_gc", "record_key"]

JOURNAL_INDEX_FILE = "journal.idx"
_HEADER = b'{"version":3}\n'
_ROW_START = b'{"name":"'  # a row, as journal._record_meta orders a record's keys
_NAME_END = len(_ROW_START) + 40
_BUCKETS = 1 << 16  # rows are found by their name's first two bytes, then a binary search
# a record written since journal.idx: its log (number), line offset, metadata length, line
# size, stamp
_IN_LOG = struct.Struct("<IqIqq")
_DONE = ("ok", "fixed", "status", "changes", "warnings", "codes", "outputs", "bytes_in",
         "bytes_out")  # a record's "done" object, as a Record holds it


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside the block: making 10^5-10^6 objects that form no
    cycles (a JSON file read, a run's tasks), the collector runs again and again over every
    object made so far, for nothing (journal.idx of 10^5 records: 8 s read, 1 s without)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass(slots=True)
class Record:
    """What a rerun needs of a journal record, read from its metadata when asked for."""

    name: str
    stamp: int  # which writing of the record (parts.idx names the line it copied by it)
    jkey: str | None  # journal_key of the task it was made for (None: never a hit)
    stem: str
    outputs: list[list[Any]]  # [name relative to DIR, size, mtime_ns]
    thumbs: list[list[Any]]  # [name relative to DIR, size]
    line_size: int
    done: list[Any]  # the _DONE fields
    valid_until: float | None = None  # an uploaded reference's end (None: for good)

    @classmethod
    def of_meta(cls, meta: dict[str, Any]) -> Record:
        """The record of its metadata as the worker wrote it (journal._record_meta)."""
        done = meta["done"]
        return cls(meta["name"], meta["stamp"], meta.get("jkey"), meta["stem"],
                   [[o["name"], o["size"], o["mtime_ns"]] for o in meta["outputs"]],
                   [[t["name"], t["size"]] for t in meta.get("thumbs") or []],
                   meta["line"]["size"], [done.get(k) for k in _DONE],
                   meta.get("valid_until"))

    def done_fields(self) -> dict[str, Any]:
        return dict(zip(_DONE, self.done, strict=True))

    def output_stats(self) -> list[dict[str, Any]]:
        return [{"name": n, "size": s, "mtime_ns": m} for n, s, m in self.outputs]


def _record_of(row: bytes, name: str | None = None) -> Record | None:
    """The record of a metadata line (None: not one prep writes, or not ``name``'s)."""
    try:
        rec = Record.of_meta(json.loads(row))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(rec.name, str) or type(rec.stamp) is not int or (
            name is not None and rec.name != name):
        return None
    return rec


class _Keys:
    """A sorted column of keys seen as a sequence (for bisect), without an object per key."""

    def __init__(self, keys: bytes | bytearray) -> None:
        self.keys = keys

    def __len__(self) -> int:
        return len(self.keys) // KEY_SIZE

    def __getitem__(self, i: int) -> bytes:
        return bytes(self.keys[i * KEY_SIZE:(i + 1) * KEY_SIZE])


class _Rows:
    """The rows of a journal.idx: their keys, sorted, in one bytes object; where each row starts
    (and where the last ends); where each two-byte prefix's rows begin."""

    def __init__(self, keys: bytes | bytearray = b"", starts: array[int] | None = None) -> None:
        self.keys = _Keys(keys)
        self.starts = starts if starts is not None else array("q", [len(_HEADER)])
        self.buckets = _buckets(keys) if keys else None


    def __len__(self) -> int:
        return len(self.keys)

    def find(self, key: bytes) -> int | None:
        """The row of ``key`` (None: no such row)."""
        if self.buckets is None:
            return None
        bucket = key[0] << 8 | key[1]
        lo, hi = self.buckets[bucket], self.buckets[bucket + 1]
        i = bisect_left(self.keys, key, lo, hi)
        return i if i < hi and self.keys[i] == key else None

    def span(self, i: int) -> tuple[int, int]:
        """Offset and length of row ``i`` in the file."""
        return self.starts[i], self.starts[i + 1] - self.starts[i]


def _buckets(keys: bytes | bytearray) -> array[int]:
    """Where the rows of each two-byte prefix begin (and, one further, end) in sorted keys."""
    starts = array("q", bytes(8 * (_BUCKETS + 1)))
    for i in range(0, len(keys), KEY_SIZE):
        starts[(keys[i] << 8 | keys[i + 1]) + 1] += 1
    for b in range(_BUCKETS):
        starts[b + 1] += starts[b]
    return starts


def _read_rows(fh: BinaryIO) -> _Rows | None:
    """The rows of an index file (None: not a file this version writes whole)."""
    if fh.readline() != _HEADER:
        return None
    keys = bytearray()
    starts = array("q")
    pos = len(_HEADER)
    last = b""
    for line in fh:
        key = _key_of_row(line)
        if key is None or key <= last:  # damaged, or not in order: not read
            return None
        keys += key
        starts.append(pos)
        pos += len(line)
        last = key
    starts.append(pos)
    return _Rows(keys, starts)


def _key_of_row(row: bytes) -> bytes | None:
    """The key of a whole row (a metadata line starting with its name), else None."""
    if not (row.endswith(b"\n") and row.startswith(_ROW_START)
            and row[_NAME_END:_NAME_END + 1] == b'"'):
        return None
    try:
        return record_key(row[len(_ROW_START):_NAME_END].decode("ascii"))
    except UnicodeDecodeError:
        return None


class JournalIndex:
    """The records of the journal in ``state`` (DIR/.mediaprep), by name, and where their lines
    are: in a log (written since the last finished run), or in ``parts.jsonl`` (found through
    ``parts.idx``, by the record's stamp)."""

    def __init__(self, state: str | os.PathLike[str]) -> None:
        self.state = Path(state)
        self.path = self.state / JOURNAL_INDEX_FILE
        self._file: BinaryIO | None = None  # journal.idx, open while its rows are read
        self._rows = _Rows()
        self._added: dict[bytes, bytes] = {}  # key -> _IN_LOG: written since journal.idx
        self._log_paths: list[str] = []  # the logs _IN_LOG numbers
        self._log_numbers: dict[str, int] = {}
        self._log_files: dict[int, BinaryIO | None] = {}
        self._logs: dict[str, bool] = {}
        self._parts: LineIndex | None = None
        self._changed = False
        self._open()
        for meta, at in read_logs(self.state / JOURNAL_FOLDER):  # runs killed before their end
            self.add(meta, at)

    def _open(self) -> None:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115  # kept open: rows are read as asked for
        except OSError:
            return
        with paused_gc():
            rows = _read_rows(fh)
        if rows is None:
            fh.close()
            return
        self._file, self._rows = fh, rows

    # -- looking up

    def get(self, name: str) -> Record | None:
        key = record_key(name)
        if key is None:
            return None
        row = self._row(key)
        return None if row is None else _record_of(row, name)

    def _row(self, key: bytes) -> bytes | None:
        """The metadata line of the record ``key`` (None: none, or not readable)."""
        packed = self._added.get(key)
        if packed is not None:
            return self._log_row(packed)
        i = self._rows.find(key)
        if i is None or self._file is None:
            return None
        offset, size = self._rows.span(i)
        return os.pread(self._file.fileno(), size, offset)

    def _log_row(self, packed: bytes) -> bytes | None:
        number, offset, head, _size, _stamp = _IN_LOG.unpack(packed)
        fh = self._log_file(number)
        if fh is None:
            return None
        with contextlib.suppress(OSError):
            row = os.pread(fh.fileno(), head, offset - head)
            return row if len(row) == head and row.endswith(b"\n") else None
        return None

    def _log_file(self, number: int) -> BinaryIO | None:
        """Log ``number``, opened once (it holds thousands of records)."""
        if number not in self._log_files:
            try:
                self._log_files[number] = open(self._log_paths[number], "rb")  # noqa: SIM115
            except OSError:
                self._log_files[number] = None
        return self._log_files[number]

    def _stamp(self, key: bytes) -> int | None:
        packed = self._added.get(key)
        if packed is not None:
            return int(_IN_LOG.unpack(packed)[4])
        row = self._row(key)
        rec = None if row is None else _record_of(row)
        return None if rec is None else rec.stamp

    # -- adding

    def add(self, meta: dict[str, Any], at: LineAt | None) -> None:
        """A record written now (or found in a log); later stamps win. Only its place in the
        log is kept (``at``); a record with none is not indexed (its input is prepared again)."""
        key = record_key(meta.get("name")) if isinstance(meta.get("name"), str) else None
        if key is None or at is None or at.head <= 0 or next(iter(meta)) != "name":
            return
        try:
            Record.of_meta(meta)
        except (KeyError, TypeError, AttributeError):
            return
        old = self._stamp(key)
        if old is not None and old > at.stamp:
            return
        number = self._log_numbers.get(at.path)
        if number is None:
            number = self._log_numbers[at.path] = len(self._log_paths)
            self._log_paths.append(at.path)
        self._added[key] = _IN_LOG.pack(number, at.offset, at.head, at.size, at.stamp)
        self._changed = True

    # -- lines

    def parts_lines(self) -> LineIndex:
        """Where each record's line is in ``parts.jsonl`` (parts_file.read_index), read once."""
        if self._parts is None:
            from .parts_file import read_index

            self._parts = read_index(self.state)
        return self._parts

    def line_at(self, name: str, rec: Record | None = None) -> LineAt | None:
        """Where the record's line is (None: nowhere whole). ``rec``: the record, when the
        caller has it (not parsed again)."""
        key = record_key(name)
        packed = None if key is None else self._added.get(key)
        if packed is not None:
            number, offset, head, size, stamp = _IN_LOG.unpack(packed)
            path = self._log_paths[number]
            if self._log_exists(path):
                return LineAt(path, offset, size, stamp, head)
        else:
            rec = rec if rec is not None else self.get(name)
            if rec is None:
                return None
            size, stamp = rec.line_size, rec.stamp
        where = self.parts_lines().get(name)
        if isinstance(where, list) and len(where) == 3 and [where[1], where[2]] == [size, stamp]:
            return LineAt(str(self.state.parent / PARTS_FILE), where[0], where[1], stamp)
        return None

    def _log_exists(self, path: str) -> bool:
        """Whether a log is there, looked at once per log (it holds thousands of lines)."""
        found = self._logs.get(path)
        if found is None:
            found = self._logs[path] = os.path.exists(path)
        return found

    # -- the others, and the end

    def _names(self) -> Iterator[tuple[str, bytes]]:
        """Every record's name and key (each once)."""
        for i in range(len(self._rows)):
            key = self._rows.keys[i]
            if key not in self._added:
                yield key.hex(), key
        for key in self._added:
            yield key.hex(), key

    def others(self, names: Iterable[str]) -> list[Record]:
        """The records not named in ``names`` (inputs the run no longer has)."""
        keep = set(names)
        found = []
        for name, key in self._names():
            if name not in keep:
                row = self._row(key)
                rec = None if row is None else _record_of(row, name)
                if rec is not None:
                    found.append(rec)
        return found

    def write(self, names: Iterable[str]) -> None:
        """Keep only the records named (this run's inputs) and write the index, sorted; not
        rewritten when nothing changed (a rerun where every input was a hit)."""
        keep = set(names)
        if not self._changed and all(
                self._rows.keys[i].hex() in keep for i in range(len(self._rows))):
            return
        keys = bytearray()
        starts = array("q")
        pos = len(_HEADER)
        with atomic_writer(self.path, binary=True) as fh:
            fh.write(_HEADER)
            for name in sorted(keep):  # hex digits sort as the keys they spell
                key = record_key(name)
                row = None if key is None else self._row(key)
                if key is None or row is None or _key_of_row(row) != key:
                    continue
                fh.write(row)
                keys += key
                starts.append(pos)
                pos += len(row)
        starts.append(pos)
        self._close()
        with contextlib.suppress(OSError):
            self._file = open(self.path, "rb")  # noqa: SIM115
            self._rows = _Rows(keys, starts)
        self._changed = False

    def _close(self) -> None:
        """Close the index file and the logs; what was added since is dropped."""
        for fh in [self._file, *self._log_files.values()]:
            if fh is not None:
                fh.close()
        self._file = None
        self._rows = _Rows()
        self._added.clear()
        self._log_paths.clear()
        self._log_numbers.clear()
        self._log_files.clear()
        self._logs.clear()
        self._parts = None
