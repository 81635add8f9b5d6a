"""The HTML report: one self-contained page that shows what the model will get
(docs/formats.md, "The HTML report").

Two entry points:

- :func:`write_prep_report` writes ``DIR/report.html`` (or the page ``prep --report`` names)
  after ``prep -o DIR``, from ``DIR/parts.jsonl``; thumbnails are small JPEGs kept in the
  visible ``DIR/report_files/`` (``output.THUMB_FOLDER``). The page carries them inline while
  they total at most :data:`REPORT_INLINE_BYTES` (it stands alone: copied, mailed, a CI
  artifact); past that it links them relative to the page's own folder. The prep workers make them
  (:func:`thumbnail_line`) as each input is prepared, in parallel, from the files just
  written; the report reads their records and makes only what is missing (a resumed run
  whose thumbnails were removed, an input a worker could not finish).
- :func:`render` is ``check --format html``: the same page for a check report (no outputs),
  with thumbnails of the inputs inline as data URIs.

The page makes no network request: no external CSS, script or font. Images are lazy-loaded and
rows can be filtered by status and name with a few lines of inline script, so a page of 10,000
inputs stays usable. A thumbnail that cannot be made is a placeholder, never an error.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends.pillow import (
    PREVIEW_MAX_FRAMES,
    PREVIEW_SIDE,
    PREVIEW_VERSION,
    file_preview,
    picture_size,
    preview_image,
    preview_jpeg,
    preview_sample,
)
from ..output import PARTS_FILE, REPORT_FILE, THUMB_FOLDER
from . import (
    RunReport,
    code_of,
    displayable,
    file_failed,
    files_of,
    findings_of,
    message_of,
    path_of,
    severity_of,
    summary_of,
)
from .changes import KINDS, changes_of, count_changes, words_of

__all__ = ["render", "write_prep_report", "THUMB_SIDE", "MAX_SHEET_FRAMES",
           "REPORT_INLINE_BYTES"]

THUMB_SIDE = PREVIEW_SIDE  #: long side of a thumbnail, px
MAX_SHEET_FRAMES = PREVIEW_MAX_FRAMES  #: frames shown on a contact sheet; past it an even sample
even_sample = preview_sample
STRIP_FRAMES = 3  #: frames shown for a video sent as a file
#: thumbnail bytes a prep page carries inline (data URIs), so it shows its pictures when copied
#: alone; past it (about 400 inputs) the page links them in the folder beside it
REPORT_INLINE_BYTES = 4 << 20
HASH_WHOLE_BYTES = 8 << 20  # files up to this size are hashed whole to name their thumbnail
#: kinds of change after which a thumbnail of the input looks like the output's
SAME_PICTURE = frozenset({"converted", "re-encoded", "resized"})
#: codes of inputs with nothing to show (the thumbnail is not attempted)
UNDECODABLE = frozenset({"file.unreadable", "image.decompression_bomb",
                         "video.no_video_stream"})


#: a thumbnail's file name: 32 hex digits of its key (:meth:`Thumbs._key`), ``-N`` for a strip
_PICTURE_NAME = re.compile(r"[0-9a-f]{32}(?:-[0-9]{1,4})?\.jpg")


def is_thumbnail_name(name: str) -> bool:
    """Whether ``name`` is a thumbnail's file name as the report makes them."""
    return _PICTURE_NAME.fullmatch(name) is not None


# --- thumbnails ------------------------------------------------------------------------------


@dataclass
class Pic:
    """A picture on the page: ``src`` (a relative URL or data URI; None: a placeholder)."""

    src: str | None
    width: int = THUMB_SIDE
    height: int = THUMB_SIDE
    label: str = ""
    note: str = ""  # why there is no picture


def _jpeg(img: Any) -> tuple[bytes, int, int]:
    """A thumbnail's bytes: :func:`~mediaprep.backends.pillow.preview_image` of ``img`` as a
    small JPEG."""
    return encode_preview(preview_image(img))


def encode_preview(small: Any) -> tuple[bytes, int, int]:
    """A preview (already small, RGB) as thumbnail JPEG bytes, with its size."""
    return preview_jpeg(small), small.width, small.height


def image_thumb(path: str | os.PathLike[str]) -> tuple[bytes, int, int]:
    """A small JPEG of an image file's picture, pixels as stored (no EXIF turn):
    :func:`~mediaprep.backends.pillow.file_preview`. Raises on anything it cannot show."""
    return encode_preview(file_preview(path))


def video_thumbs(path: str | os.PathLike[str], n: int, *, first: Any = None
                 ) -> tuple[list[tuple[bytes, int, int, float]], dict[str, Any]]:
    """Up to ``n`` small JPEGs of frames spread over a video, with their times from its start,
    and its ``duration``, ``fps`` and size: :func:`~mediaprep.backends.av.video_strip`.
    Raises on anything it cannot show."""
    from ..backends.av import video_strip

    frames, meta = video_strip(path, n, first=first)
    return [(*_jpeg(img), t) for img, t in frames], meta


class Thumbs:
    """Makes thumbnails: files under ``folder`` (linked as ``prefix`` + name), or data URIs when
    ``folder`` is None. A thumbnail already made for the same file (path, size, time) is reused;
    any failure gives a placeholder :class:`Pic` with the reason."""

    def __init__(self, folder: Path | None, prefix: str = "") -> None:
        from ..output import is_link_or_not_folder

        if folder is not None and is_link_or_not_folder(folder):
            # a link (or a file) where the thumbnail folder goes is not ours to write into or
            # prune: the page carries its pictures inline instead
            folder = None
        self.folder = folder
        self.prefix = prefix
        self.used: set[str] = set()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def _key(self, path: str | os.PathLike[str], extra: str) -> str | None:
        """Named by the file's bytes (its size and, past 8 MiB, its first and last MiB), so
        the same run gives the same page: report.html is identical for identical outputs."""
        h = hashlib.sha256(f"{extra}\0{THUMB_SIDE}\0{PREVIEW_VERSION}\0".encode())
        try:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                h.update(str(size).encode())
                if size <= HASH_WHOLE_BYTES:
                    h.update(fh.read())
                else:
                    h.update(fh.read(1 << 20))
                    fh.seek(-(1 << 20), os.SEEK_END)
                    h.update(fh.read())
        except OSError:
            return None
        return h.hexdigest()[:32]

    def _pic(self, key: str, data: bytes, w: int, h: int, label: str = "") -> Pic:
        if self.folder is None:
            return Pic("data:image/jpeg;base64," + base64.b64encode(data).decode("ascii"), w, h,
                       label)
        name = f"{key}.jpg"
        from ..output import atomic_write

        atomic_write(self.folder / name, data)
        self.used.add(name)
        return Pic(self.prefix + name, w, h, label)

    def _cached(self, key: str) -> Pic | None:
        if self.folder is None:
            return None
        name = f"{key}.jpg"
        try:  # one name per thumbnail, no listing of the folder: the size is in its header
            w, h = picture_size(self.folder / name)
        except Exception:  # noqa: BLE001 - missing or damaged: made again
            return None
        self.used.add(name)
        return Pic(self.prefix + name, w, h)

    def image(self, path: str | os.PathLike[str] | None, preview: Any = None) -> Pic:
        """A thumbnail of an image file; ``preview``: its pixels as
        :func:`~mediaprep.backends.pillow.preview_image` made them from what prepare decoded
        or encoded, so the file is not decoded again (from a lossy encode's pixels, not the
        file's exact bytes: the run's journal and cache keep that thumbnail)."""
        if path is None:
            return Pic(None, note="no file")
        key = self._key(path, "image")
        if key is None:
            return Pic(None, note="file not found")
        hit = self._cached(key)
        if hit is not None:
            return hit
        try:
            if preview is not None:
                return self._pic(key, *encode_preview(preview))
            return self._pic(key, *image_thumb(path))
        except Exception as exc:  # noqa: BLE001 - a thumbnail never fails the run
            return Pic(None, note=_short(exc))

    def video(self, path: str | os.PathLike[str] | None, n: int, first: Any = None
              ) -> tuple[list[Pic], dict[str, Any]]:
        """``n`` thumbnails of frames over a video, labelled with their times, and its metadata;
        ``first``: its first frame as the probe decoded it (:func:`~mediaprep.backends.av.
        frame_preview`), so that one is not decoded again."""
        if path is None:
            return [Pic(None, note="no file")], {}
        key = self._key(path, f"video{n}")
        if key is None:
            return [Pic(None, note="file not found")], {}
        if first is not None and n == 1:  # no need to open the file at all
            pic = self._cached(f"{key}-0") or self._pic(f"{key}-0", *_jpeg(first))
            pic.label = _time_label(0.0)
            return [pic], {}
        try:
            frames, meta = video_thumbs(path, n, first=first)
        except Exception as exc:  # noqa: BLE001 - a thumbnail never fails the run
            return [Pic(None, note=_short(exc))], {}
        pics = []
        for k, (data, w, h, t) in enumerate(frames):
            # one there already stays (it may be from the probe's frame, kept by the journal
            # or the cache): this decode is for the times and metadata of the row
            pic = self._cached(f"{key}-{k}") or self._pic(f"{key}-{k}", data, w, h)
            pic.label = _time_label(t)
            pics.append(pic)
        return pics, meta

    def prune(self) -> None:
        """Remove thumbnails this run did not use (inputs no longer named, changed files)."""
        if self.folder is None:
            return
        with contextlib.suppress(OSError):
            for p in self.folder.iterdir():
                # only names this class gives (a thumbnail, a row record): anything else in the
                # folder is left as it is
                if p.name not in self.used and _THUMB_NAME.fullmatch(p.name):
                    with contextlib.suppress(OSError):
                        p.unlink()


_THUMB_NAME = re.compile(r"[0-9a-f]{32}\.jpg|[0-9a-f]{40}\.row\.json")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _time_label(t: float) -> str:
    if t >= 60:
        m, s = divmod(t, 60)
        return f"{int(m)}:{s:06.3f}"
    return f"{t:.3f} s"


# --- the rows of the page ------------------------------------------------------------------


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


def _file_size(path: str | os.PathLike[str]) -> int | None:
    try:
        p = Path(path)
        if p.is_dir():
            from ..resource import frame_files

            return sum(m.stat().st_size for m in frame_files(p))
        return p.stat().st_size
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
    return message_of(errors[0]) if errors else (message_of(findings[0]) if findings else
                                                 "no result")


def _is_video_file(line: Mapping[str, Any]) -> bool:
    part = line.get("part") or {}
    return isinstance(part, Mapping) and ("video_url" in part or isinstance(part.get("video"),
                                                                           str))


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
        def one(p: Pic | None) -> Any:
            return None if p is None else [p.src, p.width, p.height, p.label, p.note]

        return {"before": "after" if self.before is self.after and self.before is not None
                else one(self.before), "after": one(self.after),
                "sheet": [one(p) for p in self.sheet], "sheet_total": self.sheet_total,
                "strip": [one(p) for p in self.strip], "meta": self.meta}

    @classmethod
    def from_json(cls, rec: Mapping[str, Any]) -> Pics:
        def one(v: Any) -> Pic | None:
            return None if v is None else Pic(v[0], int(v[1]), int(v[2]), str(v[3]), str(v[4]))

        after = one(rec["after"])
        sheet = [p for v in rec["sheet"] if (p := one(v)) is not None]
        strip = [p for v in rec["strip"] if (p := one(v)) is not None]
        # the same picture twice is one object, as when it was made (the page shows it once)
        if after is not None and sheet and after.src == sheet[0].src:
            after = sheet[0]
        elif after is not None and strip and after.src == strip[0].src:
            after = strip[0]
        before = after if rec["before"] == "after" else one(rec["before"])
        return cls(before, after, sheet, int(rec["sheet_total"]), strip, dict(rec["meta"]))

    def pictures(self) -> list[Pic]:
        return [p for p in (self.before, self.after, *self.sheet, *self.strip) if p is not None]


def _pics_of(line: Mapping[str, Any], source: str | None, out: Path, thumbs: Thumbs,
             previews: Mapping[int | str, Any] | None = None) -> Pics:
    """The pictures of a parts.jsonl line: its outputs' and, where they differ, its input's.
    ``previews``: prepare's previews of the outputs, by index, where it had them."""
    previews = previews or {}
    findings = [f for f in line.get("findings") or [] if isinstance(f, Mapping)]
    outputs = [str(o) for o in line.get("outputs") or []]
    ok = bool(line.get("ok"))
    changes = changes_of(line)
    kind = str(line.get("kind") or "other")
    pics = Pics()
    in_file = _first_member(source) if source else None
    if not ok and {code_of(f) for f in findings} & UNDECODABLE:
        pics.before = Pic(None, note="cannot be decoded")  # as prep found: not tried again
        return pics
    timestamps = line.get("timestamps")
    if ok and outputs and (isinstance(timestamps, list) or kind == "frames"):
        pics.sheet_total = len(outputs)
        for i in even_sample(len(outputs)):
            pic = thumbs.image(out / outputs[i], previews.get(i))
            t = timestamps[i] if isinstance(timestamps, list) and i < len(timestamps) else None
            pic.label = _time_label(float(t)) if isinstance(t, int | float) else f"#{i + 1}"
            pics.sheet.append(pic)
        pics.after = pics.sheet[0]
        if kind == "video":
            pics.before = pics.sheet[0]  # the video's first frame sent: no decode of the input
        elif in_file:
            pics.before = thumbs.image(in_file)
        return pics
    if ok and _is_video_file(line) and outputs:
        pics.strip, pics.meta = thumbs.video(out / outputs[0], STRIP_FRAMES, previews.get(0))
        # remuxed, transcoded or untouched: at 256 px the input's first frame is the output's
        # (not decoded again: the input may be 4K HEVC)
        pics.after = pics.before = pics.strip[0]
        return pics
    if ok and outputs:
        pics.after = thumbs.image(out / outputs[0], previews.get(0) if kind == "image" else None)
    elif ok:
        pics.after = Pic(None, note="sent as a URL")
    if in_file:
        if kind == "video" or (kind == "other" and _looks_video(in_file)):
            pics.before = _video_first(thumbs, in_file, previews.get("input"))
        elif (ok and not set(changes) - SAME_PICTURE and pics.after is not None
              and pics.after.src):
            # untouched, or only re-encoded/converted/resized: at 256 px the same picture, so
            # the input (maybe a 40 MP PNG) is not decoded again
            pics.before = pics.after
        else:
            pics.before = thumbs.image(in_file)
    return pics


def _prep_row(line: Mapping[str, Any], source: str | None, out: Path, pics: Pics,
              max_frames: int | None) -> Row:
    findings = [f for f in line.get("findings") or [] if isinstance(f, Mapping)]
    outputs = [str(o) for o in line.get("outputs") or []]
    ok = bool(line.get("ok"))
    changes = changes_of(line)
    row = Row(name=displayable(str(line.get("path") or source or "?")),
              status="failed" if not ok else ("changed" if changes else "unchanged"),
              kind=str(line.get("kind") or "other"), changes=changes,
              fixes=words_of(line), findings=findings)
    row.bytes_in = _file_size(source) if source else None
    row.bytes_out = sum(s for o in outputs if (s := _file_size(out / o)) is not None)
    tokens = line.get("tokens")
    if isinstance(tokens, Mapping) and isinstance(tokens.get("estimate"), int):
        row.tokens = tokens["estimate"]
    if not ok:
        row.reason = _reason(findings)
        row.bytes_out = None
    row.before, row.after = pics.before, pics.after
    row.sheet, row.sheet_total, row.strip = pics.sheet, pics.sheet_total, pics.strip
    part = line.get("part") or {}
    if row.sheet:
        fps = line.get("fps") or (part.get("fps") if isinstance(part, Mapping) else None)
        row.video = f"{len(outputs)} frames" + (f" at {float(fps):.4g} fps" if fps else "")
    elif row.strip:
        meta = pics.meta
        mf = part.get("max_frames") if isinstance(part, Mapping) else None
        bits = []
        if meta.get("duration"):
            bits.append(f"{meta['duration']:.2f} s")
        if meta.get("width"):
            bits.append(f"{meta['width']}x{meta['height']}")
        if meta.get("fps"):
            bits.append(f"{meta['fps']:.4g} fps in the file")
        row.video = " · ".join(bits)
        sampling = []
        if line.get("fps"):
            sampling.append(f"fps {float(line['fps']):g}")
        mf = mf if mf is not None else max_frames
        if mf is not None:
            sampling.append(f"max_frames {mf}")
        row.sampling = " · ".join(sampling)
    return row


def _looks_video(path: str) -> bool:
    return Path(path).suffix.lower() in {".mp4", ".mov", ".mkv", ".avi", ".webm", ".ts", ".flv",
                                         ".wmv", ".m4v", ".mpg", ".mpeg", ".3gp"}


def _video_first(thumbs: Thumbs, path: str, first: Any = None) -> Pic:
    pics, _ = thumbs.video(path, 1, first)
    return pics[0]


# --- prep: DIR/report.html ---------------------------------------------------------------------


def _lines(parts: Path) -> Iterator[dict[str, Any]]:
    """parts.jsonl lines without their parts' data (a data URL can be megabytes)."""
    with open(parts, encoding="utf-8", errors="surrogateescape") as fh:
        for text in fh:
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict):
                yield _without_data(line)


def _without_data(line: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(line)
    part = line.get("part")
    if isinstance(part, Mapping):  # keep what kind of part it is, not its data
        out["part"] = {k: (v if k in ("fps", "max_frames", "type") else
                           [] if isinstance(v, list) else "...") for k, v in part.items()}
    return out


# --- thumbnails made as each input is prepared ----------------------------------------------
#
# A worker that has just prepared an input (its files still in the page cache) makes that
# input's thumbnails and writes what the row shows to ``thumbs/<line hash>.row.json``; the
# report at the run's end only reads these records. The record is named by the line (without
# its data): an input the journal or the cache served has the same line, so its record is
# found again; a record that is missing, or names a thumbnail that is gone, is made anew.

_ROW_VERSION = "1"


def _row_key(line: Mapping[str, Any]) -> str:
    text = json.dumps(_without_data(line), sort_keys=True, ensure_ascii=False, default=str)
    h = hashlib.sha256(f"{_ROW_VERSION}\0{THUMB_SIDE}\0".encode())
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


def _make_row(thumbs: Thumbs, key: str, line: Mapping[str, Any], source: str | None,
              out: Path, previews: Mapping[int | str, Any] | None = None) -> Pics:
    from ..output import atomic_write

    pics = _pics_of(line, source, out, thumbs, previews)
    rec = pics.to_json()
    atomic_write(thumbs.folder / f"{key}.row.json",  # type: ignore[operator]
                 json.dumps(rec, sort_keys=True).encode())
    thumbs.used.add(f"{key}.row.json")
    return pics


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
        key = _row_key(line)
        pics = _load_row(thumbs, key)
        if pics is None:
            pics = _make_row(thumbs, key, line, source, out, previews)
        return [thumbs.folder / p.src[len(thumbs.prefix):] for p in pics.pictures()
                if p.src and p.src.startswith(thumbs.prefix)]
    except Exception:  # noqa: BLE001 - the report at the end makes what is missing
        return []


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
    from ..output import atomic_write

    out = Path(out_dir)
    thumbs = Thumbs(out / THUMB_FOLDER, prefix=THUMB_FOLDER.as_posix() + "/")
    lines = list(_lines(out / PARTS_FILE))
    srcs = list(sources) if sources is not None and len(sources) == len(lines) else [
        str(line.get("path") or "") for line in lines]
    max_frames = getattr(settings, "max_frames", None)
    workers = jobs or min(4, os.cpu_count() or 1)

    def make(i: int) -> Row:
        try:
            if thumbs.folder is None:  # no folder of ours to keep them in: pictures inline
                pics = _pics_of(lines[i], srcs[i] or None, out, thumbs)
            else:
                key = _row_key(lines[i])
                pics = _load_row(thumbs, key)
                if pics is None:  # not made by a worker (a failed worker, a resumed run)
                    pics = _make_row(thumbs, key, lines[i], srcs[i] or None, out)
            return _prep_row(lines[i], srcs[i] or None, out, pics, max_frames)
        except Exception as exc:  # noqa: BLE001 - one odd line must not lose the page
            line = lines[i]
            return Row(name=displayable(str(line.get("path") or srcs[i])),
                       status="failed" if not line.get("ok") else "unchanged",
                       reason=f"not shown: {_short(exc)}",
                       findings=[f for f in line.get("findings") or [] if isinstance(f, Mapping)])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(make, range(len(lines))))
    thumbs.prune()
    counts = count_changes(lines)
    prepared = sum(1 for line in lines if line.get("ok"))
    totals = [("inputs", f"{len(lines):,}"), ("prepared", f"{prepared:,}"),
              ("failed", f"{len(lines) - prepared:,}"),
              ("bytes in", _human(sum(r.bytes_in or 0 for r in rows))),
              ("bytes out", _human(sum(r.bytes_out or 0 for r in rows))),
              ("estimated tokens", f"~{sum(r.tokens or 0 for r in rows):,}")]
    context = _context(settings)
    path = Path(page) if page is not None else out / REPORT_FILE
    footer = _place_pictures(rows, thumbs, path.parent, inline_max)
    # nothing run-specific (folder name, time taken): the same run gives the same page
    text = _page("mediaprep prep", rows, totals, counts, context,
                 statuses=("failed", "changed", "unchanged"), footer=footer)
    atomic_write(path, text.encode("utf-8", "surrogateescape"))
    return path


def _place_pictures(rows: Sequence[Row], thumbs: Thumbs, page_dir: Path, inline_max: int
                    ) -> str:
    """Point the rows' pictures where the page finds them: inline while the thumbnails total
    at most ``inline_max`` bytes, else linked from ``page_dir`` into the thumbnail folder.
    Returns the page's note on where its pictures are ("" when inline)."""
    if thumbs.folder is None:  # made inline already
        return ""
    pics: dict[int, Pic] = {}  # one picture may stand for two (before is after): once each
    for row in rows:
        for pic in (row.before, row.after, *row.sheet, *row.strip):
            if pic is not None and pic.src and pic.src.startswith(thumbs.prefix):
                pics.setdefault(id(pic), pic)
    names = {pic.src[len(thumbs.prefix):] for pic in pics.values()}  # type: ignore[index]
    sizes = {n: s for n in names if (s := _file_size(thumbs.folder / n)) is not None}
    if sum(sizes.values()) <= inline_max:
        for pic in pics.values():
            name = pic.src[len(thumbs.prefix):]  # type: ignore[index]
            try:
                data = (thumbs.folder / name).read_bytes()
            except OSError as exc:
                pic.src, pic.note = None, _short(exc)
                continue
            pic.src = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
        return ""
    from urllib.parse import quote

    link = Path(os.path.relpath(thumbs.folder, page_dir)).as_posix()
    for pic in pics.values():
        pic.src = quote(f"{link}/{pic.src[len(thumbs.prefix):]}")  # type: ignore[index]
    return (f"pictures are in {link}/ beside this page "
            "(copy or upload the page together with that folder)")


def _context(settings: Any) -> str:
    if settings is None:
        return ""
    bits = [f"{k} {getattr(settings, k)}" for k in ("target", "model", "dialect", "transport")
            if getattr(settings, k, None)]
    return " · ".join(bits)


# --- check --format html -----------------------------------------------------------------------


def render(report: RunReport, *, strict: bool = False) -> str:
    """``check --format html``: the page for a check report (the object of docs/formats.md,
    "check --format json").

    Inputs that can be read from here get an inline thumbnail (data URI); others a placeholder.
    """
    thumbs = Thumbs(None)
    files = files_of(report)

    def make(file: Mapping[str, Any]) -> Row:
        findings = findings_of(file)
        failed = file_failed(file, strict=strict)
        status = "failed" if failed else (
            "warning" if any(severity_of(f) == "warning" for f in findings) else "passed")
        name = path_of(file)
        info = file.get("info") if isinstance(file.get("info"), Mapping) else {}
        row = Row(name=displayable(name), status=status, kind=str(file.get("kind") or "other"),
                  findings=findings)
        row.bytes_in = info.get("bytes") if isinstance(info.get("bytes"), int) else None
        tokens = file.get("tokens")
        if isinstance(tokens, Mapping) and isinstance(tokens.get("estimate"), int):
            row.tokens = tokens["estimate"]
        if failed:
            row.reason = _reason(findings)
        dims = f"{info.get('width')}x{info.get('height')}" if info.get("width") else ""
        row.details = " ".join(str(x) for x in (row.kind, dims, info.get("format") or "") if x)
        if info.get("duration"):
            row.details += f" · {float(info['duration']):.2f} s"
        try:
            src = _first_member(name) if os.path.exists(name) else None
            if src is None:
                row.before = Pic(None, note="not readable from here")
            elif row.kind == "video" or (row.kind == "other" and _looks_video(src)):
                row.before = _video_first(thumbs, src)
            else:
                row.before = thumbs.image(src)
        except Exception as exc:  # noqa: BLE001 - a thumbnail never fails the report
            row.before = Pic(None, note=_short(exc))
        return row

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        rows = list(pool.map(make, files))
    s = summary_of(report, strict=strict)
    # the same three statuses as the tabs (a file with warnings is not counted as passed)
    n_status = {st: sum(1 for r in rows if r.status == st) for st in ("passed", "warning",
                                                                       "failed")}
    totals = [("inputs", f"{s['files']:,}"), ("passed", f"{n_status['passed']:,}"),
              ("warning", f"{n_status['warning']:,}"), ("failed", f"{n_status['failed']:,}"),
              ("error findings", f"{s['errors']:,}"),
              ("warning findings", f"{s['warnings']:,}"),
              ("bytes", _human(sum(r.bytes_in or 0 for r in rows))),
              ("estimated tokens", f"~{sum(r.tokens or 0 for r in rows):,}")]
    context = " · ".join(f"{k} {report[k]}" for k in ("target", "dialect", "transport")
                         if report.get(k))
    return _page("mediaprep check", rows, totals, None, context,
                 statuses=("failed", "warning", "passed"), footer="")


# --- the page ----------------------------------------------------------------------------------


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _e(text: Any) -> str:
    s = str(text)
    if not s.isprintable():  # control characters, lone surrogates (undecodable names)
        s = displayable(s)
    return html.escape(s, quote=True)


def _img(pic: Pic | None, alt: str, cls: str = "") -> str:
    if pic is None:
        return ""
    if pic.src is None:
        return (f'<div class="ph {_e(cls)}" role="img" aria-label="{_e(alt)}: no picture">'
                f'<span>{_e(pic.note or "no picture")}</span></div>')
    return (f'<img class="{_e(cls)}" src="{_e(pic.src)}" width="{_e(pic.width)}" '
            f'height="{_e(pic.height)}" loading="lazy" decoding="async" alt="{_e(alt)}">')


_SEV_ORDER = {"error": 0, "warning": 1, "info": 2}


def _row_html(row: Row, index: int) -> str:
    out: list[str] = []
    out.append(f'<article class="row st-{_e(row.status)}" data-status="{_e(row.status)}" '
               f'data-name="{_e(row.name.lower())}" id="i{int(index)}">')
    # pictures (none to show: a narrow column with the placeholder's reason)
    shown = [p for p in (row.before, row.after) if p is not None]
    bare = not any(p.src for p in shown)
    out.append('<div class="pics bare">' if bare else '<div class="pics">')
    if row.before is not None and row.before is row.after and row.status == "unchanged":
        out.append(f'<figure>{_img(row.after, f"{row.name} as the model gets it", "thumb")}'
                   f'<figcaption>sent as it is</figcaption></figure>')
    elif row.before is not None:
        out.append(f'<figure>{_img(row.before, f"{row.name} as given", "thumb")}'
                   f'<figcaption>input</figcaption></figure>')
    if row.after is not None and not (row.before is row.after and row.status == "unchanged"):
        out.append('<div class="arrow" aria-hidden="true">&rarr;</div>')
        out.append(f'<figure>{_img(row.after, f"{row.name} as the model gets it", "thumb")}'
                   f'<figcaption>model gets</figcaption></figure>')
    out.append("</div>")
    # words
    out.append('<div class="body">')
    badge = {"failed": "failed", "changed": "changed", "unchanged": "unchanged",
             "passed": "passed", "warning": "warning"}[row.status]
    out.append(f'<h2><span class="badge b-{_e(row.status)}">{_e(badge)}</span> '
               f'<span class="name">{_breakable(row.name)}</span></h2>')
    meta = [_e(row.details or row.kind)]
    if row.bytes_in is not None:
        meta.append(_e(_human(row.bytes_in)) + (f" &rarr; {_e(_human(row.bytes_out))}"
                                                if row.bytes_out is not None else ""))
    if row.tokens is not None:
        meta.append(_e(f"~{row.tokens:,} tokens (estimate)"))
    out.append(f'<p class="meta">{" · ".join(meta)}</p>')
    findings = list(row.findings)
    if row.reason:
        out.append(f'<p class="reason">{_e(_strip_name(row.reason, row))}</p>')
        # the reason is the first error: not said twice, but its code is kept
        first = next((f for f in findings if message_of(f) == row.reason), None)
        if first is not None:
            findings.remove(first)
            out[-1] = (f'<p class="reason"><code>{_e(code_of(first))}</code> '
                       f'{_e(_strip_name(row.reason, row))}</p>')
    if row.changes:
        chips = "".join(f'<span class="chip k-{_e(k.replace(" ", "-"))}">{_e(k)}</span>'
                        for k in row.changes)
        out.append(f'<div class="chips">{chips}</div>')
    if row.fixes:
        out.append('<ul class="fixes">' + "".join(f"<li>{_e(f)}</li>" for f in row.fixes)
                   + "</ul>")
    if findings:
        items = []
        for f in sorted(findings, key=lambda f: _SEV_ORDER.get(severity_of(f), 0)):
            sev = severity_of(f)
            if sev == "error" and row.status in ("changed", "unchanged"):
                sev = "fixed"  # prepared: the error was an input's, and prep resolved it
            items.append(f'<li class="sev-{_e(sev)}"><span class="sev">{_e(sev)}</span> '
                         f'<code>{_e(code_of(f))}</code> {_e(_strip_name(message_of(f), row))}'
                         "</li>")
        out.append('<ul class="findings">' + "".join(items) + "</ul>")
    if row.strip:
        sampled = f", sampled by the server at {row.sampling}" if row.sampling else ""
        n = len(row.strip)
        preview = (f"{n} frames spread over the file, a preview here: the model gets the "
                   "frames the server samples" if n > 1 else "its first frame, a preview")
        out.append(f'<p class="vid">sent as a video file{_e(sampled)}: {_e(row.video)}</p>'
                   '<div class="strip">'
                   + "".join(f'<figure>{_img(p, f"{row.name} at {p.label}", "fr")}'
                             f'<figcaption>{_e(p.label)}</figcaption></figure>' for p in row.strip)
                   + f'</div><p class="vid note">{_e(preview)}</p>')
    if row.sheet:
        shown = len(row.sheet)
        count = (f"all {shown} frames sent" if shown == row.sheet_total else
                 f"{shown} of the {row.sheet_total} frames sent (an even sample)")
        out.append(f'<p class="vid">sent as frames: {_e(row.video)}; {_e(count)}</p>'
                   '<div class="sheet">'
                   + "".join(f'<figure>{_img(p, f"{row.name} frame at {p.label}", "fr")}'
                             f'<figcaption>{_e(p.label)}</figcaption></figure>' for p in row.sheet)
                   + "</div>")
    out.append("</div></article>")
    return "".join(out)


def _breakable(name: str) -> str:
    """A file name, escaped, that a narrow screen wraps after ``/ _ - .`` (not mid-word: CSS
    breaks a long name anywhere only when a part of it is wider than the line)."""
    return re.sub(r"([/_.-])", r"\1<wbr>", _e(name))


def _strip_name(message: str, row: Row) -> str:
    prefix = row.name + ": "
    return message[len(prefix):] if message.startswith(prefix) else message


_CSS = """
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2433;--mute:#667085;--line:#e4e7ec;--err:#c0362c;
--warn:#b54708;--ok:#067647;--chg:#3538cd;--info:#475467}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#101828;color:#fff;padding:22px 28px 18px}
header h1{margin:0 0 2px;font-size:21px;font-weight:650;letter-spacing:.2px}
header .ctx{color:#98a2b3;font-size:13px}
.totals{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0 12px}
.total{background:#1d2939;border-radius:10px;padding:9px 14px;min-width:110px}
.total b{display:block;font-size:20px;font-weight:650}
.total span{color:#98a2b3;font-size:12px;text-transform:uppercase;letter-spacing:.6px}
.kinds{display:flex;flex-wrap:wrap;gap:6px}
.kinds span{background:#344054;border-radius:999px;padding:3px 11px;font-size:13px}
.kinds span.zero{background:transparent;color:#667085;border:1px solid #344054}
nav{position:sticky;top:0;z-index:2;background:rgba(246,247,249,.96);border-bottom:1px solid
var(--line);padding:10px 28px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
nav button{font:inherit;font-size:14px;border:1px solid var(--line);background:#fff;
border-radius:999px;padding:4px 13px;cursor:pointer;color:var(--ink)}
nav button[aria-pressed=true]{background:var(--ink);color:#fff;border-color:var(--ink)}
nav input{font:inherit;font-size:14px;margin-left:auto;border:1px solid var(--line);
border-radius:8px;padding:5px 10px;min-width:240px}
nav .shown{color:var(--mute);font-size:13px}
main{padding:16px 28px 40px;max-width:1500px}
.row{display:flex;gap:22px;background:var(--card);border:1px solid var(--line);
border-left:4px solid var(--line);border-radius:10px;padding:16px 18px;margin:0 0 12px}
.row.st-failed{border-left-color:var(--err)}.row.st-changed{border-left-color:var(--chg)}
.row.st-warning{border-left-color:var(--warn)}.row.st-passed,.row.st-unchanged{
border-left-color:var(--ok)}
.pics{display:flex;align-items:center;justify-content:center;gap:10px;flex:none;width:460px}
figure{margin:0;text-align:center}
figcaption{font-size:12px;color:var(--mute);margin-top:4px}
img.thumb,.ph.thumb{max-width:200px;max-height:200px;width:auto;height:auto;border-radius:6px;
background:repeating-conic-gradient(#eef0f3 0 25%,#fff 0 50%) 50%/16px 16px;
box-shadow:0 0 0 1px var(--line);display:block;margin:auto}
.ph{display:flex;align-items:center;justify-content:center;width:150px;height:110px;
background:#f2f4f7;color:var(--mute);font-size:12px;border-radius:6px;padding:8px;
border:1px dashed #d0d5dd}
.pics.bare{width:150px}.pics.bare .ph{height:auto;min-height:44px}
.arrow{color:#98a2b3;font-size:22px}
.body{min-width:0;flex:1}
h2{font-size:16px;margin:0 0 4px;font-weight:600;overflow-wrap:anywhere}
.badge{font-size:11px;text-transform:uppercase;letter-spacing:.6px;border-radius:5px;
padding:2px 7px;vertical-align:2px;font-weight:650}
.b-failed{background:#fee4e2;color:var(--err)}.b-changed{background:#e0eaff;color:var(--chg)}
.b-unchanged,.b-passed{background:#dcfae6;color:var(--ok)}.b-warning{background:#fef0c7;
color:var(--warn)}
.meta{margin:0 0 8px;color:var(--mute);font-size:13px}
.reason{margin:0 0 8px;color:var(--err);font-weight:550}
.reason code{background:#fee4e2;border-radius:4px;padding:1px 5px;font-size:13px}
.chips{display:flex;gap:6px;flex-wrap:wrap;margin:0 0 6px}
.chip{background:#eef4ff;color:var(--chg);border-radius:999px;padding:1px 10px;font-size:13px;
font-weight:550}
ul{margin:4px 0 6px;padding-left:18px}
.fixes li{color:#344054;font-size:14px}
.findings{list-style:none;padding:0}
.findings li{font-size:14px;margin:3px 0}
.findings code{background:#f2f4f7;border-radius:4px;padding:1px 5px;font-size:13px}
.sev{display:inline-block;min-width:58px;font-size:11px;text-transform:uppercase;
letter-spacing:.5px;font-weight:650}
.sev-error .sev{color:var(--err)}.sev-fixed .sev{color:var(--ok)}
.sev-warning .sev{color:var(--warn)}.sev-info .sev{color:var(--info)}
.vid{margin:8px 0 6px;font-size:13px;color:#344054}.vid.note{color:var(--mute)}
.strip,.sheet{display:flex;flex-wrap:wrap;gap:8px}
img.fr,.ph.fr{max-width:128px;max-height:96px;width:auto;height:auto;border-radius:4px;
box-shadow:0 0 0 1px var(--line);display:block}
.sheet figcaption,.strip figcaption{font-variant-numeric:tabular-nums}
footer{color:var(--mute);font-size:12px;padding:0 28px 30px}
.hide{display:none}
@media (max-width:860px){.row{flex-direction:column}.pics{width:auto}
.pics figure{flex:0 1 auto;min-width:0}img.thumb{max-width:100%;height:auto}
main,nav,header{padding-left:14px;padding-right:14px}.row{padding:12px}
nav input{min-width:0;flex:1 1 160px}}
"""

_JS = """
(function(){
var rows=[].slice.call(document.querySelectorAll('article.row'));
var want='all',q='',shown=document.getElementById('shown');
function apply(){var n=0;rows.forEach(function(r){
var ok=(want==='all'||r.dataset.status===want)&&(!q||r.dataset.name.indexOf(q)>=0);
r.classList.toggle('hide',!ok);if(ok)n++});shown.textContent=n+' shown'}
document.querySelectorAll('nav button').forEach(function(b){b.addEventListener('click',
function(){want=b.dataset.want;document.querySelectorAll('nav button').forEach(function(o){
o.setAttribute('aria-pressed',o===b?'true':'false')});apply()})});
document.getElementById('q').addEventListener('input',function(e){
q=e.target.value.toLowerCase();apply()});apply()})();
"""


def _page(title: str, rows: list[Row], totals: list[tuple[str, str]],
          counts: Mapping[str, int] | None, context: str, *, statuses: tuple[str, ...],
          footer: str) -> str:
    indexed = sorted(enumerate(rows), key=lambda ir: (ir[1].status != "failed", ir[0]))
    n_status = {s: sum(1 for r in rows if r.status == s) for s in statuses}
    parts = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width,initial-scale=1">',
             # no request may leave the page: not even a favicon lookup
             '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
             "img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
             '<link rel="icon" href="data:,">',
             f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
             f"<header><h1>{_e(title)}</h1>"]
    if context:
        parts.append(f'<div class="ctx">{_e(context)}</div>')
    parts.append('<div class="totals">' + "".join(
        f'<div class="total"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for k, v in totals)
        + "</div>")
    if counts is not None:
        parts.append('<div class="kinds" aria-label="changes by kind">' + "".join(
            f'<span class="{"" if counts.get(k) else "zero"}">{_e(counts.get(k, 0))} {_e(k)}</span>'
            for k in KINDS) + "</div>")
    parts.append("</header>")
    buttons = [("all", f"all {len(rows):,}")] + [(s, f"{s} {n_status[s]:,}") for s in statuses]
    parts.append("<nav>" + "".join(
        f'<button type="button" data-want="{_e(w)}" '
        f'aria-pressed="{"true" if w == "all" else "false"}">{_e(label)}</button>'
        for w, label in buttons)
        + '<span class="shown" id="shown"></span>'
        '<input id="q" type="search" placeholder="filter by name" aria-label="filter by name">'
        "</nav><main>")
    for i, row in indexed:
        parts.append(_row_html(row, i))
    if not rows:
        parts.append('<p class="meta">No inputs.</p>')
    parts.append(f"</main><footer>mediaprep report{' · ' + _e(footer) if footer else ''}"
                 f"</footer><script>{_JS}</script></body></html>\n")
    return "".join(parts)



def write_prep_report_safely(out_dir: str | os.PathLike[str], sources: Sequence[str],
                             settings: Any = None,
                             page: str | os.PathLike[str] | None = None) -> Path | None:
    """:func:`write_prep_report` for the ``prep`` command: a report that cannot be written is a
    warning on stderr, never a failed run (the outputs and parts.jsonl are already there).
    Returns the report's path, or None."""
    try:
        return write_prep_report(out_dir, sources, settings=settings, page=page)
    except Exception as exc:  # noqa: BLE001 - the report is a view of the run, not the run
        import click

        name = page if page is not None else REPORT_FILE
        click.echo(displayable(f"prep: warning: {name} not written: {exc}"), err=True)
        return None
