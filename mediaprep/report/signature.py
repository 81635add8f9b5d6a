"""Whether ``report.html`` is still the page this ``prep`` run would make, so a rerun that
changed nothing leaves it as it is instead of reading every ``parts.jsonl`` line and every
thumbnail again (issue 28: 20,000 finished inputs rerun in seconds, the report on).

When a page is complete, ``DIR/.mediaprep/report.sig`` records two hashes:

- what the page was made from: this code (the package's version and the fingerprint of its
  code, which holds the preview version and the page's format; the record's own version), the
  page's path, the settings, the sources in order, and ``parts.jsonl``'s identity (size, mtime,
  ctime, inode: every write of it is a rename of a new file, and any edit moves its ctime);
- the files the page is: the page's and the ``report_files/`` folder's identities and those of
  every entry in the folder (thumbnails, row records, chunk files).

The next run keeps the page only when both hashes match: anything else (a thumbnail deleted, the
page edited, another ``--report`` path, other sources, new code, an unreadable record) remakes
it. The record is removed before a page is remade and written only once it is complete, so a run
stopped mid-report leaves none.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..output import PARTS_FILE, STATE_DIR, THUMB_FOLDER, atomic_write

SIGNATURE_FILE = "report.sig"  # in DIR/.mediaprep: what report.html was made from, and is
SIGNATURE_VERSION = 1  # raise when the record's meaning changes


class ReportSignature:
    """The report of the ``prep`` run in ``out``, for ``sources`` and ``settings``, written to
    ``page``: :meth:`intact` says whether the page there is still it; :meth:`record` notes a
    page just made; :meth:`forget` drops the note before the page is remade."""

    def __init__(self, out: Path, sources: Sequence[str] | None, settings: Any,
                 page: Path) -> None:
        self.out, self.page = out, page
        self.folder = out / THUMB_FOLDER
        self.file = out / STATE_DIR / SIGNATURE_FILE
        self.made_from = _made_from(out, sources, settings, page)

    def intact(self) -> bool:
        """Whether the page is the one recorded, made from the same things, its files as
        they were left (False whenever in doubt)."""
        if self.made_from is None:
            return False
        try:
            recorded = json.loads(self.file.read_bytes())
        except (OSError, ValueError):
            return False
        return recorded == [SIGNATURE_VERSION, self.made_from, _files_state(self.page,
                                                                           self.folder)]

    def forget(self) -> None:
        try:
            self.file.unlink(missing_ok=True)
        except OSError:
            pass  # not writable: record() cannot write one either, and intact() needs one

    def record(self) -> None:
        """Note the page just made (called only once it is complete). The run's state folder
        must exist (the run made it): no note is written anywhere else."""
        if self.made_from is None or not self.file.parent.is_dir():
            return
        try:
            atomic_write(self.file, json.dumps(
                [SIGNATURE_VERSION, self.made_from, _files_state(self.page, self.folder)]))
        except OSError:
            self.forget()  # no note: the next run remakes the page, as without this


def _made_from(out: Path, sources: Sequence[str] | None, settings: Any,
               page: Path) -> str | None:
    """A hash of what the page is made from (None: parts.jsonl is not there)."""
    from ..batch.cache import package_version  # the code's fingerprint: PREVIEW_VERSION too

    parts = _identity(out / PARTS_FILE)
    if parts is None:
        return None
    try:
        code = package_version()
    except OSError:  # the package's files unreadable: no record, the page is made again
        return None
    h = hashlib.sha256(json.dumps(
        [SIGNATURE_VERSION, code, os.path.abspath(page), parts,
         repr(settings), sources is None]).encode())
    for source in sources or ():
        h.update(str(source).encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def _files_state(page: Path, folder: Path) -> str:
    """A hash of the identities of the page, the thumbnail folder and each entry in it."""
    h = hashlib.sha256(json.dumps([_identity(page), _identity(folder)]).encode())
    try:
        with os.scandir(folder) as entries:
            names = sorted((e.name, _entry_identity(e)) for e in entries)
    except OSError:
        names = []
    h.update("".join(f"{name}\0{ident}\n" for name, ident in names).encode(
        "utf-8", "surrogateescape"))
    return h.hexdigest()


def _entry_identity(entry: os.DirEntry[str]) -> list[int] | None:
    try:
        return _fields(entry.stat(follow_symlinks=False))
    except OSError:
        return None


def _identity(path: Path) -> list[int] | None:
    try:
        return _fields(os.lstat(path))
    except OSError:
        return None


def _fields(st: os.stat_result) -> list[int]:
    return [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
