"""Every journal record of an output folder: those of the last finished run, in one file
(``DIR/.mediaprep/journal.idx``), those in the logs of runs since that did not finish, and those
written now; the index is written once at the end of a run.

Why one file: a rerun over 10^5 finished inputs must not open and parse 10^5 record files to
learn that nothing changed; with the index a hit costs stat calls, a binary search and one
``pread`` of its own row, which is split, not parsed as JSON (a JSON parse and its dictionaries
were two thirds of a hit's bookkeeping, twice per hit).
Why so little in memory: records held as Python objects cost 1.7 KB each (3.3 GB to read the
index of 10^6 inputs). What stays in memory is a record's name (20 bytes), where its row is,
and its stamp and line size (what says where its ``parts.jsonl`` line is): in journal.idx
(sorted columns of names, offsets, stamps and sizes) or in a worker's log (32 packed bytes). A
record is read when it is asked for, from its row.

The file (version 4): a header line, then one line per record, sorted by name, of tab-separated
fields (:func:`_encode_row`): printable ASCII only, every string escaped (``unicode_escape``),
so no field holds a tab, a newline or the list separator. A file that is not that (another
version, torn, out of order) is not read: its inputs are prepared again (or taken from the
cache); a row damaged inside costs only its input.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import struct
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..output import PARTS_FILE, atomic_writer
from .journal_log import JOURNAL_FOLDER, LineAt, SortedKeys, read_logs, record_key

if TYPE_CHECKING:
    from .parts_file import LineIndex

__all__ = ["JOURNAL_INDEX_FILE", "JournalIndex", "Record", "paused_gc", "record_key"]

JOURNAL_INDEX_FILE = "journal.idx"
_HEADER = b'{"version":4}\n'
_NAME_END = 40  # a row starts with its record's name, then a tab
_TAB = b"\t"
_ITEM = b"\x1f"  # between a list's items (escaped inside any string)
_ITEM_TEXT = _ITEM.decode()
_FIELDS = 16  # a row's fields (_encode_row)
_NONE = b"-"  # a jkey or valid_until that is None
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
    """The record of a metadata line in a log (None: not one prep writes, or not ``name``'s)."""
    try:
        rec = Record.of_meta(json.loads(row))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(rec.name, str) or type(rec.stamp) is not int or (
            name is not None and rec.name != name):
        return None
    return rec


# -- a journal.idx row: what a rerun needs of a record, split by tabs rather than parsed as JSON


def _text(value: Any) -> bytes:
    """A string as a row holds it: printable ASCII, no tab, newline or item separator."""
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value.encode("unicode_escape")


def _unescape(text: str) -> str:
    return text.encode("ascii").decode("unicode_escape")


def _int(value: Any) -> bytes:
    if type(value) is not int:
        raise TypeError("not an integer")
    return b"%d" % value


def _items(values: list[bytes], width: int = 1) -> bytes:
    """A list: its length, then its items, ``width`` values each (the length tells [] from
    [""])."""
    return _ITEM.join([b"%d" % (len(values) // width), *values])


def _unitems(raw: str, width: int = 1) -> list[str]:
    n, *values = raw.split(_ITEM_TEXT)
    if int(n) * width != len(values):
        raise ValueError("a list of another length than it says")
    return values


def _encode_row(rec: Record) -> bytes | None:
    """The journal.idx row of a record (None: a value prep never writes; not indexed, so its
    input is prepared again)."""
    ok, fixed = rec.done[0], rec.done[1]
    if not (isinstance(ok, bool) and isinstance(fixed, bool)) or record_key(rec.name) is None:
        return None
    try:
        fields = [*_head_fields(rec), *_list_fields(rec)]
    except (TypeError, ValueError, UnicodeError):
        return None
    return _TAB.join(fields) + b"\n"


def _head_fields(rec: Record) -> list[bytes]:
    """A row's fields before its lists: name, stamp, line size, key, end of validity, flags,
    bytes in and out, stem and status."""
    ok, fixed, status, *_lists, bytes_in, bytes_out = rec.done
    return [rec.name.encode("ascii"), _int(rec.stamp), _int(rec.line_size),
            _NONE if rec.jkey is None else _text(rec.jkey), _time(rec.valid_until),
            b"%d%d" % (ok, fixed), _int(bytes_in), _int(bytes_out), _text(rec.stem),
            _text(status)]


def _time(value: Any) -> bytes:
    return _NONE if value is None else repr(float(value)).encode("ascii")


def _list_fields(rec: Record) -> list[bytes]:
    """A row's lists: outputs (name, size, mtime), thumbnails (name, size), and the changes,
    warnings, finding codes and output names of its result."""
    outputs = [v for n, size, mtime in rec.outputs for v in (_text(n), _int(size), _int(mtime))]
    thumbs = [v for n, size in rec.thumbs for v in (_text(n), _int(size))]
    return [_items(outputs, 3), _items(thumbs, 2),
            *(_items(_texts(values)) for values in rec.done[3:7])]


def _texts(values: Any) -> list[bytes]:
    if values is None:  # as a result reads it: none
        return []
    if not isinstance(values, list | tuple):
        raise TypeError("not a list")
    return [_text(v) for v in values]


def _decode_row(row: bytes, name: str) -> Record | None:
    """The record of a journal.idx row, when it is whole and ``name``'s (else None). Decoded
    once; only a row holding an escape has its strings unescaped one by one."""
    try:
        text = row.decode("ascii")
    except UnicodeDecodeError:
        return None
    fields = text[:-1].split("\t")
    if not (text.endswith("\n") and len(fields) == _FIELDS and fields[0] == name):
        return None
    try:
        return _record_of_fields(fields, name, _unescape if "\\" in text else str)
    except (ValueError, UnicodeError):
        return None


def _record_of_fields(f: list[str], name: str, u: Callable[[str], str]) -> Record | None:
    """The record of a row's fields; ``u`` unescapes a string."""
    flags = f[5]
    if flags not in ("00", "01", "10", "11"):
        return None
    outputs = _unitems(f[10], 3)
    thumbs = _unitems(f[11], 2)
    lists = [[u(v) for v in _unitems(raw)] for raw in f[12:16]]
    done = [flags[0] == "1", flags[1] == "1", u(f[9]), *lists, int(f[6]),
            int(f[7])]  # as _DONE orders them
    return Record(name, int(f[1]), None if f[3] == "-" else u(f[3]), u(f[8]),
                  [[u(outputs[i]), int(outputs[i + 1]), int(outputs[i + 2])]
                   for i in range(0, len(outputs), 3)],
                  [[u(thumbs[i]), int(thumbs[i + 1])] for i in range(0, len(thumbs), 2)],
                  int(f[2]), done, None if f[4] == "-" else float(f[4]))


def _stamp_and_size(row: bytes) -> tuple[int, int]:
    """A row's stamp and line size, read with the index ((-1, -1): not readable; the row's
    input is then prepared again)."""
    try:
        _name, stamp, size, _rest = row.split(_TAB, 3)
        found = int(stamp), int(size)
    except ValueError:
        return -1, -1
    return found if all(0 <= v < 1 << 63 for v in found) else (-1, -1)  # as the columns hold


class _Rows:
    """The rows of a journal.idx: their keys, sorted, in one bytes object; where each row starts
    (and where the last ends); each row's stamp and line size."""

    def __init__(self, keys: bytes | bytearray = b"", starts: array[int] | None = None,
                 stamps: array[int] | None = None, sizes: array[int] | None = None) -> None:
        self.keys = SortedKeys(keys)
        self.starts = starts if starts is not None else array("q", [len(_HEADER)])
        self.stamps = stamps if stamps is not None else array("q")
        self.sizes = sizes if sizes is not None else array("q")

    def __len__(self) -> int:
        return len(self.keys)

    def find(self, key: bytes) -> int | None:
        """The row of ``key`` (None: no such row)."""
        return self.keys.find(key)

    def span(self, i: int) -> tuple[int, int]:
        """Offset and length of row ``i`` in the file."""
        return self.starts[i], self.starts[i + 1] - self.starts[i]


class _Columns:
    """The columns of a journal.idx as it is read or written, row by row."""

    def __init__(self) -> None:
        self.keys = bytearray()
        self.starts = array("q")
        self.stamps = array("q")
        self.sizes = array("q")
        self.pos = len(_HEADER)

    def add(self, key: bytes, row: bytes) -> None:
        stamp, size = _stamp_and_size(row)
        self.keys += key
        self.starts.append(self.pos)
        self.stamps.append(stamp)
        self.sizes.append(size)
        self.pos += len(row)

    def rows(self) -> _Rows:
        self.starts.append(self.pos)
        return _Rows(self.keys, self.starts, self.stamps, self.sizes)


def _read_rows(fh: BinaryIO) -> _Rows | None:
    """The rows of an index file (None: not a file this version writes whole)."""
    if fh.readline() != _HEADER:
        return None
    columns = _Columns()
    last = b""
    for line in fh:
        key = _key_of_row(line)
        if key is None or key <= last:  # torn, or not in order: not read
            return None
        columns.add(key, line)
        last = key
    return columns.rows()


def _key_of_row(row: bytes) -> bytes | None:
    """The key of a whole row (a line starting with its name and a tab), else None."""
    if not (row.endswith(b"\n") and row[_NAME_END:_NAME_END + 1] == _TAB):
        return None
    try:
        return record_key(row[:_NAME_END].decode("ascii"))
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
        self._parts_path = str(self.state.parent / PARTS_FILE)
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
        return None if key is None else self._record(key, name)

    def _record(self, key: bytes, name: str) -> Record | None:
        """The record ``key`` (named ``name``), from its log's metadata line (JSON: a record
        written since the last finished run) or its journal.idx row (split, not parsed)."""
        packed = self._added.get(key)
        if packed is not None:
            row = self._log_row(packed)
            return None if row is None else _record_of(row, name)
        row = self._index_row(key)
        return None if row is None else _decode_row(row, name)

    def _index_row(self, key: bytes) -> bytes | None:
        """The journal.idx row of ``key`` (None: none)."""
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
        # the row read whole (only for an input prepared again): a stamp in a row damaged
        # elsewhere must not outrank the record written now
        rec = None if self._rows.find(key) is None else self._record(key, key.hex())
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

    def line_at(self, name: str) -> LineAt | None:
        """Where the record's line is (None: nowhere whole): no row read, the index holds
        each record's stamp and line size."""
        key = record_key(name)
        if key is None:
            return None
        packed = self._added.get(key)
        if packed is not None:
            number, offset, head, size, stamp = _IN_LOG.unpack(packed)
            path = self._log_paths[number]
            if self._log_exists(path):
                return LineAt(path, offset, size, stamp, head)
        else:
            i = self._rows.find(key)
            if i is None or self._rows.stamps[i] < 0:
                return None
            size, stamp = self._rows.sizes[i], self._rows.stamps[i]
        where = self.parts_lines().at_key(key)
        if where is not None and where[1] == size and where[2] == stamp:
            return LineAt(self._parts_path, where[0], where[1], stamp)
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
                rec = self._record(key, name)
                if rec is not None:
                    found.append(rec)
        return found

    def write(self, names: Iterable[str]) -> None:
        """Keep only the records named (this run's inputs) and write the index, sorted; not
        rewritten when nothing changed (a rerun where every input was a hit). A row of the
        index is copied as it is; a record written since is made a row from its log's line."""
        keep = set(names)
        if not self._changed and all(
                self._rows.keys[i].hex() in keep for i in range(len(self._rows))):
            return
        columns = _Columns()
        with atomic_writer(self.path, binary=True) as fh:
            fh.write(_HEADER)
            for name in sorted(keep):  # hex digits sort as the keys they spell
                key = record_key(name)
                row = None if key is None else self._row_to_write(key, name)
                if key is None or row is None:
                    continue
                fh.write(row)
                columns.add(key, row)
        self._close()
        with contextlib.suppress(OSError):
            self._file = open(self.path, "rb")  # noqa: SIM115
            self._rows = columns.rows()
        self._changed = False

    def _row_to_write(self, key: bytes, name: str) -> bytes | None:
        """The row the next journal.idx holds for ``key`` (None: none that is whole)."""
        if key not in self._added:
            row = self._index_row(key)
            return row if row is not None and _decode_row(row, name) is not None else None
        rec = self._record(key, name)
        return None if rec is None else _encode_row(rec)

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
