"""What planning a run holds per input (10^6 inputs are planned at once) and what closing its
parts.jsonl costs: bytes an input, measured with tracemalloc (numbers, not timings)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from mediaprep.batch.journal_log import append_record
from mediaprep.batch.parts_file import PartsFile, read_index
from mediaprep.batch.tasks import plan_check, plan_prep
from mediaprep.config import Config
from mediaprep.settings import make_settings
from mediaprep.tuning import SORT_ROWS_WITH_NUMPY


def test_closing_many_lines_sorts_their_index_without_an_object_a_line(tmp_path: Path) -> None:
    """parts.idx is sorted when parts.jsonl is put in place: with a Python object a row that
    was 100 bytes a line (100 MB at 10^6 inputs: the peak of a run's planning and journal)."""
    n = SORT_ROWS_WITH_NUMPY * 5
    state = tmp_path / ".mediaprep"
    names = [f"{(i * 7919) % n:040x}" for i in range(n)]  # record names: hex, not in order
    at = {}
    for i, name in enumerate(names):
        at[i] = append_record(state / "journal", None, {"name": name},
                              json.dumps({"path": f"in{i}.jpg"}).encode() + b"\n")
    dest = tmp_path / "parts.jsonl"
    with PartsFile(dest, names, at.get, lambda i: {"path": "?"}, state) as parts:
        for i in range(n):
            parts.done(i)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            parts.close()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert (peak - before) / n < 40, (peak - before) / n  # was 133
    index = read_index(state)
    assert len(index) == n
    keys = [index.keys[i] for i in range(n)]
    assert keys == sorted(keys)
    lines = dest.read_bytes()
    for i in (0, 1, n // 2, n - 1):
        offset, length, _stamp = index.get(names[i])
        assert json.loads(lines[offset:offset + length]) == {"path": f"in{i}.jpg"}


def test_a_planned_input_holds_its_names_and_little_else() -> None:
    """A task per input, held for the whole run: without slots each also held a dict."""
    n = 20_000
    srcs = [f"/photos/{i // 1000:04d}/img_{i:07d}.jpg" for i in range(n)]
    settings = make_settings(None)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tasks = plan_prep(srcs, "/out", settings)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    stems = sum(len(t.stem) + 49 for t in tasks)  # the one thing planned per input: its stem
    assert (held - stems) / n < 100, (held - stems) / n


def test_inputs_of_one_override_share_one_settings(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    srcs = [str(tmp_path / "docs" / f"p{i}.png") for i in range(50)]
    srcs += [str(tmp_path / f"q{i}.jpg") for i in range(50)]
    config = Config(path=tmp_path / "mediaprep.toml",
                    overrides=[{"paths": ["docs/**"], "max_side": 1000}])
    base = make_settings(None)
    for tasks in (plan_prep(srcs, tmp_path / "out", base, config=config),
                  plan_check(srcs, base, config=config)):
        docs = {id(t.settings) for t in tasks[:50]}
        assert len(docs) == 1 and tasks[0].settings.max_side == 1000
        assert all(t.settings is base for t in tasks[50:])


def test_a_rerun_copies_the_last_index_without_holding_it(tmp_path: Path) -> None:
    """parts.idx keeps the generation before the newest, copied as it is (a kill between the
    index and the rename of parts.jsonl leaves the old pair in place). Read whole and joined
    to its header, it cost twice its 44 bytes a line at close."""
    n = SORT_ROWS_WITH_NUMPY * 5
    state = tmp_path / ".mediaprep"
    names = [f"{(i * 7919) % n:040x}" for i in range(n)]
    at = {i: append_record(state / "journal", None, {"name": name},
                           json.dumps({"path": f"in{i}.jpg"}).encode() + b"\n")
          for i, name in enumerate(names)}
    dest = tmp_path / "parts.jsonl"
    with PartsFile(dest, names, at.get, lambda i: {"path": "?"}, state) as parts:
        for i in range(n):
            parts.done(i)
        parts.close()
    first = (state / "parts.idx").read_bytes()
    with PartsFile(dest, names, at.get, lambda i: {"path": "?"}, state) as parts:
        for i in range(n):
            parts.done(i)
        tracemalloc.start()
        try:
            parts.close()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak / n < 40, peak / n  # was 133
    index = (state / "parts.idx").read_bytes()
    assert index.endswith(first) and len(index) > len(first)
    assert read_index(state).get(names[7]) is not None
