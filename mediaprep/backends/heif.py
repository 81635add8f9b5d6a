"""HEIF and AVIF files (ISOBMFF): the walk of their boxes and the check of the primary item's
data.

Only box headers and the ``meta`` box (at most :data:`HEIF_META_MAX_BYTES`) are read; of the
pictures' data only the first bytes of the primary's are."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from .source import MediaSource

#: A HEIF meta box larger than this is not parsed (neither checked nor stripped).
HEIF_META_MAX_BYTES = 1 << 20
#: The walk of a file's top-level boxes stops after this many (a real HEIF has under ten):
#: the rest is neither checked for truncation nor stripped.
HEIF_MAX_TOP_LEVEL_BOXES = 4096
#: The fewest bytes a coded picture of a HEIF/AVIF item can take: (block side in px, blocks per
#: byte, bytes of headers). A block (HEVC's 64 px CTU, AV1's largest 128 px superblock) of a
#: flat picture costs at least about half a bit: x265 spends 7 bits per CTU and libaom 1.5
#: per superblock at their lowest quality (measured on flat 64 px to 8000 px pictures).
CODED_PICTURE_FLOOR = {b"hvc1": (64, 16, 6), b"av01": (128, 16, 2)}

#: auxC types of an alpha plane (MPEG-B CICP, and HEVC's auxiliary picture id 1).
ALPHA_AUX_TYPES = frozenset({b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha",
                             b"urn:mpeg:hevc:2015:auxid:1"})

_NO_DATA = "corrupt: the HEIF's primary picture has no data"


# ------------------------------------------------------------------------------ boxes


@dataclass(frozen=True)
class Box:
    """A box's place in its container: its type, first byte, header length and whole size."""

    kind: bytes
    start: int
    head: int
    size: int

    @property
    def payload(self) -> int:
        return self.start + self.head

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass
class BoxWalk:
    """A file's top-level boxes, whether the walk reached the end of the file (see
    :data:`HEIF_MAX_TOP_LEVEL_BOXES`), and the problem that stopped it: a box that cannot be."""

    boxes: list[Box]
    whole: bool
    problem: str | None = None


def _box_at(hdr: bytes, pos: int, size: int) -> Box | str:
    """The box whose first 16 (or fewer) bytes are ``hdr``, at ``pos`` of a ``size``-byte
    file, or why there cannot be one there."""
    box_size, kind = struct.unpack(">I4s", hdr[:8])
    head = 8
    if box_size == 1 and len(hdr) >= 16:  # 64-bit size follows
        box_size, head = struct.unpack(">Q", hdr[8:16])[0], 16
    elif box_size == 0:  # runs to the end of the file
        box_size = size - pos
    if box_size < head:
        return f"corrupt: the {kind!r} box has an impossible size"
    if pos + box_size > size:
        return f"truncated: the {kind.decode('latin-1')} box runs past the end of the file"
    return Box(kind, pos, head, box_size)


def top_level_boxes(fh: IO[bytes], size: int) -> BoxWalk:
    """The file's top-level boxes, reading only their headers."""
    boxes: list[Box] = []
    pos = 0
    while pos + 8 <= size:
        if len(boxes) >= HEIF_MAX_TOP_LEVEL_BOXES:
            return BoxWalk(boxes, False)
        fh.seek(pos)
        box = _box_at(fh.read(16), pos, size)
        if isinstance(box, str):
            return BoxWalk(boxes, False, box)
        boxes.append(box)
        pos = box.end
    return BoxWalk(boxes, True)


def _boxes_in(data: bytes, start: int = 0) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in ``data[start:]``."""
    for box in _box_list(data, start):
        yield box.kind, box.payload, box.end


def _box_list(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """The boxes in ``data[start:end]``, up to the first that does not fit."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        n, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if n == 1:
            n, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif n == 0:
            n = end - pos
        if n < head or pos + n > end:
            return
        yield Box(kind, pos, head, n)
        pos += n


def _uint(data: bytes, pos: int, size: int) -> int:
    return int.from_bytes(data[pos:pos + size], "big") if size else 0


def _cstring(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    """A NUL-terminated string at ``pos`` and the position after its NUL."""
    stop = data.find(b"\0", pos, end)
    stop = end if stop < 0 else stop
    return data[pos:stop], stop + 1


def _box(kind: bytes, payload: bytes) -> bytes:
    """A box of ``kind`` holding ``payload`` (a 64-bit size only where 32 bits cannot say it)."""
    if len(payload) + 8 < 1 << 32:
        return struct.pack(">I4s", len(payload) + 8, kind) + payload
    return struct.pack(">I4sQ", 1, kind, len(payload) + 16) + payload


# ------------------------------------------------------------------------------ item locations


@dataclass(frozen=True)
class IlocLayout:
    """The field widths of an ``iloc`` box (version, offset, length, base offset, index)."""

    version: int
    off_size: int
    len_size: int
    base_size: int
    idx_size: int

    @property
    def id_size(self) -> int:
        return 2 if self.version < 2 else 4


@dataclass
class ItemLocation:
    """One ``iloc`` entry: where an item's data is (``method`` 0: in the file, 1: in ``idat``,
    2: in another item), with its extents as stored: (index, offset from base, length)."""

    item: int
    method: int
    data_ref: int
    base: int
    extents: list[tuple[int, int, int]]

    @property
    def spans(self) -> list[tuple[int, int]]:
        """(start, length) of each extent; a length of 0 runs to the end."""
        return [(self.base + off, length) for _, off, length in self.extents]


def _iloc_layout(meta: bytes, a: int) -> IlocLayout:
    version = meta[a]
    return IlocLayout(version, meta[a + 4] >> 4, meta[a + 4] & 15, meta[a + 5] >> 4,
                      meta[a + 5] & 15 if version in (1, 2) else 0)


def iloc_entries(meta: bytes, a: int) -> Iterator[ItemLocation]:
    """The entries of the ``iloc`` box whose payload starts at ``meta[a]``, in order;
    ValueError when one runs past the meta box."""
    lay = _iloc_layout(meta, a)
    pos = a + 6
    count = _uint(meta, pos, lay.id_size)
    pos += lay.id_size
    for _ in range(count):
        entry, pos = _iloc_entry(meta, pos, lay)
        if pos > len(meta):
            raise ValueError("an iloc entry runs past the meta box")
        yield entry


def _iloc_entry(meta: bytes, pos: int, lay: IlocLayout) -> tuple[ItemLocation, int]:
    """The ``iloc`` entry at ``meta[pos]`` and the position after it."""
    item = _uint(meta, pos, lay.id_size)
    pos += lay.id_size
    method = 0
    if lay.version in (1, 2):
        method = _uint(meta, pos, 2) & 15
        pos += 2
    data_ref = _uint(meta, pos, 2)
    base = _uint(meta, pos + 2, lay.base_size)
    pos += 2 + lay.base_size
    n_ext = _uint(meta, pos, 2)
    pos += 2
    width = lay.idx_size + lay.off_size + lay.len_size
    if pos + n_ext * width > len(meta) or (width == 0 and n_ext > 1):
        raise ValueError("an iloc entry's extents run past the meta box")
    extents = []
    for _ in range(n_ext):
        extents.append((_uint(meta, pos, lay.idx_size),
                        _uint(meta, pos + lay.idx_size, lay.off_size),
                        _uint(meta, pos + lay.idx_size + lay.off_size, lay.len_size)))
        pos += width
    return ItemLocation(item, method, data_ref, base, extents), pos


def _write_iloc(lay: IlocLayout, entries: list[ItemLocation], flags: bytes) -> bytes:
    """An ``iloc`` box of ``lay``'s field widths holding ``entries``."""
    out = bytearray(bytes([lay.version]) + flags)
    out += bytes([lay.off_size << 4 | lay.len_size, lay.base_size << 4 | lay.idx_size])
    out += len(entries).to_bytes(lay.id_size, "big")
    for e in entries:
        out += e.item.to_bytes(lay.id_size, "big")
        if lay.version in (1, 2):
            out += e.method.to_bytes(2, "big")
        out += e.data_ref.to_bytes(2, "big") + e.base.to_bytes(lay.base_size, "big")
        out += len(e.extents).to_bytes(2, "big")
        for idx, off, length in e.extents:
            out += (idx.to_bytes(lay.idx_size, "big") + off.to_bytes(lay.off_size, "big")
                    + length.to_bytes(lay.len_size, "big"))
    return _box(b"iloc", bytes(out))


# ------------------------------------------------------------------------------ the primary's check


def isobmff_problem(src: MediaSource, shown: tuple[int, int] = (0, 0)) -> str | None:
    """Walk the top-level boxes of a HEIF/AVIF: each must end inside the file; then the primary
    item must have data that can hold a picture of the ``shown`` size
    (:func:`heif_primary_problem`)."""
    size = src.size
    with src.open() as fh:
        walk = top_level_boxes(fh, size)
        if walk.problem:
            return walk.problem
        meta = next((box for box in walk.boxes if box.kind == b"meta"), None)
        if meta is None or meta.size - meta.head > HEIF_META_MAX_BYTES:
            return None
        fh.seek(meta.payload)
        payload = fh.read(meta.size - meta.head)
        try:
            return heif_primary_problem(payload, fh, size, shown)
        except (struct.error, IndexError, ValueError):
            return None  # a meta box this walk cannot read: Pillow's open has judged it


def _coded_picture_floor(item_type: bytes | None, shown: tuple[int, int]) -> int:
    """The fewest bytes a coded picture of ``item_type`` ``shown`` px large can take (0: not
    judged)."""
    floor = CODED_PICTURE_FLOOR.get(item_type or b"")
    if floor is None or not (shown[0] and shown[1]):
        return 0
    side, per_byte, headers = floor
    blocks = -(-shown[0] // side) * -(-shown[1] // side)
    return headers + -(-blocks // per_byte)


def _primary_id(meta: bytes, pitm: int) -> int:
    return _uint(meta, pitm + 4, 2 if meta[pitm] == 0 else 4)


def _infe_type(meta: bytes, iinf: tuple[int, int] | None, item: int) -> bytes | None:
    """The item type ``iinf`` gives ``item`` (None: not given)."""
    if iinf is None:
        return None
    item_type = None
    a, _ = iinf
    for kind, ia, _ib in _boxes_in(meta, a + (6 if meta[a] == 0 else 8)):
        if kind == b"infe" and meta[ia] >= 2:
            idsize = 2 if meta[ia] == 2 else 4
            if _uint(meta, ia + 4, idsize) == item:
                item_type = meta[ia + 4 + idsize + 2: ia + 4 + idsize + 6]
    return item_type


def heif_primary_problem(meta: bytes, fh: IO[bytes], size: int,
                         shown: tuple[int, int] = (0, 0)) -> str | None:
    """The primary item (pitm) must have data (iloc) inside the file, and for a coded picture
    (hvc1, av01) that data must start like one and be large enough to code a picture of the
    ``shown`` size (:data:`CODED_PICTURE_FLOOR`): a header with no picture passes Pillow's open
    and fails only at the decode."""
    boxes = {kind: (a, b) for kind, a, b in _boxes_in(meta, 4)}  # meta is a full box
    if b"pitm" not in boxes or b"iloc" not in boxes:
        return None
    primary = _primary_id(meta, boxes[b"pitm"][0])
    item_type = _infe_type(meta, boxes.get(b"iinf"), primary)
    for entry in iloc_entries(meta, boxes[b"iloc"][0]):
        if entry.item == primary:
            return _primary_data_problem(entry, item_type, fh, size, shown)
    return _NO_DATA


def _primary_data_problem(entry: ItemLocation, item_type: bytes | None, fh: IO[bytes],
                          size: int, shown: tuple[int, int]) -> str | None:
    if entry.method != 0:  # in the idat box or another item: not checked here
        return None
    extents = entry.spans
    problem = _extents_problem(extents, size)
    if problem:
        return problem
    floor = _coded_picture_floor(item_type, shown)
    held = sum(length or size - off for off, length in extents)  # 0: to the end
    if held < floor:
        return (f"corrupt: the HEIF's primary picture is {held} bytes, fewer than any "
                f"coded {shown[0]}x{shown[1]} picture takes ({floor})")
    off, length = extents[0]
    fh.seek(off)
    return _coded_start_problem(item_type, fh.read(min(8, length or 8)))


def _extents_problem(extents: list[tuple[int, int]], size: int) -> str | None:
    """Whether the primary's extents hold no data, or some of it lies past the end."""
    if not extents or all(length == 0 and off >= size for off, length in extents):
        return _NO_DATA
    if any(off + length > size for off, length in extents):
        return "truncated: the HEIF's primary picture runs past the end of the file"
    return None


def _coded_start_problem(item_type: bytes | None, first: bytes) -> str | None:
    """Whether the first bytes of a coded picture's data start like one."""
    if item_type == b"hvc1" and len(first) >= 5:
        nal = int.from_bytes(first[:4], "big")  # hvcC's usual 4-byte NAL lengths
        if nal == 0 or first[4] & 0x80:
            return "corrupt: the HEIF's primary picture holds no coded picture"
    elif item_type == b"av01" and first:
        obu_type = (first[0] >> 3) & 15
        if first[0] & 0x80 or obu_type == 0 or 9 <= obu_type <= 14:
            return "corrupt: the AVIF's primary picture holds no coded picture"
    return None
