"""Many inputs: a rerun learns that nothing changed from one index file, not one journal
record per input, and no step of a run compares every input with every other."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mediaprep.batch import prep_many
from mediaprep.batch.journal import sweep_temporaries
from mediaprep.output import new_run_id, temp_path_for, writing_for_run

N_INPUTS = 24


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(3)
    for i in range(N_INPUTS):
        px = rng.integers(0, 255, size=(24, 32, 3), dtype=np.uint8)
        Image.fromarray(px).save(src / f"p{i:02d}.png")
    return src


class _Opens:
    """Files opened below ``root`` while ``active`` (the interpreter's own "open" audit event:
    every open(), io.open and os.open raises it)."""

    def __init__(self, root: Path) -> None:
        self.root = str(root) + os.sep
        self.active = False
        self.paths: list[str] = []
        sys.addaudithook(self._hook)  # hooks cannot be removed: this one goes quiet instead

    def _hook(self, event: str, args: tuple) -> None:
        if self.active and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            p = os.fsdecode(args[0])
            if p.startswith(self.root):
                self.paths.append(p)


def _run(src: Path, out: Path):
    return prep_many([src], out, jobs=0, cache=False, html_report=False)


def test_a_rerun_opens_no_journal_record(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _run(folder, out)
    assert first.prepared_now == N_INPUTS and first.failed == 0
    journal = out / ".mediaprep" / "journal"
    opens = _Opens(journal)
    opens.active = True
    try:
        again = _run(folder, out)
    finally:
        opens.active = False
    assert again.from_journal == N_INPUTS and again.prepared_now == 0
    assert opens.paths == []  # stat calls and the index only
    assert again.lines() == first.lines()


def test_a_record_stands_only_while_its_outputs_are_as_written(folder: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _run(folder, out)
    victim = out / first.results[1].outputs[0]
    os.utime(victim, ns=(1, 1))  # changed since it was recorded: that input is prepared again
    again = _run(folder, out)
    assert again.prepared_now == 1 and again.from_journal == N_INPUTS - 1
    assert again.results[1].origin == "prepared"
    assert again.lines() == first.lines()
    # the index now says what the journal holds: a third run opens nothing again
    journal = out / ".mediaprep" / "journal"
    opens = _Opens(journal)
    opens.active = True
    try:
        third = _run(folder, out)
    finally:
        opens.active = False
    assert third.from_journal == N_INPUTS and opens.paths == []


def test_a_damaged_or_missing_index_costs_preparing_again(folder: Path,
                                                          tmp_path: Path) -> None:
    """The index is the journal once a run has finished: damaged, every input is prepared
    again (with the cache on, from the cache), to the same result."""
    out = tmp_path / "out"
    first = _run(folder, out)
    index = out / ".mediaprep" / "journal.idx"
    assert index.is_file()
    index.write_text('{"version": 2, "records": [')
    again = _run(folder, out)
    assert again.prepared_now == N_INPUTS and again.lines() == first.lines()
    assert _run(folder, out).from_journal == N_INPUTS
    index.unlink()
    again = _run(folder, out)
    assert again.prepared_now == N_INPUTS and again.lines() == first.lines()
    assert index.is_file()


class _Creations(_Opens):
    """Files created below ``root`` while ``active`` (opens that may create: O_CREAT, or a
    mode writing a new file)."""

    def _hook(self, event: str, args: tuple) -> None:
        if not (self.active and event == "open"):
            return
        path, mode, flags = args
        creates = (flags & os.O_CREAT) if isinstance(flags, int) and mode is None else (
            isinstance(mode, str) and any(c in mode for c in "wxa"))
        if creates and isinstance(path, (str, bytes, os.PathLike)):
            p = os.fsdecode(path)
            if p.startswith(self.root):
                self.paths.append(p)


def test_a_cold_run_creates_no_file_per_input_in_its_state(folder: Path,
                                                           tmp_path: Path) -> None:
    """A file (and a rename) per input cost about 1.6 ms each: the journal appends its records
    to one log per worker instead, so the state folder gets a fixed number of files."""
    out = tmp_path / "out"
    made = _Creations(out)
    made.active = True
    try:
        first = _run(folder, out)
    finally:
        made.active = False
    assert first.prepared_now == N_INPUTS
    state = [p for p in made.paths if f"{os.sep}.mediaprep{os.sep}" in p]
    assert len(state) <= 8, state  # a log, the index, parts.idx, parts.sig, runs (twice), lock
    outputs = [p for p in made.paths if p not in state]
    assert len(outputs) == N_INPUTS + 1  # each output, and parts.jsonl
    assert list((out / ".mediaprep" / "journal").iterdir()) == []  # the log, gone at the end


class _CountingPath(type(Path())):  # type: ignore[misc]
    """A folder that counts how often it is compared with another."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        type(self).compared += 1
        return super().__eq__(other)

    __hash__ = type(Path()).__hash__


def test_the_temporaries_sweep_is_linear_in_the_folders(tmp_path: Path) -> None:
    """A run names one or two folders per input; the sweep once compared each with all the
    others (7.7 s at 10,000 inputs, 25 minutes at 100,000). Counted, not timed."""
    out = tmp_path / "out"
    inside = out / "a"
    outside = tmp_path / "requests"
    inside.mkdir(parents=True)
    outside.mkdir()
    run = new_run_id()
    with writing_for_run(run):
        temps = [temp_path_for(inside / "x.jpg"), temp_path_for(outside / "r.jsonl")]
    n = 2000
    folders = [_CountingPath(out / f"d{i}" / "f") for i in range(n)]
    folders += [_CountingPath(inside), _CountingPath(outside)]
    _CountingPath.compared = 0
    assert sweep_temporaries(out, folders, [run]) == 2
    assert not any(t.exists() for t in temps)
    assert _CountingPath.compared <= 4 * len(folders)
