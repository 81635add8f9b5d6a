"""``DIR/parts.jsonl`` of a ``prep`` run: one line per input, in input order, written as the
run goes and put in place in one atomic step.

    with PartsFile(out / "parts.jsonl", records, failed_line) as parts:
        ...                     # as each input ends (any order):
        parts.done(index)       # its line is its journal record's, or
        parts.failed(index, line)
    parts.missing               # inputs whose record was missing (they count as failed)

Why stream: with data URLs the file is hundreds of megabytes. Copying it after the last input
made the parent's serial tail a fifth of a two-worker run; copied while workers run (the
parent otherwise sleeps), only the lines after the last one in order are left at the end.
Lines are copied as bytes from the journal's line files, never held all at once. The file is
a temporary until :meth:`PartsFile.close` renames it over ``parts.jsonl``: a killed run leaves
the previous ``parts.jsonl`` (or none), never half of one. No fsync: as for every output, the
rename is the promise against a killed process, and a rerun rewrites the file from the journal.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["PartsFile"]

SIGNATURE_FILE = "parts.sig"  # beside the journal: which records the current parts.jsonl holds


class PartsFile:
    """Writes ``path`` from journal records (``records[i]``: input i's record) as inputs end.

    ``failed_line(display_name, why)`` makes the line of an input whose record is missing.
    """

    def __init__(self, path: Path, records: Sequence[Path],
                 read_line: Callable[[Path], bytes | None],
                 missing_line: Callable[[int], dict[str, Any]]) -> None:
        self.path = path
        self.records = records
        self.read_line = read_line
        self.missing_line = missing_line
        self.missing = 0
        self._ready: dict[int, bytes | None] = {}  # ended, not yet written: None = from record
        self._next = 0  # index of the next line to write
        self._tmp: str | None = None
        self._fh: IO[bytes] | None = None
        self._any_failed = False
        self._sig_path = records[0].parent.parent / SIGNATURE_FILE if records else None

    # -- the run

    def unchanged(self) -> bool:
        """Whether ``parts.jsonl`` already holds exactly these records' lines (a rerun where
        every input was a journal hit): then :meth:`skip` instead of copying every line."""
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
        self._ready[index] = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        self._flush()

    def _flush(self) -> None:
        fh = self._open()
        while self._next in self._ready:
            i = self._next
            data = self._ready.pop(i)
            if data is None:
                data = self.read_line(self.records[i])
            if data is None:
                self.missing += 1
                self._any_failed = True
                data = (json.dumps(self.missing_line(i), ensure_ascii=False) + "\n").encode()
            fh.write(data)
            self._next += 1

    def _open(self) -> IO[bytes]:
        if self._fh is None:
            fd, self._tmp = tempfile.mkstemp(prefix=".parts.jsonl.", suffix=".part",
                                             dir=self.path.parent)
            self._fh = os.fdopen(fd, "wb")
        return self._fh

    # -- the end

    def close(self) -> None:
        """Put the file in place; every index must have ended."""
        if self._next != len(self.records):
            left = len(self.records) - self._next - len(self._ready)
            raise RuntimeError(f"parts.jsonl: {left} inputs have not ended")
        fh = self._open()  # no inputs at all: an empty parts.jsonl
        fh.close()
        assert self._tmp is not None
        os.chmod(self._tmp, 0o644)
        os.replace(self._tmp, self.path)
        self._tmp = None
        self._write_signature()

    def skip(self) -> None:
        """Leave ``parts.jsonl`` as it is (see :meth:`unchanged`)."""
        self.abort()

    def abort(self) -> None:
        """Drop the temporary file; ``parts.jsonl`` stays as it was."""
        if self._fh is not None:
            self._fh.close()
        if self._tmp is not None:
            Path(self._tmp).unlink(missing_ok=True)
            self._tmp = None

    def _write_signature(self) -> None:
        if self._sig_path is None:
            return
        sig = None if self._any_failed else _signature(self.records)
        if sig is not None:
            self._sig_path.write_text(json.dumps([sig, _stat(self.path)]))
        else:
            self._sig_path.unlink(missing_ok=True)

    def __enter__(self) -> PartsFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.abort()  # closed already on success; on an error the old parts.jsonl stays


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
