"""The journal's index at scale: what the parent holds per record is small (names and offsets,
not parsed records), a record is read from its own row when asked for, and a row or a file that
is not as this version writes it costs only preparing again."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mediaprep.batch import prep_many
from mediaprep.batch.journal import record_name
from mediaprep.batch.journal_index import JournalIndex
from mediaprep.batch.journal_log import JOURNAL_FOLDER, append_record, close_log
from mediaprep.batch.parts_file import PartsFile, read_index

N_INPUTS = 12
N_RECORDS = 20_000


def _meta(i: int) -> dict:
    """A record's metadata as a worker writes it (journal._record_meta's keys, name first)."""
    stem = f"photos/{i // 1000:04d}/img_{i:07d}"
    return {"name": record_name(stem), "jkey": "ab" * 32, "stem": stem,
            "display": f"/photos/{stem}.jpg", "out_dir": "/out",
            "outputs": [{"name": stem + ".jpg", "size": 70000, "mtime_ns": 1796635094188402430}],
            "thumbs": [{"name": f"report_files/{i:032d}.jpg", "size": 631}],
            "done": {"ok": True, "fixed": True, "status": f"{stem}.jpg: fixed: rotated (as its "
                     "EXIF orientation says); re-encoded to JPEG 3000x4000, quality 92, 1.2 MiB",
                     "changes": ["rotated", "re-encoded"], "warnings": [],
                     "codes": ["image.orientation"], "outputs": [stem + ".jpg"],
                     "bytes_in": 90000, "bytes_out": 70000}}


def _line(i: int) -> bytes:
    return (json.dumps({"path": f"in{i}.jpg", "ok": True}) + "\n").encode()


def _journal(state: Path, n: int) -> list[str]:
    """An index of ``n`` records written as a run writes it (the workers' logs, then the
    index); their names."""
    index = JournalIndex(state)
    names = []
    for i in range(n):
        meta = _meta(i)
        names.append(meta["name"])
        index.add(meta, append_record(state / JOURNAL_FOLDER, None, meta, _line(i)))
    close_log()
    index.write(names)
    return names


def test_reading_the_index_holds_bytes_not_objects_per_record(tmp_path: Path) -> None:
    """At 10^6 inputs, records held as Python objects took 3.3 GB to read: the index keeps a
    name and an offset a record (about 30 bytes), and parses a record only when asked.
    Counted with tracemalloc (allocations, not time)."""
    state = tmp_path / ".mediaprep"
    names = _journal(state, N_RECORDS)
    for log in (state / JOURNAL_FOLDER).iterdir():
        log.unlink()  # as prep does once the index holds the records
    tracemalloc.start()
    try:
        index = JournalIndex(state)
        held, peak = tracemalloc.get_traced_memory()
        rec = index.get(names[12_345])
    finally:
        tracemalloc.stop()
    assert held < 64 * N_RECORDS and peak < 100 * N_RECORDS, (held, peak)
    assert rec is not None and rec.stem == _meta(12_345)["stem"] and rec.line_size == len(
        _line(12_345))
    assert index.get(record_name("not an input")) is None
    assert [index.get(n).name for n in names[:50]] == names[:50]  # type: ignore[union-attr]


def test_a_later_record_wins_whichever_log_or_index_holds_it(tmp_path: Path) -> None:
    """A killed run's log holds records newer than the index for some names and older ones
    for none: the newest stamp is the record, the index written next holds it."""
    state = tmp_path / ".mediaprep"
    names = _journal(state, 30)
    newer = {**_meta(7), "jkey": "cd" * 32}
    at = append_record(state / JOURNAL_FOLDER, None, newer, _line(7))
    close_log()
    index = JournalIndex(state)  # reads the index and the log left behind
    assert index.get(names[7]).jkey == "cd" * 32  # type: ignore[union-attr]
    assert index.line_at(names[7]) == at
    assert index.get(names[8]).jkey == "ab" * 32  # type: ignore[union-attr]
    index.write(names)
    again = JournalIndex(state)
    assert again.get(names[7]).jkey == "cd" * 32  # type: ignore[union-attr]
    assert [r.name for r in again.others(names[:28])] == sorted(names[28:])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(5)
    for i in range(N_INPUTS):
        Image.fromarray(rng.integers(0, 255, size=(20, 28, 3), dtype=np.uint8)).save(
            src / f"p{i:02d}.png")
    return src


def _run(src: Path, out: Path):
    return prep_many([src], out, jobs=0, cache=False, html_report=False)


def test_a_damaged_row_costs_only_its_input(folder: Path, tmp_path: Path) -> None:
    """Rows are parsed when asked for: a row damaged inside (its name intact) is that input
    prepared again, the others are hits; the index written then is whole again."""
    out = tmp_path / "out"
    first = _run(folder, out)
    path = out / ".mediaprep" / "journal.idx"
    rows = path.read_bytes().split(b"\n")
    rows[3] = rows[3][:60] + b"\x00garbage" + rows[3][68:]
    path.write_bytes(b"\n".join(rows))
    again = _run(folder, out)
    assert again.prepared_now == 1 and again.from_journal == N_INPUTS - 1
    assert again.lines() == first.lines()
    assert _run(folder, out).from_journal == N_INPUTS


def test_a_row_damaged_with_a_later_stamp_costs_only_its_input(folder: Path,
                                                                tmp_path: Path) -> None:
    """A row whose stamp reads as later than any record written now, damaged elsewhere, and a
    row whose number is too large for the index's columns: each costs its input prepared
    again, and the record written now is its line (a stamp read from a row that is not whole
    must not outrank it)."""
    out = tmp_path / "out"
    first = _run(folder, out)
    path = out / ".mediaprep" / "journal.idx"
    head, *rows = path.read_bytes().splitlines(keepends=True)
    fields = rows[3].split(b"\t")
    fields[1] = b"8" + b"9" * 18  # a stamp from the far future
    fields[5] = b"x" + fields[5][1:]  # and flags prep never writes
    rows[3] = b"\t".join(fields)
    fields = rows[6].split(b"\t")
    fields[2] = b"9" * 40  # a line size no column holds
    rows[6] = b"\t".join(fields)
    path.write_bytes(head + b"".join(rows))
    again = _run(folder, out)
    assert again.prepared_now == 2 and again.from_journal == N_INPUTS - 2 and again.failed == 0
    assert again.lines() == first.lines()
    assert _run(folder, out).from_journal == N_INPUTS


@pytest.mark.parametrize("damage", ["out of order", "torn", "version 3"])
def test_an_index_not_as_written_is_not_read(folder: Path, tmp_path: Path, damage: str) -> None:
    """Rows out of order (a binary search would miss some), a torn last row or the index of
    mediaprep before this format (whose keys name other code, so never a hit): every input is
    prepared again, to the same result."""
    out = tmp_path / "out"
    first = _run(folder, out)
    path = out / ".mediaprep" / "journal.idx"
    head, *rows = path.read_bytes().splitlines(keepends=True)
    if damage == "out of order":
        rows[2], rows[5] = rows[5], rows[2]
        path.write_bytes(head + b"".join(rows))
    elif damage == "torn":
        path.write_bytes(head + b"".join(rows)[:-10])
    else:  # version 3: a JSON metadata line a record, as the worker wrote it to its log
        fields = [r.split(b"\t") for r in rows]
        old = [json.dumps({"name": f[0].decode(), "jkey": f[3].decode(), "stem": f[8].decode(),
                           "stamp": int(f[1]), "line": {"size": int(f[2])}}) for f in fields]
        path.write_text('{"version":3}\n' + "".join(o + "\n" for o in old))
    again = _run(folder, out)
    assert again.prepared_now == N_INPUTS and again.lines() == first.lines()
    assert _run(folder, out).from_journal == N_INPUTS


def test_the_line_index_holds_bytes_not_objects_per_line(tmp_path: Path) -> None:
    """parts.idx says where each record's line is in parts.jsonl: read as one row of 44 bytes
    a line (a dictionary of lists took about 300 bytes a line: 300 MB at 10^6)."""
    state = tmp_path / ".mediaprep"
    names = _journal(state, N_RECORDS)
    index = JournalIndex(state)
    with PartsFile(tmp_path / "parts.jsonl", names, lambda i: index.line_at(names[i]),
                   lambda i: {"path": "missing"}, state) as parts:
        for i in range(N_RECORDS):
            parts.done(i)
        parts.close()
    tracemalloc.start()
    try:
        lines = read_index(state)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 48 * N_RECORDS and peak < 96 * N_RECORDS, (held, peak)
    where = lines.get(names[777])
    assert where is not None
    with open(tmp_path / "parts.jsonl", "rb") as fh:
        fh.seek(where[0])
        assert fh.read(where[1]) == _line(777)
    assert lines.get(record_name("not an input")) is None


def test_the_parts_file_before_the_last_is_still_found(folder: Path, tmp_path: Path) -> None:
    """A run killed between writing parts.idx and renaming its parts.jsonl into place leaves
    the previous parts.jsonl: the index keeps that file's generation too, and the records whose
    lines it holds are hits."""
    out = tmp_path / "out"
    first = _run(folder, out)
    kept = tmp_path / "parts-before.jsonl"
    os.link(out / "parts.jsonl", kept)  # the same inode, size and time as the file was
    os.utime(out / first.results[4].outputs[0], ns=(1, 1))  # that input is prepared again
    assert _run(folder, out).prepared_now == 1
    os.replace(kept, out / "parts.jsonl")  # as if the second run had been killed before it
    again = _run(folder, out)
    assert again.from_journal == N_INPUTS - 1 and again.prepared_now == 1
    assert again.lines() == first.lines()
