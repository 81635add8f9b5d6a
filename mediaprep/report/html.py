"""The HTML report: one self-contained page that shows what the model will get
(docs/formats.md, "The HTML report").

Two entry points:

- :func:`write_prep_report` writes ``DIR/report.html`` (or the page ``prep --report`` names)
  after ``prep -o DIR``, from ``DIR/parts.jsonl``; thumbnails are small JPEGs kept in the
  visible ``DIR/report_files/`` (``output.THUMB_FOLDER``). The page carries them inline while
  they total at most :data:`REPORT_INLINE_BYTES` and the run has at most
  :data:`~mediaprep.report.page.PAGE_ROWS` inputs (it stands alone: copied, mailed, a CI
  artifact); past that it links them relative to the page's own folder. The prep workers make
  them (:func:`thumbnail_line`) as each input is prepared, in parallel, from the files just
  written; the report reads their records and makes only what is missing (a resumed run
  whose thumbnails were removed, an input a worker could not finish).
- :func:`render` is ``check --format html``: the same page for a check report (no outputs),
  with thumbnails of the inputs inline as data URIs.

The page makes no network request: no external CSS, script or font. Images are lazy-loaded and
rows can be filtered by status and name with a few lines of inline script. Past
:data:`~mediaprep.report.page.PAGE_ROWS` inputs the page holds the first cards and loads the
rest from ``report_files/rows-NNNNNN.js`` as the reader scrolls (:mod:`mediaprep.report.page`):
it is written as it is made, in memory bounded by a batch of rows, and opens as fast at 10^6
inputs as at 10^3. A thumbnail that cannot be made is a placeholder, never an error.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from ..output import PARTS_FILE, REPORT_FILE, THUMB_FOLDER
from . import RunReport, displayable, files_of, summary_of
from .changes import changes_of
from .page import CHUNK_ROWS, PAGE_ROWS, chunk_text, human, page, page_parts, row_html
from .rows import (
    Row,
    check_row,
    count_lines,
    file_size,
    prep_row,
    read_lines,
    row_pics,
    unshown_row,
)
from .rows import thumbnail_line as thumbnail_line
from .thumbs import (
    CHUNK_PREFIX,
    MAX_SHEET_FRAMES,
    THUMB_SIDE,
    Pic,
    Thumbs,
    chunk_name,
    no_preview,
)
from .thumbs import encode_preview as encode_preview
from .thumbs import even_sample as even_sample
from .thumbs import image_thumb as image_thumb
from .thumbs import is_thumbnail_name as is_thumbnail_name
from .thumbs import video_thumbs as video_thumbs

__all__ = ["render", "write_prep_report", "THUMB_SIDE", "MAX_SHEET_FRAMES",
           "REPORT_INLINE_BYTES"]

#: thumbnail bytes a prep page carries inline (data URIs), so it shows its pictures when copied
#: alone; past it (about 400 inputs) the page links them in the folder beside it
REPORT_INLINE_BYTES = 4 << 20
BATCH_ROWS = 256  # parts.jsonl lines handed to the thumbnail threads at a time
PREP_STATUSES = ("failed", "changed", "unchanged")
CHECK_STATUSES = ("failed", "warning", "passed")


# --- prep: DIR/report.html ---------------------------------------------------------------------


@dataclass
class _Tally:
    """The header's totals, counted as the rows go by."""

    statuses: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)
    bytes_in: int = 0
    bytes_out: int = 0
    tokens: int = 0

    def add(self, line: Mapping[str, Any], row: Row) -> None:
        self.statuses[row.status] += 1
        self.changes.update(changes_of(line))
        self.bytes_in += row.bytes_in or 0
        self.bytes_out += row.bytes_out or 0
        self.tokens += row.tokens or 0

    def totals(self) -> list[tuple[str, str]]:
        inputs = sum(self.statuses.values())
        failed = self.statuses["failed"]
        return [("inputs", f"{inputs:,}"), ("prepared", f"{inputs - failed:,}"),
                ("failed", f"{failed:,}"), ("bytes in", human(self.bytes_in)),
                ("bytes out", human(self.bytes_out)),
                ("estimated tokens", f"~{self.tokens:,}")]


def _batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


def _prep_rows(out: Path, sources: Sequence[str] | None, thumbs: Thumbs,
               max_frames: int | None, workers: int) -> Iterator[tuple[dict[str, Any], Row]]:
    """Each parts.jsonl line with its row, in run order, a batch at a time (the thumbnails of
    a batch are made or read by ``workers`` threads)."""
    parts = out / PARTS_FILE
    if sources is not None and len(sources) != count_lines(parts):
        sources = None  # not this parts.jsonl's inputs: the lines' paths instead

    def make(item: tuple[int, dict[str, Any]]) -> tuple[dict[str, Any], Row]:
        i, line = item
        src = (sources[i] if sources is not None else str(line.get("path") or "")) or None
        try:
            return line, prep_row(line, src, out, row_pics(thumbs, line, src, out), max_frames)
        except Exception:  # noqa: BLE001 - one odd line must not lose the page
            return line, unshown_row(line, src or "")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for batch in _batched(read_lines(parts), BATCH_ROWS):
            yield from pool.map(make, batch)


class _Cards:
    """The cards in page order (failed inputs first). Kept as rows while there are at most
    ``limit`` (the page may then carry its pictures inline); past it each card is made as its
    row comes, pictures linked, and spooled to one of two temporary files (failed, the rest),
    so memory holds a batch of rows, not the run."""

    def __init__(self, thumbs: Thumbs, link: str, limit: int = PAGE_ROWS) -> None:
        self.thumbs, self.link, self.limit = thumbs, link, limit
        self.rows: list[Row] = []  # until past the limit
        self.count = 0
        self.spools: dict[bool, IO[str]] | None = None

    def add(self, row: Row) -> None:
        index, self.count = self.count, self.count + 1
        if self.spools is not None:
            self._spool(row, index)
            return
        self.rows.append(row)
        if self.count > self.limit:
            self.spools = {True: tempfile.TemporaryFile("w+", encoding="utf-8"),
                           False: tempfile.TemporaryFile("w+", encoding="utf-8")}
            for i, kept in enumerate(self.rows):
                self._spool(kept, i)
            self.rows = []

    def _spool(self, row: Row, index: int) -> None:
        assert self.spools is not None
        _link_pictures([row], self.thumbs, self.link)
        self.spools[row.status == "failed"].write(json.dumps(row_html(row, index)) + "\n")

    def paged(self) -> bool:
        return self.spools is not None

    def spooled(self) -> Iterator[str]:
        """The spooled cards in page order."""
        assert self.spools is not None
        for failed in (True, False):
            fh = self.spools[failed]
            fh.seek(0)
            for text in fh:
                yield json.loads(text)

    def close(self) -> None:
        for fh in (self.spools or {}).values():
            fh.close()


def write_prep_report(out_dir: str | os.PathLike[str], sources: Sequence[str] | None = None, *,
                      settings: Any = None, jobs: int | None = None,
                      page: str | os.PathLike[str] | None = None,
                      inline_max: int = REPORT_INLINE_BYTES) -> Path:
    """Write ``DIR/report.html`` for the ``prep`` run whose ``DIR/parts.jsonl`` is there.

    ``sources``: the inputs in ``parts.jsonl`` order (paths or URLs) for the input thumbnails
    and sizes; without them the lines' ``path`` is used. ``settings``: the run's
    :class:`~mediaprep.settings.Settings` (target, model and ``max_frames`` on the page).
    ``jobs``: threads making thumbnails [default: up to 4]. ``page``: where the page goes
    [default: ``DIR/report.html``]. ``inline_max``: the thumbnails' total bytes up to which the
    page carries them inline; past it they are linked in ``DIR/report_files/`` relative to the
    page's folder. Returns the report's path; raises
    ``OSError`` when parts.jsonl cannot be read or the page cannot be written (a thumbnail that
    fails is a placeholder, never an error).
    """
    out = Path(out_dir)
    thumbs = Thumbs(out / THUMB_FOLDER, prefix=THUMB_FOLDER.as_posix() + "/")
    path = Path(page) if page is not None else out / REPORT_FILE
    link = (Path(os.path.relpath(thumbs.folder, path.parent)).as_posix()
            if thumbs.folder is not None else "")
    tally = _Tally()
    cards = _Cards(thumbs, link)
    try:
        for line, row in _prep_rows(out, sources, thumbs, getattr(settings, "max_frames", None),
                                    jobs or min(4, os.cpu_count() or 1)):
            tally.add(line, row)
            cards.add(row)
        head = ("mediaprep prep", tally.statuses, tally.totals(), tally.changes,
                _context(settings))
        if cards.paged():
            _write_paged(path, cards, thumbs, link, head)
        else:
            thumbs.prune()
            footer = _place_pictures(cards.rows, thumbs, link, inline_max)
            # nothing run-specific (folder name, time taken): the same run gives the same page
            _write_text(path, [_whole_page(cards.rows, head, footer)])
    finally:
        cards.close()
    return path


def _whole_page(rows: list[Row], head: tuple[Any, ...], footer: str) -> str:
    title, _, totals, counts, context = head
    return page(title, rows, totals, counts, context, statuses=PREP_STATUSES, footer=footer)


def _write_paged(path: Path, cards: _Cards, thumbs: Thumbs, link: str,
                 head: tuple[Any, ...]) -> None:
    """The first PAGE_ROWS cards on the page, the rest in chunk files beside the thumbnails
    (none: every card on the page, when there is no folder of ours to keep them in)."""
    title, statuses, totals, counts, context = head
    order = cards.spooled()
    first = list(islice(order, PAGE_ROWS)) if thumbs.folder is not None else order
    chunks = _write_chunks(order, thumbs) if thumbs.folder is not None else 0
    thumbs.prune()
    footer = (f"pictures and more rows are in {link}/ beside this page "
              "(copy or upload the page together with that folder)") if link else ""
    _write_text(path, page_parts(title, first, statuses, totals, counts, context,
                                 statuses=PREP_STATUSES, footer=footer, chunks=chunks,
                                 chunk_prefix=quote(f"{link}/{CHUNK_PREFIX}")))


def _write_chunks(cards: Iterable[str], thumbs: Thumbs) -> int:
    from ..output import atomic_write

    assert thumbs.folder is not None
    k = 0
    for k, block in enumerate(_batched(cards, CHUNK_ROWS), start=1):
        atomic_write(thumbs.folder / chunk_name(k), chunk_text(k, block).encode("ascii"))
        thumbs.used.add(chunk_name(k))
    return k


def _write_text(path: Path, pieces: Iterable[str]) -> None:
    from ..output import atomic_writer

    with atomic_writer(path, binary=True) as fh:
        for piece in pieces:
            fh.write(piece.encode("utf-8", "surrogateescape"))


def _ours(pic: Pic | None, thumbs: Thumbs) -> bool:
    return pic is not None and bool(pic.src) and pic.src.startswith(thumbs.prefix)  # type: ignore[union-attr]


def _thumbnails_of(rows: Sequence[Row], thumbs: Thumbs) -> list[Pic]:
    """The rows' pictures in the thumbnail folder, each once (before may be after)."""
    pics: dict[int, Pic] = {}
    for row in rows:
        for pic in (row.before, row.after, *row.sheet, *row.strip):
            if _ours(pic, thumbs):
                pics.setdefault(id(pic), pic)  # type: ignore[arg-type]
    return list(pics.values())


def _link_pictures(rows: Sequence[Row], thumbs: Thumbs, link: str) -> None:
    """Point the rows' pictures at the thumbnail folder, relative to the page (``link``)."""
    for pic in _thumbnails_of(rows, thumbs):
        pic.src = quote(f"{link}/{pic.src[len(thumbs.prefix):]}")  # type: ignore[index]


def _inline_pictures(pics: Sequence[Pic], thumbs: Thumbs) -> None:
    assert thumbs.folder is not None
    for pic in pics:
        try:
            data = (thumbs.folder / pic.src[len(thumbs.prefix):]).read_bytes()  # type: ignore[index]
        except OSError as exc:
            pic.src, pic.note = None, no_preview(exc)
            continue
        pic.src = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _place_pictures(rows: Sequence[Row], thumbs: Thumbs, link: str, inline_max: int) -> str:
    """Point the rows' pictures where the page finds them: inline while the thumbnails total
    at most ``inline_max`` bytes, else linked (``link``: the thumbnail folder from the page's
    folder). Returns the page's note on where its pictures are ("" when inline)."""
    if thumbs.folder is None:  # made inline already
        return ""
    pics = _thumbnails_of(rows, thumbs)
    names = {pic.src[len(thumbs.prefix):] for pic in pics}  # type: ignore[index]
    if sum(s for n in names if (s := file_size(thumbs.folder / n)) is not None) <= inline_max:
        _inline_pictures(pics, thumbs)
        return ""
    _link_pictures(rows, thumbs, link)
    return (f"pictures are in {link}/ beside this page "
            "(copy or upload the page together with that folder)")


def _context(settings: Any) -> str:
    if settings is None:
        return ""
    bits = [f"{k} {getattr(settings, k)}" for k in ("target", "model", "dialect", "transport")
            if getattr(settings, k, None)]
    return " · ".join(bits)


def write_prep_report_safely(out_dir: str | os.PathLike[str], sources: Sequence[str],
                             settings: Any = None,
                             page: str | os.PathLike[str] | None = None) -> Path | None:
    """:func:`write_prep_report` for the ``prep`` command: a report that cannot be written is a
    warning on stderr, never a failed run (the outputs and parts.jsonl are already there).
    Returns the report's path, or None. A page still as this run would make it (same
    parts.jsonl, sources, settings, code; its files untouched) is kept (:mod:`.signature`)."""
    from .signature import ReportSignature

    try:
        out = Path(out_dir)
        kept = ReportSignature(out, sources, settings,
                               Path(page) if page is not None else out / REPORT_FILE)
        if kept.intact():
            return kept.page
        kept.forget()
        path = write_prep_report(out_dir, sources, settings=settings, page=page)
        kept.record()
        return path
    except Exception as exc:  # noqa: BLE001 - the report is a view of the run, not the run
        import click

        name = page if page is not None else REPORT_FILE
        click.echo(displayable(f"prep: warning: {name} not written: {exc}"), err=True)
        return None


# --- check --format html -----------------------------------------------------------------------


def render(report: RunReport, *, strict: bool = False) -> str:
    """``check --format html``: the page for a check report (the object of docs/formats.md,
    "check --format json").

    Inputs that can be read from here get an inline thumbnail (data URI); others a placeholder.
    """
    thumbs = Thumbs(None)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        rows = list(pool.map(lambda f: check_row(f, thumbs, strict=strict), files_of(report)))
    s = summary_of(report, strict=strict)
    # the same three statuses as the tabs (a file with warnings is not counted as passed)
    n_status = Counter(r.status for r in rows)
    totals = [("inputs", f"{s['files']:,}"), ("passed", f"{n_status['passed']:,}"),
              ("warning", f"{n_status['warning']:,}"), ("failed", f"{n_status['failed']:,}"),
              ("error findings", f"{s['errors']:,}"),
              ("warning findings", f"{s['warnings']:,}"),
              ("bytes", human(sum(r.bytes_in or 0 for r in rows))),
              ("estimated tokens", f"~{sum(r.tokens or 0 for r in rows):,}")]
    context = " · ".join(f"{k} {report[k]}" for k in ("target", "dialect", "transport")
                         if report.get(k))
    return page("mediaprep check", rows, totals, None, context, statuses=CHECK_STATUSES,
                footer="")
