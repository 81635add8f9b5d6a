"""``DIR/parts.jsonl`` of a ``prep`` run: one line per input, in input order, written as the
run goes and put in place in one atomic step.

    with PartsFile(out / "parts.jsonl", names, line_at, missing_line, state) as parts:
        ...                     # as each input ends (any order):
        parts.done(index)       # its line is its journal record's, or
        parts.failed(index, line)
    parts.missing               # inputs whose record was missing (they count as failed)

Why stream: with data URLs the file is hundreds of megabytes. Copying it after the last input
made the parent's serial tail a fifth of a two-worker run; copied while workers run (the
parent otherwise sleeps), only the lines after the last one in order are left at the end.
Lines are copied from the journal's logs (or the previous parts.jsonl) by the kernel
(``sendfile``: a third of the CPU of reading and writing them here), never held in memory. The
file is a temporary until :meth:`PartsFile.close` renames it over ``parts.jsonl``: a killed run
leaves the previous ``parts.jsonl`` (or none), never half of one. No fsync: as for every output,
the rename is the promise against a killed process, and a rerun rewrites it from the journal.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from ..output import PARTS_FILE, TempFile, atomic_write, atomic_writer, json_line
from ..tuning import SORT_ROWS_WITH_NUMPY
from .journal_log import KEY_SIZE, LineAt, SortedKeys, record_key

__all__ = ["LineIndex", "PartsFile", "read_index"]

SIGNATURE_FILE = "parts.sig"  # beside the journal: which records the current parts.jsonl holds
INDEX_FILE = "parts.idx"  # beside the journal: where each record's line is in parts.jsonl
_ROW = struct.Struct("<20sqqq")  # a line in parts.idx: record key, offset, length, stamp


def read_index(state: Path) -> LineIndex:
    """Where each record's line is in the ``parts.jsonl`` now in place (``state``:
    DIR/.mediaprep), read from its index: ``.get(record name)`` is ``[offset, length, line
    mtime_ns]`` or None; empty when no generation matches the file.

    Each data URL is stored once in DIR: once a record's line is in ``parts.jsonl`` its line
    file is removed and the journal finds the line there through this index. A generation names
    the ``parts.jsonl`` it describes by size, time and inode, so a rename of a newer file over
    it (or any edit) makes it stale rather than wrong. A generation is a JSON header line, then
    its rows (:data:`_ROW`, sorted by key): 44 bytes a line in memory, not a Python object."""
    now = _stat(state.parent / PARTS_FILE)
    with contextlib.suppress(OSError), open(state / INDEX_FILE, "rb") as fh:
        while now is not None and (gen := _generation(fh)) is not None:
            parts, rows, _head = gen
            if parts == now:
                return LineIndex(rows)
    return LineIndex(b"")


def _generation(fh: Any) -> tuple[Any, bytes, bytes] | None:
    """The next generation of an index file: the parts.jsonl it names, its rows, and its
    header line (None: no more, or not whole)."""
    head = fh.readline(4096)
    try:
        about = json.loads(head)
        size = about["rows"] * _ROW.size
        rows = fh.read(size)
    except (ValueError, TypeError, KeyError, OverflowError):
        return None
    return (about.get("parts"), rows, head) if len(rows) == size else None


class LineIndex:
    """The rows of one generation of parts.idx, sorted by record key."""

    def __init__(self, rows: bytes | bytearray) -> None:
        self.rows = rows
        self.keys = SortedKeys(rows, _ROW.size)

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, name: str) -> list[int] | None:
        key = record_key(name)
        return None if key is None else self.at_key(key)

    def at_key(self, key: bytes) -> list[int] | None:
        """``get`` of a record's key (journal_log.record_key)."""
        i = self.keys.find(key)
        if i is None:
            return None
        _key, offset, length, stamp = _ROW.unpack_from(self.rows, i * _ROW.size)
        return [offset, length, stamp]


class PartsFile:
    """Writes ``path`` from journal records (``names[i]``: input i's record) as inputs end.

    ``line_at(i)`` says where input i's line is (a :class:`LineAt`: a file, an offset and a
    size, and the record's stamp; None when it is nowhere); ``missing_line(i)`` makes the line
    of input i when it is missing or not whole there. ``state``: the folder of ``parts.idx``
    and ``parts.sig`` (None: neither is written).
    """

    def __init__(self, path: Path, names: Sequence[str],
                 line_at: Callable[[int], LineAt | None],
                 missing_line: Callable[[int], dict[str, Any]], state: Path | None) -> None:
        self.path = path
        self.names = names
        self.line_at = line_at
        self.missing_line = missing_line
        self.missing = 0
        self._ready: dict[int, bytes | None] = {}  # ended, not yet written: None = from record
        self._next = 0  # index of the next line to write
        self._tmp: TempFile | None = None
        self._any_failed = False
        self._state = state
        self._new_index = bytearray()  # lines written now: _ROW each
        self._offset = 0  # bytes written to the temporary so far
        self._src: tuple[str, int] | None = None  # the file lines come from now, open

    def _source(self, path: str) -> int | None:
        """A descriptor of ``path``, kept open while lines come from it (a worker's log holds
        thousands in a row: one open, not one per line)."""
        if self._src is not None and self._src[0] == path:
            return self._src[1]
        self._close_source()
        try:
            self._src = (path, os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
        except OSError:
            return None
        return self._src[1]

    def _close_source(self) -> None:
        if self._src is not None:
            os.close(self._src[1])
            self._src = None

    # -- the run

    def unchanged(self) -> bool:
        """Whether ``parts.jsonl`` already holds exactly these records' lines (a rerun where
        every input was a journal hit): then the run need not copy every line, and leaves without
        :meth:`close` (the context's exit drops the temporary, if any)."""
        if self._state is None:
            return False
        sig = self._signature()
        return sig is not None and _read_json(self._state / SIGNATURE_FILE) == [
            sig, _stat(self.path)]

    def done(self, index: int) -> None:
        """Input ``index`` ended with a journal record holding its line."""
        self._ready[index] = None
        self._flush()

    def failed(self, index: int, line: dict[str, Any]) -> None:
        """Input ``index`` ended without a record (a timeout, a crash): ``line`` stands for it."""
        self._any_failed = True
        self._ready[index] = (json_line(line) + "\n").encode("utf-8")
        self._flush()

    def _flush(self) -> None:
        fd = self._open()
        while self._next in self._ready:
            data = self._ready.pop(self._next)
            if data is None:
                data = self._copy_record(self._next, fd)
            if data is not None:
                _write_all(fd, data)
                self._offset += len(data)
            self._next += 1

    def _copy_record(self, i: int, fd: int) -> bytes | None:
        """Copy input i's line from its record; None when copied, else the line to write in
        its place (the record is missing)."""
        at = self.line_at(i)
        sfd = self._source(at.path) if at is not None else None
        written = 0
        if sfd is not None:
            assert at is not None
            written = _copy_range(sfd, fd, at.offset, at.size, at.path)
        if written:
            assert at is not None
            key = record_key(self.names[i])
            if key is not None:
                self._new_index += _ROW.pack(key, self._offset, written, at.stamp)
            self._offset += written
            return None
        self.missing += 1
        self._any_failed = True
        return (json_line(self.missing_line(i)) + "\n").encode("utf-8")

    def _open(self) -> int:
        if self._tmp is None:  # output.TempFile: the one temp-then-rename helper
            self._tmp = TempFile(self.path)
        return self._tmp.fd

    # -- the end

    def close(self) -> None:
        """Put the file in place; every index must have ended."""
        if self._next != len(self.names):
            left = len(self.names) - self._next - len(self._ready)
            raise RuntimeError(f"parts.jsonl: {left} inputs have not ended")
        self._close_source()
        self._open()  # no inputs at all: an empty parts.jsonl
        assert self._tmp is not None
        tmp, self._tmp = self._tmp, None
        self._write_index(tmp.fd)  # before the rename: a kill between them loses nothing
        tmp.commit()
        self._write_signature()

    def _write_index(self, fd: int) -> None:
        """parts.idx: this file's generation (rows sorted by key), then the newest before it,
        copied as it is."""
        if self._state is None:
            return
        st = os.fstat(fd)
        rows = self._new_index
        with contextlib.ExitStack() as stack:
            before = _newest_generation(self._state / INDEX_FILE, stack)
            out = stack.enter_context(atomic_writer(self._state / INDEX_FILE, binary=True))
            out.write((json.dumps({"parts": [st.st_size, st.st_mtime_ns, st.st_ino],
                                   "rows": len(rows) // _ROW.size}) + "\n").encode())
            for chunk in _sorted_rows(rows):
                out.write(chunk)
            if before is not None:  # a kill before the rename leaves that one in place
                fh, head, size = before
                out.write(head)
                _copy_bytes(fh, out, size)

    def abort(self) -> None:
        """Drop the temporary file; ``parts.jsonl`` stays as it was."""
        self._close_source()
        if self._tmp is not None:
            tmp, self._tmp = self._tmp, None
            tmp.discard()

    def _write_signature(self) -> None:
        if self._state is None:
            return
        path = self._state / SIGNATURE_FILE
        sig = None if self._any_failed else self._signature()
        if sig is not None:
            atomic_write(path, json.dumps([sig, _stat(self.path)]))
        else:
            path.unlink(missing_ok=True)

    def _signature(self) -> str | None:
        """Identity of the records parts.jsonl is made of: their names and stamps (a record
        written again has a new stamp)."""
        h = hashlib.sha256()
        for i, name in enumerate(self.names):
            at = self.line_at(i)
            if at is None:
                return None
            h.update(f"{name} {at.stamp}\n".encode())
        return h.hexdigest()

    def __enter__(self) -> PartsFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.abort()  # closed already on success; on an error the old parts.jsonl stays


def _newest_generation(path: Path, stack: contextlib.ExitStack) -> tuple[Any, bytes, int] | None:
    """The first generation of the index file ``path``, to copy as it is: the file (open,
    at its rows), its header line and the size of its rows; None when there is none whole.
    Copied, not read: its rows are 44 bytes an input (44 MB at 10^6, twice over as bytes)."""
    try:
        fh = stack.enter_context(open(path, "rb"))
    except OSError:
        return None
    head = fh.readline(4096)
    try:
        size = json.loads(head)["rows"] * _ROW.size
    except (ValueError, TypeError, KeyError, OverflowError):
        return None
    if not isinstance(size, int) or size < 0 or os.fstat(fh.fileno()).st_size - fh.tell() < size:
        return None
    return fh, head, size


def _copy_bytes(src: Any, dest: Any, size: int) -> None:
    """Up to ``size`` bytes of ``src`` to ``dest``; a read that fails ends the copy early (a
    generation cut short is not whole, and its readers pass it over, as they did a missing
    one)."""
    while size > 0:
        try:
            chunk = src.read(min(size, 1 << 16))
        except OSError:
            return
        if not chunk:
            return
        dest.write(chunk)
        size -= len(chunk)


def _sorted_rows(rows: bytearray) -> Iterator[Any]:
    """``rows`` (:data:`_ROW` each) sorted by key as bytes compare (the order the index's
    readers bisect), in chunks to write. Many rows are sorted by numpy over the rows as they
    are: a Python object per row cost 100 bytes a row (100 MB at 10^6 inputs, the run's peak),
    its index of the order costs 8. Few are sorted here (numpy's import would cost more)."""
    n = len(rows) // _ROW.size
    if n < SORT_ROWS_WITH_NUMPY:
        for at in sorted(range(0, len(rows), _ROW.size), key=lambda at: rows[at:at + KEY_SIZE]):
            yield rows[at:at + _ROW.size]
        return
    import numpy as np

    # the 20-byte key as three big-endian numbers: their order is the bytes' order
    table = np.frombuffer(rows, dtype=np.dtype([("k0", ">u8"), ("k1", ">u8"), ("k2", ">u4"),
                                                ("rest", f"V{_ROW.size - KEY_SIZE}")]))
    order = np.lexsort((table["k2"], table["k1"], table["k0"]))
    step = 1 << 12  # rows a chunk: 180 KB
    for start in range(0, n, step):
        yield table[order[start:start + step]]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# sendfile's answers that mean "not between these files": a file system without it (EINVAL,
# EOPNOTSUPP), a kernel without it (ENOSYS), macOS, where it only writes to sockets (ENOTSOCK).
_NO_SENDFILE = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSOCK})


def _sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
    send = getattr(os, "sendfile", None)
    if send is None:  # Windows
        raise OSError(errno.ENOSYS, "no sendfile on this platform")
    return int(send(out_fd, in_fd, offset, count))


def _copy_range(sfd: int, fd: int, offset: int, size: int, src: str) -> int:
    """Append the line at ``offset`` in ``sfd`` (the file ``src``: a journal log, or the
    ``parts.jsonl`` in place) to ``fd``; its length, or 0 when it is not a whole line there
    (the byte before it and its last byte are newlines)."""
    if not (isinstance(offset, int) and isinstance(size, int)) or offset < 0 or size <= 0:
        return 0
    if offset and os.pread(sfd, 1, offset - 1) != b"\n":
        return 0
    return _send(sfd, fd, offset, size, src)


def _send(sfd: int, fd: int, start: int, size: int, src: str) -> int:
    if size == 0 or os.pread(sfd, 1, start + size - 1) != b"\n":
        return 0
    offset = start
    end = start + size
    while offset < end:
        try:
            sent = _sendfile(fd, sfd, offset, end - offset)
        except OSError as exc:
            if offset != start or exc.errno not in _NO_SENDFILE:
                raise  # a full disk is not "no sendfile here"
            _write_all(fd, os.pread(sfd, size, start))  # copied by hand
            return size
        if sent == 0:  # the file shrank under us
            raise OSError(errno.EIO, f"{src} changed while it was copied")
        offset += sent
    return size


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
