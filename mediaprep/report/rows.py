"""The rows of the HTML report: one per input, from its ``parts.jsonl`` line (prep) or its
``check --format json`` entry (check), with its pictures (:mod:`mediaprep.report.thumbs`).

A prep worker that has just prepared an input (its files still in the page cache) makes that
input's thumbnails (:func:`thumbnail_line`). Where making the row's pictures again would cost a
decode (a video's strip, contact sheet or first frame and its metadata; a picture that could
not be made), it also writes what the row shows to ``report_files/<line hash>.row.json``, and
the report at the run's end reads that record. An image's row keeps no record: its thumbnails
are named by a hash of their file and their size is in their header, so the report finds them
again for less than a record costs to write and read (a cold run writes one file an image
input, not two). The record is named by the line (without its data): an input the journal or
the cache served has the same line, so its record is found again; a record that is missing, or
names a thumbnail that is gone, is made anew.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..output import THUMB_FOLDER
from . import code_of, displayable, file_failed, findings_of, message_of, path_of, severity_of
from .changes import changes_of, words_of
from .thumbs import (
    PREVIEW_VERSION,
    THUMB_SIDE,
    Pic,
    Thumbs,
    even_sample,
    is_thumbnail_name,
    no_preview,
    time_label,
)

STRIP_FRAMES = 3  #: frames shown for a video sent as a file
#: kinds of change after which a thumbnail of the input looks like the output's
SAME_PICTURE = frozenset({"converted", "re-encoded", "resized"})
#: codes of inputs with nothing to show (the thumbnail is not attempted)
UNDECODABLE = frozenset({"file.unreadable", "image.decompression_bomb",
                         "video.no_video_stream"})
#: a placeholder's note for a failed input: its reason, cut to this many characters
NOTE_CHARS = 120
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".ts", ".flv", ".wmv",
                            ".m4v", ".mpg", ".mpeg", ".3gp"})


@dataclass
class Row:
    """One input on the page."""

    name: str
    status: str  # failed | changed | unchanged (prep); failed | warning | passed (check)
    kind: str = "other"
    before: Pic | None = None
    after: Pic | None = None
    sheet: list[Pic] = field(default_factory=list)
    sheet_total: int = 0
    strip: list[Pic] = field(default_factory=list)
    video: str = ""  # "3.00 s · 25 fps in the file"
    sampling: str = ""  # a video file: how the server samples it, "fps 2 · max_frames 2000"
    changes: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    findings: list[Mapping[str, Any]] = field(default_factory=list)
    bytes_in: int | None = None
    bytes_out: int | None = None
    tokens: int | None = None
    reason: str = ""
    details: str = ""  # e.g. "image 240x320 jpeg"


def strip_name(message: str, name: str) -> str:
    """``message`` without the ``name: `` it starts with (the card already names the input)."""
    prefix = name + ": "
    return message[len(prefix):] if message.startswith(prefix) else message


def _shorten(text: str, limit: int = NOTE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def file_size(path: str | os.PathLike[str]) -> int | None:
    """A file's size, a frame folder's total; None when it cannot be read."""
    try:
        st = os.stat(path)  # one call for both (a row asks for two sizes)
        if stat.S_ISDIR(st.st_mode):
            from ..resource import frame_files

            return sum(m.stat().st_size for m in frame_files(Path(path)))
        return st.st_size
    except (OSError, ValueError):
        return None


def _first_member(path: str) -> str | None:
    try:
        if Path(path).is_dir():
            from ..resource import frame_files

            members = frame_files(Path(path))
            return str(members[0]) if members else None
    except (OSError, ValueError):
        return None
    return path


def _reason(findings: Sequence[Mapping[str, Any]]) -> str:
    errors = [f for f in findings if severity_of(f) == "error"]
    if errors:
        return message_of(errors[0])
    return message_of(findings[0]) if findings else "no result"


def _estimate(tokens: Any) -> int | None:
    if isinstance(tokens, Mapping) and isinstance(tokens.get("estimate"), int):
        return tokens["estimate"]
    return None


def _explain_placeholders(row: Row) -> None:
    """A failed input's placeholders say why it failed (its first error, in the finding's
    words), not why a picture could not be made of it."""
    if not row.reason:
        return
    note = "no preview: " + _shorten(strip_name(row.reason, row.name))
    for pic in (row.before, row.after):
        if pic is not None and pic.src is None:
            pic.note = note


def _looks_video(path: str) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _video_first(thumbs: Thumbs, path: str, first: Any = None) -> Pic:
    pics, _ = thumbs.video(path, 1, first)
    return pics[0]


# --- a prep row's pictures --------------------------------------------------------------------


@dataclass
class Pics:
    """The pictures of one prep row (made in the worker that prepared the input, or here)."""

    before: Pic | None = None
    after: Pic | None = None
    sheet: list[Pic] = field(default_factory=list)
    sheet_total: int = 0
    strip: list[Pic] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # a video file's duration, fps, size

    def to_json(self) -> dict[str, Any]:
        return {"before": "after" if self.before is self.after and self.before is not None
                else _pic_json(self.before), "after": _pic_json(self.after),
                "sheet": [_pic_json(p) for p in self.sheet], "sheet_total": self.sheet_total,
                "strip": [_pic_json(p) for p in self.strip], "meta": self.meta}

    @classmethod
    def from_json(cls, rec: Mapping[str, Any]) -> Pics:
        sheet = [p for v in rec["sheet"] if (p := _pic_of_json(v)) is not None]
        strip = [p for v in rec["strip"] if (p := _pic_of_json(v)) is not None]
        after = _shared(_pic_of_json(rec["after"]), sheet, strip)
        before = after if rec["before"] == "after" else _pic_of_json(rec["before"])
        return cls(before, after, sheet, int(rec["sheet_total"]), strip, dict(rec["meta"]))

    def pictures(self) -> list[Pic]:
        return [p for p in (self.before, self.after, *self.sheet, *self.strip) if p is not None]


def _pic_json(p: Pic | None) -> Any:
    return None if p is None else [p.src, p.width, p.height, p.label, p.note]


def _pic_of_json(v: Any) -> Pic | None:
    return None if v is None else Pic(v[0], int(v[1]), int(v[2]), str(v[3]), str(v[4]))


def _shared(after: Pic | None, sheet: list[Pic], strip: list[Pic]) -> Pic | None:
    """The same picture twice is one object, as when it was made (the page shows it once)."""
    for first in (sheet[:1] + strip[:1]):
        if after is not None and after.src == first.src:
            return first
    return after


@dataclass
class _Line:
    """What a parts.jsonl line says, read once (lenient: odd values count as absent)."""

    line: Mapping[str, Any]
    ok: bool
    kind: str
    outputs: list[str]
    findings: list[Mapping[str, Any]]
    changes: list[str]

    @classmethod
    def of(cls, line: Mapping[str, Any]) -> _Line:
        return cls(line, bool(line.get("ok")), str(line.get("kind") or "other"),
                   [str(o) for o in line.get("outputs") or []],
                   [f for f in line.get("findings") or [] if isinstance(f, Mapping)],
                   changes_of(line))

    @property
    def part(self) -> Mapping[str, Any]:
        part = self.line.get("part")
        return part if isinstance(part, Mapping) else {}

    def undecodable(self) -> bool:
        return not self.ok and any(code_of(f) in UNDECODABLE for f in self.findings)

    def sent_as_frames(self) -> bool:
        return (self.ok and bool(self.outputs)
                and (isinstance(self.line.get("timestamps"), list) or self.kind == "frames"))

    def sent_as_video_file(self) -> bool:
        return self.ok and bool(self.outputs) and (
            "video_url" in self.part or isinstance(self.part.get("video"), str))


def _frame_label(timestamps: Any, i: int) -> str:
    t = timestamps[i] if isinstance(timestamps, list) and i < len(timestamps) else None
    return time_label(float(t)) if isinstance(t, int | float) else f"#{i + 1}"


def _sheet_pics(view: _Line, in_file: str | None, out: Path, thumbs: Thumbs,
                previews: Mapping[int | str, Any]) -> Pics:
    """Frames sent: a contact sheet of them (an even sample past MAX_SHEET_FRAMES)."""
    pics = Pics(sheet_total=len(view.outputs))
    for i in even_sample(len(view.outputs)):
        pic = thumbs.image(out / view.outputs[i], previews.get(i))
        pic.label = _frame_label(view.line.get("timestamps"), i)
        pics.sheet.append(pic)
    pics.after = pics.sheet[0]
    if view.kind == "video":
        pics.before = pics.sheet[0]  # the video's first frame sent: no decode of the input
    elif in_file:
        pics.before = thumbs.image(in_file)
    return pics


def _strip_pics(view: _Line, out: Path, thumbs: Thumbs,
                previews: Mapping[int | str, Any]) -> Pics:
    """A video file sent: a strip of its frames."""
    pics = Pics()
    pics.strip, pics.meta = thumbs.video(out / view.outputs[0], STRIP_FRAMES, previews.get(0))
    # remuxed, transcoded or untouched: at 256 px the input's first frame is the output's
    # (not decoded again: the input may be 4K HEVC)
    pics.after = pics.before = pics.strip[0]
    return pics


def _output_pic(view: _Line, out: Path, thumbs: Thumbs,
                previews: Mapping[int | str, Any]) -> Pic | None:
    if not view.ok:
        return None
    if not view.outputs:
        return Pic(None, note="sent as a URL")
    return thumbs.image(out / view.outputs[0], previews.get(0) if view.kind == "image" else None)


def _input_pic(view: _Line, in_file: str, after: Pic | None, thumbs: Thumbs,
               previews: Mapping[int | str, Any]) -> Pic:
    if view.kind == "video" or (view.kind == "other" and _looks_video(in_file)):
        return _video_first(thumbs, in_file, previews.get("input"))
    if view.ok and not set(view.changes) - SAME_PICTURE and after is not None and after.src:
        # untouched, or only re-encoded/converted/resized: at 256 px the same picture, so the
        # input (maybe a 40 MP PNG) is not decoded again
        return after
    return thumbs.image(in_file, previews.get("input") if view.kind == "image" else None)


def pics_of(line: Mapping[str, Any], source: str | None, out: Path, thumbs: Thumbs,
            previews: Mapping[int | str, Any] | None = None) -> Pics:
    """The pictures of a parts.jsonl line: its outputs' and, where they differ, its input's.
    ``previews``: prepare's previews of the outputs, by index, where it had them."""
    view = _Line.of(line)
    previews = previews or {}
    in_file = _first_member(source) if source else None
    if view.undecodable():
        return Pics(before=Pic(None, note="cannot be decoded"))  # as prep found: not tried again
    if view.sent_as_frames():
        return _sheet_pics(view, in_file, out, thumbs, previews)
    if view.sent_as_video_file():
        return _strip_pics(view, out, thumbs, previews)
    pics = Pics(after=_output_pic(view, out, thumbs, previews))
    if in_file:
        pics.before = _input_pic(view, in_file, pics.after, thumbs, previews)
    return pics


# --- a prep row --------------------------------------------------------------------------------


def _strip_words(meta: Mapping[str, Any]) -> str:
    """``3.00 s · 1280x720 · 25 fps in the file``."""
    bits = []
    if meta.get("duration"):
        bits.append(f"{meta['duration']:.2f} s")
    if meta.get("width"):
        bits.append(f"{meta['width']}x{meta['height']}")
    if meta.get("fps"):
        bits.append(f"{meta['fps']:.4g} fps in the file")
    return " · ".join(bits)


def _sampling_words(view: _Line, max_frames: int | None) -> str:
    """How the server samples a video file: ``fps 2 · max_frames 2000``."""
    sampling = []
    if view.line.get("fps"):
        sampling.append(f"fps {float(view.line['fps']):g}")
    mf = view.part.get("max_frames")
    mf = mf if mf is not None else max_frames
    if mf is not None:
        sampling.append(f"max_frames {mf}")
    return " · ".join(sampling)


def _sheet_words(view: _Line) -> str:
    fps = view.line.get("fps") or view.part.get("fps")
    return f"{len(view.outputs)} frames" + (f" at {float(fps):.4g} fps" if fps else "")


def _status(view: _Line) -> str:
    if not view.ok:
        return "failed"
    return "changed" if view.changes else "unchanged"


def prep_row(line: Mapping[str, Any], source: str | None, out: Path, pics: Pics,
             max_frames: int | None) -> Row:
    """The row of one parts.jsonl line, with the pictures made for it."""
    view = _Line.of(line)
    row = Row(name=displayable(str(line.get("path") or source or "?")), status=_status(view),
              kind=view.kind, changes=view.changes, fixes=words_of(line),
              findings=view.findings, tokens=_estimate(line.get("tokens")))
    row.bytes_in = file_size(source) if source else None
    if view.ok:
        row.bytes_out = sum(s for o in view.outputs if (s := file_size(out / o)) is not None)
    else:
        row.reason = _reason(view.findings)
    row.before, row.after = pics.before, pics.after
    row.sheet, row.sheet_total, row.strip = pics.sheet, pics.sheet_total, pics.strip
    if row.sheet:
        row.video = _sheet_words(view)
    elif row.strip:
        row.video = _strip_words(pics.meta)
        row.sampling = _sampling_words(view, max_frames)
    _explain_placeholders(row)
    return row


def unshown_row(line: Mapping[str, Any], source: str) -> Row:
    """The row of a line whose pictures or details could not be made: its name, status and
    findings, and a reason in words (the cause is this program's, not the input's)."""
    return Row(name=displayable(str(line.get("path") or source)),
               status="failed" if not line.get("ok") else "unchanged",
               reason="not shown in full: this input's details could not be read",
               findings=[f for f in line.get("findings") or [] if isinstance(f, Mapping)])


# --- parts.jsonl -----------------------------------------------------------------------------


def read_lines(parts: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """parts.jsonl lines without their parts' data (a data URL can be megabytes), one at a
    time, with their line numbers from 0 (a damaged line is skipped, and still counted: the
    next line is still its own input's)."""
    for i, raw in enumerate(lines_cut(parts)):
        try:
            line = json.loads(raw.decode("utf-8", "surrogateescape"))
        except ValueError:
            continue
        if isinstance(line, dict):
            yield i, without_data(line)


def lines_cut(path: Path) -> Iterator[bytes]:
    """Each line of ``path`` with its long data URLs cut (:func:`_data_urls_cut`), read
    through a memory map: only what is kept of a line is copied out of the page cache (reading
    177 MB of lines whole took 0.37 s; finding their ends and data URLs, 0.03)."""
    with open(path, "rb") as fh:
        try:
            whole: Any = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # empty, or a file that cannot be mapped
            yield from (_data_urls_cut(raw, 0, len(raw)) for raw in fh)
            return
        with whole:
            pos, size = 0, len(whole)
            while pos < size:
                end = whole.find(b"\n", pos)
                end = size if end < 0 else end + 1
                yield _data_urls_cut(whole, pos, end)
                pos = end


def count_lines(path: Path) -> int:
    """The newlines in ``path``, found in a memory map (no copy of a long line's bytes)."""
    n = 0
    with open(path, "rb") as fh:
        try:
            whole = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # empty, or a file that cannot be mapped
            return sum(raw.endswith(b"\n") for raw in fh)
        with whole:
            end = whole.find(b"\n")
            while end >= 0:
                n += 1
                end = whole.find(b"\n", end + 1)
    return n


_DATA_URL = b'"data:'


_DATA_URL_CUT = 256  # bytes: a data URL string at least this long reads as "data:..."


def _data_urls_cut(buf: Any, pos: int, stop: int) -> bytes:
    """The line ``buf[pos:stop]`` with each long data URL string read as ``"data:..."``, cut
    before the line is parsed (found with ``find``, a memchr): parsing a run's data URLs was
    most of the report's time (177 MB of parts.jsonl: 0.39 s of 0.55). A string holding an
    escape (a quote or a backslash inside) is left whole: base64 has neither, and a name may."""
    if buf.find(_DATA_URL, pos, stop) < 0:
        return buf[pos:stop]
    pieces = []
    while (start := buf.find(_DATA_URL, pos, stop)) >= 0:
        end = buf.find(b'"', start + len(_DATA_URL), stop)
        if end < 0:
            break
        keep = (end - start < _DATA_URL_CUT or buf[start - 1:start] == b"\\"
                or buf.find(b"\\", start, end) >= 0)
        pieces.append(buf[pos:end + 1] if keep else buf[pos:start] + b'"data:..."')
        pos = end + 1
    pieces.append(buf[pos:stop])
    return b"".join(pieces)


def without_data(line: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(line)
    part = line.get("part")
    if isinstance(part, Mapping):  # keep what kind of part it is, not its data
        out["part"] = {k: (v if k in ("fps", "max_frames", "type") else
                           [] if isinstance(v, list) else "...") for k, v in part.items()}
    return out


# --- row records made as each input is prepared -------------------------------------------

_ROW_VERSION = "1"


def _row_key(line: Mapping[str, Any]) -> str:
    text = json.dumps(without_data(line), sort_keys=True, ensure_ascii=False, default=str)
    h = hashlib.sha256(f"{_ROW_VERSION}\0{THUMB_SIDE}\0{PREVIEW_VERSION}\0".encode())
    h.update(text.encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:40]


def _load_row(thumbs: Thumbs, key: str) -> Pics | None:
    assert thumbs.folder is not None
    try:
        rec = json.loads((thumbs.folder / f"{key}.row.json").read_text(encoding="utf-8"))
        pics = Pics.from_json(rec)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    srcs = [p.src for p in pics.pictures() if p.src]
    names = [src[len(thumbs.prefix):] for src in srcs]
    if not all(src.startswith(thumbs.prefix) and is_thumbnail_name(n) and
               (thumbs.folder / n).is_file() for src, n in zip(srcs, names, strict=True)):
        return None
    thumbs.used.update([*names, f"{key}.row.json"])
    return pics


def _make_row(thumbs: Thumbs, key: str | None, line: Mapping[str, Any], source: str | None,
              out: Path, previews: Mapping[int | str, Any] | None = None) -> Pics:
    from ..output import atomic_write

    pics = pics_of(line, source, out, thumbs, previews)
    if _worth_a_record(pics, line, source):
        key = key or _row_key(line)  # an image row's is made only when it needs one
        atomic_write(thumbs.folder / f"{key}.row.json",  # type: ignore[operator]
                     json.dumps(pics.to_json(), sort_keys=True).encode())
        thumbs.used.add(f"{key}.row.json")
    return pics


def _worth_a_record(pics: Pics, line: Mapping[str, Any], source: str | None) -> bool:
    """Whether making these pictures again would cost a decode: a video's (a strip, a contact
    sheet, a first frame, its metadata) or a placeholder's (the failed decode, tried again).
    An image's thumbnails are found again by their names alone."""
    if pics.sheet or pics.strip or pics.meta:
        return True
    if any(p.src is None for p in pics.pictures()):
        return True
    kind = str(line.get("kind") or "other")
    return kind in ("video", "frames") or (kind == "other" and _looks_video(source or ""))


def _image_row(line: Mapping[str, Any]) -> bool:
    """Whether the line is an image prepared into one output file: its row's thumbnails are
    found by their names alone, so no record is looked for (a worker keeps one only where a
    picture was a placeholder; that one is then tried again, as after a lost record)."""
    # read from the line directly (as _Line does, without parsing its changes): ok, an image,
    # an output, no frame times (not sent as frames)
    return (bool(line.get("ok")) and line.get("kind") == "image" and bool(line.get("outputs"))
            and not isinstance(line.get("timestamps"), list))


def _recorded_pics(thumbs: Thumbs, line: Mapping[str, Any], source: str | None, out: Path,
                   previews: Mapping[int | str, Any] | None = None) -> Pics:
    """A line's pictures from its record where it may have one, else made (and recorded where
    making them again would cost a decode)."""
    key = _row_key(line)
    pics = _load_row(thumbs, key)
    return pics if pics is not None else _make_row(thumbs, key, line, source, out, previews)


def row_pics(thumbs: Thumbs, line: Mapping[str, Any], source: str | None, out: Path) -> Pics:
    """A line's pictures: its record when a worker made one, else made here (a failed worker,
    a resumed run), or inline when there is no folder of ours to keep them in."""
    if thumbs.folder is None:
        return pics_of(line, source, out, thumbs)
    if _image_row(line):
        return _make_row(thumbs, None, line, source, out)
    return _recorded_pics(thumbs, line, source, out)


def thumbnail_line(out_dir: str | os.PathLike[str], line: Mapping[str, Any],
                   source: str | None, *, previews: Mapping[int | str, Any] | None = None
                   ) -> list[Path]:
    """Make the thumbnails of one prepared input of ``prep -o out_dir`` (its ``parts.jsonl``
    line and its input path) unless they are there already; ``previews``: prepare's, by output
    index. Returns the thumbnail files the input's row shows (for its journal record and cache
    entry: a thumbnail made from prepare's pixels cannot be made again from the files). Run by
    the worker that prepared it; never raises (a thumbnail is a view of the run, not the run):
    on any failure, or inline pictures (the folder is a link), it returns []."""
    try:
        out = Path(out_dir)
        thumbs = Thumbs(out / THUMB_FOLDER, prefix=THUMB_FOLDER.as_posix() + "/")
        if thumbs.folder is None:
            return []
        pics = (_make_row(thumbs, None, line, source, out, previews) if _image_row(line)
                else _recorded_pics(thumbs, line, source, out, previews))
        return [thumbs.folder / p.src[len(thumbs.prefix):] for p in pics.pictures()
                if p.src and p.src.startswith(thumbs.prefix)]
    except Exception:  # noqa: BLE001 - the report at the end makes what is missing
        return []


# --- a check row -----------------------------------------------------------------------------


def _check_status(file: Mapping[str, Any], strict: bool) -> str:
    if file_failed(file, strict=strict):
        return "failed"
    if any(severity_of(f) == "warning" for f in findings_of(file)):
        return "warning"
    return "passed"


def _check_details(kind: str, info: Mapping[str, Any]) -> str:
    """``image 240x320 jpeg``, ``video 1280x720 mp4 · 3.00 s``."""
    dims = f"{info.get('width')}x{info.get('height')}" if info.get("width") else ""
    details = " ".join(str(x) for x in (kind, dims, info.get("format") or "") if x)
    if info.get("duration"):
        details += f" · {float(info['duration']):.2f} s"
    return details


def _check_picture(path: str, row: Row, thumbs: Thumbs) -> Pic:
    """The input as given (``path``), where it can be read from here and decoded."""
    if row.status == "failed" and any(code_of(f) in UNDECODABLE for f in row.findings):
        return Pic(None, note="cannot be decoded")  # as check found: not tried again
    try:
        src = _first_member(path) if os.path.exists(path) else None
        if src is None:
            return Pic(None, note="not readable from here")
        if row.kind == "video" or (row.kind == "other" and _looks_video(src)):
            return _video_first(thumbs, src)
        return thumbs.image(src)
    except Exception as exc:  # noqa: BLE001 - a thumbnail never fails the report
        return Pic(None, note=no_preview(exc))


def check_row(file: Mapping[str, Any], thumbs: Thumbs, *, strict: bool = False) -> Row:
    """The row of one ``check --format json`` file entry, its input's picture inline."""
    findings = findings_of(file)
    name = path_of(file)
    info = file.get("info") if isinstance(file.get("info"), Mapping) else {}
    row = Row(name=displayable(name), status=_check_status(file, strict),
              kind=str(file.get("kind") or "other"), findings=findings,
              tokens=_estimate(file.get("tokens")))
    row.bytes_in = info.get("bytes") if isinstance(info.get("bytes"), int) else None
    if row.status == "failed":
        row.reason = _reason(findings)
    row.details = _check_details(row.kind, info)
    row.before = _check_picture(name, row, thumbs)
    _explain_placeholders(row)
    return row
