"""Every journal record of an output folder, in memory: read from one file
(``DIR/.mediaprep/journal.idx``) and the logs of runs that did not finish, added to as inputs
end, written back once at the end of a run.

Why one file: a rerun over 10^5 finished inputs must not open and parse 10^5 record files to
learn that nothing changed; with the index a hit costs stat calls and a dictionary lookup.
Why compact rows (:class:`Record`, a list in the file): a record's metadata as a JSON object
costs about 3.7 KB of Python objects, a row 2 KB (500 MB against 220 MB at 10^5 inputs).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..output import PARTS_FILE, atomic_writer
from .journal_log import JOURNAL_FOLDER, LineAt, read_logs

__all__ = ["JOURNAL_INDEX_FILE", "JournalIndex", "Record", "paused_gc"]

JOURNAL_INDEX_FILE = "journal.idx"
_VERSION = 2
_DONE = ("ok", "fixed", "status", "changes", "warnings", "codes", "outputs", "bytes_in",
         "bytes_out")  # a record's "done" object, as a row holds it


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
    """What a rerun needs of a journal record (its row in ``journal.idx``)."""

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
        """The row of a record's metadata as the worker wrote it (journal._record_meta)."""
        done = meta["done"]
        return cls(meta["name"], meta["stamp"], meta.get("jkey"), meta["stem"],
                   [[o["name"], o["size"], o["mtime_ns"]] for o in meta["outputs"]],
                   [[t["name"], t["size"]] for t in meta.get("thumbs") or []],
                   meta["line"]["size"], [done.get(k) for k in _DONE],
                   meta.get("valid_until"))

    def row(self) -> list[Any]:
        return [self.name, self.stamp, self.jkey, self.stem, self.outputs, self.thumbs,
                self.line_size, self.done, self.valid_until]

    def done_fields(self) -> dict[str, Any]:
        return dict(zip(_DONE, self.done, strict=True))

    def output_stats(self) -> list[dict[str, Any]]:
        return [{"name": n, "size": s, "mtime_ns": m} for n, s, m in self.outputs]


class JournalIndex:
    """The records of the journal in ``state`` (DIR/.mediaprep), by name, and where their lines
    are: in a log (written since the last finished run), or in ``parts.jsonl`` (found through
    ``parts.idx``, by the record's stamp)."""

    def __init__(self, state: str | os.PathLike[str]) -> None:
        self.state = Path(state)
        self.path = self.state / JOURNAL_INDEX_FILE
        self.records: dict[str, Record] = {}
        self._in_log: dict[str, LineAt] = {}
        self._logs: dict[str, bool] = {}
        self._parts: dict[str, list[int]] | None = None
        self._changed = False
        self._read()
        for meta, at in read_logs(self.state / JOURNAL_FOLDER):  # runs killed before their end
            self.add(meta, at)

    def _read(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as fh, paused_gc():
                data = json.load(fh)
        except (OSError, ValueError):
            return
        if not (isinstance(data, dict) and data.get("version") == _VERSION
                and isinstance(data.get("records"), list)):
            return
        with paused_gc():
            for row in data["records"]:
                try:
                    rec = Record(*row)
                except TypeError:
                    continue  # not a row this version writes: that input is prepared again
                self.records[rec.name] = rec

    def get(self, name: str) -> Record | None:
        return self.records.get(name)

    def add(self, meta: dict[str, Any], at: LineAt | None) -> None:
        """A record written now (or found in a log); later stamps win."""
        try:
            rec = Record.of_meta(meta)
        except (KeyError, TypeError):
            return
        old = self.records.get(rec.name)
        if old is not None and old.stamp > rec.stamp:
            return
        self.records[rec.name] = rec
        if at is not None:
            self._in_log[rec.name] = at
        self._changed = True

    def parts_lines(self) -> dict[str, list[int]]:
        """Where each record's line is in ``parts.jsonl`` (parts_file.read_index), read once."""
        if self._parts is None:
            from .parts_file import read_index

            self._parts = read_index(self.state)
        return self._parts

    def line_at(self, name: str) -> LineAt | None:
        """Where the record's line is (None: nowhere whole)."""
        rec = self.records.get(name)
        if rec is None:
            return None
        at = self._in_log.get(name)
        if at is not None and at.stamp == rec.stamp and self._log_exists(at.path):
            return at
        where = self.parts_lines().get(name)
        if (isinstance(where, list) and len(where) == 3
                and [where[1], where[2]] == [rec.line_size, rec.stamp]):
            return LineAt(str(self.state.parent / PARTS_FILE), where[0], where[1], rec.stamp)
        return None

    def _log_exists(self, path: str) -> bool:
        """Whether a log is there, looked at once per log (it holds thousands of lines)."""
        found = self._logs.get(path)
        if found is None:
            found = self._logs[path] = os.path.exists(path)
        return found

    def others(self, names: Iterable[str]) -> list[Record]:
        """The records not named in ``names`` (inputs the run no longer has)."""
        keep = set(names)
        return [r for n, r in self.records.items() if n not in keep]

    def write(self, names: Iterable[str]) -> None:
        """Keep only the records named (this run's inputs, in input order) and write the
        index; not rewritten when nothing changed (a rerun where every input was a hit)."""
        fresh = {n: self.records[n] for n in names if n in self.records}
        if not self._changed and fresh.keys() == self.records.keys():
            return
        with atomic_writer(self.path) as fh:  # a row at a time: no 10^5-row string in memory
            fh.write(f'{{"version":{_VERSION},"records":[')
            for i, rec in enumerate(fresh.values()):
                fh.write(("," if i else "") + json.dumps(rec.row(), separators=(",", ":"),
                                                         ensure_ascii=True))
            fh.write("]}\n")
        self.records = fresh
        self._in_log.clear()
        self._logs.clear()
        self._changed = False
