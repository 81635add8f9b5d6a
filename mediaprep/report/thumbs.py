"""The report's pictures: small JPEGs of inputs and outputs, named by the file's bytes, kept in
``DIR/report_files/`` or carried inline as data URIs (:mod:`mediaprep.report.html`). Pixels come
from the backends (the report decodes nothing itself); a picture that cannot be made is a
placeholder whose note says why in words, never Python's error text.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends.pillow import (
    PREVIEW_MAX_FRAMES,
    PREVIEW_SIDE,
    PREVIEW_VERSION,
    file_preview,
    jpeg_frame_size,
    preview_image,
    preview_jpeg,
    preview_sample,
)
from ..output import is_link_or_not_folder

THUMB_SIDE = PREVIEW_SIDE  #: long side of a thumbnail, px
MAX_SHEET_FRAMES = PREVIEW_MAX_FRAMES  #: frames shown on a contact sheet; past it an even sample
even_sample = preview_sample
HASH_WHOLE_BYTES = 8 << 20  # files up to this size are hashed whole to name their thumbnail


#: a thumbnail's file name: 32 hex digits of its key (:meth:`Thumbs._key`), ``-N`` for a strip
_PICTURE_NAME = re.compile(r"[0-9a-f]{32}(?:-[0-9]{1,4})?\.jpg")


def is_thumbnail_name(name: str) -> bool:
    """Whether ``name`` is a thumbnail's file name as the report makes them."""
    return _PICTURE_NAME.fullmatch(name) is not None


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


_HEADER_BYTES = 2048  # a thumbnail's frame header is within its first ~200 bytes


def thumbnail_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """A thumbnail's width and height from its JPEG frame header, read from the file's first
    bytes without decoding (the report looks up one a row; Pillow's open costs 4x more).
    Raises ``OSError`` when it cannot be read, ``ValueError`` when it is not a JPEG whose
    frame header is within those bytes."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        head = os.read(fd, _HEADER_BYTES)
    finally:
        os.close(fd)
    size = jpeg_frame_size(head)
    if size is None:
        raise ValueError("no JPEG frame header in the first bytes")
    return size


def _own_folder(folder: Path) -> Path | None:
    """``folder``, made when it is missing (a worker asks once an input: one look, no mkdir
    when it is there); None when something else is there: a link (or a file) where the
    thumbnail folder goes is not ours to write into or prune, and the page then carries its
    pictures inline."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        return None if is_link_or_not_folder(folder) else folder  # another made it first
    return folder if stat.S_ISDIR(st.st_mode) else None


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _hash_to_end(h: Any, fd: int, offset: int, piece: int, limit: int | None = None) -> None:
    """Hash the bytes of ``fd`` from ``offset`` to its end (at most ``limit`` of them), read
    ``piece`` bytes at a time (a file's size and a byte: the whole file and its end in one)."""
    left = limit
    while left is None or left > 0:
        data = os.pread(fd, piece if left is None else min(piece, left), offset)
        if not data:
            return
        h.update(data)
        offset += len(data)
        if left is not None:
            left -= len(data)


class Thumbs:
    """Makes thumbnails: files under ``folder`` (linked as ``prefix`` + name), or data URIs when
    ``folder`` is None. A thumbnail already made for the same file (path, size, time) is reused;
    any failure gives a placeholder :class:`Pic` with the reason."""

    def __init__(self, folder: Path | None, prefix: str = "") -> None:
        self.folder = _own_folder(folder) if folder is not None else None
        self.prefix = prefix
        self.used: set[str] = set()

    def _key(self, path: str | os.PathLike[str], extra: str) -> str | None:
        """Named by the file's bytes (its size and, past 8 MiB, its first and last MiB), so
        the same run gives the same page: report.html is identical for identical outputs."""
        h = hashlib.sha256(f"{extra}\0{THUMB_SIDE}\0{PREVIEW_VERSION}\0".encode())
        try:
            fd = os.open(path, _READ_FLAGS)
        except OSError:
            return None
        try:  # a raw descriptor: a worker and the page hash one file an input
            size = os.fstat(fd).st_size
            h.update(str(size).encode())
            if size <= HASH_WHOLE_BYTES:
                _hash_to_end(h, fd, 0, size + 1)
            else:
                _hash_to_end(h, fd, 0, 1 << 20, limit=1 << 20)
                _hash_to_end(h, fd, max(0, size - (1 << 20)), 1 << 20)
        except OSError:
            return None
        finally:
            os.close(fd)
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
            w, h = thumbnail_size(self.folder / name)
        except (OSError, ValueError):  # missing or damaged: made again
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
            return Pic(None, note=no_preview(exc))

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
            pic.label = time_label(0.0)
            return [pic], {}
        try:
            frames, meta = video_thumbs(path, n, first=first)
        except Exception as exc:  # noqa: BLE001 - a thumbnail never fails the run
            return [Pic(None, note=no_preview(exc))], {}
        pics = []
        for k, (data, w, h, t) in enumerate(frames):
            # one there already stays (it may be from the probe's frame, kept by the journal
            # or the cache): this decode is for the times and metadata of the row
            pic = self._cached(f"{key}-{k}") or self._pic(f"{key}-{k}", data, w, h)
            pic.label = time_label(t)
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


#: the names :meth:`Thumbs.prune` may remove: thumbnails (a strip's too), row records and the
#: page's chunk files (:func:`chunk_name`)
_THUMB_NAME = re.compile(r"[0-9a-f]{32}(?:-[0-9]{1,4})?\.jpg|[0-9a-f]{40}\.row\.json|"
                         r"rows-[0-9]{6}\.js")
CHUNK_PREFIX = "rows-"  #: a chunk file's name: this, its number (6 digits, from 1), ``.js``


def chunk_name(k: int) -> str:
    """The file name of the page's chunk ``k`` (from 1) in the thumbnail folder."""
    return f"{CHUNK_PREFIX}{k:06d}.js"


def no_preview(exc: BaseException) -> str:
    """A placeholder's note for a preview that failed with ``exc``: words for the reader by the
    kind of failure, never the exception's own text (Python's, e.g. "'NoneType' object has no
    attribute 'width'", or a path and an errno)."""
    import av
    from PIL import Image, UnidentifiedImageError

    words = (
        ((Image.DecompressionBombError, MemoryError), "too many pixels to show"),
        ((FileNotFoundError,), "file not found"),
        ((PermissionError,), "the file cannot be read here"),
        ((UnidentifiedImageError,), "a format this page cannot show"),
        ((av.FFmpegError,), "the video cannot be decoded"),
        ((OSError,), "the file is damaged or cut short"),
    )
    for kinds, said in words:
        if isinstance(exc, kinds):
            return f"no preview: {said}"
    return "no preview: the picture cannot be decoded"


def time_label(t: float) -> str:
    if t >= 60:
        m, s = divmod(t, 60)
        return f"{int(m)}:{s:06.3f}"
    return f"{t:.3f} s"
