"""A cold prep writes a row record only where the report would otherwise decode again (issue 28
item 4: a cold run's files per input): a video's row keeps one, an image's does not, and the
page is the same either way. Through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

from mediaprep.report.html import write_prep_report
from tests.report.small_run import mixed_inputs, prep_small


def _inputs(folder: Path) -> Path:
    return mixed_inputs(folder, [(48, 64)] * 3, seed=9)


_prep = prep_small


def _linked_page(out: Path, page: Path) -> list[str]:
    """The page with its pictures linked, and the picture files it names."""
    write_prep_report(out, page=page, inline_max=0)
    srcs = re.findall(r'<img [^>]*src="([^"]+)"', page.read_text())
    assert srcs and all((page.parent / s).is_file() for s in srcs)
    return srcs


def test_only_a_video_row_keeps_a_record_and_the_page_is_the_same(tmp_path: Path) -> None:
    src, out = _inputs(tmp_path / "in"), tmp_path / "out"
    _prep(src, out)
    records = sorted((out / "report_files").glob("*.row.json"))
    assert len(records) == 1  # the clip's: its strip would be decoded again
    assert '"strip"' in records[0].read_text() and "fps" in records[0].read_text()
    page = (out / "report.html").read_bytes()
    assert page.count(b"<article") == 5 and b"no preview" not in page
    linked = _linked_page(out, tmp_path / "linked.html")
    assert len(set(linked)) >= 5

    # made again from the files alone (a record lost, a resumed run): the same page
    for record in records:
        record.unlink()
    assert _linked_page(out, tmp_path / "again.html") == linked
    _prep(src, out)  # a rerun: every input from the journal
    assert (out / "report.html").read_bytes() == page
    assert len(list((out / "report_files").glob("*.row.json"))) == 1
