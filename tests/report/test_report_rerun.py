"""A rerun that changed nothing the report shows keeps ``report.html`` as it is, without reading
``parts.jsonl`` for it; anything changed or doubtful remakes it, the same page a fresh run makes
(issue 28, item 4). Through the CLI."""

from __future__ import annotations

import base64
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.report.test_html import EXAMPLES, NAMES, run

_WATCHED: list[str] = []  # parts.jsonl paths whose opens are counted
_OPENS: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _WATCHED and isinstance(args[0], str | bytes | os.PathLike):
        path = os.fsdecode(args[0])
        if path in _WATCHED:
            _OPENS.append(path)


sys.addaudithook(_audit)  # hooks cannot be removed: this one counts only while armed


def _prep(out: Path, *extra: object, sources: list[Path] | None = None) -> str:
    res = run("prep", *(sources or [EXAMPLES]), "-o", out, "--no-cache", *extra)
    assert res.exit_code == 0, res.output
    return res.output


def _identities(out: Path, page: Path) -> dict[str, tuple[int, int, int]]:
    files = [page, *sorted((out / "report_files").iterdir())]
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.stat().st_size) for p in files}


def _fresh_page(tmp_path: Path, *extra: object, sources: list[Path] | None = None) -> bytes:
    fresh = tmp_path / "fresh"
    _prep(fresh, "-q", *extra, sources=sources)
    return (fresh / "report.html").read_bytes()


def test_a_rerun_that_changed_nothing_keeps_the_page_and_reads_no_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _prep(out, "-q")
    before = _identities(out, out / "report.html")
    _WATCHED[:] = [str(out / "parts.jsonl")]
    try:
        said = _prep(out)
    finally:
        _WATCHED.clear()
    assert _OPENS == []  # neither the report nor the run opened parts.jsonl
    assert _identities(out, out / "report.html") == before  # not rewritten: same inodes, times
    assert f"report: {out / 'report.html'}" in said
    assert (out / "report.html").read_bytes() == _fresh_page(tmp_path)  # and still right


def _delete_a_thumbnail(out: Path) -> None:
    next(p for p in (out / "report_files").iterdir() if p.suffix == ".jpg").unlink()


def _edit_the_page(out: Path) -> None:
    with open(out / "report.html", "ab") as fh:
        fh.write(b"<!-- edited -->")


def _delete_the_page(out: Path) -> None:
    (out / "report.html").unlink()


def _delete_the_folder(out: Path) -> None:
    shutil.rmtree(out / "report_files")


@pytest.mark.parametrize("change", [_delete_a_thumbnail, _edit_the_page, _delete_the_page,
                                    _delete_the_folder])
def test_a_touched_report_is_made_again_as_a_fresh_run_makes_it(tmp_path: Path,
                                                                change: Any) -> None:
    out = tmp_path / "out"
    _prep(out, "-q")
    _prep(out, "-q")  # kept: the case above
    change(out)
    said = _prep(out)
    assert f"report: {out / 'report.html'}" in said
    assert (out / "report.html").read_bytes() == _fresh_page(tmp_path)
    assert all(p.is_file() for p in (out / "report_files").iterdir())


def test_a_thumbnail_edited_in_place_is_shown_again(tmp_path: Path) -> None:
    """Same inode, same size, same name: the page is still made again, and carries the
    thumbnail as it is now (the page trusts the thumbnails it finds, as a cold report does)."""
    out = tmp_path / "out"
    _prep(out, "-q")
    thumb = next(p for p in (out / "report_files").iterdir() if p.suffix == ".jpg")
    data = bytearray(thumb.read_bytes())
    data[-3] ^= 0xFF
    with open(thumb, "r+b") as fh:
        fh.write(data)
    _prep(out, "-q")
    assert base64.b64encode(bytes(data)) in (out / "report.html").read_bytes()


def test_other_sources_remake_the_page(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _prep(out, "-q")
    fewer = [EXAMPLES / n for n in NAMES if n != "icon.gif"]
    _prep(out, "-q", sources=fewer)
    page = (out / "report.html").read_bytes()
    assert b"icon.gif" not in page
    assert page == _fresh_page(tmp_path, sources=fewer)


def test_another_report_path_gets_its_page(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _prep(out, "-q")
    elsewhere = tmp_path / "site" / "prep.html"
    elsewhere.parent.mkdir()
    said = _prep(out, "--report", elsewhere)
    assert f"report: {elsewhere}" in said
    fresh = tmp_path / "fresh"
    _prep(fresh, "-q", "--report", tmp_path / "site" / "fresh.html")
    assert elsewhere.read_bytes() == (tmp_path / "site" / "fresh.html").read_bytes()
    before = _identities(out, elsewhere)
    _prep(out, "-q", "--report", elsewhere)  # the same again: kept
    assert _identities(out, elsewhere) == before
    _prep(out, "-q")  # back to DIR/report.html: made again, not the other page's record
    assert (out / "report.html").read_bytes() == _fresh_page(tmp_path / "again")


def test_a_page_that_could_not_be_written_is_made_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _prep(out, "-q")
    page = out / "report.html"
    page.unlink()
    page.mkdir()  # the write fails: a warning, the run goes on
    res = run("prep", EXAMPLES, "-o", out, "--no-cache", "-q")
    assert res.exit_code == 0 and "report.html not written" in res.output
    page.rmdir()
    _prep(out, "-q")
    assert page.read_bytes() == _fresh_page(tmp_path)


def test_a_link_where_the_record_goes_is_replaced_not_written_through(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _prep(out, "-q")
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    record = out / ".mediaprep" / "report.sig"
    record.unlink()
    record.symlink_to(mine)
    (out / "report.html").unlink()  # the page is made again, and its record written
    _prep(out, "-q")
    assert mine.read_text() == "mine" and not record.is_symlink()
    assert (out / "report.html").read_bytes() == _fresh_page(tmp_path)
