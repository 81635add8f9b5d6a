"""The file one cache entry is (:mod:`mediaprep.batch.cache`): its stored files' bytes one after
another, then its record (JSON), then the record's length:

    [file 0][file 1]...[record JSON]\\n[12 decimal digits: the record's length]\\n

One file an entry, written once and renamed into place: a cold put creates one file (no folder,
no file per output) and a hit opens one. The record lists each stored file's offset, size and
SHA-256; readers take bytes only at those places, so a file is never handed out whole from a
path and no output shares data with the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from typing import Any

CHUNK = 1 << 20  # 1 MiB pieces: bounded memory for a stored video, sha256 at full speed
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_TRAILER = 13  # "%012d\n": the record's length
_MAX_RECORD = 1 << 26  # 64 MiB: a length past this is damage, not a record to read


def write_file(fd: int, src: str | os.PathLike[str] | bytes) -> tuple[str, int]:
    """Append ``src`` (a file, or bytes) at ``fd``'s position; return its SHA-256 and size,
    hashed while it is copied (one read of ``src`` through one reused buffer)."""
    if isinstance(src, bytes):
        write_all(fd, src)
        return hashlib.sha256(src).hexdigest(), len(src)
    h = hashlib.sha256()
    size = 0
    fin = os.open(src, _READ_FLAGS)  # a raw descriptor: one file object less a stored file
    try:
        piece = buffer_size(fin)
        while data := os.read(fin, piece):
            h.update(data)
            write_all(fd, data)
            size += len(data)
    finally:
        os.close(fin)
    return h.hexdigest(), size


def buffer_size(fd: int) -> int:
    """A read buffer for the file open as ``fd``: CHUNK, or the file's size and a byte when it
    is a smaller plain file (most stored files are a few KB: a 1 MiB buffer an input was set to
    zero for nothing; the byte more sees the end of the file in the same read). A pipe or a
    device says no size: CHUNK."""
    st = os.fstat(fd)
    return min(CHUNK, st.st_size + 1) if stat.S_ISREG(st.st_mode) else CHUNK


def write_record(fd: int, text: str) -> None:
    """Append the record (ASCII JSON) and its length: the entry file is then complete."""
    body = text.encode("ascii") + b"\n"
    write_all(fd, body + b"%012d\n" % len(body))


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:  # a raw write may take less than asked
        view = view[os.write(fd, view):]


def read_record(fd: int) -> tuple[dict[str, Any], int]:
    """The record of the entry file open as ``fd`` and where its data ends (the record's
    first byte). Raises ``ValueError`` for a file that is not a whole entry."""
    size = os.fstat(fd).st_size
    tail = os.pread(fd, _TRAILER, size - _TRAILER) if size >= _TRAILER else b""
    if len(tail) != _TRAILER or not tail[:-1].isdigit() or tail[-1:] != b"\n":
        raise ValueError("no record at the end")
    length = int(tail[:-1])
    start = size - _TRAILER - length
    if length > _MAX_RECORD or start < 0:
        raise ValueError("a record length past the file")
    body = os.pread(fd, length, start)
    if len(body) != length:
        raise ValueError("cut short")
    meta = json.loads(body)
    if not isinstance(meta, dict):
        raise ValueError("the record is not an object")
    return meta, start


def check_file(fd: int, name: str, want: Mapping[str, Any], data_end: int) -> tuple[int, int]:
    """``(offset, size)`` of stored file ``name`` when its bytes hash to its recorded SHA-256;
    raises ``ValueError`` when they do not, or lie outside the data."""
    offset, size = want["offset"], want["size"]
    if not (type(offset) is int and type(size) is int and 0 <= offset
            and offset + size <= data_end):
        raise ValueError(f"{name}: stored outside the entry's data")
    h = hashlib.sha256()
    for piece in read_range(fd, offset, size):
        h.update(piece)
    if h.hexdigest() != want["sha256"]:
        raise ValueError(f"{name}: content does not match its SHA-256")
    return offset, size


def read_range(fd: int, offset: int, size: int):  # noqa: ANN201 - an iterator of bytes
    """The bytes ``[offset, offset + size)`` of ``fd``, in CHUNK pieces."""
    end = offset + size
    while offset < end:
        piece = os.pread(fd, min(CHUNK, end - offset), offset)
        if not piece:
            raise ValueError("cut short")
        offset += len(piece)
        yield piece
