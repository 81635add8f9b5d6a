"""Probe an image from its header: size, mode, bit depth, orientation, frame count.

No pixel is decoded. Pillow opens lazily (it reads headers only until ``load``); the few facts
Pillow would need a decode for are read from the container structure directly. A cheap
structural check (end markers, chunk walk, strip offsets) catches most truncated files without
decoding; ``deep=True`` decodes the pixels as the final word.
"""

from __future__ import annotations

import contextlib
import re
import struct
import threading
import warnings
from collections.abc import Iterator
from typing import IO

from PIL import Image, UnidentifiedImageError

from ..info import UNENCODED, MediaInfo
from ..sources import Source
from .sniff import Sniffed

_PILLOW_FORMATS = {
    "JPEG": "jpeg", "MPO": "mpo", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp",
    "DIB": "bmp", "TIFF": "tiff", "HEIF": "heic", "AVIF": "avif", "JPEG2000": "jpeg2000",
    "ICO": "ico", "PPM": "ppm", "TGA": "tga", "PCX": "pcx", "PSD": "psd", "DDS": "dds",
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


class BombError(Exception):
    def __init__(self, pixels: int | None, message: str) -> None:
        super().__init__(message)
        self.pixels = pixels


@contextlib.contextmanager
def open_image(fh: IO[bytes], max_pixels: int | None) -> Iterator[Image.Image]:
    """Open lazily, refusing (BombError) before any decode when the header declares too much.

    Pillow refuses above 2 x ``Image.MAX_IMAGE_PIXELS`` by itself; when the caller's limit is
    higher, the open is retried with Pillow's global raised under a lock.
    """
    register_plugins()
    with warnings.catch_warnings():
        # bombs are decided against our own limit; Pillow's EXIF complaints are not findings
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        try:
            im = Image.open(fh)
        except Image.DecompressionBombError as exc:
            pixels = _pixels_from_message(str(exc))
            if max_pixels is None or (pixels is not None and pixels > max_pixels):
                raise BombError(pixels, str(exc)) from exc
            fh.seek(0)
            with _pixels_lock:
                saved = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = None
                try:
                    im = Image.open(fh)
                finally:
                    Image.MAX_IMAGE_PIXELS = saved
        except ValueError as exc:
            if "Decompressed data too large" in str(exc):  # PNG text-chunk bomb
                raise BombError(None, str(exc)) from exc
            raise
        with im:
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                raise BombError(w * h, f"declares {w}x{h} = {w * h:,} pixels")
            yield im


def _pixels_from_message(msg: str) -> int | None:
    m = re.search(r"\((\d+) pixels\)", msg)
    return int(m.group(1)) if m else None


def probe_image(src: Source, sniffed: Sniffed, *, max_pixels: int | None,
                deep: bool = False) -> MediaInfo:
    info = MediaInfo(path=src.name, kind="image", format=sniffed.format, bytes=src.size)
    if src.image is not None:
        _from_pil(info, src.image)
        info.format = info.format or UNENCODED
        return info
    try:
        with src.open() as fh, open_image(fh, max_pixels) as im:
            _from_pil(info, im)
            info.format = _PILLOW_FORMATS.get(im.format or "", (im.format or "").lower()) or (
                sniffed.format)
            _read_header_extras(info, im, src)
            problem = structural_problem(info.format, src, im)
            if problem:
                info.error, info.error_code = problem, "file.unreadable"
            elif deep:
                _decode_all(im)
    except BombError as exc:
        info.error_code = "image.decompression_bomb"
        info.error = f"header declares too many pixels ({exc})"
        info.declared_pixels = exc.pixels if info.width is None else info.pixels
    except UnidentifiedImageError:
        info.error_code = "file.unreadable"
        info.error = "not a readable image (Pillow cannot identify it)"
    except (OSError, ValueError, SyntaxError, struct.error, EOFError, MemoryError,
            IndexError, KeyError, TypeError, ZeroDivisionError, RuntimeError) as exc:
        info.error_code = "file.unreadable"
        info.error = f"cannot read image: {type(exc).__name__}: {exc}"
    return info


def _from_pil(info: MediaInfo, im: Image.Image) -> MediaInfo:
    info.width, info.height = im.size
    info.mode = im.mode
    info.bit_depth = _BITS_BY_MODE.get(im.mode, 8)
    if info.format is None and im.format:
        info.format = _PILLOW_FORMATS.get(im.format, im.format.lower())
    return info


def _read_header_extras(info: MediaInfo, im: Image.Image, src: Source) -> None:
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
    if n > 1 and info.format not in ("mpo", "tiff", "ico", "heic"):
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


def structural_problem(fmt: str | None, src: Source, im: Image.Image) -> str | None:
    """A reason the file is cut short or inconsistent, found without decoding pixels."""
    size = src.size
    if src.path is None and src.data is None:
        return None
    if fmt in ("jpeg", "mpo"):
        if src.tail(1024).rfind(b"\xff\xd9") < 0:
            return "truncated: the JPEG has no end-of-image marker"
    elif fmt == "png":
        return _png_problem(src)
    elif fmt == "gif":
        if b";" not in src.tail(16):
            return "truncated: the GIF has no trailer"
    elif fmt == "webp":
        head = src.head(12)
        declared = int.from_bytes(head[4:8], "little") + 8
        if declared > size:
            return f"truncated: the WEBP declares {declared} bytes, the file has {size}"
        chunk = src.head(20)
        chunk_end = 20 + int.from_bytes(chunk[16:20], "little")
        if len(chunk) < 20 or chunk_end > size:
            return f"truncated: the WEBP's {chunk[12:16]!r} chunk runs past the end of the file"
        if chunk[12:16] == b"VP8L" and chunk_end - 20 < 8:  # 5-byte header + data
            return "corrupt: the WEBP holds no image data"
    elif fmt in ("heic", "avif"):
        return _isobmff_problem(src)
    elif fmt in ("bmp", "tiff"):
        end = _raster_end(im)
        if end is not None and end > size:
            return f"truncated: pixel data should reach byte {end}, the file has {size}"
    return None


def _png_problem(src: Source) -> str | None:
    """Walk the chunk headers (no CRC, no inflate): IDAT present, IEND reached within the file."""
    size = src.size
    with src.open() as fh:
        pos = 8
        seen_idat = False
        while pos + 8 <= size:
            fh.seek(pos)
            hdr = fh.read(8)
            if len(hdr) < 8:
                break
            length, ctype = struct.unpack(">I4s", hdr)
            if ctype == b"IDAT":
                seen_idat = True
            if ctype == b"IEND":
                return None if seen_idat else "corrupt: the PNG has no image data"
            pos += 12 + length
        return "truncated: the PNG ends before its IEND chunk"


def _isobmff_problem(src: Source) -> str | None:
    """Walk the top-level boxes of a HEIF/AVIF: each must end inside the file."""
    size = src.size
    with src.open() as fh:
        pos = 0
        while pos + 8 <= size:
            fh.seek(pos)
            hdr = fh.read(16)
            box_size, box_type = struct.unpack(">I4s", hdr[:8])
            if box_size == 1 and len(hdr) >= 16:  # 64-bit size follows
                box_size = struct.unpack(">Q", hdr[8:16])[0]
            elif box_size == 0:  # runs to the end of the file
                return None
            if box_size < 8:
                return f"corrupt: the {box_type!r} box has an impossible size"
            if pos + box_size > size:
                return (f"truncated: the {box_type.decode('latin-1')} box runs past the end of "
                        "the file")
            pos += box_size
    return None


def _raster_end(im: Image.Image) -> int | None:
    """Where uncompressed BMP or TIFF strip data ends, from the header."""
    try:
        if im.format in ("BMP", "DIB") and im.tile and im.tile[0][0] == "raw":
            tile = im.tile[0]
            stride = tile[3][1] if len(tile[3]) > 1 and tile[3][1] else 0
            return tile[2] + stride * im.size[1] if stride else None
        if im.format == "TIFF":
            offsets = im.tag_v2.get(273) or im.tag_v2.get(324)  # strips or tiles
            counts = im.tag_v2.get(279) or im.tag_v2.get(325)
            if offsets and counts:
                return max(int(o) + int(c) for o, c in zip(offsets, counts, strict=False))
    except Exception:
        return None
    return None


def _decode_all(im: Image.Image) -> None:
    # the first frame is what gets sent; later frames of an animation are never decoded
    im.seek(0)
    im.load()
