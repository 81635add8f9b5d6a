"""Probe an image from its header: size, mode, bit depth, orientation, frame count.

No pixel is decoded. Pillow opens lazily (it reads headers only until ``load``); the few facts
Pillow would need a decode for are read from the container structure directly. A cheap
structural check (end markers, chunk walk, strip offsets) catches most truncated files without
decoding; ``deep=True`` decodes the pixels as the final word.
"""

from __future__ import annotations

import contextlib
import mmap
import re
import struct
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from PIL import Image, UnidentifiedImageError

from ..info import UNENCODED, MediaInfo
from ..limits import Limits, limits_for
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


class DecodeTimeout(OSError):
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
              animated: bool = False, jpeg: bool = False, what: str = "") -> None:
        """Raise BombError when decoding ``w`` x ``h`` would cost too much."""
        pixels = w * h
        where = f"{what} " if what else ""
        if self.max_pixels is not None and pixels > self.max_pixels:
            raise BombError(pixels, f"{where}declares {w}x{h} = {pixels:,} pixels, above "
                                    f"image.max_decode_pixels {self.max_pixels:,}")
        per = 4 if animated else _WORK_BYTES.get(mode or "RGB", 4)
        claimed = pixels * per
        scale = jpeg_scale((w, h), self.box) if jpeg else 1
        decoded = -(-w // scale) * -(-h // scale) * per
        if self.max_bytes is not None and decoded > self.max_bytes:
            how = f" at 1/{scale} scale" if scale > 1 else ""
            raise BombError(pixels, f"{where}{w}x{h} would take {decoded / 2**20:,.0f} MiB to "
                                    f"decode{how}, above image.max_decode_bytes "
                                    f"{self.max_bytes / 2**20:,.0f} MiB")
        if (self.max_pixels_per_byte is not None and file_bytes and claimed > RATIO_FLOOR_BYTES
                and pixels / file_bytes > self.max_pixels_per_byte):
            raise BombError(pixels, f"{where}{w}x{h} = {pixels:,} pixels from {file_bytes:,} "
                                    f"bytes: {pixels / file_bytes:,.0f} pixels per byte, above "
                                    f"image.max_pixels_per_byte {self.max_pixels_per_byte:,g} "
                                    "(a photo claims tens)")


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
            return Image.open(src)
        except Image.DecompressionBombError as exc:
            pixels = _pixels_from_message(str(exc))
            if max_pixels is not None and (pixels is None or pixels > max_pixels):
                raise BombError(pixels, str(exc)) from exc
            fh.seek(0)
            with _pixels_lock:
                saved = Image.MAX_IMAGE_PIXELS
                Image.MAX_IMAGE_PIXELS = None
                try:
                    return Image.open(src)
                finally:
                    Image.MAX_IMAGE_PIXELS = saved
        except ValueError as exc:
            if "Decompressed data too large" in str(exc):  # a PNG text or profile bomb
                raise BombError(None, _png_zlib_bomb(fh)) from exc
            raise


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
                    jpeg=im.format in ("JPEG", "MPO"))
        yield im


def _pixels_from_message(msg: str) -> int | None:
    m = re.search(r"\((\d+) pixels\)", msg)
    return int(m.group(1)) if m else None


def probe_image(src: Source, sniffed: Sniffed, *, max_pixels: int | None,
                deep: bool = False, limits: Limits | None = None) -> MediaInfo:
    info = MediaInfo(path=src.name, kind="image", format=sniffed.format, bytes=src.size)
    if src.image is not None:
        _from_pil(info, src.image)
        info.format = info.format or UNENCODED
        return info
    guard = DecodeGuard.from_limits(limits)
    if max_pixels != guard.max_pixels:
        guard = DecodeGuard(max_pixels, guard.max_bytes, guard.max_pixels_per_byte,
                            guard.max_jpeg_scans, guard.max_seconds, guard.box)
    try:
        with src.open() as fh:
            frames = _pre_open(fh, sniffed.format, src.size, guard)
            fh.seek(0)
            with open_image(fh, max_pixels, guard, src.size) as im:
                _from_pil(info, im)
                info.format = _PILLOW_FORMATS.get(im.format or "", (im.format or "").lower()) or (
                    sniffed.format)
                _read_header_extras(info, im, src, frames)
                problem = structural_problem(info.format, src, im)
                if problem:
                    info.error, info.error_code = problem, "file.unreadable"
                elif deep:
                    _decode_all(im, guard)
    except BombError as exc:
        info.error_code = "image.decompression_bomb"
        info.error = str(exc)
        info.declared_pixels = exc.pixels if info.width is None else info.pixels
    except DecodeTimeout as exc:
        info.error_code = "file.unreadable"
        info.error = str(exc)
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


def _read_header_extras(info: MediaInfo, im: Image.Image, src: Source,
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


def _decode_all(im: Image.Image, guard: DecodeGuard) -> None:
    # the first frame is what gets sent; later frames of an animation are never decoded
    im.seek(0)
    if im.format in ("JPEG", "MPO"):
        # at the scale prep decodes it: every scan's entropy data is still read and checked
        scale = jpeg_scale(im.size, guard.box)
        if scale > 1:
            im.draft(im.mode if im.mode in ("RGB", "L") else None,
                     (-(-im.width // scale), -(-im.height // scale)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im.load()


# ------------------------------------------------------------------ structure, before Pillow


def _pre_open(fh: IO[bytes], fmt: str | None, size: int, guard: DecodeGuard) -> int | None:
    """Judge what the container declares before Pillow opens it (Pillow's ICO and animated
    WebP readers decode or allocate the whole canvas on open). Returns the APNG frame count
    (fcTL chunks) when the file is a PNG, else None."""
    if fmt in ("jpeg", "mpo"):
        scans, dims = _jpeg_walk(fh, guard.max_jpeg_scans)
        if guard.max_jpeg_scans is not None and scans > guard.max_jpeg_scans:
            raise BombError(None, f"the JPEG holds more than {guard.max_jpeg_scans} scans "
                                  "(image.max_jpeg_scans; encoders write a few dozen at most): "
                                  "each scan is another pass over every block, a CPU bomb")
        if dims:
            guard.judge(dims[0], dims[1], mode="L" if dims[2] == 1 else "RGB",
                        file_bytes=size, jpeg=True)
    elif fmt == "png":
        head = fh.read(33)
        if len(head) >= 24 and head[12:16] == b"IHDR":
            w, h = struct.unpack(">II", head[16:24])
            mode = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}.get(head[25], "RGBA")
            guard.judge(w, h, mode=mode, file_bytes=size)
        return _png_frames(fh, size)
    elif fmt == "gif":
        head = fh.read(10)
        if len(head) == 10:
            w, h = struct.unpack("<HH", head[6:10])
            guard.judge(w, h, mode="P", file_bytes=size, what="the GIF's logical screen")
    elif fmt == "webp":
        head = fh.read(30)
        if head[12:16] == b"VP8X" and len(head) >= 30:
            w = int.from_bytes(head[24:27], "little") + 1
            h = int.from_bytes(head[27:30], "little") + 1
            animated = bool(head[20] & 0x02)
            guard.judge(w, h, mode="RGBA", file_bytes=size, animated=animated,
                        what="the WebP canvas" if animated else "")
    elif fmt == "ico" or fmt == "cur":
        for w, h in _ico_entries(fh, size):
            guard.judge(w, h, mode="RGBA", file_bytes=size, what="an icon in the ICO")
    return None


def _whole(fh: IO[bytes]) -> Any:
    try:
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (AttributeError, OSError, ValueError):
        fh.seek(0)
        return fh.read()


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_walk(fh: IO[bytes], limit: int | None) -> tuple[int, tuple[int, int, int] | None]:
    """Count the scans (SOS markers) of the first JPEG in the file by walking its marker
    segments and skipping entropy-coded data; stop past ``limit``. Also the first SOF's
    width, height and component count."""
    data = _whole(fh)
    try:
        n, pos, scans, dims = len(data), 2, 0, None
        while pos + 4 <= n:
            if data[pos] != 0xFF:
                return scans, dims  # not a marker: a damaged file, Pillow will say so
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker == 0xD9:
                break
            if marker == 0x01 or 0xD0 <= marker <= 0xD8:
                pos += 2
                continue
            length = (data[pos + 2] << 8) | data[pos + 3]
            if marker in _SOF and dims is None and pos + 10 <= n:
                h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
                dims = (w, h, data[pos + 9])
            pos += 2 + length
            if marker == 0xDA:
                scans += 1
                if limit is not None and scans > limit:
                    break
                # entropy data runs to the next marker that is neither FF00 stuffing nor RSTn
                while True:
                    pos = data.find(b"\xff", pos)
                    if pos < 0 or pos + 1 >= n:
                        return scans, dims
                    nxt = data[pos + 1]
                    if nxt == 0 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                        pos += 1 if nxt == 0xFF else 2
                        continue
                    break
        return scans, dims
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def _png_frames(fh: IO[bytes], size: int) -> int | None:
    """The fcTL chunks of an APNG (its real frames), or None for a still PNG (no acTL)."""
    pos, frames, animated = 8, 0, False
    while pos + 8 <= size:
        fh.seek(pos)
        hdr = fh.read(8)
        if len(hdr) < 8:
            break
        length, ctype = struct.unpack(">I4s", hdr)
        if ctype == b"acTL":
            animated = True
        elif ctype == b"fcTL":
            frames += 1
        elif ctype == b"IEND" or (ctype == b"IDAT" and not animated):
            break
        pos += 12 + length
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
