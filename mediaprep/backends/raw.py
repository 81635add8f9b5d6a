"""Raw camera files: recognise a DNG (a TIFF whose first IFD holds the DNGVersion tag) and find
the embedded JPEG previews it carries, from the IFD tags alone (no pixel is decoded).

mediaprep does not develop raw sensor data (demosaicing, white balance, a tone curve are a raw
converter's choices); the camera's own rendering, its embedded preview, is what is sent.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO

#: DNGVersion (Adobe DNG specification 1.6, chapter 4): present in IFD 0 of every DNG.
DNG_VERSION_TAG = 50706
_SUBIFDS = 330
_NEW_SUBFILE_TYPE = 254
_WIDTH, _HEIGHT, _BITS, _COMPRESSION, _PHOTOMETRIC = 256, 257, 258, 259, 262
#: Photometric interpretations of a rendered picture (RGB, YCbCr); raw data is CFA (32803) or
#: LinearRaw (34892), and may be stored as lossless JPEG too: not a preview.
_RENDERED = (2, 6)
_STRIP_OFFSETS, _STRIP_BYTES = 273, 279
_JPEG_IF, _JPEG_IF_LENGTH = 513, 514  # old-style JPEG: the whole JFIF stream
#: TIFF Compression values whose strip is a whole baseline JPEG stream (7: "new" JPEG, as DNG
#: previews use; 6: old-style JPEG, read through JPEGInterchangeFormat).
_JPEG_COMPRESSION = (6, 7)
#: IFDs read at most (IFD 0's chain and its SubIFDs): a DNG has a handful; a loop or a forged
#: chain stops here.
MAX_IFDS = 64
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
               13: 4, 16: 8, 17: 8, 18: 8}


@dataclass(frozen=True)
class RawPreview:
    """An embedded JPEG preview: where its bytes are and the size its IFD declares."""

    offset: int
    length: int
    width: int
    height: int


@dataclass(frozen=True)
class DngFile:
    """A DNG's raw image size (0x0 when not found) and its JPEG previews, largest first."""

    raw_size: tuple[int, int]
    previews: tuple[RawPreview, ...]

    @property
    def best(self) -> RawPreview | None:
        return self.previews[0] if self.previews else None


def read_dng(fh: IO[bytes], size: int) -> DngFile | None:
    """The DNG structure of a TIFF file, or None when it is not a DNG (or not a readable TIFF)."""
    fh.seek(0)
    head = fh.read(8)
    if head[:4] not in (b"II*\0", b"MM\0*"):
        return None
    end = "<" if head[:2] == b"II" else ">"
    try:
        first = struct.unpack(end + "I", head[4:8])[0]
        ifds = _walk(fh, size, end, first)
    except (struct.error, ValueError, OSError):
        return None
    if not ifds or DNG_VERSION_TAG not in ifds[0]:
        return None
    previews: list[RawPreview] = []
    raw_size = (0, 0)
    for tags in ifds:
        w, h = _first(tags, _WIDTH), _first(tags, _HEIGHT)
        if _first(tags, _NEW_SUBFILE_TYPE) == 0 and w and h:
            raw_size = max(raw_size, (w, h), key=lambda s: s[0] * s[1])
        comp = _first(tags, _COMPRESSION)
        if (comp not in _JPEG_COMPRESSION or not w or not h
                or _first(tags, _PHOTOMETRIC) not in _RENDERED
                or _first(tags, _BITS) not in (0, 8)):
            continue
        if comp == 6 and _JPEG_IF in tags:
            off, n = _first(tags, _JPEG_IF), _first(tags, _JPEG_IF_LENGTH)
        else:
            offs, counts = tags.get(_STRIP_OFFSETS, ()), tags.get(_STRIP_BYTES, ())
            if len(offs) != 1 or len(counts) != 1:
                continue  # a tiled or multi-strip JPEG is not one JPEG stream
            off, n = offs[0], counts[0]
        if not off or not n or off + n > size:
            continue
        fh.seek(off)
        if fh.read(2) != b"\xff\xd8":
            continue
        previews.append(RawPreview(off, n, w, h))
    previews.sort(key=lambda p: p.width * p.height, reverse=True)
    return DngFile(raw_size, tuple(previews))


def _first(tags: dict[int, tuple[int, ...]], tag: int) -> int:
    values = tags.get(tag)
    return int(values[0]) if values else 0


def _walk(fh: IO[bytes], size: int, end: str, first: int) -> list[dict[int, tuple[int, ...]]]:
    """The integer tags of IFD 0, the IFDs chained after it and their SubIFDs, in that order."""
    out: list[dict[int, tuple[int, ...]]] = []
    todo, seen = [first], set()
    while todo and len(out) < MAX_IFDS:
        pos = todo.pop(0)
        if not pos or pos in seen or pos + 2 > size:
            continue
        seen.add(pos)
        fh.seek(pos)
        count = struct.unpack(end + "H", fh.read(2))[0]
        raw = fh.read(12 * count + 4)
        if len(raw) < 12 * count + 4:
            break
        tags: dict[int, tuple[int, ...]] = {}
        for i in range(count):
            tag, typ, n = struct.unpack_from(end + "HHI", raw, 12 * i)
            if typ not in (3, 4, 13) or n == 0 or n > 4096:
                tags[tag] = ()  # present (DNGVersion is BYTEs); only integer values are read
                continue
            fmt = end + ("H" if typ == 3 else "I") * n
            width = _TYPE_SIZES[typ] * n
            if width <= 4:
                tags[tag] = struct.unpack_from(fmt, raw, 12 * i + 8)
            else:
                at = struct.unpack_from(end + "I", raw, 12 * i + 8)[0]
                if at + width > size:
                    continue
                here = fh.tell()
                fh.seek(at)
                tags[tag] = struct.unpack(fmt, fh.read(width))
                fh.seek(here)
        out.append(tags)
        todo.extend(tags.get(_SUBIFDS, ()))
        todo.append(struct.unpack_from(end + "I", raw, 12 * count)[0])
    return out
