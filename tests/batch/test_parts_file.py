"""parts.jsonl written as inputs end, in input order, put in place atomically."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from mediaprep.batch.journal_log import LineAt, append_record
from mediaprep.batch.parts_file import PartsFile


class _Records:
    """Journal records as workers append them (journal_log), one per input."""

    def __init__(self, tmp_path: Path, n: int) -> None:
        self.state = tmp_path / ".mediaprep"
        self.journal = self.state / "journal"
        self.names = [f"r{i}" for i in range(n)]
        self.at: dict[int, LineAt] = {}
        for i in range(n):
            self.write(i, json.dumps({"path": f"in{i}.jpg", "ok": True}))

    def write(self, i: int, line: str) -> None:
        self.at[i] = append_record(self.journal, None, {"name": self.names[i]},
                                   line.encode() + b"\n")

    def parts(self, dest: Path) -> PartsFile:
        return PartsFile(dest, self.names, self.at.get, _missing, self.state)


def _missing(i: int) -> dict[str, object]:
    return {"path": f"in{i}.jpg", "ok": False, "why": "missing"}


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_lines_land_in_input_order_whatever_order_inputs_end(tmp_path: Path) -> None:
    records = _Records(tmp_path, 5)
    dest = tmp_path / "parts.jsonl"
    with records.parts(dest) as parts:
        for i in (3, 1, 0, 4):
            parts.done(i)
        # 0 and 1 go to the temporary file; 3 and 4 wait for 2; nothing is in place yet
        assert not dest.exists()
        assert len(list(tmp_path.glob(".mp-tmp-*-parts.jsonl"))) == 1
        parts.failed(2, {"path": "in2.jpg", "ok": False, "why": "timeout"})
        parts.close()
    assert [x["path"] for x in _lines(dest)] == [f"in{i}.jpg" for i in range(5)]
    assert _lines(dest)[2]["why"] == "timeout"
    assert parts.missing == 0
    assert not list(tmp_path.glob(".mp-tmp-*"))


def test_a_missing_record_becomes_a_failed_line_and_is_counted(tmp_path: Path) -> None:
    records = _Records(tmp_path, 3)
    del records.at[1]  # its record is nowhere
    dest = tmp_path / "parts.jsonl"
    with records.parts(dest) as parts:
        for i in range(3):
            parts.done(i)
        parts.close()
    assert parts.missing == 1
    assert _lines(dest)[1] == _missing(1)


def test_an_interrupted_write_leaves_the_old_file(tmp_path: Path) -> None:
    records = _Records(tmp_path, 3)
    dest = tmp_path / "parts.jsonl"
    dest.write_text("old\n")
    with pytest.raises(KeyboardInterrupt), records.parts(dest) as parts:
        parts.done(0)
        raise KeyboardInterrupt
    assert dest.read_text() == "old\n"
    assert not list(tmp_path.glob(".mp-tmp-*"))


def test_closing_before_every_input_ended_refuses(tmp_path: Path) -> None:
    records = _Records(tmp_path, 2)
    with records.parts(tmp_path / "parts.jsonl") as parts:
        parts.done(1)
        with pytest.raises(RuntimeError, match="1 inputs have not ended"):
            parts.close()
    assert not (tmp_path / "parts.jsonl").exists()


def test_unchanged_only_while_records_and_file_are_as_written(tmp_path: Path) -> None:
    records = _Records(tmp_path, 2)
    dest = tmp_path / "parts.jsonl"

    def write() -> PartsFile:
        with records.parts(dest) as parts:
            parts.done(0)
            parts.done(1)
            parts.close()
        return parts

    write()
    assert records.parts(dest).unchanged()
    records.write(1, '{"rewritten": true}')  # a record written again by a later run
    assert not records.parts(dest).unchanged()
    write()
    assert records.parts(dest).unchanged()
    dest.write_text("edited by hand\n")
    assert not records.parts(dest).unchanged()


def test_a_failed_input_means_no_signature(tmp_path: Path) -> None:
    records = _Records(tmp_path, 1)
    dest = tmp_path / "parts.jsonl"
    with records.parts(dest) as parts:
        parts.failed(0, {"path": "in0.jpg", "ok": False})
        parts.close()
    assert not records.parts(dest).unchanged()


def test_a_line_cut_short_counts_as_missing(tmp_path: Path) -> None:
    records = _Records(tmp_path, 2)
    at = records.at[0]
    records.at[0] = replace(at, size=at.size - 5)  # no newline at the end: not written whole
    records.at[1] = replace(records.at[1], size=0)
    dest = tmp_path / "parts.jsonl"
    with records.parts(dest) as parts:
        parts.done(1)
        parts.done(0)
        parts.close()
    assert parts.missing == 2
    assert _lines(dest) == [_missing(0), _missing(1)]


def test_big_lines_are_copied_whole(tmp_path: Path) -> None:
    records = _Records(tmp_path, 3)
    big = json.dumps({"path": "big.jpg", "url": "data:image/jpeg;base64," + "A" * 5_000_000})
    records.write(1, big)
    dest = tmp_path / "parts.jsonl"
    with records.parts(dest) as parts:
        for i in (2, 0, 1):
            parts.done(i)
        parts.close()
    assert dest.read_text().splitlines()[1] == big
    assert [x["path"] for x in _lines(dest)] == ["in0.jpg", "big.jpg", "in2.jpg"]


def test_no_inputs_give_an_empty_file(tmp_path: Path) -> None:
    dest = tmp_path / "parts.jsonl"
    with PartsFile(dest, [], lambda i: None, _missing, None) as parts:
        parts.close()
    assert dest.read_bytes() == b""


@pytest.mark.parametrize("how", ["EINVAL", "ENOTSOCK", "absent"])
def test_without_sendfile_lines_are_copied_by_hand(tmp_path: Path, how: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system without sendfile (EINVAL), macOS, whose sendfile only writes to sockets
    (ENOTSOCK), and a platform without it at all."""
    import errno
    import os

    def no_sendfile(*args: object) -> int:
        raise OSError(getattr(errno, how), "no sendfile to a file here")

    if how == "absent":
        monkeypatch.delattr(os, "sendfile")
    else:
        monkeypatch.setattr(os, "sendfile", no_sendfile)
    records = _Records(tmp_path, 2)
    dest = tmp_path / "parts.jsonl"
    with records.parts(dest) as parts:
        parts.done(0)
        parts.done(1)
        parts.close()
    assert [x["path"] for x in _lines(dest)] == ["in0.jpg", "in1.jpg"] and parts.missing == 0
