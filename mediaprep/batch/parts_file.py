"""``DIR/parts.jsonl`` of a ``prep`` run: one line per input, in input order, written as the
run goes and put in place in one atomic step.

    with PartsFile(out / "parts.jsonl", records, line_file, missing_line) as parts:
        ...                     # as each input ends (any order):
        parts.done(index)       # its line is its journal record's, or
        parts.failed(index, line)
    parts.missing               # inputs whose record was missing (they count as failed)

Why stream: with data URLs the file is hundreds of megabytes. Copying it after the last input
made the parent's serial tail a fifth of a two-worker run; copied while workers run (the
parent otherwise sleeps), only the lines after the last one in order are left at the end.
Lines are copied from the journal's line files by the kernel (``sendfile``: a third of the
CPU of reading and writing them here), never held in memory. The file is
a temporary until :meth:`PartsFile.close` renames it over ``parts.jsonl``: a killed run leaves
the previous ``parts.jsonl`` (or none), never half of one. No fsync: as for every output, the
rename is the promise against a killed process, and a rerun rewrites the file from the journal.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from ..output import TempFile, atomic_write, json_line

__all__ = ["PartsFile"]

SIGNATURE_FILE = "parts.sig"  # beside the journal: which records the current parts.jsonl holds


class PartsFile:
    """Writes ``path`` from journal records (``records[i]``: input i's record) as inputs end.

    ``line_file(record)`` is the file holding a record's line (UTF-8, one newline, at the end);
    ``missing_line(i)`` makes the line of input i when that file is missing or incomplete.
    """

    def __init__(self, path: Path, records: Sequence[Path],
                 line_file: Callable[[Path], Path],
                 missing_line: Callable[[int], dict[str, Any]]) -> None:
        self.path = path
        self.records = records
        self.line_file = line_file
        self.missing_line = missing_line
        self.missing = 0
        self._ready: dict[int, bytes | None] = {}  # ended, not yet written: None = from record
        self._next = 0  # index of the next line to write
        self._tmp: TempFile | None = None
        self._any_failed = False
        self._sig_path = records[0].parent.parent / SIGNATURE_FILE if records else None

    # -- the run

    def unchanged(self) -> bool:
        """Whether ``parts.jsonl`` already holds exactly these records' lines (a rerun where
        every input was a journal hit): then the run need not copy every line, and leaves without
        :meth:`close` (the context's exit drops the temporary, if any)."""
        sig = _signature(self.records)
        return (sig is not None and self._sig_path is not None
                and _read_json(self._sig_path) == [sig, _stat(self.path)])

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
            i = self._next
            data = self._ready.pop(i)
            if data is not None:
                _write_all(fd, data)
            elif not _copy_line(self.line_file(self.records[i]), fd):
                self.missing += 1
                self._any_failed = True
                line = json_line(self.missing_line(i)) + "\n"
                _write_all(fd, line.encode("utf-8"))
            self._next += 1

    def _open(self) -> int:
        if self._tmp is None:  # output.TempFile: the one temp-then-rename helper
            self._tmp = TempFile(self.path)
        return self._tmp.fd

    # -- the end

    def close(self) -> None:
        """Put the file in place; every index must have ended."""
        if self._next != len(self.records):
            left = len(self.records) - self._next - len(self._ready)
            raise RuntimeError(f"parts.jsonl: {left} inputs have not ended")
        self._open()  # no inputs at all: an empty parts.jsonl
        assert self._tmp is not None
        tmp, self._tmp = self._tmp, None
        tmp.commit()
        self._write_signature()

    def abort(self) -> None:
        """Drop the temporary file; ``parts.jsonl`` stays as it was."""
        if self._tmp is not None:
            tmp, self._tmp = self._tmp, None
            tmp.discard()

    def _write_signature(self) -> None:
        if self._sig_path is None:
            return
        sig = None if self._any_failed else _signature(self.records)
        if sig is not None:
            atomic_write(self._sig_path, json.dumps([sig, _stat(self.path)]))
        else:
            self._sig_path.unlink(missing_ok=True)

    def __enter__(self) -> PartsFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.abort()  # closed already on success; on an error the old parts.jsonl stays


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


def _copy_line(src: Path, fd: int) -> bool:
    """Append the line in ``src`` to ``fd``; False (nothing written) when it is missing or not
    a whole line (a record's line file is written whole, by rename: this is a damaged one)."""
    try:
        sfd = os.open(src, os.O_RDONLY)
    except OSError:
        return False
    try:
        size = os.fstat(sfd).st_size
        if size == 0 or os.pread(sfd, 1, size - 1) != b"\n":
            return False
        offset = 0
        while offset < size:
            try:
                sent = _sendfile(fd, sfd, offset, size - offset)
            except OSError as exc:
                if offset or exc.errno not in _NO_SENDFILE:
                    raise  # a full disk is not "no sendfile here"
                _write_all(fd, os.pread(sfd, size, 0))  # copied by hand
                return True
            if sent == 0:  # the file shrank under us
                raise OSError(errno.EIO, f"{src} changed while it was copied")
            offset += sent
        return True
    finally:
        os.close(sfd)


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _signature(records: Sequence[Path]) -> str | None:
    """Identity of the records parts.jsonl is made of: a record rewritten changes its stat."""
    h = hashlib.sha256()
    for r in records:
        st = _stat(r)
        if st is None:
            return None
        h.update(f"{r.name} {st}\n".encode())
    return h.hexdigest()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
