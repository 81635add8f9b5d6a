"""What the bytes are: magic numbers, extensions and the MIME table.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

HEAD_BYTES = 4096

# extension -> the format it claims (used only to report a misleading extension)
EXTENSIONS: dict[str, str] = {
    "jpg": "jpeg", "jpeg": "jpeg", "jpe": "jpeg", "jfif": "jpeg", "png": "png", "apng": "png",
    "gif": "gif", "webp": "webp", "bmp": "bmp", "dib": "bmp", "tif": "tiff", "tiff": "tiff",
    "heic": "heic", "heif": "heic", "hif": "heic", "avif": "avif", "jp2": "jpeg2000",
    "j2k": "jpeg2000", "jpx": "jpeg2000", "ico": "ico", "cur": "cur", "jxl": "jxl", "mpo": "mpo",
    "dng": "dng",
    "mp4": "mp4", "m4v": "mp4", "mov": "mov", "qt": "mov", "mkv": "mkv", "webm": "webm",
    "avi": "avi", "flv": "flv", "wmv": "wmv", "asf": "wmv", "mpg": "mpeg", "mpeg": "mpeg",
    "m2v": "mpeg", "ts": "ts", "m2ts": "ts", "mts": "ts", "3gp": "3gp", "3g2": "3gp",
}
# Extensions other kinds of file share: .ts and .mts are TypeScript sources too. A folder walk
# takes such a file only when its bytes are media (mediaprep.batch.inputs.is_media_file).
SHARED_EXTENSIONS = frozenset({"ts", "mts", "m2ts"})
IMAGE_FORMATS = frozenset({"jpeg", "png", "gif", "webp", "bmp", "tiff", "heic", "avif",
                           "jpeg2000", "ico", "cur", "jxl", "mpo", "dng"})
VIDEO_FORMATS = frozenset({"mp4", "mov", "mkv", "webm", "avi", "flv", "wmv", "mpeg", "ts", "3gp"})
# formats the same decoder family reads, so a "mismatch" between them is not worth reporting
_EQUIVALENT = [{"jpeg", "mpo"}, {"mp4", "mov", "3gp"}, {"tiff", "dng"}]
# one way only: a WebM is a Matroska file, so .mkv is a fair name for it; a Matroska file named
# .webm is not a WebM (other codecs; Moonshot accepts webm but refuses mkv)
_ALSO_NAMED = {("mkv", "webm")}

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
                b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "image", "video", "other", "empty"
    format: str | None
    detail: str = ""  # e.g. "text", for messages


#: Leading bytes of the image formats, none a prefix of another (so their order is free).
_IMAGE_MAGIC: dict[bytes, str] = {
    b"\xff\xd8\xff": "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"GIF87a": "gif", b"GIF89a": "gif",
    b"II*\x00": "tiff", b"MM\x00*": "tiff", b"II+\x00": "tiff", b"MM\x00+": "tiff",
    b"\x00\x00\x00\x0cjP  \r\n\x87\n": "jpeg2000", b"\xff\x4f\xff\x51": "jpeg2000",
    b"\xff\x0a": "jxl", b"\x00\x00\x00\x0cJXL \r\n\x87\n": "jxl",
}
#: A RIFF file's form type (bytes 8-12).
_RIFF_FORMS: dict[bytes, Sniffed] = {
    b"WEBP": Sniffed("image", "webp"),
    b"AVI ": Sniffed("video", "avi"), b"AVIX": Sniffed("video", "avi"),
}
#: QuickTime atoms a .mov may open with (bytes 4-8) when it has no ftyp.
_MOV_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_MATROSKA = b"\x1a\x45\xdf\xa3"
#: Leading bytes of the other video containers, none a prefix of another.
_VIDEO_MAGIC: dict[bytes, str] = {
    b"FLV": "flv",
    bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"): "wmv",
    b"\x00\x00\x01\xba": "mpeg", b"\x00\x00\x01\xb3": "mpeg",
}


def sniff(head: bytes) -> Sniffed:
    """Classify by magic numbers. ``head`` is the first :data:`HEAD_BYTES` of the file."""
    if not head:
        return Sniffed("empty", None)
    return _sniff_image(head) or _sniff_container(head) or _sniff_other(head)


def _magic(head: bytes, table: dict[bytes, str]) -> str | None:
    return next((fmt for magic, fmt in table.items() if head.startswith(magic)), None)


def _sniff_image(h: bytes) -> Sniffed | None:
    """Still-image formats, and RIFF (a WebP or an AVI): checks whose leading bytes exclude
    each other."""
    fmt = _magic(h, _IMAGE_MAGIC)
    if fmt is not None:
        return Sniffed("image", fmt)
    if h[:4] == b"RIFF" and h[8:12] in _RIFF_FORMS:
        return _RIFF_FORMS[h[8:12]]
    if h[:2] == b"BM" and len(h) >= 14:
        return Sniffed("image", "bmp")
    if h[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and len(h) > 6 and h[4] + h[5] > 0:
        # ICO (type 1) and CUR (type 2) share one directory layout
        return Sniffed("image", "ico" if h[2] == 1 else "cur")
    return None


def _sniff_container(h: bytes) -> Sniffed | None:
    """ISO BMFF (HEIF/AVIF images, MP4/MOV/3GP video) and the other video containers, in this
    order (an ftyp box outranks the leading bytes of the others)."""
    if h[4:8] == b"ftyp":
        return _sniff_isobmff(h)
    if h[4:8] in _MOV_ATOMS:
        return Sniffed("video", "mov")
    if h[:4] == _MATROSKA:
        return Sniffed("video", "webm" if b"webm" in h[:64] else "mkv")
    fmt = _magic(h, _VIDEO_MAGIC)
    if fmt is not None:
        return Sniffed("video", fmt)
    if is_transport_stream(h):
        return Sniffed("video", "ts")
    return None


def _sniff_other(h: bytes) -> Sniffed:
    if _looks_like_text(h):
        return Sniffed("other", None, "text")
    return Sniffed("other", None)


# MPEG-TS packets are 188 bytes from the sync byte; M2TS (Blu-ray, AVCHD .mts) puts a 4-byte
# timecode before each, so 192 bytes
_TS_PACKET_SIZES = (188, 192)
_TS_SYNC = 0x47
_TS_MIN_PACKETS = 3


def is_transport_stream(head: bytes) -> bool:
    """Whether ``head`` is MPEG-TS or M2TS packets: a sync byte every packet, from the first
    packet on (a capture cut mid-packet starts with the rest of one).

    Every packet the head holds must agree (at least three), not only the first three: a text
    file may have a "G" at 0, 188 and 376 by chance, hardly one every 188 bytes.
    """
    for size in _TS_PACKET_SIZES:
        for first in range(min(size, len(head))):
            if head[first] != _TS_SYNC:
                continue
            starts = range(first, len(head), size)
            if len(starts) >= _TS_MIN_PACKETS and all(head[i] == _TS_SYNC for i in starts):
                return True
    return False


def _sniff_isobmff(h: bytes) -> Sniffed:
    major = h[8:12]
    size = int.from_bytes(h[:4], "big")
    brands = {major} | {h[i : i + 4] for i in range(16, min(size, len(h), 64), 4)}
    if major in _AVIF_BRANDS or (major in (b"mif1", b"msf1") and brands & _AVIF_BRANDS):
        return Sniffed("image", "avif")
    if major in _HEIF_BRANDS:
        return Sniffed("image", "heic")
    if major == b"qt  ":
        return Sniffed("video", "mov")
    if major[:3] in (b"3gp", b"3g2", b"3ge", b"3gg"):
        return Sniffed("video", "3gp")
    return Sniffed("video", "mp4")


def _looks_like_text(h: bytes) -> bool:
    try:
        h.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the end of the head is still text
        try:
            h[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(b >= 9 for b in h[:512])


def extension_matches(ext: str | None, fmt: str | None) -> bool:
    """Whether a file's extension agrees with the format found in its bytes."""
    if not ext or fmt is None or ext not in EXTENSIONS:
        return True
    claimed = EXTENSIONS[ext]
    if claimed == fmt or (claimed, fmt) in _ALSO_NAMED:
        return True
    return any(claimed in group and fmt in group for group in _EQUIVALENT)


MIME = {
    "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
    "bmp": "image/bmp", "tiff": "image/tiff", "heic": "image/heic", "avif": "image/avif",
    "mp4": "video/mp4", "mov": "video/quicktime", "mkv": "video/x-matroska",
    "webm": "video/webm", "avi": "video/x-msvideo", "flv": "video/x-flv",
    "wmv": "video/x-ms-wmv", "mpeg": "video/mpeg", "ts": "video/mp2t", "3gp": "video/3gpp",
}


def mime_for(fmt: str | None) -> str:
    return MIME.get(fmt or "", "application/octet-stream")


def data_url_size(n_bytes: int, mime: str) -> int:
    """Exact length of ``data:<mime>;base64,<payload>`` for ``n_bytes`` of payload.

    Computed, not encoded: 4 characters per started 3 bytes, plus the prefix. The providers
    count the whole data URL against their per-item limit.
    """
    return len(f"data:{mime};base64,") + 4 * ((n_bytes + 2) // 3)


def largest_payload(budget: float, mime: str) -> int:
    """The inverse of :func:`data_url_size`: the largest ``n`` with
    ``data_url_size(n, mime) <= budget`` (0 when not even an empty payload fits).

    Closed form: whole groups of 3 bytes, each written as 4 characters, after the prefix.
    """
    room = math.floor(budget) - len(f"data:{mime};base64,")
    return 3 * (room // 4) if room >= 0 else 0


def largest_fitting(size_of: Callable[[int], int], budget: float) -> int:
    """Largest payload ``n`` with ``size_of(n) <= budget``, ``size_of`` monotone (0 when even 0
    does not fit). Closed form for the identity and for ``partial(data_url_size, mime=...)``
    (:func:`data_url_sizer`); a bisection for any other counting rule a caller passes.
    """
    if size_of is identity_size:
        return max(0, math.floor(budget))
    if (isinstance(size_of, functools.partial) and size_of.func is data_url_size
            and not size_of.args and set(size_of.keywords) == {"mime"}):
        return largest_payload(budget, size_of.keywords["mime"])
    if size_of(0) > budget:
        return 0
    lo, hi = 0, max(1, math.floor(budget))
    while size_of(hi) <= budget:  # size_of may count fewer bytes than the payload
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if size_of(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


def identity_size(n_bytes: int) -> int:
    """The payload counted as it is (url and path transports)."""
    return n_bytes


def data_url_sizer(mime: str) -> Callable[[int], int]:
    """``size_of`` for a data URL of ``mime`` (inverted in closed form by
    :func:`largest_fitting`)."""
    return functools.partial(data_url_size, mime=mime)
