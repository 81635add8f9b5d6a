"""Every call into Pillow (and pillow-heif): one open with one decompression guard, the
image probe, and the transforms (orientation, mode, resize, pad).
"""

from __future__ import annotations

import contextlib
import io
import math
import mmap
import os
import re
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Any

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MediaprepError
from ..limits import Limits, limits_for
from ..types import UNENCODED, MediaInfo
from .colour import colour_facts, flatten, tone_map_image
from .colour import to_srgb as colour_to_srgb
from .heif import isobmff_problem
from .raw import DngFile, read_dng
from .sniff import Sniffed
from .source import BytesSource, MediaSource

if TYPE_CHECKING:
    import numpy as np  # imported where used: a video's frames never need it here

_PILLOW_FORMATS = {
    "JPEG": "jpeg", "MPO": "mpo", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp",
    "DIB": "bmp", "TIFF": "tiff", "HEIF": "heic", "AVIF": "avif", "JPEG2000": "jpeg2000",
    "ICO": "ico", "CUR": "cur", "PPM": "ppm", "TGA": "tga", "PCX": "pcx", "PSD": "psd",
    "DDS": "dds",
}
_BITS_BY_MODE = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}

_heif_registered = False
_pixels_lock = threading.Lock()


def register_plugins() -> None:
    """HEIC/HEIF through pillow-heif (AVIF is Pillow's own)."""
    global _heif_registered
    if not _heif_registered:
        import pillow_heif

        pillow_heif.register_heif_opener()
        _heif_registered = True


class BombError(MediaprepError):
    def __init__(self, pixels: int | None, message: str) -> None:
        super().__init__(message)
        self.pixels = pixels


class DecodeTimeout(MediaprepError, OSError):
    """A decode ran past ``image.max_decode_seconds`` (checked between the decoder's reads)."""


# Below this many decoded bytes the pixels-per-byte rule is not applied: a small flat image
# (a blank 4000x4000 PNG of a few kB) compresses far better than any photo and costs little.
RATIO_FLOOR_BYTES = 256 << 20
# bytes per pixel of the image prep works on: palettes and animations become RGBA
_WORK_BYTES = {"1": 1, "L": 1, "LA": 2, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2,
               "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3, "P": 4, "PA": 4, "RGBA": 4, "RGBa": 4,
               "RGBX": 4, "CMYK": 4, "I": 4, "F": 4, "La": 2}


@dataclass(frozen=True)
class DecodeGuard:
    """What decoding may cost, from the limits table (each row overridable, None = off)."""

    max_pixels: int | None = None
    max_bytes: int | None = None
    max_pixels_per_byte: float | None = None
    max_jpeg_scans: int | None = None
    max_seconds: float | None = None
    box: tuple[int, int] | None = None  # the largest size prep decodes to (JPEG DCT scaling)

    @classmethod
    def from_limits(cls, limits: Limits | None) -> DecodeGuard:
        limits = limits or limits_for()
        ceiling = limits.value("image.max_decode_pixels")
        # a pixel ceiling raised above its default (or off) is the user's word that such
        # images are wanted: the cost rules give way to it (each can also be set alone)
        raised = ceiling is None or ceiling > limits_for(limits.target).value(
            "image.max_decode_pixels", 0)
        return cls(ceiling,
                   None if raised else limits.value("image.max_decode_bytes"),
                   None if raised else limits.value("image.max_pixels_per_byte"),
                   limits.value("image.max_jpeg_scans"),
                   limits.value("image.max_decode_seconds"),
                   limits.value("image.recommended_box"))

    def judge(self, w: int, h: int, *, mode: str | None, file_bytes: int | None,
              animated: bool = False, jpeg: bool = False, what: str = "",
              buffer_per_pixel: float = 0, buffer: int = 0) -> None:
        """Raise BombError when decoding ``w`` x ``h`` would cost too much: the decoded image
        (its mode's bytes a pixel), the decoder's own buffer (``buffer_per_pixel`` a pixel,
        or ``buffer`` bytes: a TIFF strip at its true bit depth, libwebp's frame) and the
        full-size copy prep makes before it shrinks (:func:`decode_cost`)."""
        pixels = w * h
        where = f"{what} " if what else ""
        if self.max_pixels is not None and pixels > self.max_pixels:
            raise BombError(pixels, f"{where}declares {w}x{h} = {pixels:,} pixels, above "
                                    f"image.max_decode_pixels {self.max_pixels:,}")
        per = 4 if animated else _WORK_BYTES.get(mode or "RGB", 4)
        self._judge_density(w, h, pixels * per, file_bytes, where)
        scale = jpeg_scale((w, h), self.box) if jpeg else 1
        cost, parts = decode_cost(-(-w // scale) * -(-h // scale), per, buffer_per_pixel,
                                  buffer)
        if self.max_bytes is not None and cost > self.max_bytes:
            how = f" at 1/{scale} scale" if scale > 1 else ""
            raise BombError(pixels, f"{where}{w}x{h} would take {cost / 2**20:,.0f} MiB to "
                                    f"decode and prepare{how} ({parts}), above "
                                    f"image.max_decode_bytes {self.max_bytes / 2**20:,.0f} MiB; "
                                    "raise it to prepare the image anyway")

    def _judge_density(self, w: int, h: int, claimed: int, file_bytes: int | None,
                       where: str) -> None:
        """The pixels-per-byte rule: a large image (``claimed`` decoded bytes above
        :data:`RATIO_FLOOR_BYTES`) from far too few file bytes."""
        if self.max_pixels_per_byte is None or not file_bytes or claimed <= RATIO_FLOOR_BYTES:
            return
        pixels = w * h
        if pixels / file_bytes > self.max_pixels_per_byte:
            raise BombError(pixels, f"{where}{w}x{h} = {pixels:,} pixels from {file_bytes:,} "
                                    f"bytes: {pixels / file_bytes:,.0f} pixels per byte, above "
                                    f"image.max_pixels_per_byte {self.max_pixels_per_byte:,g} "
                                    "(a photo claims tens)")


def decode_cost(pixels: int, per: int, buffer_per_pixel: float = 0,
                buffer: int = 0) -> tuple[int, str]:
    """Bytes decoding and preparing ``pixels`` costs at its peak, and what they are: the
    decoded image (``per`` bytes a pixel), the decoder's own buffer, and one full-size copy of
    the image as prep converts it before it shrinks it (a mode conversion, or the premultiplied
    copy a resize of RGBA makes; measured: a 13000 x 13000 RGBA PNG peaked at 9.3 B/px over
    the process's base, a single-strip RGB TIFF at 6.7, an RGB WebP at 15)."""
    buffer = int(buffer + pixels * buffer_per_pixel)
    cost = pixels * per * 2 + buffer
    parts = f"{per} B/px decoded, {per} B/px for prep's working copy"
    if buffer:
        parts += f", {buffer / 2**20:,.0f} MiB of decoder buffer"
    return cost, parts


#: libwebp decodes a frame into its own RGBA buffer, which Pillow copies before unpacking it
WEBP_BUFFER_PER_PIXEL = 8
#: FFmpeg's decode of a still WebP (:mod:`.av_webp`): the coded 4:2:0 picture and the RGB(A)
#: frame Pillow copies from (measured: a 40 MP RGB WebP peaked at 9.5 B/px over the base)
LEAN_WEBP_BUFFER_PER_PIXEL = 4


def lean_webp(w: int, h: int, mode: str | None, animated: bool) -> bool:
    """Whether a WebP of ``w`` x ``h`` is decoded by FFmpeg (:mod:`.av_webp`) rather than
    libwebp's animation decoder: a still picture whose libwebp decode would cost more than the
    default ``image.max_decode_bytes`` (above 33.5 MP in RGB). Smaller ones keep libwebp's,
    which is twice as fast; larger ones would otherwise be refused."""
    if animated:
        return False
    ceiling = limits_for().value("image.max_decode_bytes")
    cost, _ = decode_cost(w * h, 4 if mode == "RGBA" else 3, WEBP_BUFFER_PER_PIXEL)
    return ceiling is not None and cost > ceiling


def webp_buffer_per_pixel(w: int, h: int, mode: str | None, animated: bool) -> int:
    """The decoder buffer a WebP's decode holds a pixel, by the decoder :func:`lean_webp`
    picks."""
    return (LEAN_WEBP_BUFFER_PER_PIXEL if lean_webp(w, h, mode, animated)
            else WEBP_BUFFER_PER_PIXEL)


def tiff_strip_bytes(im: Image.Image) -> int:
    """The largest strip or tile of a TIFF at its true bit depth (16-bit RGBA: 8 B/px): what
    Pillow's libtiff decoder holds besides the image while it decodes one (a whole-image
    strip is the whole image again)."""
    try:
        tags = im.tag_v2
        width = int(tags.get(322) or tags.get(256) or im.width)  # tile width, else the width
        rows = int(tags.get(323) or tags.get(278) or im.height)  # tile length, else strip rows
        bits = tags.get(258) or (8,)
        bits = sum(int(b) for b in bits) if isinstance(bits, tuple) else int(bits) * int(
            tags.get(277) or 1)
        return -(-width * bits // 8) * min(rows, im.height)
    except (TypeError, ValueError, AttributeError):
        return 0


def jpeg_scale(size: tuple[int, int], box: tuple[int, int] | None) -> int:
    """The DCT scale denominator (1, 2, 4, 8) a JPEG of ``size`` is decoded at to fit ``box``
    (either orientation): the smallest decode that still covers the fitted size."""
    if not box:
        return 1
    w, h = size
    long_, short = max(box), min(box)
    f = min(1.0, long_ / max(w, h), short / max(1, min(w, h)))
    fw, fh = max(1, round(w * f)), max(1, round(h * f))
    scale = 1
    while scale < 8 and -(-w // (scale * 2)) >= fw and -(-h // (scale * 2)) >= fh:
        scale *= 2
    return scale


class _Deadline:
    """A file object whose reads fail once ``seconds`` have passed: Pillow's decoders pull
    their input in blocks, so a decode that runs too long stops at its next read."""

    def __init__(self, fh: IO[bytes], seconds: float | None) -> None:
        self._fh = fh
        self._seconds = seconds
        self._end = None if seconds is None else time.monotonic() + seconds

    def read(self, n: int = -1) -> bytes:
        if self._end is not None and time.monotonic() > self._end:
            raise DecodeTimeout(f"decoding took longer than {self._seconds:g} s "
                                "(image.max_decode_seconds)")
        return self._fh.read(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def pil_open(fh: IO[bytes], max_pixels: int | None, *,
             seconds: float | None = None) -> Image.Image:
    """The one Pillow open: lazily, with Pillow's own bomb check and its warning replaced by
    ours (callers judge the cost first), its EXIF warnings silenced, reads bounded in time.

    Pillow refuses above 2 x ``Image.MAX_IMAGE_PIXELS`` by itself; when ``max_pixels`` is
    higher (or None: guarded already), the open is retried with Pillow's global raised under a
    lock."""
    register_plugins()
    src: Any = _Deadline(fh, seconds) if seconds is not None else fh
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            return _lean_if_large(Image.open(src), fh)
        except Image.DecompressionBombError as exc:
            pixels = _pixels_from_message(str(exc))
            if max_pixels is not None and (pixels is None or pixels > max_pixels):
                # our sentence and our limit, not Pillow's (its threshold is not the one used)
                declared = f"{pixels:,} pixels" if pixels is not None else "too many pixels"
                raise BombError(pixels, f"declares {declared}, above image.max_decode_pixels "
                                        f"{max_pixels:,}") from exc
            fh.seek(0)
            with _pixels_lock:
                saved = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = None
                try:
                    return _lean_if_large(Image.open(src), fh)
                finally:
                    Image.MAX_IMAGE_PIXELS = saved
        except ValueError as exc:
            if "Decompressed data too large" in str(exc):  # a PNG text or profile bomb
                raise BombError(None, _png_zlib_bomb(fh)) from exc
            raise


def _lean_if_large(im: Image.Image, fh: IO[bytes]) -> Image.Image:
    """``im``, or the same header over FFmpeg's decode when :func:`lean_webp` says so."""
    if im.format != "WEBP" or not lean_webp(im.width, im.height, im.mode,
                                            bool(getattr(im, "is_animated", False))):
        return im
    from .av_webp import LeanWebPImageFile  # PyAV is loaded only for such files

    return LeanWebPImageFile(fh, im)


def _png_zlib_bomb(fh: IO[bytes]) -> str:
    """Which compressed PNG chunk inflates past Pillow's 1 MiB cap (iCCP, zTXt or iTXt)."""
    try:
        fh.seek(8)
        while True:
            hdr = fh.read(8)
            if len(hdr) < 8:
                break
            length, ctype = struct.unpack(">I4s", hdr)
            if ctype == b"iCCP":
                return ("its ICC colour profile (iCCP chunk) inflates past 1 MiB (real profiles "
                        "are a few kB): a zlib bomb")
            if ctype in (b"IDAT", b"IEND"):
                break
            fh.seek(length + 4, 1)
    except (OSError, struct.error):
        pass
    return "a compressed text chunk (zTXt/iTXt) inflates past 1 MiB: a zlib bomb"


@contextlib.contextmanager
def open_image(fh: IO[bytes], max_pixels: int | None,
               guard: DecodeGuard | None = None, size: int | None = None) -> Iterator[Image.Image]:
    """Open lazily, refusing (BombError) before any decode when decoding would cost too much."""
    guard = guard or DecodeGuard(max_pixels=max_pixels)
    im = pil_open(fh, guard.max_pixels, seconds=guard.max_seconds)
    with im:
        w, h = im.size
        animated = (getattr(im, "n_frames", 1) or 1) > 1 or bool(getattr(im, "is_animated", 0))
        guard.judge(w, h, mode=im.mode, file_bytes=size, animated=animated,
                    jpeg=im.format in ("JPEG", "MPO"),
                    buffer=tiff_strip_bytes(im) if im.format == "TIFF" else 0,
                    buffer_per_pixel=webp_buffer_per_pixel(w, h, im.mode, animated)
                    if im.format == "WEBP" else 0)
        yield im


def _pixels_from_message(msg: str) -> int | None:
    m = re.search(r"\((\d+) pixels\)", msg)
    return int(m.group(1)) if m else None


def probe_image(src: MediaSource, sniffed: Sniffed, *, max_pixels: int | None,
                deep: bool = False, limits: Limits | None = None) -> MediaInfo:
    info = MediaInfo(path=src.name, kind="image", format=sniffed.format, bytes=src.size)
    if src.image is not None:
        _from_pil(info, src.image)
        info.format = info.format or UNENCODED
        return info
    if sniffed.format == "tiff":
        with src.open() as fh:
            dng = read_dng(fh, src.size)
        if dng is not None:
            return _probe_dng(src, info, dng, max_pixels=max_pixels, deep=deep, limits=limits)
    guard = DecodeGuard.from_limits(limits)
    if max_pixels != guard.max_pixels:
        guard = replace(guard, max_pixels=max_pixels)
    try:
        _probe_file(info, src, sniffed, guard, deep)
    except (BombError, DecodeTimeout, UnidentifiedImageError, OSError, ValueError,
            SyntaxError, struct.error, EOFError, MemoryError, IndexError, KeyError, TypeError,
            ZeroDivisionError, RuntimeError) as exc:
        _record_refusal(info, exc, sniffed)
    return info


def _probe_file(info: MediaInfo, src: MediaSource, sniffed: Sniffed, guard: DecodeGuard,
                deep: bool) -> None:
    """:func:`probe_image` of a file's bytes: the structure walk before Pillow, Pillow's
    header, the structure after it (``deep``: every pixel decoded)."""
    with src.open() as fh:
        frames, walk_problem, jpeg_end = _pre_open(fh, sniffed.format, src.size, guard)
        fh.seek(0)
        with open_image(fh, guard.max_pixels, guard, src.size) as im:
            _from_pil(info, im)
            info.format = _PILLOW_FORMATS.get(im.format or "", (im.format or "").lower()) or (
                sniffed.format)
            _read_header_extras(info, im, src, frames)
            _read_colour(info, im, src)
            if jpeg_end is not None and src.size - jpeg_end > JPEG_TRAILER_KEPT_BYTES:
                info.image_bytes = jpeg_end
                info.notes.append(f"{src.size - jpeg_end:,} bytes after the first image's "
                                  f"end ({trailer_kind(src, jpeg_end, info.format)})")
            problem = (None if jpeg_end is not None else
                       structural_problem(info.format, src, im)) or walk_problem
            if problem:
                info.error, info.error_code = problem, "file.unreadable"
            elif deep:
                _decode_all(im, guard)


def _record_refusal(info: MediaInfo, exc: Exception, sniffed: Sniffed) -> None:
    """Why :func:`_probe_file` failed, as ``info``'s error and finding code."""
    info.error_code = "file.unreadable"
    if isinstance(exc, BombError):
        info.error_code = "image.decompression_bomb"
        info.error = str(exc)
        info.declared_pixels = exc.pixels if info.width is None else info.pixels
    elif isinstance(exc, DecodeTimeout):
        info.error = str(exc)
    elif isinstance(exc, UnidentifiedImageError) and sniffed.format == "jxl":
        info.error_code = "file.unsupported_format"
        info.error = ("a JPEG XL image: no provider takes it and mediaprep has no decoder "
                      "for it; convert it to JPEG or PNG first")
    elif isinstance(exc, UnidentifiedImageError):
        info.error = "not a readable image (Pillow cannot identify it)"
    else:
        info.error = f"cannot read image: {type(exc).__name__}: {exc}"


def _probe_dng(src: MediaSource, info: MediaInfo, dng: DngFile, *, max_pixels: int | None,
               deep: bool, limits: Limits | None) -> MediaInfo:
    """A DNG stands for its largest embedded JPEG preview (probed as that JPEG); one with none
    is refused: mediaprep does not develop raw sensor data."""
    info.format = "dng"
    info.raw_size = dng.raw_size if dng.raw_size != (0, 0) else None
    best = dng.best
    if best is None:
        info.error_code = "file.unsupported_format"
        info.error = ("a DNG raw file with no embedded JPEG preview; mediaprep does not develop "
                      "raw images (export a JPEG from a raw converter)")
        return info
    with src.open() as fh:
        fh.seek(best.offset)
        preview = fh.read(best.length)
    inner = probe_image(BytesSource(src.name, preview), Sniffed("image", "jpeg"),
                        max_pixels=max_pixels, deep=deep, limits=limits)
    for name in ("width", "height", "mode", "bit_depth", "error", "error_code",
                 "declared_pixels", "orientation"):
        setattr(info, name, getattr(inner, name))
    if info.orientation in (None, 1) and dng.orientation != 1:
        info.orientation = dng.orientation  # the preview's own EXIF, if any, comes first
    if inner.error is not None:
        info.error = f"its embedded preview: {inner.error}"
    info.image_offset, info.image_bytes = best.offset, best.length
    raw = f"raw {info.raw_size[0]}x{info.raw_size[1]}; " if info.raw_size else ""
    info.notes.append(f"DNG ({raw}the embedded {best.width}x{best.height} JPEG preview is "
                      "used)")
    return info


def _from_pil(info: MediaInfo, im: Image.Image) -> MediaInfo:
    info.width, info.height = im.size
    info.mode = im.mode
    info.bit_depth = _BITS_BY_MODE.get(im.mode, 8)
    if info.format is None and im.format:
        info.format = _PILLOW_FORMATS.get(im.format, im.format.lower())
    return info


def _read_colour(info: MediaInfo, im: Image.Image, src: MediaSource) -> None:
    facts = colour_facts(im, src.head(_NCLX_HEAD) if info.format in ("heic", "avif") else b"")
    info.colour, info.colour_shift = facts.colour, facts.shift
    if facts.cicp is not None:
        c = facts.cicp
        info.cicp = [c.primaries, c.transfer, c.matrix, int(c.full_range)]
        info.hdr = c.hdr


#: An HEIF/AVIF's meta box (with its colr boxes) sits in its opening bytes
_NCLX_HEAD = 64 * 1024


def _read_header_extras(info: MediaInfo, im: Image.Image, src: MediaSource,
                        frames: int | None = None) -> None:
    if info.format == "png":
        # IHDR byte 24 is the bit depth per sample; Pillow folds 16-bit RGB(A) into 8-bit modes
        head = src.head(26)
        if len(head) >= 25:
            info.bit_depth = head[24]
    elif info.format in ("heic", "avif"):
        depth = im.info.get("bit_depth")
        if isinstance(depth, int):
            info.bit_depth = depth
    info.orientation = _orientation(im, info.format)
    n = getattr(im, "n_frames", 1) or 1
    if frames is not None:  # an APNG's acTL may lie: its fcTL chunks are the frames it holds
        n = min(n, max(frames, 1))
    if n > 1 and info.format not in ("mpo", "tiff", "ico", "cur", "heic"):
        info.frames = n
    elif n > 1:
        info.notes.append(f"{n} pictures in the file; the first is used")


def _orientation(im: Image.Image, fmt: str | None) -> int | None:
    try:
        if fmt == "png":
            # PngImageFile.getexif decodes the image to reach late chunks; the base class reads
            # only what the header pass found (eXIf before IDAT, ImageMagick raw profile, XMP).
            if not any(k in im.info for k in ("exif", "Raw profile type exif", "xmp",
                                              "XML:com.adobe.xmp")):
                return None
            exif = Image.Image.getexif(im)
        else:
            exif = im.getexif()
        value = exif.get(0x0112)
    except Exception:  # malformed EXIF is common and never fatal
        return None
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else None


#: Bytes after a JPEG's end-of-image that are sent along (padding some cameras write); more is
#: a motion photo's video or an MPF gain map, which prep strips (the model sees the first image).
JPEG_TRAILER_KEPT_BYTES = 1024


def trailer_kind(src: MediaSource, end: int, fmt: str | None) -> str:
    """What follows a JPEG's first image, in words: an MP4 (a motion photo's video), the MPF
    secondary images (an Ultra HDR gain map, a stereo pair), or unknown data."""
    with src.open() as fh:
        fh.seek(end)
        head = fh.read(64)
    if b"ftyp" in head[:16]:
        return "a motion photo's video"
    if fmt == "mpo" or head[:2] == b"\xff\xd8":
        return "MPF secondary images: a gain map or another picture"
    return "data the image does not use"


def structural_problem(fmt: str | None, src: MediaSource,
                       im: Image.Image | None) -> str | None:
    """A reason the file is cut short or inconsistent, found without decoding pixels (``im``,
    the file opened by Pillow, is needed for BMP and TIFF only)."""
    if src.path is None and src.data is None:
        return None
    walk = _STRUCTURE_WALKS.get(fmt or "")
    return walk(src, im) if walk is not None else None


def _jpeg_structure(src: MediaSource, im: Image.Image | None) -> str | None:
    if src.tail(1024).rfind(b"\xff\xd9") < 0:
        return "truncated: the JPEG has no end-of-image marker"
    return None


def _png_structure(src: MediaSource, im: Image.Image | None) -> str | None:
    return _png_problem(src)


def _gif_structure(src: MediaSource, im: Image.Image | None) -> str | None:
    if b";" not in src.tail(16):
        return "truncated: the GIF has no trailer"
    return None


def _webp_structure(src: MediaSource, im: Image.Image | None) -> str | None:
    size = src.size
    head = src.head(20)
    declared = int.from_bytes(head[4:8], "little") + 8
    if declared > size:
        return f"truncated: the WEBP declares {declared} bytes, the file has {size}"
    chunk_end = 20 + int.from_bytes(head[16:20], "little")
    if len(head) < 20 or chunk_end > size:
        return f"truncated: the WEBP's {head[12:16]!r} chunk runs past the end of the file"
    if head[12:16] == b"VP8L" and chunk_end - 20 < 8:  # 5-byte header + data
        return "corrupt: the WEBP holds no image data"
    return None


def _heif_structure(src: MediaSource, im: Image.Image | None) -> str | None:
    return isobmff_problem(src, im.size if im is not None else (0, 0))


def _raster_structure(src: MediaSource, im: Image.Image | None) -> str | None:
    end = _raster_end(im) if im is not None else None
    if end is not None and end > src.size:
        return f"truncated: pixel data should reach byte {end}, the file has {src.size}"
    return None


#: The structure walk of each format :func:`structural_problem` knows
_STRUCTURE_WALKS: dict[str, Callable[[MediaSource, Image.Image | None], str | None]] = {
    "jpeg": _jpeg_structure, "mpo": _jpeg_structure, "png": _png_structure,
    "gif": _gif_structure, "webp": _webp_structure, "heic": _heif_structure,
    "avif": _heif_structure, "bmp": _raster_structure, "tiff": _raster_structure,
}


#: A PNG whose IDAT chunks total at most this many bytes has its zlib stream inflated (output
#: discarded) by the shallow check, so a bad checksum is found by check and not first by prep's
#: decode; it costs at most a few ms (65 MiB of output at zlib's largest ratio). Larger image
#: data is left to ``--deep``.
PNG_INFLATE_CHECK_BYTES = 64 * 1024


def _png_chunks(fh: IO[bytes], size: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, data offset, length) of each chunk header within ``size`` bytes (no CRC check,
    no data read): the one PNG chunk walk."""
    pos = 8
    while pos + 8 <= size:
        fh.seek(pos)
        hdr = fh.read(8)
        if len(hdr) < 8:
            return
        length, ctype = struct.unpack(">I4s", hdr)
        yield ctype, pos + 8, length
        pos += 12 + length


def _png_problem(src: MediaSource) -> str | None:
    """Walk the chunk headers (no CRC): IDAT present, IEND reached within the file; a small
    image's data is verified as prep verifies it (see :data:`PNG_INFLATE_CHECK_BYTES`)."""
    with src.open() as fh:
        idat: list[tuple[int, int]] = []
        for ctype, offset, length in _png_chunks(fh, src.size):
            if ctype == b"IDAT":
                idat.append((offset, length))
            if ctype == b"IEND":
                if not idat:
                    return "corrupt: the PNG has no image data"
                if sum(n for _, n in idat) > PNG_INFLATE_CHECK_BYTES:
                    return None
                return png_data_problem(fh, idat, png_rows(src.head(29)[16:29]))
        return "truncated: the PNG ends before its IEND chunk"


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Adam7's passes: (x0, y0, dx, dy)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))
#: Inflated PNG data is looked at this much at a time (the memory the verify holds).
_PNG_INFLATE_STEP = 4 << 20
#: Inflated data past what the rows need is what Pillow ignores; the verify stops inflating
#: (and so stops looking for the Adler-32) this far past it, as the decode never gets there.
_PNG_EXTRA_ALLOWED = 1 << 20


def png_rows(ihdr: bytes) -> list[tuple[int, int]] | None:
    """(bytes per row, filter byte included; rows) of each pass of the IDAT stream, from the
    13 bytes of IHDR data; None when IHDR is not one this can lay out."""
    layout = _png_layout(ihdr)
    if layout is None:
        return None
    w, h, bits, interlace = layout
    if not interlace:
        return [((w * bits + 7) // 8 + 1, h)]
    passes = ((_adam7_span(w, x0, dx), _adam7_span(h, y0, dy)) for x0, y0, dx, dy in _ADAM7)
    return [((pw * bits + 7) // 8 + 1, ph) for pw, ph in passes if pw and ph]


def _png_layout(ihdr: bytes) -> tuple[int, int, int, int] | None:
    """(width, height, bits per pixel, interlace method) from IHDR's data; None when it is
    not a layout PNG defines."""
    if len(ihdr) < 13:
        return None
    w, h, depth, ctype, _comp, _filt, interlace = struct.unpack(">IIBBBBB", ihdr[:13])
    ch = _PNG_CHANNELS.get(ctype)
    if ch is None or depth not in (1, 2, 4, 8, 16) or interlace > 1 or not w or not h:
        return None
    return w, h, ch * depth, interlace


def _adam7_span(size: int, first: int, step: int) -> int:
    """Pixels of a ``size``-pixel side an Adam7 pass holds, from ``first`` every ``step``."""
    return (size - first + step - 1) // step if size > first else 0


def png_data_problem(fh: IO[bytes], idat: list[tuple[int, int]],
                     rows: list[tuple[int, int]] | None, *,
                     deadline: float | None = None) -> str | None:
    """Verify a PNG's image data without unfiltering it into pixels: each IDAT chunk's CRC,
    the zlib stream inflating (its Adler-32 when the stream reaches it), enough data for every
    row of ``rows`` (:func:`png_rows`) and every row's filter type 0-4. Pillow's decode refuses
    the same (a bad stream, a short one, an unknown filter type) and not the CRC, which libpng
    refuses. The inflated data is looked at ``_PNG_INFLATE_STEP`` bytes at a time."""
    stream = _PngStream(rows, deadline)
    try:
        for start, n in idat:
            fh.seek(start)
            buf = fh.read(n + 4)
            problem = _idat_problem(buf, n) or stream.feed(memoryview(buf)[:n])
            if problem:
                return problem
    except zlib.error as exc:
        return f"corrupt: the PNG's image data does not inflate ({exc})"
    return stream.shortfall()


def _idat_problem(buf: bytes, n: int) -> str | None:
    """An IDAT chunk's ``n`` bytes of data and CRC (``buf``) cut short or failing the CRC."""
    if len(buf) < n + 4:
        return "truncated: a PNG IDAT chunk runs past the end of the file"
    if zlib.crc32(memoryview(buf)[:n], zlib.crc32(b"IDAT")) != int.from_bytes(buf[n:], "big"):
        return "corrupt: a PNG IDAT chunk fails its CRC check (damaged image data)"
    return None


class _PngStream:
    """A PNG's zlib stream, inflated as its IDAT chunks come (:func:`png_data_problem`): the
    filter type of every row it lays out (``rows``, None: not looked at) and how much it
    inflates to."""

    def __init__(self, rows: list[tuple[int, int]] | None, deadline: float | None) -> None:
        # (first byte, bytes per row, end) of each pass in the inflated data
        self.segments: list[tuple[int, int, int]] = []
        at = 0
        for length, count in rows or ():
            self.segments.append((at, length, at + length * count))
            at += length * count
        self.expected = at
        self.rows = rows
        self.deadline = deadline
        self.z = zlib.decompressobj()
        self.done = 0  # inflated bytes seen
        self.inflating = True

    def feed(self, data: Any) -> str | None:
        """Inflate one chunk's data; a row's unknown filter type, else None."""
        while self.inflating and len(data) and not self.z.eof:
            if self.deadline is not None and time.monotonic() > self.deadline:
                raise DecodeTimeout("verifying the PNG took longer than "
                                    "image.max_decode_seconds")
            out = self.z.decompress(data, _PNG_INFLATE_STEP)
            data = self.z.unconsumed_tail
            bad = _bad_filter(out, self.done, self.segments) if self.rows is not None else None
            if bad is not None:
                return f"corrupt: the PNG's image data has an unknown row filter type {bad}"
            self.done += len(out)
            # past what the rows need, Pillow's decode never looks: neither does this
            self.inflating = (self.rows is None
                              or self.done <= self.expected + _PNG_EXTRA_ALLOWED)
        return None

    def shortfall(self) -> str | None:
        """The stream inflated to fewer bytes than the rows need, in words; else None."""
        if self.rows is not None and self.done < self.expected:
            return (f"truncated: the PNG's image data inflates to {self.done:,} bytes, its "
                    f"rows need {self.expected:,}")
        return None


def _bad_filter(out: bytes, at: int, segments: list[tuple[int, int, int]]) -> int | None:
    """The first row filter type above 4 among the rows starting in ``out`` (the inflated
    bytes from offset ``at``), else None."""
    if not out:
        return None
    import numpy as np

    arr = np.frombuffer(out, np.uint8)
    end_at = at + len(out)
    for first, length, end in segments:
        if first >= end_at or end <= at:
            continue
        row0 = first if at <= first else first + -(-(at - first) // length) * length
        stop = min(end, end_at)
        if row0 < stop:
            types = arr[row0 - at:stop - at:length]
            if types.size and int(types.max()) > 4:
                return int(types[types > 4][0])
    return None


def _raster_end(im: Image.Image) -> int | None:
    """Where uncompressed BMP or TIFF strip data ends, from the header."""
    try:
        if im.format in ("BMP", "DIB"):
            return _bmp_end(im)
        if im.format == "TIFF":
            return _tiff_end(im)
    except Exception:
        return None
    return None


def _bmp_end(im: Image.Image) -> int | None:
    if not im.tile or im.tile[0][0] != "raw":
        return None
    tile = im.tile[0]
    stride = tile[3][1] if len(tile[3]) > 1 else 0
    return tile[2] + stride * im.size[1] if stride else None


def _tiff_end(im: Image.Image) -> int | None:
    offsets = im.tag_v2.get(273) or im.tag_v2.get(324)  # strips or tiles
    counts = im.tag_v2.get(279) or im.tag_v2.get(325)
    if not offsets or not counts:
        return None
    return max(int(o) + int(c) for o, c in zip(offsets, counts, strict=False))


def shown_frame(im: Image.Image) -> int:
    """The frame of a just-opened file that a viewer shows, and so the one prepare sends: a
    HEIF's primary image (pillow-heif opens at it; it need not be the first: zPug_3.heic's
    is the second of three), else the first frame."""
    return im.tell() if im.info.get("primary") else 0


def _decode_all(im: Image.Image, guard: DecodeGuard) -> None:
    # the shown frame is what gets sent; later frames of an animation are never decoded
    im.seek(shown_frame(im))
    if im.format in ("JPEG", "MPO"):
        # at the scale prep decodes it: every scan's entropy data is still read and checked
        scale = jpeg_scale(im.size, guard.box)
        if scale > 1:
            im.draft(im.mode if im.mode in ("RGB", "L") else None,
                     (-(-im.width // scale), -(-im.height // scale)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im.load()


#: Long side of a preview (the report's thumbnails), px.
PREVIEW_SIDE = 256
#: What :func:`preview_image` makes, as a version: thumbnails are named by it, so a change to
#: its pixels makes them again rather than mixing old and new ones in one DIR.
PREVIEW_VERSION = "5"
PREVIEW_QUALITY = 78  #: JPEG quality of the report's thumbnails: small files, no visible loss
#: Frames of one video previewed at most (the report's contact sheet); past it an even sample.
PREVIEW_MAX_FRAMES = 64
#: From this box-reduce factor on (a long side of 6144 px and more), Pillow's ``reduce()``
#: takes twice as long a pixel (the rows it averages lie far apart): a preview is then reduced
#: by PREVIEW_FIRST_REDUCE first (a 40 MP photo: 62 -> 27 ms; pixels within 2 levels).
PREVIEW_TWO_STEP_FROM = 24
PREVIEW_FIRST_REDUCE = 8


def preview_sample(n: int, k: int = PREVIEW_MAX_FRAMES) -> list[int]:
    """Indexes of ``k`` of ``n`` frames spread evenly (all of them when ``n <= k``): the frames
    a contact sheet shows, and so the ones prepare keeps previews of."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


#: Above this many pixels an image that cannot be decoded reduced (not JPEG) gets no preview:
#: decoding it whole only to shrink it would cost the memory prep itself avoids.
PREVIEW_MAX_FULL_PIXELS = 24_000_000


def preview_image(img: Image.Image) -> Image.Image:
    """A small RGB copy of ``img`` (long side at most :data:`PREVIEW_SIDE`), the same for the
    same pixels wherever they were decoded: the report's thumbnails are made by this one
    function, from a file or from pixels prepare decoded anyway. Transparency goes on a light
    grey so that white-on-clear content shows; 16-bit and float greys are scaled to 8 bits.
    ``img`` itself is never changed."""
    img = _shrink_for_preview(_resizable(img))
    icc = img.info.get("icc_profile")
    out = _preview_rgb(img)
    # pixels in sRGB, by the same conversion prep makes (a profile LittleCMS cannot read
    # stays with them); no other metadata: a GIF's comment, which a JPEG save would write,
    # differs between a file and the pixels it was encoded from
    out.info = {"icc_profile": icc} if icc else {}
    if icc and out.mode == "RGB":
        out = colour_to_srgb(out, [])
        out.info = {k: v for k, v in out.info.items() if k == "icc_profile"}
    return out


def _resizable(img: Image.Image) -> Image.Image:
    """``img`` in a mode resize takes (a CMYK with a profile by the colour path prep's own
    conversion takes; 16-bit grey as 32-bit)."""
    if img.mode == "CMYK" and img.info.get("icc_profile"):
        img = colour_to_srgb(img, [])
    if img.mode in ("P", "1", "CMYK", "YCbCr", "LAB", "HSV"):
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode.startswith("I;16"):
        return img.convert("I")
    return img


def _shrink_for_preview(img: Image.Image) -> Image.Image:
    """``img`` with its long side at most :data:`PREVIEW_SIDE`: shrunk first, so the
    conversions after touch few pixels."""
    w, h = img.size
    if max(w, h) <= PREVIEW_SIDE:
        return img
    scale = PREVIEW_SIDE / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if int(1 / scale) >= PREVIEW_TWO_STEP_FROM:
        img = img.reduce(PREVIEW_FIRST_REDUCE)
    # a box reduce() by the largest whole factor, then bicubic: for a 256 px view, a quarter
    # of the cost of a gap of 2
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=1.0)


def _preview_rgb(img: Image.Image) -> Image.Image:
    """A new RGB image of ``img``: transparency on light grey, deep greys scaled to 8 bits."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        out = Image.new("RGB", rgba.size, (236, 238, 242))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        return img.point(lambda v: v / 256).convert("L").convert("RGB")
    return img.convert("RGB")  # a new image even when it is RGB already


def file_preview(path: str | os.PathLike[str]) -> Image.Image:
    """:func:`preview_image` of an image file's picture (the one a viewer shows), pixels as
    stored (no EXIF turn). A JPEG is decoded reduced (:func:`preview_draft`); other formats
    whole, up to :data:`PREVIEW_MAX_FULL_PIXELS`. Raises on anything it cannot show."""
    register_heif()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(path)
    with im:
        if im.format in ("JPEG", "MPO"):
            preview_draft(im)
        elif im.width * im.height > PREVIEW_MAX_FULL_PIXELS:
            raise ValueError(f"{im.width}x{im.height} is too large to preview")
        im.load()
        cicp = colour_facts(im, _head_of(path) if im.format in ("AVIF", "HEIF") else b"").cicp
        if cicp is not None and (cicp.hdr or cicp.wide and not im.info.get("icc_profile")):
            # an HDR picture as a viewer that tone-maps shows it (the colour path prep takes)
            return preview_image(tone_map_image(im.convert("RGBA" if "A" in im.mode
                                                           else "RGB"), cicp))
        return preview_image(im)


def _head_of(path: str | os.PathLike[str]) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(_NCLX_HEAD)


def preview_jpeg(small: Image.Image) -> bytes:
    """A preview as the report's thumbnail file: a small baseline JPEG."""
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=PREVIEW_QUALITY, optimize=False)
    return buf.getvalue()


def picture_size(path: str | os.PathLike[str] | IO[bytes]) -> tuple[int, int]:
    """An image's size from its header, no pixels read (raises when it is not one)."""
    with Image.open(path) as im:
        return im.size


def preview_or_none(img: Image.Image) -> Image.Image | None:
    """:func:`preview_image`, or None when it cannot be made (a mode it does not know): a
    preview is a view of the run, and must never fail the input that prepare made."""
    try:
        return preview_image(img)
    except Exception:  # noqa: BLE001 - the report then decodes the file, or shows a placeholder
        return None


def preview_draft(im: Image.Image) -> None:
    """Ask a JPEG for the smallest DCT-scaled decode that still covers a preview: the one
    scale both a file's thumbnail and prepare's verify (when a preview is wanted) decode at,
    so both give the same pixels."""
    if im.format in ("JPEG", "MPO"):
        im.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))


def verify_decodes(data: bytes, limits: Limits | None = None, *,
                   keep: Callable[[Image.Image], None] | None = None) -> str | None:
    """Prove that ``data`` (an image the shallow probe already judged: size, cost, structure)
    decodes, as cheaply as that can be proved; the reason when it does not, else None.

    The pixels are thrown away, so a JPEG is decoded at 1/8 scale (DCT scaling): libjpeg still
    Huffman-decodes every scan's entropy-coded data, so damage or a cut is still found, but the
    inverse DCT, upsampling and colour conversion shrink 64-fold. A PNG's IDAT stream is
    inflated and its rows' filter types read, not unfiltered into pixels
    (:func:`png_data_problem`: what makes Pillow's decode fail, at under half its cost). Other
    formats are decoded in full (first frame only): a WebP or HEIC decoder has no cheaper mode
    that still reads every coded byte.

    ``keep`` is given the decoded image, the pixels a preview of the file decodes
    (:func:`preview_draft`): a JPEG is then decoded at the preview's scale rather than 1/8."""
    try:
        return _verify(data, DecodeGuard.from_limits(limits), keep)
    except (BombError, DecodeTimeout) as exc:
        return str(exc)
    except UnidentifiedImageError:
        return "not a readable image (Pillow cannot identify it)"
    except (OSError, ValueError, SyntaxError, struct.error, EOFError, MemoryError,
            IndexError, KeyError, TypeError, ZeroDivisionError, RuntimeError) as exc:
        return f"cannot decode image: {type(exc).__name__}: {exc}"


def _verify(data: bytes, guard: DecodeGuard,
            keep: Callable[[Image.Image], None] | None) -> str | None:
    """:func:`verify_decodes`' proof; raises what Pillow raises on a file it cannot decode."""
    rows = png_rows(data[16:29]) if data[:8] == b"\x89PNG\r\n\x1a\n" else None
    if rows is not None and data[12:16] == b"IHDR":
        return _png_verify(data, rows, guard)
    with open_image(io.BytesIO(data), guard.max_pixels, guard, len(data)) as im:
        im.seek(shown_frame(im))
        jpeg = im.format in ("JPEG", "MPO")
        if jpeg:
            _verify_draft(im, keep)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
        if keep is not None and (jpeg or im.width * im.height <= PREVIEW_MAX_FULL_PIXELS):
            keep(im)
    return None


def _verify_draft(im: Image.Image, keep: Callable[[Image.Image], None] | None) -> None:
    """Ask a JPEG the verify decodes for its 1/8 DCT scale, or with ``keep`` the preview's
    own scale (the 1/8 one for a large photo): any DCT scale Huffman-decodes every scan, so
    the proof is the same, and a small JPEG is not decoded a second time for its preview."""
    if keep is not None:
        preview_draft(im)
    else:
        im.draft(im.mode if im.mode in ("RGB", "L") else None,
                 (-(-im.width // 8), -(-im.height // 8)))
    # fewer, larger reads: one decoder call per JPEG_VERIFY_BLOCK (the deadline is still
    # looked at between them)
    im.decodermaxblock = max(im.decodermaxblock, JPEG_VERIFY_BLOCK)


#: The bytes a JPEG verify hands libjpeg per call (Pillow's default is 64 kB: a Python round
#: trip each time).
JPEG_VERIFY_BLOCK = 4 << 20


def _png_verify(data: bytes, rows: list[tuple[int, int]], guard: DecodeGuard) -> str | None:
    fh = io.BytesIO(data)
    idat = []
    for ctype, offset, length in _png_chunks(fh, len(data)):
        if ctype == b"IEND":
            break
        if ctype == b"IDAT":
            idat.append((offset, length))
    if not idat:
        return "corrupt: the PNG has no image data"
    deadline = None if guard.max_seconds is None else time.monotonic() + guard.max_seconds
    return png_data_problem(fh, idat, rows, deadline=deadline)


# ------------------------------------------------------------------ structure, before Pillow


def _pre_open(fh: IO[bytes], fmt: str | None, size: int,
              guard: DecodeGuard) -> tuple[int | None, str | None, int | None]:
    """Judge what the container declares before Pillow opens it (Pillow's ICO and animated
    WebP readers decode or allocate the whole canvas on open). Returns the APNG frame count
    (fcTL chunks) when the file is a PNG, else None; a JPEG marker segment libjpeg refuses
    (:func:`_jpeg_walk`), else None; and where a JPEG's first image ends, else None."""
    judge = _PRE_OPEN.get(fmt or "")
    return judge(fh, size, guard) if judge is not None else (None, None, None)


def _jpeg_pre_open(fh: IO[bytes], size: int, guard: DecodeGuard
                   ) -> tuple[int | None, str | None, int | None]:
    scans, dims, problem, end = _jpeg_walk(fh, guard.max_jpeg_scans)
    if guard.max_jpeg_scans is not None and scans > guard.max_jpeg_scans:
        raise BombError(None, f"the JPEG holds more than {guard.max_jpeg_scans} scans "
                              "(image.max_jpeg_scans; encoders write a few dozen at most): "
                              "each scan is another pass over every block, a CPU bomb")
    if dims:
        guard.judge(dims[0], dims[1], mode="L" if dims[2] == 1 else "RGB",
                    file_bytes=size, jpeg=True)
    return None, problem, end


#: A PNG's mode by its IHDR colour type (a type PNG does not define is judged as RGBA)
_PNG_MODES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}


def _png_pre_open(fh: IO[bytes], size: int, guard: DecodeGuard
                  ) -> tuple[int | None, str | None, int | None]:
    head = fh.read(33)
    if len(head) >= 24 and head[12:16] == b"IHDR":
        w, h = struct.unpack(">II", head[16:24])
        guard.judge(w, h, mode=_PNG_MODES.get(head[25], "RGBA"), file_bytes=size)
    return _png_frames(fh, size), None, None


def _gif_pre_open(fh: IO[bytes], size: int, guard: DecodeGuard
                  ) -> tuple[int | None, str | None, int | None]:
    head = fh.read(10)
    if len(head) == 10:
        w, h = struct.unpack("<HH", head[6:10])
        guard.judge(w, h, mode="P", file_bytes=size, what="the GIF's logical screen")
    return None, None, None


def _webp_pre_open(fh: IO[bytes], size: int, guard: DecodeGuard
                   ) -> tuple[int | None, str | None, int | None]:
    head = fh.read(30)
    if head[12:16] == b"VP8X" and len(head) >= 30:
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        animated = bool(head[20] & 0x02)
        mode = "RGBA" if animated or head[20] & 0x10 else "RGB"  # the ALPHA flag
        guard.judge(w, h, mode=mode, file_bytes=size, animated=animated,
                    what="the WebP canvas" if animated else "",
                    buffer_per_pixel=webp_buffer_per_pixel(w, h, mode, animated))
    return None, None, None


def _ico_pre_open(fh: IO[bytes], size: int, guard: DecodeGuard
                  ) -> tuple[int | None, str | None, int | None]:
    for w, h in _ico_entries(fh, size):
        guard.judge(w, h, mode="RGBA", file_bytes=size, what="an icon in the ICO")
    return None, None, None


def _whole(fh: IO[bytes]) -> Any:
    try:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (AttributeError, OSError, ValueError):
        fh.seek(0)
        return fh.read()


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: Bytes of entropy-coded data looked at per step of :func:`_entropy_end` (its scratch arrays
#: are about this size again; 1 MiB measured fastest, 4 MiB falls out of the CPU cache).
JPEG_SCAN_BLOCK = 1 << 20
#: Restart markers or fill bytes stepped over one at a time in a block before the rest of the
#: block is filtered for them at once (a file made of FFD0 pairs must not cost a Python step
#: each).
JPEG_SCAN_SKIPS = 32


def _entropy_end(data: Any, pos: int) -> int:
    """Where the entropy-coded data from ``pos`` ends: the first 0xFF that is not stuffing
    (FF00), a restart marker (FFD0-FFD7) or a fill byte (FFFF: the marker follows it); -1 when
    none follows. Every byte is looked at (a stray marker inside the data is what libjpeg fails
    on), a block at a time with numpy in C: the 0xFF bytes not followed by 00 are marked in
    two passes, and the first is found with argmax (which stops at it); a photo's data holds
    no such byte until its end but for restart markers (measured: 0.22 ms for 2 MB of data
    in memory, 3x less than np.flatnonzero of the 0xFF bytes)."""
    import numpy as np

    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        last = len(buf) - 1  # the byte after each 0xFF looked at is in buf
        scratch = np.empty(max(0, min(JPEG_SCAN_BLOCK, last - pos)), dtype=bool)
        for start in range(pos, last, JPEG_SCAN_BLOCK):
            end = _marker_in_block(buf, start, min(last, start + JPEG_SCAN_BLOCK), scratch)
            if end >= 0:
                return end
        return -1
    finally:
        del buf  # the mmap under it can only close once no array points into it


def _marker_in_block(buf: np.ndarray, start: int, stop: int, scratch: np.ndarray) -> int:
    """The first marker of :func:`_entropy_end` whose 0xFF lies in ``buf[start:stop]``, or
    -1."""
    import numpy as np

    k = stop - start
    after = buf[start + 1 : stop + 1]
    marked = np.equal(buf[start:stop], 0xFF, out=scratch[:k])
    # FF00 is a stuffed 0xFF: as 0/1 bytes, the minimum with the next byte is 0 there (one
    # pass, where not_equal then and would take two)
    ones = marked.view(np.uint8)
    np.minimum(ones, after, out=ones)
    at, skipped = 0, 0
    while at < k:
        at += int(marked[at:].argmax())
        if not marked[at]:
            return -1
        code = int(after[at])
        if code != 0xFF and code & 0xF8 != 0xD0:
            return start + at
        skipped += 1
        if skipped == JPEG_SCAN_SKIPS:  # many restart markers (or fill bytes): all at once
            rest = after[at:]
            marked[at:] &= np.not_equal(rest & 0xF8, 0xD0) & np.not_equal(rest, 0xFF)
        at += 1
    return -1


def _jpeg_walk(fh: IO[bytes], limit: int | None
               ) -> tuple[int, tuple[int, int, int] | None, str | None, int | None]:
    """Count the scans (SOS markers) of the first JPEG in the file by walking its marker
    segments and skipping entropy-coded data; stop past ``limit``. Also the first SOF's
    width, height and component count, a marker segment libjpeg refuses to read (its
    fatal marker errors: a second SOI or SOF, a bad SOS, DHT or DQT), which is what a stray
    marker inside entropy-coded data makes the decode fail on (see :func:`_segment_problem`),
    and where the first image ends (the byte after its EOI marker; None when not reached):
    a motion photo's video or an MPF gain map follows it."""
    data = _whole(fh)
    try:
        walk = _JpegWalk(limit)
        pos: int | None = 2
        while pos is not None and pos + 4 <= len(data):
            pos = walk.step(data, pos)
        return walk.scans, walk.dims, walk.problem, walk.end
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def jpeg_frame_size(head: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's frame header (SOF), read by :class:`_JpegWalk` from
    ``head``, the file's first bytes (None: not a JPEG, or no sound frame header in them)."""
    if head[:2] != b"\xff\xd8":
        return None
    walk = _JpegWalk(0)
    pos: int | None = 2
    while pos is not None and walk.dims is None and pos + 4 <= len(head):
        pos = walk.step(head, pos)
    if walk.dims is None or walk.problem or not (walk.dims[0] and walk.dims[1]):
        return None
    return walk.dims[0], walk.dims[1]


#: Markers that stand alone (no length follows): TEM and the restart markers
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


class _JpegWalk:
    """What :func:`_jpeg_walk` has found so far; :meth:`step` reads one marker."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.scans = 0
        self.dims: tuple[int, int, int] | None = None
        self.components: bytes | None = None  # the SOF's component ids
        self.problem: str | None = None
        self.end: int | None = None

    def step(self, data: Any, pos: int) -> int | None:
        """Read the marker at ``pos``; where the next one is, or None to stop."""
        if data[pos] != 0xFF:
            return None  # not a marker: a damaged file, Pillow will say so
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            return pos + 1
        if marker in _JPEG_STANDALONE:
            return pos + 2
        if marker == 0xD9:
            self.end = pos + 2
            return None
        if marker == 0xD8:
            self.problem = "corrupt: a second start-of-image marker inside the JPEG"
            return None
        return self._segment(data, pos, marker)

    def _segment(self, data: Any, pos: int, marker: int) -> int | None:
        """Read the marker segment at ``pos``; after an SOS, skip its entropy-coded data."""
        length = (data[pos + 2] << 8) | data[pos + 3]
        self.problem = self._segment_refusal(data, pos, marker, length)
        if self.problem:
            return None
        pos += 2 + length
        if marker != 0xDA:
            return pos
        self.scans += 1
        if self.limit is not None and self.scans > self.limit:
            return None
        # entropy data runs to the next marker that is neither FF00 stuffing nor RSTn
        end = _entropy_end(data, pos)
        return end if end >= 0 else None

    def _segment_refusal(self, data: Any, pos: int, marker: int, length: int) -> str | None:
        if marker in _SOF:
            return self._frame(data, pos)
        if marker in _SEGMENT_CHECKS and pos + 2 + length <= len(data):
            problem = _segment_problem(marker, bytes(data[pos + 4 : pos + 2 + length]),
                                       length - 2, self.components)
            return f"corrupt: {problem}" if problem else None
        return None

    def _frame(self, data: Any, pos: int) -> str | None:
        """An SOF: its size and component ids kept; a second one is refused."""
        if self.components is not None:
            return "corrupt: a second frame header (SOF) inside the JPEG"
        if pos + 10 <= len(data):
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            self.dims = (w, h, data[pos + 9])
            self.components = bytes(data[pos + 10 : pos + 10 + 3 * data[pos + 9] : 3])
        return None


def _segment_problem(marker: int, body: bytes, length: int,
                     components: bytes | None) -> str | None:
    """libjpeg's fatal errors reading an SOS, DHT or DQT segment (``body``: the ``length``
    bytes after the length field), as its get_sos, get_dht and get_dqt raise them."""
    return _SEGMENT_CHECKS[marker](body, length, components)


def _sos_problem(body: bytes, length: int, components: bytes | None) -> str | None:
    if components is None:
        return "a scan (SOS) before the frame header"
    ns = body[0] if body else 0
    if length != ns * 2 + 4 or not 1 <= ns <= 4:
        return "a scan header (SOS) of the wrong length"
    ids = body[1 : 1 + 2 * ns : 2]
    if len(set(ids)) != ns or any(c not in components for c in ids):
        return "a scan header (SOS) names a component the frame does not have"
    return None


def _dht_problem(body: bytes, length: int, components: bytes | None) -> str | None:
    pos = 0
    while length > 16:
        index, count = body[pos], sum(body[pos + 1 : pos + 17])
        pos, length = pos + 17, length - 17
        if count > 256 or count > length:
            return "a Huffman table (DHT) that does not fit its segment"
        pos, length = pos + count, length - count
        if (index & ~0x10) >= 4:
            return f"a Huffman table (DHT) index {index:#x} out of range"
    return "a Huffman table segment (DHT) of the wrong length" if length else None


def _dqt_problem(body: bytes, length: int, components: bytes | None) -> str | None:
    pos = 0
    while length > 0:  # each table is 64 entries of 1 byte (precision 0) or 2
        n = body[pos]
        if n & 0x0F >= 4:
            return f"a quantisation table (DQT) index {n & 0x0F} out of range"
        step = 1 + (128 if n >> 4 else 64)
        pos, length = pos + step, length - step
    return "a quantisation table segment (DQT) of the wrong length" if length else None


#: The segments whose bodies :func:`_segment_problem` reads as libjpeg does: SOS, DHT, DQT
_SEGMENT_CHECKS: dict[int, Callable[[bytes, int, bytes | None], str | None]] = {
    0xDA: _sos_problem, 0xC4: _dht_problem, 0xDB: _dqt_problem}


def _png_frames(fh: IO[bytes], size: int) -> int | None:
    """The fcTL chunks of an APNG (its real frames), or None for a still PNG (no acTL)."""
    frames, animated = 0, False
    for ctype, _, _ in _png_chunks(fh, size):
        if ctype == b"acTL":
            animated = True
        elif ctype == b"fcTL":
            frames += 1
        elif ctype == b"IEND" or (ctype == b"IDAT" and not animated):
            break
    return frames if animated else None


def _ico_entries(fh: IO[bytes], size: int) -> Iterator[tuple[int, int]]:
    """The real size of every image in an ICO/CUR directory: an embedded PNG's IHDR or a
    BMP's info header (height counts the mask twice), not the directory's 1-byte fields."""
    head = fh.read(6)
    if len(head) < 6:
        return
    count = min(struct.unpack("<H", head[4:6])[0], max(0, (size - 6) // 16))
    entries = fh.read(16 * count)
    for i in range(len(entries) // 16):
        e = entries[16 * i : 16 * i + 16]
        w, h = e[0] or 256, e[1] or 256
        offset = struct.unpack("<I", e[12:16])[0]
        fh.seek(offset)
        body = fh.read(24)
        if body[:8] == b"\x89PNG\r\n\x1a\n" and len(body) >= 24:
            w, h = struct.unpack(">II", body[16:24])
        elif len(body) >= 12 and body[:4] in (b"\x28\x00\x00\x00", b"\x6c\x00\x00\x00",
                                              b"\x7c\x00\x00\x00"):
            bw, bh = struct.unpack("<ii", body[4:12])
            w, h = abs(bw), abs(bh) // 2
        yield w, h


#: What :func:`_pre_open` judges, by format
_PRE_OPEN: dict[str, Callable[[IO[bytes], int, DecodeGuard],
                              tuple[int | None, str | None, int | None]]] = {
    "jpeg": _jpeg_pre_open, "mpo": _jpeg_pre_open, "png": _png_pre_open,
    "gif": _gif_pre_open, "webp": _webp_pre_open, "ico": _ico_pre_open, "cur": _ico_pre_open,
}


ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | Image.Image

#: Output formats whose pixel modes :func:`normalise_mode` knows.
#: The formats mediaprep encodes images to (the one home; pillow_encode and kinds ask here).
ENCODABLE = ("jpeg", "png", "webp")

_ORIENTATION_TAG = 0x0112
_WHITE = 255

_heif_registered = False


def register_heif() -> bool:
    """Register the pillow-heif opener once so ``Image.open`` reads HEIC/HEIF (a hard
    dependency: imported on the first image open, not at ``import mediaprep``)."""
    global _heif_registered
    if not _heif_registered:
        import pillow_heif

        pillow_heif.register_heif_opener()
        _heif_registered = True
    return True


# --------------------------------------------------------------------------------------- load


def open_lazy(source: ImageSource, *, max_pixels: int | None = None,
               seconds: float | None = None) -> Image.Image:
    """Open ``source`` lazily (header read, pixels not decoded): pass the result to
    :func:`load_image` after looking at the header (size, JPEG quantisation tables...).

    ``max_pixels`` is the caller's pixel ceiling (``image.max_decode_pixels``, judged with the
    rest of the decode cost by the probe); Pillow's own lower bomb check and its warning give
    way to it. ``seconds`` bounds the decode: the reads it pulls fail once they have passed."""
    register_heif()
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        fh: IO[bytes] = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        fh = open(os.fspath(source), "rb")  # noqa: SIM115  (the image owns it)
    else:
        fh = source
    try:
        img = pil_open(fh, max_pixels, seconds=seconds)
    except BombError as exc:
        if fh is not source:
            fh.close()
        raise Image.DecompressionBombError(str(exc)) from exc
    except BaseException:
        if fh is not source:
            fh.close()
        raise
    if fh is not source:
        img._exclusive_fp = True  # closed with the image, as Image.open(path) does
    return img


def load_image(
    source: ImageSource,
    *,
    target_box: tuple[int, int] | None = None,
    first_frame: bool = True,
) -> Image.Image:
    """Open and decode an image from a path, bytes, binary file or PIL image.

    ``target_box`` is the orientation-agnostic (long, short) box the image will be fitted into
    later. For JPEG, when the image is at least twice the fitted size, the decoder is asked for a
    DCT-scaled decode (1/2, 1/4 or 1/8) via ``draft``: far less work and memory, and libjpeg's
    scaling is a proper area filter. Pillow's ``draft`` never goes below the requested size, so
    the later resize (:func:`resize_to`) still does the final, exact step.

    Animated GIF/WEBP/APNG/AVIF sequences and multi-image HEIF: with ``first_frame`` (default)
    the shown frame (:func:`shown_frame`: a HEIF's primary image, else the first) is decoded
    and returned detached from the file. With ``first_frame=False``
    the opened image is returned unloaded so the caller can ``seek`` through frames.
    The returned image keeps ``format`` and ``info`` (EXIF, ICC, XMP, transparency).
    """
    register_heif()
    img = open_lazy(source)

    if target_box is not None and img.format in ("JPEG", "MPO") and _unloaded(img):
        want = _fit_size(img.size, box=target_box)
        if want != img.size:
            # "RGB" keeps RGB/YCbCr as is; Pillow ignores the mode for CMYK and L sources.
            img.draft("RGB" if img.mode == "RGB" else None, want)
    elif target_box is not None and getattr(img, "drafts_exactly", False):
        want = _fit_size(img.size, box=target_box)
        if want != img.size:
            img.draft(None, want)  # a large still WebP, shrunk as FFmpeg converts it

    if not first_frame:
        return img
    n_frames = getattr(img, "n_frames", 1)
    if n_frames > 1:
        fmt = img.format
        img.seek(shown_frame(img))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
        # Detach the frame from the (still open) multi-frame file; copy() keeps info/palette.
        frame = img.copy()
        frame.format = fmt
        if not isinstance(source, Image.Image):
            img.close()
        return frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img.load()
    return img


def _unloaded(img: Image.Image) -> bool:
    # draft() only works before the pixels are decoded (one pending tile).
    return getattr(img, "tile", None) is not None and len(img.tile) == 1


# -------------------------------------------------------------------------------- orientation


def orientation_of(img: Image.Image) -> int:
    """EXIF orientation (1-8) of ``img``; Pillow also reads XMP ``tiff:Orientation``."""
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # malformed EXIF: treat as upright rather than fail the whole image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


#: EXIF orientation -> the transpose that makes the pixels upright (as ImageOps.exif_transpose)
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}


def apply_orientation(img: Image.Image, container: int | None = None
                      ) -> tuple[Image.Image, bool]:
    """Make the pixels upright per EXIF/XMP orientation and drop the tag.

    Returns ``(image, rotated)``. The tag is removed from EXIF and XMP in the result so no
    viewer (or model front end) rotates a second time. An orientation of 1 is a no-op and
    returns the input unchanged (a tag of 1 asks nobody to rotate). ``container``: the
    orientation the probe found for the file (for a DNG, its IFD 0's, which its embedded JPEG
    preview does not carry), used when the decoded picture carries none of its own, so that
    prep turns what check said it would.
    """
    if orientation_of(img) == 1:
        if container in _UPRIGHT:
            out = img.transpose(_UPRIGHT[container])
            out.format = img.format
            return out, True
        return img, False
    out = ImageOps.exif_transpose(img)
    assert out is not None
    # exif_transpose rewrote info["exif"]/XMP without the tag; make sure nothing re-adds it.
    exif = out.getexif()
    if _ORIENTATION_TAG in exif:
        del exif[_ORIENTATION_TAG]
        out.info["exif"] = exif.tobytes()
    out.format = img.format
    return out, True


# ------------------------------------------------------------------------------- mode / colour


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )


def _alpha_is_opaque(img: Image.Image) -> bool:
    lo, _hi = img.getchannel("A").getextrema()
    return lo == _WHITE


def _scale_to_8bit(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer / float grey -> 8-bit L by scaling, never by clipping.

    ``I;16*``: v * 255 / 65535 (rounded). ``I``: same when the values sit in 0..65535 (PNG and
    TIFF 16-bit often decode to ``I``), plain 0..255 data is kept, anything else is stretched
    min..max. ``F``: 0..1 data is x255, anything else stretched min..max.
    """
    import numpy as np

    arr = np.asarray(img)
    if img.mode.startswith("I;16"):
        out = (arr.astype(np.uint32) * 255 + 32767) // 65535
    elif img.mode == "I":
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= 0 and hi <= 255:
            out = arr
        elif lo >= 0 and hi <= 65535:
            out = (arr.astype(np.int64) * 255 + 32767) // 65535
        else:
            out = (arr.astype(np.float64) - lo) * (255.0 / max(hi - lo, 1)) + 0.5
    else:  # F
        a = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0.0 and hi <= 1.0:
            out = a * 255.0 + 0.5
        else:
            out = (a - lo) * (255.0 / (hi - lo if hi > lo else 1.0)) + 0.5
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "L")


def _flatten(img: Image.Image, grey: bool) -> Image.Image:
    """Composite an L/LA/RGB/RGBA image on white; result L (grey) or RGB."""
    mode = "L" if grey else "RGB"
    rgba = img.convert("LA" if grey else "RGBA")
    bg = Image.new(mode, img.size, _WHITE if grey else (_WHITE, _WHITE, _WHITE))
    bg.paste(rgba.convert(mode), mask=rgba.getchannel("A"))
    return bg


def _to_srgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """Convert pixels from an embedded ICC profile to sRGB and drop the profile.

    Choice: convert rather than keep the profile. The models are trained on and displayed in
    sRGB and nothing guarantees the provider honours an embedded profile (the Kimi processor
    does not), so Display P3 / Adobe RGB / CMYK data would look washed out or wrong. Profiles
    are judged by their numbers (:func:`mediaprep.backends.colour.to_srgb`): one that is sRGB
    under another name is just dropped.
    """
    return colour_to_srgb(img, notes)


def normalise_mode(img: Image.Image, out_format: str, *,
                   background: tuple[int, int, int] | None = None
                   ) -> tuple[Image.Image, str | None]:
    """Convert ``img`` to a mode ``out_format`` ("jpeg", "png", "webp") stores, in sRGB.

    Results: JPEG -> ``L`` or ``RGB`` (alpha flattened on white); PNG -> ``L``, ``LA``, ``RGB``
    or ``RGBA``; WEBP -> ``RGB`` or ``RGBA``. Handles CMYK (Pillow already un-inverts Adobe
    CMYK JPEGs), LAB, YCbCr, palette (with tRNS transparency), ``1``, ``I;16``/``I``/``F`` (scaled
    to 8 bit, see :func:`_scale_to_8bit`), L/RGB with a tRNS colour key, and ICC profiles
    (converted to sRGB, see :func:`_to_srgb`). An alpha channel that is fully opaque is dropped.
    ``background``: flatten any transparency onto it whatever the format (the model's
    processor drops alpha); without it only JPEG is flattened, on white.

    Returns ``(image, note)``; ``note`` is None when nothing changed.
    """
    fmt = "jpeg" if out_format.lower() == "jpg" else out_format.lower()
    if fmt not in ENCODABLE:
        raise ValueError(f"unsupported output format {out_format!r}; use one of {ENCODABLE}")
    notes: list[str] = []
    out = _eight_bit(img, notes)
    if out is not img and out.info.get("transparency") is not None:
        out.info.pop("transparency", None)  # now carried by the alpha channel
    # colour management after the mode fixes, so RGB/RGBA data meets its RGB profile
    if out.info.get("icc_profile"):
        out = _to_srgb(out, notes)
    out = _settle_alpha(out, fmt, background, notes)
    if out is img:
        return img, (notes[0] if notes else None)
    if out.mode != img.mode:
        notes.insert(0, f"mode {img.mode} -> {out.mode}")
    out.format = img.format
    return out, "; ".join(notes) if notes else None


#: Modes converted as they are to the 8-bit mode named (un-premultiplied, or to plain RGB)
_EIGHT_BIT_MODE = {"1": "L", "RGBa": "RGBA", "La": "LA", "LAB": "RGB", "YCbCr": "RGB",
                   "HSV": "RGB", "RGBX": "RGB"}
#: A grey or RGB image with a tRNS colour key gets a real alpha channel
_KEYED_MODE = {"L": "LA", "RGB": "RGBA"}


def _eight_bit(img: Image.Image, notes: list[str]) -> Image.Image:
    """``img`` in one of L, LA, RGB, RGBA (step 1 of :func:`normalise_mode`): deep greys
    scaled, palettes and colour keys given a real alpha channel when they have transparency,
    CMYK converted (by its profile when it has one)."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        return _deep_grey(img, img.info.get("transparency"))
    if img.mode == "CMYK":
        return _cmyk_to_rgb(img, notes)
    target = _eight_bit_mode(img)
    return img if target == img.mode else img.convert(target)


def _eight_bit_mode(img: Image.Image) -> str:
    """The 8-bit mode :func:`_eight_bit` converts a plain (not deep, not CMYK) image to."""
    mode = img.mode
    if mode in ("P", "PA"):
        return "RGBA" if _has_alpha(img) else "RGB"
    if mode in _KEYED_MODE:
        return mode if img.info.get("transparency") is None else _KEYED_MODE[mode]
    if mode in _EIGHT_BIT_MODE:
        return _EIGHT_BIT_MODE[mode]
    if mode in ("LA", "RGBA"):
        return mode
    return "RGBA" if "A" in mode else "RGB"


def _deep_grey(img: Image.Image, trns: Any) -> Image.Image:
    """A 16-bit, 32-bit or float grey as 8-bit L (LA when a tRNS value marks transparency)."""
    grey = _scale_to_8bit(img)
    if trns is not None and isinstance(trns, int) and img.mode != "F":
        # tRNS on 16-bit grey names one 16-bit value; compare on the original samples.
        import numpy as np

        mask = np.asarray(img) != trns
        grey = Image.merge("LA", (grey, Image.fromarray((mask * 255).astype(np.uint8), "L")))
    return grey


def _cmyk_to_rgb(img: Image.Image, notes: list[str]) -> Image.Image:
    out = _to_srgb(img, notes) if img.info.get("icc_profile") else img
    if out.mode == "CMYK":
        out = out.convert("RGB")
        notes.append("CMYK -> RGB")
    return out


def _settle_alpha(out: Image.Image, fmt: str, background: tuple[int, int, int] | None,
                  notes: list[str]) -> Image.Image:
    """Step 3 of :func:`normalise_mode`: an opaque alpha dropped; transparency flattened
    (:func:`_flatten_alpha`); WEBP has no grey modes."""
    if out.mode in ("RGBA", "LA") and _alpha_is_opaque(out):
        out = out.convert("RGB" if out.mode == "RGBA" else "L")
        notes.append("opaque alpha dropped")
    if out.mode in ("RGBA", "LA"):
        out = _flatten_alpha(out, fmt, background, notes)
    if fmt == "webp" and out.mode in ("L", "LA"):
        out = out.convert("RGB" if out.mode == "L" else "RGBA")
    return out


def _flatten_alpha(out: Image.Image, fmt: str, background: tuple[int, int, int] | None,
                   notes: list[str]) -> Image.Image:
    """Transparency flattened on ``background`` whatever the format, else for JPEG (which
    has no alpha) on white; else kept."""
    if background is not None:
        notes.append("alpha flattened on the background")
        return flatten(out, background)
    if fmt == "jpeg":
        notes.append("alpha flattened on white")
        return _flatten(out, grey=out.mode == "LA")
    return out


# ------------------------------------------------------------------------------------ geometry


def _fit_size(
    size: tuple[int, int],
    *,
    box: tuple[int, int] | None = None,
    max_side: int | None = None,
    max_pixels: int | None = None,
    max_ratio: float | None = None,
) -> tuple[int, int]:
    """Largest size <= ``size`` with the same aspect that meets every given constraint.

    ``max_ratio`` (the target's aspect-ratio limit): when ``size`` is within it, so is the
    result: the short side is rounded up where rounding down would break it (40000x200 in
    the 8K box is 7680x39, not 7680x38 = 202.1:1)."""
    w, h = size
    long_, short = max(w, h), min(w, h)
    scale = 1.0
    if box is not None:
        b_long, b_short = max(box), min(box)
        scale = min(scale, b_long / long_, b_short / short)
    if max_side is not None:
        scale = min(scale, max_side / long_)
    if max_pixels is not None:
        scale = min(scale, math.sqrt(max_pixels / (w * h)))
    if scale >= 1.0:
        return size
    nw, nh = max(1, int(w * scale + 1e-9)), max(1, int(h * scale + 1e-9))

    # Float rounding can land one pixel over a bound: step down until every bound holds.
    def ok(a: int, b: int) -> bool:
        lg, sh = max(a, b), min(a, b)
        if box is not None and (lg > max(box) or sh > min(box)):
            return False
        if max_side is not None and lg > max_side:
            return False
        return max_pixels is None or a * b <= max_pixels

    while not ok(nw, nh) and (nw > 1 or nh > 1):
        nw, nh = max(1, nw - (nw >= nh)), max(1, nh - (nh >= nw))
    return keep_ratio((nw, nh), size, max_ratio, ok)


def keep_ratio(new: tuple[int, int], old: tuple[int, int], max_ratio: float | None,
               ok: Callable[[int, int], bool] = lambda a, b: True) -> tuple[int, int]:
    """``new`` (a resize of ``old``) with its short side rounded up as far as ``max_ratio``
    needs, when ``old`` was within that ratio and ``ok`` accepts the result."""
    nw, nh = new
    lg, sh = max(nw, nh), min(nw, nh)
    if (max_ratio is None or lg <= max_ratio * sh
            or max(old) > max_ratio * min(old)):
        return new
    need = math.ceil(lg / max_ratio - 1e-9)
    while lg > max_ratio * need:  # float rounding
        need += 1
    bumped = (nw, need) if nw >= nh else (need, nh)
    return bumped if ok(*bumped) else new


def resize_within(
    img: Image.Image,
    *,
    box: tuple[int, int] | None = None,
    max_side: int | None = None,
    max_pixels: int | None = None,
    max_ratio: float | None = None,
) -> tuple[Image.Image, bool]:
    """Shrink ``img`` (aspect kept, never enlarged) to satisfy every constraint given, by
    :func:`resize_to`.

    ``box`` is orientation-agnostic: (7680, 4320) and (4320, 7680) mean the same thing, the long
    side must fit the long edge and the short side the short edge.
    """
    new = _fit_size(img.size, box=box, max_side=max_side, max_pixels=max_pixels,
                    max_ratio=max_ratio)
    if new == img.size:
        return img, False
    return resize_to(img, new), True


#: The filter every shrink of an image ends with: Pillow's bicubic, the one the Kimi K2.5
#: processor itself resizes with (``media_utils.image_to_np``) and Pillow's ``thumbnail``
#: uses; Lanczos costs 1.5x the time for a difference of half a level on average (mean 0.58,
#: a 40 MP photo to 30 MP), which the model's own resize to its patch budget then averages away
RESAMPLE = Image.Resampling.BICUBIC
#: Reductions beyond this factor start with an integer box ``reduce()``, then :data:`RESAMPLE`
#: does the rest: near-identical pictures, several times faster
REDUCING_GAP = 3.0


def resize_to(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resample ``img`` to exactly ``size`` with :data:`RESAMPLE` (an integer ``reduce()``
    first for big reductions). Palette and 1-bit images are converted to RGB(A)/L first so
    they are filtered, not nearest-sampled."""
    if img.size == tuple(size):
        return img
    src = img
    if src.mode in ("P", "PA"):
        src = src.convert("RGBA" if _has_alpha(src) else "RGB")
    elif src.mode == "1":
        src = src.convert("L")
    out = src.resize(tuple(size), RESAMPLE, reducing_gap=REDUCING_GAP)
    out.format = img.format
    return out


def _background(mode: str) -> Any:
    """White (transparent white where there is alpha) in ``mode``'s pixel layout."""
    return {
        "1": 1,
        "L": _WHITE,
        "LA": (_WHITE, 0),
        "RGB": (_WHITE, _WHITE, _WHITE),
        "RGBA": (_WHITE, _WHITE, _WHITE, 0),
        "CMYK": (0, 0, 0, 0),
        "I;16": 65535,
        "I": 65535,
        "F": 1.0,
    }.get(mode)


def _pad(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    src = img
    if _background(src.mode) is None:
        src = src.convert("RGBA" if _has_alpha(src) else "RGB")
    canvas = Image.new(src.mode, size, _background(src.mode))
    canvas.paste(src, ((size[0] - src.width) // 2, (size[1] - src.height) // 2))
    canvas.info = {k: v for k, v in img.info.items() if k in ("icc_profile",)}
    canvas.format = img.format
    return canvas


def pad_to_min_side(
    img: Image.Image, min_side_exclusive: int, *, upscale: bool = False
) -> tuple[Image.Image, bool]:
    """Make every side strictly greater than ``min_side_exclusive``.

    Default: pad with white (transparent white when the image has alpha), content centred, so
    no pixel is invented or blurred. ``upscale=True`` instead enlarges by the smallest integer
    factor that clears the limit, with nearest-neighbour: tiny images are usually icons or
    pixel art, where exact blocks read better than a smoothed blur.
    """
    w, h = img.size
    need = min_side_exclusive + 1
    if w >= need and h >= need:
        return img, False
    if upscale:
        k = math.ceil(need / min(w, h))
        src = img if _background(img.mode) is not None else img.convert("RGBA")
        out = src.resize((w * k, h * k), Image.Resampling.NEAREST)
        out.format = img.format
        return out, True
    return _pad(img, (max(w, need), max(h, need))), True


def aspect_padded_size(size: tuple[int, int], max_ratio: float) -> tuple[int, int]:
    """``size`` with its short side grown so long/short <= ``max_ratio`` (arithmetic only)."""
    if max_ratio < 1:
        raise ValueError("max_ratio must be >= 1")
    w, h = size
    long_, short = max(w, h), min(w, h)
    if long_ <= max_ratio * short:
        return w, h
    new_short = math.ceil(long_ / max_ratio)
    while long_ > max_ratio * new_short:  # guard float rounding
        new_short += 1
    return (w, new_short) if w >= h else (new_short, h)


def pad_to_aspect(img: Image.Image, max_ratio: float) -> tuple[Image.Image, bool]:
    """Pad the short side (white, centred) so long/short <= ``max_ratio``. Only on request:
    padding changes what the model sees, unlike the lossless fixes above."""
    size = aspect_padded_size(img.size, max_ratio)
    if size == img.size:
        return img, False
    return _pad(img, size), True


def fit_and_pad_to_aspect(
    img: Image.Image, max_ratio: float, fit: Callable[[tuple[int, int]], tuple[int, int]]
) -> tuple[Image.Image, bool, bool]:
    """Pad to ``max_ratio`` as :func:`pad_to_aspect`, at the size ``fit`` allows the padded
    image: the image is shrunk first, then padded; returns (image, padded, shrunk).

    Why not pad, then shrink: a 1 x 20,000,000 strip padded to 200:1 is 100,000 x 20,000,000
    pixels before any shrinking (the worker was killed for memory). And the padded size is
    padded again after ``fit``, whose rounding can land just past the ratio (202:1 was seen).
    """
    padded = aspect_padded_size(img.size, max_ratio)
    if padded == img.size:
        return img, False, False
    target = aspect_padded_size(fit(padded), max_ratio)
    w, h = img.size
    scale = min(target[0] / w, target[1] / h, 1.0)
    content = (min(target[0], max(1, round(w * scale))), min(target[1], max(1, round(h * scale))))
    shrunk = content != img.size
    if shrunk:
        img = resize_to(img, content)
    return _pad(img, target), True, shrunk


#: A GIF/APNG/WebP frame that says it lasts this long or less (0 ms is common) is shown for
#: GIF_DEFAULT_MS by browsers; the fps of an animation sent as frames reads it the same way.
SHORT_FRAME_MS = 10
GIF_DEFAULT_MS = 100


#: Formats whose frames of SHORT_FRAME_MS or less browsers show for GIF_DEFAULT_MS (the
#: GIF rule; Chromium applies it to animated WebP too). An APNG's or AVIF's 10 ms is 10 ms.
BROWSER_RULE_FORMATS = frozenset({"GIF", "WEBP"})


def shown_ms(ms: Any, fmt: str | None) -> int:
    """How long a frame that declares ``ms`` is shown: the browser rule for GIF and WebP; a
    frame without a duration (or of 0 ms) is shown for GIF_DEFAULT_MS in any format."""
    ms = int(ms) if isinstance(ms, int | float) and ms > 0 else 0
    if ms == 0 or (fmt in BROWSER_RULE_FORMATS and ms <= SHORT_FRAME_MS):
        return GIF_DEFAULT_MS
    return ms


def animation_durations(source: ImageSource, frames: int, *, max_pixels: int | None = None,
                        seconds: float | None = None) -> list[int]:
    """How long each of the first ``frames`` frames of an animation is shown, in ms
    (:func:`shown_ms`), before any frame is chosen: a GIF's from its graphic control blocks
    (nothing decoded), other formats' from their decoder (WebP and AVIF give a frame's
    duration once it is decoded)."""
    img = open_lazy(source, max_pixels=max_pixels, seconds=seconds)
    try:
        fmt = img.format
        if fmt == "GIF":
            img.fp.seek(0)
            found = gif_delays(img.fp.read())
            if len(found) >= frames:
                return [shown_ms(ms, fmt) for ms in found[:frames]]
        out = []
        for _ in _seek_frames(img, frames):
            if fmt != "GIF":
                img.load()
            out.append(shown_ms(img.info.get("duration"), fmt))
        return out
    finally:
        if not isinstance(source, Image.Image):
            img.close()


def _seek_frames(img: Image.Image, frames: int) -> Iterator[int]:
    """Seek ``img`` to each of its first ``frames`` frames in turn, yielding the index (fewer
    when the file has fewer). Pillow's bomb warning is off: the guard judged the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for i in range(frames):
            try:
                img.seek(i)
            except EOFError:
                return
            yield i


def gif_delays(data: bytes) -> list[int]:
    """The delay (ms) each image of a GIF declares in the graphic control extension before it
    (0 when none), read from the block structure."""
    if len(data) < 13:
        return []
    pos = _gif_table_end(data, 13, data[10])  # after the logical screen's colour table
    delay, out = 0, []
    while pos is not None and pos < len(data):
        if data[pos] == 0x21 and pos + 2 < len(data):  # an extension
            delay = _gif_delay(data, pos, delay)
            pos = _gif_skip_blocks(data, pos + 2)
        elif data[pos] == 0x2C and pos + 10 <= len(data):  # an image descriptor
            # its local colour table, the LZW minimum code size, then the data sub-blocks
            pos = _gif_skip_blocks(data, _gif_table_end(data, pos + 10, data[pos + 9]) + 1)
            out.append(delay)
            delay = 0
        else:
            pos = None  # the trailer, or damage: what was read stands
    return out


def _gif_table_end(data: bytes, pos: int, flags: int) -> int:
    """Past the colour table at ``pos`` that ``flags`` (its packed byte) declares, if any."""
    return pos + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)


def _gif_delay(data: bytes, pos: int, delay: int) -> int:
    """The delay a graphic control extension at ``pos`` sets (``delay`` for another one)."""
    if data[pos + 1] == 0xF9 and pos + 6 <= len(data) and data[pos + 2] >= 4:
        return 10 * (data[pos + 4] | data[pos + 5] << 8)
    return delay


def _gif_skip_blocks(data: bytes, pos: int) -> int:
    """Past the data sub-blocks starting at ``pos`` and their terminator."""
    n = len(data)
    while pos < n and data[pos]:
        pos += 1 + data[pos]
    return pos + 1


def iter_animation(source: ImageSource, frames: int, keep: set[int], *,
                   max_pixels: int | None = None, seconds: float | None = None,
                   durations: list[int] | None = None) -> Iterator[tuple[int, Image.Image]]:
    """The composited frames of an animation whose indices are in ``keep``, one at a time,
    each as a detached copy (the caller closes it); at most ``frames`` are read. Every frame's
    duration in ms (browser rule for 0-10 ms) is appended to ``durations``."""
    img = open_lazy(source, max_pixels=max_pixels, seconds=seconds)
    try:
        for i in _seek_frames(img, frames):
            img.load()  # WebP sets a frame's duration only once it is decoded
            if durations is not None:
                durations.append(shown_ms(img.info.get("duration"), img.format))
            if i in keep:
                yield i, img.copy()
    finally:
        if not isinstance(source, Image.Image):
            img.close()
