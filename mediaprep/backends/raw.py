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
#: Orientation (TIFF 6.0; DNG keeps it in IFD 0): how the camera was held, for every image
_ORIENTATION = 274
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
    """A DNG's raw image size (0x0 when not found), its JPEG previews, largest first, and the
    orientation (1-8) IFD 0 gives them: previews are stored as the sensor saw them."""

    raw_size: tuple[int, int]
    previews: tuple[RawPreview, ...]
    orientation: int = 1

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
    previews = [p for p in (_preview(fh, size, tags) for tags in ifds) if p is not None]
    previews.sort(key=lambda p: p.width * p.height, reverse=True)
    turn = _first(ifds[0], _ORIENTATION)
    return DngFile(_raw_size(ifds), tuple(previews), turn if 1 <= turn <= 8 else 1)


def _raw_size(ifds: list[dict[int, tuple[int, ...]]]) -> tuple[int, int]:
    """The largest full-resolution image (NewSubFileType 0) the IFDs declare; 0x0 if none."""
    raw_size = (0, 0)
    for tags in ifds:
        w, h = _first(tags, _WIDTH), _first(tags, _HEIGHT)
        if _first(tags, _NEW_SUBFILE_TYPE) == 0 and w and h:
            raw_size = max(raw_size, (w, h), key=lambda s: s[0] * s[1])
    return raw_size


def _preview(fh: IO[bytes], size: int, tags: dict[int, tuple[int, ...]]) -> RawPreview | None:
    """The IFD's picture when it is a rendered 8-bit baseline JPEG stream within the file."""
    w, h = _first(tags, _WIDTH), _first(tags, _HEIGHT)
    if not (w and h and _is_rendered_jpeg(tags)):
        return None
    where = _jpeg_stream(tags)
    if where is None:
        return None
    off, n = where
    if not off or not n or off + n > size:
        return None
    fh.seek(off)
    if fh.read(2) != b"\xff\xd8":
        return None
    return RawPreview(off, n, w, h)


def _is_rendered_jpeg(tags: dict[int, tuple[int, ...]]) -> bool:
    return (_first(tags, _COMPRESSION) in _JPEG_COMPRESSION
            and _first(tags, _PHOTOMETRIC) in _RENDERED and _first(tags, _BITS) in (0, 8))


def _jpeg_stream(tags: dict[int, tuple[int, ...]]) -> tuple[int, int] | None:
    """(offset, length) of the IFD's JPEG stream: old-style JPEGInterchangeFormat, else its
    one strip (None: tiled or several strips, not one JPEG stream)."""
    if _first(tags, _COMPRESSION) == 6 and _JPEG_IF in tags:
        return _first(tags, _JPEG_IF), _first(tags, _JPEG_IF_LENGTH)
    offs, counts = tags.get(_STRIP_OFFSETS, ()), tags.get(_STRIP_BYTES, ())
    if len(offs) != 1 or len(counts) != 1:
        return None
    return offs[0], counts[0]


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
        read = _read_ifd(fh, size, end, pos)
        if read is None:
            break
        tags, following = read
        out.append(tags)
        todo.extend(tags.get(_SUBIFDS, ()))
        todo.append(following)
    return out


def _read_ifd(fh: IO[bytes], size: int, end: str,
              pos: int) -> tuple[dict[int, tuple[int, ...]], int] | None:
    """The integer tags of the IFD at ``pos`` and the offset of the next one (None: cut off)."""
    fh.seek(pos)
    count = struct.unpack(end + "H", fh.read(2))[0]
    raw = fh.read(12 * count + 4)
    if len(raw) < 12 * count + 4:
        return None
    tags: dict[int, tuple[int, ...]] = {}
    for i in range(count):
        tag, values = _read_entry(fh, size, end, raw, 12 * i)
        if values is not None:
            tags[tag] = values
    return tags, struct.unpack_from(end + "I", raw, 12 * count)[0]


def _read_entry(fh: IO[bytes], size: int, end: str, raw: bytes,
                at: int) -> tuple[int, tuple[int, ...] | None]:
    """One IFD entry: its tag and integer values, () when present but not read (DNGVersion is
    BYTEs; only integer values are read), None when its values lie beyond the file."""
    tag, typ, n = struct.unpack_from(end + "HHI", raw, at)
    if typ not in (3, 4, 13) or n == 0 or n > 4096:
        return tag, ()
    fmt = end + ("H" if typ == 3 else "I") * n
    width = _TYPE_SIZES[typ] * n
    if width <= 4:
        return tag, struct.unpack_from(fmt, raw, at + 8)
    where = struct.unpack_from(end + "I", raw, at + 8)[0]
    if where + width > size:
        return tag, None
    here = fh.tell()
    fh.seek(where)
    values = struct.unpack(fmt, fh.read(width))
    fh.seek(here)
    return tag, values
