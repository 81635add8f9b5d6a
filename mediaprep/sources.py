"""Inputs in every shape the library takes, as one :class:`Source`.

A path, bytes, a binary file object, a PIL image, a list of frames (paths or images), or an
http(s) URL (fetched only when the caller allows it). Nothing here decodes pixels.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Union

from PIL import Image

SourceLike = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], Image.Image,
                   Sequence[Any], "Source"]

FRAME_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "heic",
                              "heif", "gif", "avif"})


class SourceError(ValueError):
    """An input mediaprep cannot take at all (wrong type, URL not allowed)."""


@dataclass
class Source:
    """One input. Exactly one of ``path``, ``data``, ``image``, ``frames``, ``url`` is set."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    image: Image.Image | None = None
    frames: list[Source] | None = None
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        if self.path is not None:
            return self.path.stat().st_size
        if self.data is not None:
            return len(self.data)
        return 0

    @property
    def extension(self) -> str | None:
        suffix = Path(self.name).suffix
        return suffix[1:].lower() if suffix else None

    def open(self) -> IO[bytes]:
        """A fresh binary stream positioned at the start (caller closes it)."""
        if self.path is not None:
            return open(self.path, "rb")
        if self.data is not None:
            return io.BytesIO(self.data)
        raise SourceError(f"{self.name}: no bytes to read")

    def head(self, n: int) -> bytes:
        if self.path is not None:
            with open(self.path, "rb") as fh:
                return fh.read(n)
        if self.data is not None:
            return self.data[:n]
        return b""

    def tail(self, n: int) -> bytes:
        if self.path is not None:
            with open(self.path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                end = fh.tell()
                fh.seek(max(0, end - n))
                return fh.read()
        if self.data is not None:
            return self.data[-n:]
        return b""

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is not None:
            return self.path.read_bytes()
        raise SourceError(f"{self.name}: no bytes to read")


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def to_source(value: SourceLike, *, name: str | None = None) -> Source:
    """Normalise any accepted input into a :class:`Source` (no I/O beyond stat for paths)."""
    if isinstance(value, Source):
        return value
    if isinstance(value, Image.Image):
        label = name or getattr(value, "filename", "") or "<image>"
        return Source(name=str(label), image=value)
    if isinstance(value, bytes | bytearray | memoryview):
        return Source(name=name or "<bytes>", data=bytes(value))
    if is_url(value):
        return Source(name=name or str(value), url=str(value))
    if isinstance(value, str | os.PathLike):
        p = Path(value)
        if p.is_dir():
            members = frame_files(p)
            return Source(name=name or str(value), path=p,
                          frames=[to_source(m) for m in members])
        return Source(name=name or str(value), path=p)
    if hasattr(value, "read"):
        label = name or getattr(value, "name", None) or "<stream>"
        fname = getattr(value, "name", None)
        if isinstance(fname, str) and os.path.isfile(fname) and hasattr(value, "seek"):
            # a real file: read it from disk so huge files are not pulled into memory
            return Source(name=str(label), path=Path(fname))
        return Source(name=str(label), data=value.read())
    if isinstance(value, Sequence) and not isinstance(value, str):
        frames = [to_source(v, name=f"{name or 'frames'}[{i}]") if not _named(v) else to_source(v)
                  for i, v in enumerate(value)]
        return Source(name=name or "<frames>", frames=frames)
    raise SourceError(f"cannot take an input of type {type(value).__name__}")


def _named(v: Any) -> bool:
    return isinstance(v, str | os.PathLike) or (isinstance(v, Image.Image)
                                                and bool(getattr(v, "filename", "")))


def frame_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (frame_2 before frame_10)."""
    files = [p for p in folder.iterdir()
             if p.is_file() and p.suffix[1:].lower() in FRAME_EXTENSIONS]
    return sorted(files, key=_natural_key)


def _natural_key(p: Path) -> list[Any]:
    import re

    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]
