"""Pixel-level image fixes: load, orient, normalise mode/colour, resize, pad.

Every function is pure (the input image is never modified) and returns, next to the new image,
what it did, so callers can report each fix as a finding. The usual order is::

    img = load_image(src, target_box=box)        # JPEG: DCT-scaled decode when much larger
    img, rotated = apply_orientation(img)         # before any geometry: sizes are display sizes
    img, note = normalise_mode(img, "jpeg")       # 8-bit RGB/L(A)/RGBA, sRGB, alpha as needed
    img, resized = resize_within(img, box=box)
    img, padded = pad_to_min_side(img, 10)

No API limit is hard-coded here: the box, sides and ratios come from the caller
(``mediaprep.limits``).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import IO, Any

import numpy as np
from PIL import Image, ImageCms, ImageOps

from ..probe.image import BombError, pil_open

ImageSource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | Image.Image

#: Output formats whose pixel modes :func:`normalise_mode` knows.
OUTPUT_FORMATS = ("jpeg", "png", "webp")

_ORIENTATION_TAG = 0x0112
_WHITE = 255

_heif_registered = False


def register_heif() -> bool:
    """Register the pillow-heif opener once so ``Image.open`` reads HEIC/HEIF. Returns success."""
    global _heif_registered
    if not _heif_registered:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_registered = True
        except ImportError:  # optional at runtime: HEIC files then fail as unreadable
            return False
    return True


# --------------------------------------------------------------------------------------- load


def open_image(source: ImageSource, *, max_pixels: int | None = None,
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
    the later Lanczos resize still does the final, exact step.

    Animated GIF/WEBP/APNG/AVIF sequences and multi-image HEIF: with ``first_frame`` (default)
    the first frame is decoded and returned detached from the file. With ``first_frame=False``
    the opened image is returned unloaded so the caller can ``seek`` through frames.
    The returned image keeps ``format`` and ``info`` (EXIF, ICC, XMP, transparency).
    """
    register_heif()
    img = open_image(source)

    if target_box is not None and img.format in ("JPEG", "MPO") and _unloaded(img):
        want = _fit_size(img.size, box=target_box)
        if want != img.size:
            # "RGB" keeps RGB/YCbCr as is; Pillow ignores the mode for CMYK and L sources.
            img.draft("RGB" if img.mode == "RGB" else None, want)

    if not first_frame:
        return img
    n_frames = getattr(img, "n_frames", 1)
    if n_frames > 1:
        fmt = img.format
        if img.tell() != 0:
            img.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
        # Detach frame 0 from the (still open) multi-frame file; copy() keeps info/palette.
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


def apply_orientation(img: Image.Image) -> tuple[Image.Image, bool]:
    """Make the pixels upright per EXIF/XMP orientation and drop the tag.

    Returns ``(image, rotated)``. The tag is removed from EXIF and XMP in the result so no
    viewer (or model front end) rotates a second time. An orientation of 1 is a no-op and
    returns the input unchanged (a tag of 1 asks nobody to rotate).
    """
    if orientation_of(img) == 1:
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


@lru_cache(maxsize=1)
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


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
    sRGB and nothing guarantees the provider honours an embedded profile, so Display P3 /
    Adobe RGB / CMYK data would look washed out or wrong. A profile that is already sRGB is
    just dropped. Grey profiles are kept (gamma differences are small, and the encoder embeds
    any profile still present). A profile lcms cannot read is kept too.
    """
    icc = img.info.get("icc_profile")
    if not icc:
        return img
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = (src.profile.xcolor_space or "").strip()
        desc = src.profile.profile_description or ""
    except Exception:
        notes.append("ICC profile unreadable, kept")
        return img
    if space == "RGB" and img.mode in ("RGB", "RGBA"):
        if "srgb" in desc.lower():
            out = img.copy()
        else:
            try:
                out = ImageCms.profileToProfile(img, src, _srgb_profile(), outputMode=img.mode)  # type: ignore[assignment]
            except Exception:
                notes.append("ICC conversion failed, profile kept")
                return img
            notes.append(f"colour {desc or 'ICC'} -> sRGB")
    elif space == "CMYK" and img.mode == "CMYK":
        try:
            out = ImageCms.profileToProfile(img, src, _srgb_profile(), outputMode="RGB")  # type: ignore[assignment]
        except Exception:
            notes.append("ICC conversion failed, profile kept")
            return img
        notes.append(f"CMYK ({desc or 'ICC'}) -> sRGB")
    elif space == "GRAY" and img.mode in ("L", "LA"):
        return img
    else:
        # Profile does not match the pixel data (e.g. RGB profile on a CMYK image): ignore it.
        out = img.copy()
        notes.append("mismatched ICC profile dropped")
    out.info.pop("icc_profile", None)
    return out


def normalise_mode(img: Image.Image, out_format: str) -> tuple[Image.Image, str | None]:
    """Convert ``img`` to a mode ``out_format`` ("jpeg", "png", "webp") stores, in sRGB.

    Results: JPEG -> ``L`` or ``RGB`` (alpha flattened on white); PNG -> ``L``, ``LA``, ``RGB``
    or ``RGBA``; WEBP -> ``RGB`` or ``RGBA``. Handles CMYK (Pillow already un-inverts Adobe
    CMYK JPEGs), LAB, YCbCr, palette (with tRNS transparency), ``1``, ``I;16``/``I``/``F`` (scaled
    to 8 bit, see :func:`_scale_to_8bit`), L/RGB with a tRNS colour key, and ICC profiles
    (converted to sRGB, see :func:`_to_srgb`). An alpha channel that is fully opaque is dropped.

    Returns ``(image, note)``; ``note`` is None when nothing changed.
    """
    fmt = out_format.lower()
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unsupported output format {out_format!r}; use one of {OUTPUT_FORMATS}")
    notes: list[str] = []
    src_mode = img.mode
    out = img

    # 1. Deep / exotic modes -> an 8-bit mode, keeping transparency as a real alpha channel.
    trns = out.info.get("transparency")
    if out.mode.startswith("I;16") or out.mode in ("I", "F"):
        grey = _scale_to_8bit(out)
        if trns is not None and isinstance(trns, int) and out.mode != "F":
            # tRNS on 16-bit grey names one 16-bit value; compare on the original samples.
            mask = np.asarray(out) != trns
            grey = Image.merge("LA", (grey, Image.fromarray((mask * 255).astype(np.uint8), "L")))
        out = grey
    elif out.mode == "1":
        out = out.convert("L")
    elif out.mode == "P" or out.mode == "PA":
        out = out.convert("RGBA" if _has_alpha(out) else "RGB")
    elif out.mode in ("L", "RGB") and trns is not None:
        out = out.convert("LA" if out.mode == "L" else "RGBA")  # colour key -> alpha
    elif out.mode in ("RGBa", "La"):
        out = out.convert("RGBA" if out.mode == "RGBa" else "LA")  # un-premultiply
    elif out.mode == "CMYK":
        if out.info.get("icc_profile"):
            out = _to_srgb(out, notes)
        if out.mode == "CMYK":
            out = out.convert("RGB")
            notes.append("CMYK -> RGB")
    elif out.mode in ("LAB", "YCbCr", "HSV", "RGBX"):
        out = out.convert("RGB")
    elif out.mode not in ("L", "LA", "RGB", "RGBA"):
        out = out.convert("RGBA" if "A" in out.mode else "RGB")
    if out is not img and out.info.get("transparency") is not None:
        out.info.pop("transparency", None)  # now carried by the alpha channel

    # 2. Colour management (after mode fixes so RGB/RGBA data meets its RGB profile).
    if out.info.get("icc_profile"):
        out = _to_srgb(out, notes)

    # 3. Alpha: drop when fully opaque; flatten for JPEG; WEBP has no grey modes.
    if out.mode in ("RGBA", "LA") and _alpha_is_opaque(out):
        out = out.convert("RGB" if out.mode == "RGBA" else "L")
        notes.append("opaque alpha dropped")
    if fmt == "jpeg" and out.mode in ("RGBA", "LA"):
        out = _flatten(out, grey=out.mode == "LA")
        notes.append("alpha flattened on white")
    if fmt == "webp" and out.mode in ("L", "LA"):
        out = out.convert("RGB" if out.mode == "L" else "RGBA")

    if out is img:
        return img, (notes[0] if notes else None)
    if out.mode != src_mode:
        notes.insert(0, f"mode {src_mode} -> {out.mode}")
    out.format = img.format
    return out, "; ".join(notes) if notes else None


# ------------------------------------------------------------------------------------ geometry


def _fit_size(
    size: tuple[int, int],
    *,
    box: tuple[int, int] | None = None,
    max_side: int | None = None,
    max_pixels: int | None = None,
) -> tuple[int, int]:
    """Largest size <= ``size`` with the same aspect that meets every given constraint."""
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
    return nw, nh


def resize_within(
    img: Image.Image,
    *,
    box: tuple[int, int] | None = None,
    max_side: int | None = None,
    max_pixels: int | None = None,
) -> tuple[Image.Image, bool]:
    """Shrink ``img`` (aspect kept, never enlarged) to satisfy every constraint given.

    ``box`` is orientation-agnostic: (7680, 4320) and (4320, 7680) mean the same thing, the long
    side must fit the long edge and the short side the short edge. Lanczos, with Pillow's
    ``reducing_gap`` so big reductions first use a fast integer ``reduce()`` (box filter) and
    finish with Lanczos: near-identical quality, several times faster. Palette and 1-bit images
    are converted to RGB(A)/L first so they are filtered, not nearest-sampled.
    """
    new = _fit_size(img.size, box=box, max_side=max_side, max_pixels=max_pixels)
    if new == img.size:
        return img, False
    src = img
    if src.mode in ("P", "PA"):
        src = src.convert("RGBA" if _has_alpha(src) else "RGB")
    elif src.mode == "1":
        src = src.convert("L")
    out = src.resize(new, Image.Resampling.LANCZOS, reducing_gap=3.0)
    out.format = img.format
    return out, True


def resize_to(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resample ``img`` to exactly ``size`` (Lanczos, integer ``reduce()`` first for big
    reductions, palette/1-bit images converted first as in :func:`resize_within`)."""
    if img.size == tuple(size):
        return img
    src = img
    if src.mode in ("P", "PA"):
        src = src.convert("RGBA" if _has_alpha(src) else "RGB")
    elif src.mode == "1":
        src = src.convert("L")
    out = src.resize(tuple(size), Image.Resampling.LANCZOS, reducing_gap=3.0)
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
