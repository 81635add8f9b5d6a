"""What in a ``prep`` run's DIR is mediaprep's to replace, and what is someone else's.

mediaprep replaces a name in DIR only when an earlier run recorded it as its own: the stem has
a journal record (a run prepared an input there), ``parts.jsonl`` lists the output, it is
remembered as stale (its record was dropped), or a run killed before it ended claimed the
stem. Anything else already
there (a user's ``photo.jpg``, a folder of their own named like a video's frames folder, a
``parts.jsonl`` or ``report.html`` in a folder no run has written to) is left alone:

- DIR's own files (``parts.jsonl``, ``report.html``, ``report_files/``) in a folder with no
  ``.mediaprep`` state: the run does not start (:func:`foreign_run_files`);
- an input whose output names are taken (``<stem>``, ``<stem>.<ext>``, ``<stem>_tileNN.<ext>``):
  that input is refused with ``output.not_ours`` and the others go on (:func:`foreign_outputs`).

Before its workers start, a run writes the stems it is about to fill
(``.mediaprep/claims-<run>``): a run killed between an output's rename and its journal record
leaves a claim saying that output is mediaprep's, so the rerun replaces it, as an
uninterrupted run would have.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from ..emit.sink import EXTENSION
from ..output import (
    PARTS_FILE,
    REPORT_FILE,
    STATE_DIR,
    THUMB_FOLDER,
    atomic_write,
    is_reserved_name,
    is_run_id,
)
from .journal import STALE_FILE, remembered_stale

CLAIMS_PREFIX = "claims-"  # .mediaprep/claims-<run>: record names of the stems a run fills
_EXTENSIONS = frozenset(e.casefold() for e in EXTENSION.values())
_TILE = re.compile(r"(.+)_tile\d+\Z", re.DOTALL)


def foreign_run_files(out: Path, *, report: bool, thumbs: bool) -> str | None:
    """Why the run must not start (None: it may): one of the files the run writes at DIR's top
    (``parts.jsonl``; with the report, ``report.html`` and ``report_files/``) is there already
    while DIR holds no state of an earlier run, so no run of ours made it."""
    if os.path.lexists(out / STATE_DIR):
        return None
    names = [PARTS_FILE, *([REPORT_FILE] if report else []),
             *([THUMB_FOLDER.parts[0]] if thumbs else [])]
    for name in names:
        if os.path.lexists(out / name):
            return (f"{out / name} is already there and no mediaprep run made it ({out} holds "
                    f"no {STATE_DIR} folder): mediaprep replaces only what it wrote itself. "
                    "Move it away, or choose another -o folder")
    return None


def foreign_outputs(out: Path, todo: Sequence[int], stem_of: Callable[[int], str],
                    ours: Callable[[int, str], bool]) -> dict[int, str]:
    """The inputs of ``todo`` whose output names (their stems: ``stem_of``) hold something
    ``ours`` (input, name relative to DIR) does not own, with the first such name.

    One listing a folder the stems go to; names compare case-insensitively, as the stems do
    (a case-insensitive disk would make ``Photo.JPG`` and ``photo.jpg`` one file). Nothing is
    held per input unless a folder has entries at all (not a first run into a new DIR)."""
    listed = _listings(out, {stem_of(i).rpartition("/")[0] for i in todo})
    if not listed:
        return {}
    by_stem = {s.casefold(): i for i in todo if (s := stem_of(i)).rpartition("/")[0] in listed}
    found: dict[int, str] = {}
    for path in _paths(listed):
        for i in _inputs_taking(path, by_stem):
            if i not in found and not ours(i, path):
                found[i] = path
    return found


def _listings(out: Path, folders: set[str]) -> dict[str, list[str]]:
    """The names in each of ``folders`` (relative to DIR) that has any."""
    return {f: names for f in sorted(folders) if (names := _entries(out, f))}


def _paths(listed: dict[str, list[str]]) -> Iterator[str]:
    for folder, names in listed.items():
        prefix = f"{folder}/" if folder else ""
        for name in names:
            yield prefix + name


def _inputs_taking(path: str, by_stem: dict[str, int]) -> Iterator[int]:
    """The inputs (of ``by_stem``: folded stem -> input) whose outputs could be at ``path``
    (relative to DIR)."""
    folder, slash, name = path.rpartition("/")
    for stem in _stems_of(name):
        i = by_stem.get((folder + slash + stem).casefold())
        if i is not None:
            yield i


def _entries(out: Path, folder: str) -> list[str]:
    """The names in ``DIR/folder`` (none: missing, not a folder, unreadable; the worker then
    says what stops it writing there). DIR's own names never collide with a stem."""
    try:
        with os.scandir(out / folder if folder else out) as it:
            return [e.name for e in it if folder or not is_reserved_name(e.name)]
    except OSError:
        return []


def _stems_of(name: str) -> list[str]:
    """The stems whose outputs ``name`` could be: itself (a frames folder), without an
    output's extension (``a.jpg``), without a tile's number (``a_tile01.jpg``)."""
    stems = [name]
    base, dot, ext = name.rpartition(".")
    if dot and base and ext.casefold() in _EXTENSIONS:
        stems.append(base)
        tile = _TILE.fullmatch(base)
        if tile:
            stems.append(tile.group(1))
    return stems


class Owned:
    """Whether a name in DIR that an input's outputs would take is mediaprep's: its stem has a
    journal record (``recorded``); a killed earlier run (``runs``) claimed the stem; or the
    name (or a file below it) is an output ``parts.jsonl`` lists or a remembered stale output
    (``.mediaprep/stale.json``): a damaged or older ``journal.idx`` costs preparing again, never a
    refusal. All but the first are read once, when first asked."""

    def __init__(self, state: Path, names: Sequence[str], recorded: Callable[[str], bool],
                 runs: Iterable[str]) -> None:
        self.state = state
        self.names = names  # record names, by input
        self.recorded = recorded
        self.runs = list(runs)
        self._written: set[str] | None = None
        self._claimed: set[str] | None = None

    def __call__(self, i: int, name: str) -> bool:
        return (self.recorded(self.names[i]) or self.names[i] in self.claimed()
                or name.casefold() in self.written())

    def written(self) -> set[str]:
        """Every output ``parts.jsonl`` and the stale list name, and the folders above them,
        folded."""
        if self._written is None:
            self._written = set()
            for name in (*_listed_outputs(self.state.parent / PARTS_FILE),
                         *(o.get("name") for o in remembered_stale(self.state / STALE_FILE))):
                while isinstance(name, str) and name:
                    self._written.add(name.casefold())
                    name = name.rpartition("/")[0]
        return self._written

    def claimed(self) -> set[str]:
        if self._claimed is None:
            self._claimed = set()
            for run in self.runs:
                try:
                    with open(self.state / (CLAIMS_PREFIX + run), encoding="ascii") as fh:
                        self._claimed.update(line.rstrip("\n") for line in fh)
                except (OSError, UnicodeDecodeError):
                    continue
        return self._claimed


def _listed_outputs(parts: Path) -> Iterator[object]:
    """The outputs the lines of ``parts.jsonl`` name (a damaged line names none)."""
    try:
        fh = open(parts, encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError:
        return
    with fh:
        for line in fh:
            try:
                outputs = json.loads(line).get("outputs")
            except (ValueError, AttributeError):
                continue
            if isinstance(outputs, list):
                yield from outputs


def write_claims(state: Path, run_id: str, names: Sequence[str]) -> None:
    """Say, before any worker writes, which stems (record names) run ``run_id`` fills (a run
    that fills none, a rerun that changed nothing, writes no file)."""
    if names:
        atomic_write(state / (CLAIMS_PREFIX + run_id), "".join(f"{n}\n" for n in names))


def drop_claims(state: Path) -> None:
    """Remove every run's claims (a run that ended: its records say what is ours). Only the
    names :func:`write_claims` makes, in the state folder (never a link: state_problem)."""
    try:
        names = os.listdir(state)
    except OSError:
        return
    for name in names:
        if name.startswith(CLAIMS_PREFIX) and is_run_id(name[len(CLAIMS_PREFIX):]):
            try:
                os.unlink(state / name)
            except OSError:
                continue
