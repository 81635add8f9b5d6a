"""HEIF and AVIF files (ISOBMFF): the walk of their boxes, the check of the primary item's data,
and the lossless strip of what rendering the primary image does not need.

Only box headers and the ``meta`` box (at most :data:`HEIF_META_MAX_BYTES`) are read; of the
pictures' data only the first bytes of the primary's are, and a strip copies byte ranges.

A strip keeps the primary image and what its rendering needs: the items it is derived from
(a grid's tiles, transitively), its alpha plane, its metadata items (Exif, XMP), and every property
(colour, ICC, rotation) untouched. Everything else goes: a motion photo's video (an ``mpvd`` box
after the HEIF's own, or an item), thumbnails, depth and gain maps, other pictures, padding.
The dropped items' ``iinf``, ``iloc``, ``iref`` and ``ipma`` entries go with them, and the
kept items' ``iloc`` offsets are rewritten, so decoders see a plain HEIF of one picture."""

from __future__ import annotations

import bisect
import io
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from .source import MediaSource

#: The formats (as probe names them) whose files are HEIF/ISOBMFF.
HEIF_FORMATS = frozenset({"heic", "avif"})
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


def make_box(kind: bytes, payload: bytes) -> bytes:
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


def write_iloc(lay: IlocLayout, entries: list[ItemLocation], flags: bytes) -> bytes:
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
    return make_box(b"iloc", bytes(out))


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


# ------------------------------------------------------------------------------ the meta box


@dataclass(frozen=True)
class ItemInfo:
    """An ``infe`` entry: the item's id, type and (for a ``mime`` item) content type."""

    item: int
    kind: bytes
    content_type: bytes = b""


@dataclass(frozen=True)
class Reference:
    """An ``iref`` entry: ``kind`` from one item to others (``dimg``: a derived image to its
    inputs; ``auxl``, ``thmb``, ``cdsc``: an alpha plane, thumbnail or metadata to its image)."""

    kind: bytes
    src: int
    to: tuple[int, ...]


@dataclass
class HeifMeta:
    """What a strip needs of a ``meta`` box: its payload and children, the primary item, every
    item's type, location and references, and the auxiliary type (auxC) of each item."""

    payload: bytes
    children: list[Box]
    primary: int
    items: dict[int, ItemInfo]
    iloc: IlocLayout
    locations: list[ItemLocation]
    refs: list[Reference]
    aux_types: dict[int, bytes] = field(default_factory=dict)
    grouped: set[int] = field(default_factory=set)  # items named by an entity group (grpl)

    @property
    def all_items(self) -> set[int]:
        """Every item the meta box names (in iinf or only in iloc)."""
        return set(self.items) | {loc.item for loc in self.locations}

    def child(self, kind: bytes) -> Box | None:
        return next((box for box in self.children if box.kind == kind), None)

    def is_alpha(self, item: int) -> bool:
        return self.aux_types.get(item) in ALPHA_AUX_TYPES

    def is_metadata(self, item: int) -> bool:
        """Exif, XMP, IPTC and the like: any item but a video (a motion photo's may be said
        to describe its picture)."""
        info = self.items.get(item)
        return info is not None and not info.content_type.startswith(b"video/")


def _full_box_start(data: bytes, box: Box) -> int:
    """Where a full box's fields start (after version and flags)."""
    return box.payload + 4


def _infe(data: bytes, box: Box) -> ItemInfo:
    """An ``infe`` box (version 2 or 3); ValueError for the older forms, which carry no type."""
    version, a = data[box.payload], _full_box_start(data, box)
    if version < 2:
        raise ValueError("an infe box of version 0 or 1")
    idsize = 2 if version == 2 else 4
    item = _uint(data, a, idsize)
    kind = data[a + idsize + 2:a + idsize + 6]
    _name, pos = _cstring(data, a + idsize + 6, box.end)
    content_type = _cstring(data, pos, box.end)[0] if kind == b"mime" else b""
    return ItemInfo(item, kind, content_type)


def _iinf_entries(data: bytes, iinf: Box) -> list[Box]:
    start = _full_box_start(data, iinf) + (2 if data[iinf.payload] == 0 else 4)
    return [box for box in _box_list(data, start, iinf.end) if box.kind == b"infe"]


def _references(data: bytes, iref: Box) -> list[Reference]:
    idsize = 2 if data[iref.payload] == 0 else 4
    refs = []
    for box in _box_list(data, _full_box_start(data, iref), iref.end):
        a = box.payload
        count = _uint(data, a + idsize, 2)
        first = a + idsize + 2
        if first + count * idsize > box.end:
            raise ValueError("an iref entry runs past its box")
        refs.append(Reference(box.kind, _uint(data, a, idsize),
                              tuple(_uint(data, first + i * idsize, idsize)
                                    for i in range(count))))
    return refs


def _ipma_entries(data: bytes, ipma: Box) -> Iterator[tuple[int, list[int], int, int]]:
    """(item, its property indices (1-based), entry start, entry end) of an ``ipma`` box."""
    version, flags = data[ipma.payload], data[ipma.payload + 3]
    idsize, wide = (2 if version < 1 else 4), bool(flags & 1)
    pos = _full_box_start(data, ipma)
    count = _uint(data, pos, 4)
    pos += 4
    for _ in range(count):
        start, item, n = pos, _uint(data, pos, idsize), _uint(data, pos + idsize, 1)
        pos += idsize + 1
        step = 2 if wide else 1
        if pos + n * step > ipma.end:
            raise ValueError("an ipma entry runs past its box")
        props = [_uint(data, pos + i * step, step) & (0x7FFF if wide else 0x7F)
                 for i in range(n)]
        pos += n * step
        yield item, props, start, pos


def _aux_types(data: bytes, iprp: Box) -> dict[int, bytes]:
    """The auxC type of each item that has one (through ipco and ipma)."""
    children = list(_box_list(data, iprp.payload, iprp.end))
    ipco = next((box for box in children if box.kind == b"ipco"), None)
    if ipco is None:
        return {}
    aux = _aux_properties(data, ipco)
    found = {}
    for ipma in (box for box in children if box.kind == b"ipma"):
        for item, indices, _a, _b in _ipma_entries(data, ipma):
            found.update((item, aux[i]) for i in indices if i in aux)
    return found


def _aux_properties(data: bytes, ipco: Box) -> dict[int, bytes]:
    """The type of each auxC property of ``ipco``, by its (1-based) property index."""
    return {i + 1: _cstring(data, _full_box_start(data, prop), prop.end)[0]
            for i, prop in enumerate(_box_list(data, ipco.payload, ipco.end))
            if prop.kind == b"auxC"}


def _grouped(data: bytes, grpl: Box) -> set[int]:
    """Every entity id an entity group (``grpl``: altr, ster, burst...) names."""
    ids: set[int] = set()
    for group in _box_list(data, grpl.payload, grpl.end):
        a = _full_box_start(data, group) + 4  # after group_id
        count = _uint(data, a, 4)
        if a + 4 + 4 * count > group.end:
            raise ValueError("an entity group runs past its box")
        ids.update(_uint(data, a + 4 + 4 * i, 4) for i in range(count))
    return ids


def read_meta(payload: bytes) -> HeifMeta:
    """The items of a ``meta`` box's payload; ValueError (or struct.error, IndexError) for one
    this reader does not understand well enough to rewrite."""
    children = list(_box_list(payload, 4))  # meta is a full box
    kinds = [box.kind for box in children]
    for needed in (b"pitm", b"iinf", b"iloc"):
        if kinds.count(needed) != 1:
            raise ValueError(f"{kinds.count(needed)} {needed!r} boxes in the meta box")
    by_kind = {box.kind: box for box in children}
    iloc = by_kind[b"iloc"]
    meta = HeifMeta(
        payload=payload, children=children,
        primary=_primary_id(payload, by_kind[b"pitm"].payload),
        items={info.item: info for info in (_infe(payload, box)
                                             for box in _iinf_entries(payload, by_kind[b"iinf"]))},
        iloc=_iloc_layout(payload, iloc.payload),
        locations=list(iloc_entries(payload, iloc.payload)),
        refs=_references(payload, by_kind[b"iref"]) if b"iref" in by_kind else [])
    if b"iprp" in by_kind:
        meta.aux_types = _aux_types(payload, by_kind[b"iprp"])
    if b"grpl" in by_kind:
        meta.grouped = _grouped(payload, by_kind[b"grpl"])
    return meta


# ------------------------------------------------------------------------------ what is kept


def needed_items(meta: HeifMeta) -> set[int]:
    """The items rendering the primary image needs: itself, what it is derived from
    (transitively: a grid's tiles), its alpha plane, its metadata (Exif, XMP,
    IPTC: what describes it, a video aside). One pass over the references each way."""
    uses: dict[int, list[int]] = {}  # item -> what it references (its inputs, its image)
    serves: dict[int, list[int]] = {}  # item -> the alpha planes and metadata of it
    for ref in meta.refs:
        uses.setdefault(ref.src, []).extend(ref.to)
        if _serves(meta, ref):
            for to in ref.to:
                serves.setdefault(to, []).append(ref.src)
    keep = {meta.primary}
    todo = [meta.primary]
    while todo:
        item = todo.pop()
        for other in uses.get(item, []) + serves.get(item, []):
            if other not in keep:
                keep.add(other)
                todo.append(other)
    return keep


def _serves(meta: HeifMeta, ref: Reference) -> bool:
    """Whether ``ref`` makes its source needed wherever its targets are: an alpha plane
    (auxl with an alpha auxC) or metadata (cdsc) of them."""
    if ref.kind == b"auxl":
        return meta.is_alpha(ref.src)
    return ref.kind == b"cdsc" and meta.is_metadata(ref.src)


def _dropped_words(meta: HeifMeta, dropped: set[int]) -> list[str]:
    """What the dropped items are, in words, counted ("a video", "2 thumbnails")."""
    roles = {ref.src: ref for ref in meta.refs if ref.src in dropped}
    inputs = {to for ref in meta.refs if ref.src in dropped and ref.kind == b"dimg"
              for to in ref.to}  # a dropped grid's tiles are told as the grid
    nouns = Counter(_item_noun(meta, item, roles.get(item)) for item in sorted(dropped - inputs))
    return [_counted(noun, n) for noun, n in nouns.items()]


def _counted(noun: str, n: int) -> str:
    if n > 1:
        return f"{n} {noun}s"
    if noun.startswith("other "):
        return f"an{noun}"  # "another picture"
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


_AUX_NOUNS = {b"depth": "depth map", b"hevc:2015:auxid:2": "depth map", b"gainmap": "gain map"}
_PICTURE_TYPES = frozenset({b"hvc1", b"av01", b"grid", b"iden", b"iovl", b"jpeg", b"tmap"})


def _item_noun(meta: HeifMeta, item: int, role: Reference | None) -> str:
    info = meta.items.get(item, ItemInfo(item, b""))
    if info.content_type.startswith(b"video/"):
        return "video"
    if role is not None and role.kind in (b"thmb", b"auxl"):
        return _role_noun(meta, item, role.kind)
    if info.kind in _PICTURE_TYPES:
        return "other picture"
    if info.content_type == b"application/rdf+xml":
        return "XMP item"
    return f"{info.kind.decode('latin-1').strip() or 'untyped'} item"


def _role_noun(meta: HeifMeta, item: int, role: bytes) -> str:
    """A thumbnail, or what kind of auxiliary image (depth map, gain map)."""
    if role == b"thmb":
        return "thumbnail"
    aux = meta.aux_types.get(item, b"").lower()
    return next((noun for key, noun in _AUX_NOUNS.items() if key in aux), "auxiliary image")


# ------------------------------------------------------------------------------ the strip


@dataclass
class HeifStrip:
    """A HEIF rewritten without what its primary image does not use: the new file as pieces
    (new bytes, or (start, end) ranges of the old file to copy), its size, and what went."""

    pieces: list[bytes | tuple[int, int]]
    size: int
    removed: list[str]
    moved: list[tuple[ItemLocation, ItemLocation]] = field(default_factory=list)  # old, new

    @property
    def what(self) -> str:
        return ", ".join(self.removed)

    def write(self, data: bytes) -> bytes:
        """The new file, made from the old one's bytes."""
        return b"".join(p if isinstance(p, bytes) else data[p[0]:p[1]] for p in self.pieces)


_BOX_WORDS = {b"mpvd": "a motion photo's video (mpvd box)", b"free": "padding (free box)",
              b"skip": "padding (skip box)", b"sefd": "Samsung's trailer (sefd box)"}


def plan_strip(fh: IO[bytes], size: int) -> HeifStrip | None:
    """How to rewrite the HEIF/AVIF in ``fh`` with only what rendering its primary image needs
    (None: a file this module does not rewrite: an image sequence, a meta box it cannot read,
    item data in another file, a walk cut short)."""
    walk = top_level_boxes(fh, size)
    boxes = walk.boxes
    metas = [box for box in boxes if box.kind == b"meta"]
    if (not walk.whole or len(metas) != 1 or any(box.kind == b"moov" for box in boxes)
            or metas[0].size - metas[0].head > HEIF_META_MAX_BYTES):
        return None
    fh.seek(metas[0].payload)
    payload = fh.read(metas[0].size - metas[0].head)
    try:
        return _plan(boxes, read_meta(payload), size)
    except (struct.error, IndexError, ValueError, OverflowError):
        return None


def strip_unused(data: bytes) -> tuple[bytes, HeifStrip] | None:
    """``data`` (a whole HEIF/AVIF) without what its primary image does not use, and the plan
    that says what went (None: see :func:`plan_strip`, or a rewrite that did not come out
    sound, which is then not sent)."""
    plan = plan_strip(io.BytesIO(data), len(data))
    if plan is None:
        return None
    new = plan.write(data)
    return (new, plan) if _sound(data, new, plan) else None


def _sound(old: bytes, new: bytes, plan: HeifStrip) -> bool:
    """Whether the rewritten file walks as a HEIF whose primary item has its data, and every
    kept item's data is, byte for byte, what it was."""
    walk = top_level_boxes(io.BytesIO(new), len(new))
    meta = next((box for box in walk.boxes if box.kind == b"meta"), None)
    if walk.problem or meta is None or len(new) != plan.size:
        return False
    payload = new[meta.payload:meta.end]
    try:
        if heif_primary_problem(payload, io.BytesIO(new), len(new)) is not None:
            return False
        read_meta(payload)
    except (struct.error, IndexError, ValueError):
        return False
    return all(_item_bytes(old, was) == _item_bytes(new, now) for was, now in plan.moved)


def _item_bytes(data: bytes, loc: ItemLocation) -> bytes:
    return b"".join(data[start:start + length] for start, length in loc.spans)


def _kept_items(meta: HeifMeta) -> set[int]:
    """:func:`needed_items`, or every item when an entity group (grpl) names one that is not
    needed: groups are not rewritten."""
    keep = needed_items(meta)
    return keep if meta.grouped <= keep else keep | meta.all_items


def _plan(boxes: list[Box], meta: HeifMeta, size: int) -> HeifStrip:
    keep = _kept_items(meta)
    _check_iloc_rewrites(meta)
    kept_locs = [loc for loc in meta.locations if loc.item in keep]
    spans = _kept_spans(kept_locs, size)
    new_meta_size = len(_meta_box(meta, keep, kept_locs))
    pieces, moved, dropped_boxes = _layout(boxes, spans, new_meta_size)
    relocated = [_relocated(loc, meta.iloc, moved) for loc in kept_locs]
    new_meta = _meta_box(meta, keep, relocated)
    if len(new_meta) != new_meta_size:
        raise ValueError("the rewritten meta box changed size")
    pieces = [new_meta if piece is _META else piece for piece in pieces]
    dropped = meta.all_items - keep
    return HeifStrip(pieces, sum(_piece_size(p) for p in pieces),
                     _dropped_words(meta, dropped) + dropped_boxes,
                     [(was, now) for was, now in zip(kept_locs, relocated, strict=True)
                      if was.method == 0])


def _piece_size(piece: bytes | tuple[int, int]) -> int:
    return len(piece) if isinstance(piece, bytes) else piece[1] - piece[0]


def _check_iloc_rewrites(meta: HeifMeta) -> None:
    """The iloc box written back unchanged must be the box read: else this reader has missed
    something in it and rewriting it would lose it."""
    box = meta.child(b"iloc")
    assert box is not None
    flags = meta.payload[box.payload + 1:box.payload + 4]
    if write_iloc(meta.iloc, meta.locations, flags) != meta.payload[box.start:box.end]:
        raise ValueError("an iloc box this reader does not write back as it was")


def _kept_spans(kept: list[ItemLocation], size: int) -> list[tuple[int, int]]:
    """The file's byte ranges (start, end) the kept items' data is in, sorted and merged."""
    spans = []
    for loc in kept:
        if loc.data_ref != 0 or loc.method not in (0, 1):
            raise ValueError("a kept item's data is in another file or another item")
        if loc.method == 1:  # in the idat box, kept with the meta box
            continue
        for start, length in loc.spans:
            if length == 0 or start + length > size:
                raise ValueError("a kept item's extent runs to or past the end of the file")
            spans.append((start, start + length))
    return _merged(spans)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Byte ranges sorted, those that overlap or touch made one."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


_META = b""  # placeholder piece for the rewritten meta box (its size is known before its bytes)


def _layout(boxes: list[Box], spans: list[tuple[int, int]], meta_size: int
            ) -> tuple[list[bytes | tuple[int, int]], _Moves, list[str]]:
    """The new file's pieces (the meta box as the :data:`_META` placeholder), where each kept
    span moves to, and what the dropped top-level boxes were."""
    pieces: list[bytes | tuple[int, int]] = []
    moved = _Moves()
    dropped: list[str] = []
    pos = 0
    placed = 0
    starts = [start for start, _ in spans]
    for box in boxes:
        inside = spans[bisect.bisect_left(starts, box.start):bisect.bisect_left(starts, box.end)]
        placed += len(inside)
        if inside:
            pos = _place_mdat(box, inside, pieces, moved, pos)
        elif box.kind in (b"ftyp", b"meta"):
            pieces.append(_META if box.kind == b"meta" else (box.start, box.end))
            pos += meta_size if box.kind == b"meta" else box.size
        else:
            dropped.append(_BOX_WORDS.get(box.kind, f"a {box.kind.decode('latin-1')} box"))
    if placed != len(spans):
        raise ValueError("a kept item's data is outside the file's boxes")
    return pieces, moved, list(dict.fromkeys(dropped))  # each kind of box said once


def _place_mdat(box: Box, inside: list[tuple[int, int]], pieces: list[bytes | tuple[int, int]],
                moved: _Moves, pos: int) -> int:
    """An mdat box of the kept spans ``inside`` it only, appended at ``pos``; the position
    after it."""
    if box.kind != b"mdat":
        raise ValueError(f"a kept item's data is in a {box.kind!r} box")
    if inside[0][0] < box.payload or inside[-1][1] > box.end:
        raise ValueError("a kept item's data crosses an mdat box's edge")
    body = sum(end - start for start, end in inside)
    if body + 8 < 1 << 32:
        header = struct.pack(">I4s", body + 8, b"mdat")
    else:
        header = struct.pack(">I4sQ", 1, b"mdat", body + 16)
    pieces.append(header)
    pos += len(header)
    for span in inside:
        moved.add(span, pos)
        pieces.append(span)
        pos += span[1] - span[0]
    return pos


def _relocated(loc: ItemLocation, lay: IlocLayout, moved: _Moves
               ) -> ItemLocation:
    """``loc`` with its extents pointing where their data now is: its fields shifted when its
    data moved as one (the usual case), else absolute offsets from base 0."""
    if loc.method != 0:
        return loc
    starts = [moved.where(start) for start, _ in loc.spans]
    shifts = {new - old for new, (old, _) in zip(starts, loc.spans, strict=True)}
    if len(shifts) == 1:
        shifted = _shifted(loc, lay, shifts.pop())
        if shifted is not None:
            return shifted
    return _absolute(loc, lay, starts)


def _shifted(loc: ItemLocation, lay: IlocLayout, shift: int) -> ItemLocation | None:
    """``loc`` moved by ``shift`` bytes: its base, or with no base field its offsets (None:
    the base would go below 0)."""
    if lay.base_size:
        if loc.base + shift < 0:
            return None
        return ItemLocation(loc.item, loc.method, loc.data_ref, loc.base + shift, loc.extents)
    return ItemLocation(loc.item, loc.method, loc.data_ref, 0,
                        [(idx, off + shift, length) for idx, off, length in loc.extents])


def _absolute(loc: ItemLocation, lay: IlocLayout, starts: list[int]) -> ItemLocation:
    """``loc`` with base 0 and each extent's offset its new place in the file."""
    if not lay.off_size or max(starts) >= 1 << 8 * lay.off_size:
        raise ValueError("an iloc entry whose extents cannot be moved")
    return ItemLocation(loc.item, loc.method, loc.data_ref, 0,
                        [(idx, start, length) for (idx, _, length), start
                         in zip(loc.extents, starts, strict=True)])


@dataclass
class _Moves:
    """The kept spans (start, end) in file order, and where each now starts."""

    spans: list[tuple[int, int]] = field(default_factory=list)
    to: list[int] = field(default_factory=list)

    def add(self, span: tuple[int, int], new: int) -> None:
        self.spans.append(span)
        self.to.append(new)

    def where(self, old: int) -> int:
        """Where the byte at ``old`` now is."""
        i = bisect.bisect_right(self.spans, (old, 1 << 64)) - 1
        if i < 0 or not self.spans[i][0] <= old < self.spans[i][1]:
            raise ValueError("an extent outside the kept data")
        return self.to[i] + old - self.spans[i][0]


def _meta_box(meta: HeifMeta, keep: set[int], locations: list[ItemLocation]) -> bytes:
    """The meta box with only the ``keep`` items' entries, ``locations`` as its iloc."""
    out = bytearray(meta.payload[:4])
    for box in meta.children:
        out += _child_rewritten(meta, box, keep, locations)
    return make_box(b"meta", bytes(out))


def _child_rewritten(meta: HeifMeta, box: Box, keep: set[int],
                     locations: list[ItemLocation]) -> bytes:
    data = meta.payload
    if box.kind == b"iloc":
        return write_iloc(meta.iloc, locations, data[box.payload + 1:box.payload + 4])
    if box.kind == b"iinf":
        return _iinf_kept(data, box, keep)
    if box.kind == b"iref":
        return _iref_kept(data, box, keep)
    if box.kind == b"iprp":
        return make_box(b"iprp", b"".join(_ipma_kept(data, child, keep) if child.kind == b"ipma"
                                      else data[child.start:child.end]
                                      for child in _box_list(data, box.payload, box.end)))
    return data[box.start:box.end]


def _iinf_kept(data: bytes, iinf: Box, keep: set[int]) -> bytes:
    entries = [box for box in _iinf_entries(data, iinf) if _infe(data, box).item in keep]
    count_size = 2 if data[iinf.payload] == 0 else 4
    return make_box(b"iinf", data[iinf.payload:iinf.payload + 4]
                + len(entries).to_bytes(count_size, "big")
                + b"".join(data[box.start:box.end] for box in entries))


def _iref_kept(data: bytes, iref: Box, keep: set[int]) -> bytes:
    idsize = 2 if data[iref.payload] == 0 else 4
    out = bytearray(data[iref.payload:iref.payload + 4])
    for ref in _references(data, iref):
        to = [item for item in ref.to if item in keep]
        if ref.src in keep and to:
            out += make_box(ref.kind, ref.src.to_bytes(idsize, "big") + len(to).to_bytes(2, "big")
                        + b"".join(item.to_bytes(idsize, "big") for item in to))
    return make_box(b"iref", bytes(out))


def _ipma_kept(data: bytes, ipma: Box, keep: set[int]) -> bytes:
    entries = [(start, end) for item, _props, start, end in _ipma_entries(data, ipma)
               if item in keep]
    return make_box(b"ipma", data[ipma.payload:ipma.payload + 4] + len(entries).to_bytes(4, "big")
                + b"".join(data[start:end] for start, end in entries))
