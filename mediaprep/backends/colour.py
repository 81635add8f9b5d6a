"""Colour: what a picture's numbers mean, and the one path that turns them into 8-bit sRGB.

What is sent is 8-bit sRGB (SPEC section 6). The open Kimi K2.5 processor (vLLM's
``kimi_k25_vision_fused._to_pil``) opens every image with ``Image.open(...).convert("RGB")``:
it ignores an ICC profile, an HDR transfer (PQ, HLG) and a wide gamut, and it drops alpha,
showing whatever colour is stored under transparent pixels (black, for most stickers). So:

- an ICC profile is judged by what it does to colours, not by its name
  (:func:`judge_profile`: a set of test colours through LittleCMS, profile -> sRGB, measured in
  CIEDE2000 against reading the numbers as sRGB), and converted where it is not sRGB;
- PQ and HLG pictures are tone-mapped to SDR BT.709/sRGB (:func:`tone_map`, Hable's filmic
  curve on the brightest component, then BT.2020/P3 -> BT.709 in linear light);
- transparency is flattened onto a background (:func:`flatten`).

Outputs are untagged sRGB: every decoder reads an untagged picture as sRGB, and a tag only costs
bytes (a camera's profile can be 0.5 MB).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from PIL import Image

from ..tuning import COLOUR_SAME_AS_SRGB, COLOUR_VISIBLE_SHIFT, HDR_REFERENCE_WHITE

if TYPE_CHECKING:
    import numpy as np
    from PIL import ImageCms

# numpy and PIL.ImageCms are imported by the functions that use them: a picture or a video
# with plain sRGB colour never needs them (their import costs a `frames` run about a tenth
# of its CPU, and 12 MB)

# ----------------------------------------------------------------------------- measuring colour

_SRGB_TO_XYZ_ROWS = ((0.4124564, 0.3575761, 0.1804375),
                     (0.2126729, 0.7151522, 0.0721750),
                     (0.0193339, 0.1191920, 0.9503041))
_D65 = (0.95047, 1.0, 1.08883)


def srgb_decode(v: np.ndarray) -> np.ndarray:
    """sRGB-encoded 0..1 -> linear light (IEC 61966-2-1)."""
    import numpy as np

    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def srgb_encode(v: np.ndarray) -> np.ndarray:
    """Linear light 0..1 -> sRGB-encoded 0..1."""
    import numpy as np

    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """8-bit sRGB (..., 3) -> CIELAB (D65)."""
    import numpy as np

    to_xyz, white = np.array(_SRGB_TO_XYZ_ROWS), np.array(_D65)
    xyz = srgb_decode(np.asarray(rgb, np.float64) / 255.0) @ to_xyz.T / white
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference of two CIELAB arrays (..., 3) (Sharma, Wu, Dalal 2005)."""
    import numpy as np

    L1, a1, b1 = np.moveaxis(np.asarray(lab1, np.float64), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, np.float64), -1, 0)
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25.0**7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dL, dC = L2 - L1, c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0.0, dh)
    dH = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    L_mean, cp_mean = (L1 + L2) / 2, (c1p + c2p) / 2
    hsum = h1p + h2p
    h_mean = np.where(c1p * c2p == 0, hsum,
                      np.where(np.abs(h1p - h2p) <= 180, hsum / 2,
                               np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2)))
    t = (1 - 0.17 * np.cos(np.radians(h_mean - 30)) + 0.24 * np.cos(np.radians(2 * h_mean))
         + 0.32 * np.cos(np.radians(3 * h_mean + 6)) - 0.20 * np.cos(np.radians(4 * h_mean - 63)))
    d_theta = 30 * np.exp(-(((h_mean - 275) / 25) ** 2))
    rc = 2 * np.sqrt(cp_mean**7 / (cp_mean**7 + 25.0**7))
    sl = 1 + 0.015 * (L_mean - 50) ** 2 / np.sqrt(20 + (L_mean - 50) ** 2)
    sc = 1 + 0.045 * cp_mean
    sh = 1 + 0.015 * cp_mean * t
    rt = -np.sin(np.radians(2 * d_theta)) * rc
    return np.sqrt((dL / sl) ** 2 + (dC / sc) ** 2 + (dH / sh) ** 2
                   + rt * (dC / sc) * (dH / sh))


def mean_delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 between two 8-bit sRGB pictures of the same shape."""
    return float(delta_e2000(srgb_to_lab(a), srgb_to_lab(b)).mean())


def saturation(rgb: np.ndarray) -> float:
    """Mean HSV saturation (0..255) of an 8-bit RGB picture: the issue's "flat and grey"."""
    import numpy as np

    a = np.asarray(rgb, np.float64).reshape(-1, 3)
    hi, lo = a.max(axis=1), a.min(axis=1)
    return float(np.where(hi > 0, (hi - lo) / np.maximum(hi, 1e-9) * 255, 0).mean())


# ------------------------------------------------------------------------------- ICC profiles


@lru_cache(maxsize=1)
def srgb_profile() -> ImageCms.ImageCmsProfile:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _test_colours() -> np.ndarray:
    """A 9x9x9 RGB cube (every corner, edge and the inside) as an 729x1 8-bit picture."""
    import numpy as np

    steps = np.linspace(0, 255, 9).round().astype(np.uint8)
    cube = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 1, 3)
    return cube


@dataclass(frozen=True)
class ProfileVerdict:
    """What an embedded ICC profile means for the picture it is in.

    ``space``: the profile's colour space (RGB, CMYK, GRAY). ``shift``: the mean CIEDE2000
    between the colours the profile describes and the same numbers read as sRGB (what a
    decoder that ignores the profile shows; None for a CMYK or grey profile).
    """

    name: str
    space: str
    shift: float | None

    @property
    def same_as_srgb(self) -> bool:
        """Converting would change nothing visible: the profile is dropped, pixels kept."""
        return self.space == "RGB" and self.shift is not None and self.shift <= COLOUR_SAME_AS_SRGB

    @property
    def visible(self) -> bool:
        """Ignoring the profile would shift colours visibly: never pass such a file as is."""
        return self.space == "CMYK" or (
            self.space == "RGB" and self.shift is not None and self.shift > COLOUR_VISIBLE_SHIFT)


@lru_cache(maxsize=32)
def _profile(icc: bytes) -> ImageCms.ImageCmsProfile:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(io.BytesIO(icc))


@lru_cache(maxsize=32)
def _transform(icc: bytes, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform:
    from PIL import ImageCms

    return ImageCms.buildTransform(_profile(icc), srgb_profile(), in_mode, out_mode)


@lru_cache(maxsize=64)
def judge_profile(icc: bytes) -> ProfileVerdict | None:
    """Judge ``icc`` by its primaries and transfer, measured (None: LittleCMS cannot read it).

    The test colours go through LittleCMS profile -> sRGB; the mean CIEDE2000 against the same
    numbers read as sRGB is how far a decoder that ignores the profile would be off. A profile
    named "sRGB" whose primaries are P3 (Samsung's "DCI-P3 D65 Gamut with sRGB Transfer") is
    judged by its primaries, and a profile named anything whose numbers are sRGB's is sRGB.
    """
    import numpy as np

    try:
        prof = _profile(icc)
        space = (prof.profile.xcolor_space or "").strip()
        name = (prof.profile.profile_description or "").strip() or "ICC"
    except Exception:  # noqa: BLE001 - any unreadable profile is kept as it is
        return None
    if space != "RGB":
        return ProfileVerdict(name, space, None)
    cube = _test_colours()
    try:
        out = _transform(icc, "RGB", "RGB").apply(Image.fromarray(cube, "RGB"))
    except Exception:  # noqa: BLE001
        return None
    return ProfileVerdict(name, space, mean_delta_e(cube, np.asarray(out)))


def to_srgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """Convert ``img`` from its embedded ICC profile to sRGB, and drop the profile.

    An RGB profile judged the same as sRGB (:func:`judge_profile`) is only dropped; any other
    RGB or CMYK profile is converted with LittleCMS. A grey profile is kept (a grey picture's
    tone curve differs little), as is one LittleCMS cannot read. ``notes`` gets ``colour X ->
    sRGB`` for each conversion (the change record's words, kinds/image.py).
    """
    icc = img.info.get("icc_profile")
    if not icc:
        return img
    verdict = judge_profile(bytes(icc))
    if verdict is None:
        notes.append("ICC profile unreadable, kept")
        return img
    if verdict.space == "GRAY" and img.mode in ("L", "LA"):
        return img
    out = _converted(img, bytes(icc), verdict, notes)
    if out is None:
        notes.append("ICC conversion failed, profile kept")
        return img
    out.info.pop("icc_profile", None)
    return out


def _converted(img: Image.Image, icc: bytes, verdict: ProfileVerdict,
               notes: list[str]) -> Image.Image | None:
    """``img`` in sRGB (its profile still in ``info``), or None when LittleCMS refuses it."""
    if verdict.space == "RGB" and img.mode in ("RGB", "RGBA"):
        if verdict.same_as_srgb:
            return img.copy()
        out = _apply(img, icc, img.mode, img.mode)
        if out is not None:
            notes.append(f"colour {verdict.name} -> sRGB")
        return out
    if verdict.space == "CMYK" and img.mode == "CMYK":
        out = _apply(img, icc, "CMYK", "RGB")
        if out is not None:
            notes.append(f"colour CMYK ({verdict.name}) -> sRGB")
        return out
    # the profile does not describe these pixels (an RGB profile on a CMYK picture)
    notes.append("mismatched ICC profile dropped")
    return img.copy()


def _apply(img: Image.Image, icc: bytes, in_mode: str, out_mode: str) -> Image.Image | None:
    alpha = img.getchannel("A") if in_mode == "RGBA" else None
    try:
        src = img.convert("RGB") if alpha is not None else img
        out = _transform(icc, "RGB" if alpha is not None else in_mode,
                         "RGB" if alpha is not None else out_mode).apply(src)
    except Exception:  # noqa: BLE001 - LittleCMS refuses a broken table: keep the pixels
        return None
    if alpha is not None:
        out.putalpha(alpha)
    out.info = {k: v for k, v in img.info.items() if k != "icc_profile"}
    return out


# ----------------------------------------------------------------------------- CICP (nclx)

#: ITU-T H.273 code points mediaprep knows
PRIMARIES = {1: "BT.709", 9: "BT.2020", 11: "DCI-P3", 12: "Display P3"}
TRANSFERS = {16: "PQ", 18: "HLG"}

# linear RGB -> XYZ of the primaries (D65 white; DCI-P3's own white is adapted as D65: the
# difference is a slight tint, the same simplification FFmpeg's tonemap chain makes)
_RGB_TO_XYZ_ROWS = {
    9: ((0.636958, 0.144617, 0.168881),
        (0.262700, 0.677998, 0.059302),
        (0.000000, 0.028073, 1.060985)),
    12: ((0.486571, 0.265668, 0.198217),
         (0.228975, 0.691739, 0.079287),
         (0.000000, 0.045113, 1.043944)),
}
_RGB_TO_XYZ_ROWS[11] = _RGB_TO_XYZ_ROWS[12]


def _rgb_to_xyz(primaries: int) -> np.ndarray | None:
    """The linear RGB -> XYZ matrix of ``primaries`` (None: BT.709/sRGB's, or unknown)."""
    import numpy as np

    rows = _RGB_TO_XYZ_ROWS.get(primaries)
    return None if rows is None else np.array(rows)


@lru_cache(maxsize=1)
def _xyz_to_709() -> np.ndarray:
    import numpy as np

    return np.linalg.inv(np.array(_SRGB_TO_XYZ_ROWS))


@dataclass(frozen=True)
class Cicp:
    """A picture's colour as ITU-T H.273 code points (an HEIF/AVIF ``colr`` box of type
    ``nclx``, or a video stream's tags)."""

    primaries: int
    transfer: int
    matrix: int = 0
    full_range: bool = True

    @property
    def hdr(self) -> str | None:
        """``PQ`` or ``HLG`` (None: an SDR transfer)."""
        return TRANSFERS.get(self.transfer)

    @property
    def wide(self) -> bool:
        """Primaries other than BT.709/sRGB that mediaprep converts."""
        return self.primaries in _RGB_TO_XYZ_ROWS

    def describe(self) -> str:
        prim = PRIMARIES.get(self.primaries, f"primaries {self.primaries}")
        return f"{prim} {self.hdr}" if self.hdr else prim


def frame_cicp(frame: object) -> Cicp | None:
    """A decoded video frame's (or stream's codec context's) colour tags, None when it has
    none (PyAV: ``color_primaries``, ``color_trc``, ``colorspace``, ``color_range``)."""
    trc = int(getattr(frame, "color_trc", 2) or 2)
    prim = int(getattr(frame, "color_primaries", 2) or 2)
    if trc == 2 and prim == 2:
        return None
    return Cicp(prim, trc, int(getattr(frame, "colorspace", 2) or 2),
                int(getattr(frame, "color_range", 0) or 0) == 2)


def read_nclx(head: bytes) -> Cicp | None:
    """The first ``colr``/``nclx`` box in an HEIF/AVIF file's opening bytes (its ``meta``)."""
    at = head.find(b"colrnclx")
    if at < 0 or at + 15 > len(head):
        return None
    prim, trc, matrix = struct.unpack(">HHH", head[at + 8:at + 14])
    return Cicp(prim, trc, matrix, bool(head[at + 14] & 0x80))


# ----------------------------------------------------------------------------- tone mapping

_PQ_M1, _PQ_M2 = 2610 / 16384, 2523 / 4096 * 128
_PQ_C1, _PQ_C2, _PQ_C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
_HLG_A, _HLG_B, _HLG_C = 0.17883277, 0.28466892, 0.55991073
#: The display an HLG signal is shown on (BT.2100's reference: 1000 cd/m2, system gamma 1.2)
_HLG_PEAK = 1000.0
#: Where a PQ picture without a stated peak is assumed to end (most HDR10 is mastered to it)
_PQ_DEFAULT_PEAK = 1000.0


def pq_to_nits(e: np.ndarray) -> np.ndarray:
    """SMPTE ST 2084 EOTF: PQ signal 0..1 -> cd/m2."""
    import numpy as np

    p = np.power(np.clip(e, 0.0, 1.0), 1 / _PQ_M2)
    return 10000.0 * np.power(np.maximum(p - _PQ_C1, 0) / (_PQ_C2 - _PQ_C3 * p), 1 / _PQ_M1)


def _hable(x: np.ndarray | float) -> np.ndarray | float:
    a, b, c, d, e, f = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
    return (x * (x * a + b * c) + d * e) / (x * (x * a + b) + d * f) - e / f


def tone_map(rgb: np.ndarray, cicp: Cicp, *, peak_nits: float | None = None,
             deep: bool = False) -> np.ndarray:
    """HDR (PQ or HLG) or wide-gamut RGB -> 8-bit sRGB (..., 3).

    ``rgb``: the coded signal, as uint8 or uint16 (full scale) or 0..1 floats. The operator is
    John Hable's filmic curve, applied as FFmpeg's ``tonemap=hable`` does: on the brightest
    component of each pixel in linear light where 1.0 is the SDR reference white
    (:data:`HDR_REFERENCE_WHITE` cd/m2), scaled so the picture's peak lands on white, the
    pixel's components scaled by the same factor (hues are kept). Then BT.2020 or P3 -> BT.709
    primaries in linear light, clipped, and the sRGB curve. An SDR transfer with wide primaries
    only gets the gamut conversion. Integer input goes through lookup tables (the transfer
    curves cost one table read per sample, not a power). ``deep``: 16-bit output.
    """
    import numpy as np

    x = np.asarray(rgb)
    to_xyz = _rgb_to_xyz(cicp.primaries)
    planes = _linear_planes(x, cicp.transfer)
    if cicp.hdr == "PQ" and x.dtype in (np.uint8, np.uint16):
        planes = _pq_tone_mapped(planes, x, peak_nits)
    elif cicp.hdr:
        planes = _hable_tone_mapped(planes, cicp, to_xyz, peak_nits)
    if to_xyz is not None:
        m = (_xyz_to_709() @ to_xyz).astype(np.float32)
        planes = [planes[0] * m[i, 0] + planes[1] * m[i, 1] + planes[2] * m[i, 2]
                  for i in range(3)]
    if deep:  # 16-bit output (a lookup table's nodes): the sRGB curve computed, not looked up
        return np.stack([(srgb_encode(p) * 65535 + 0.5).astype(np.uint16) for p in planes],
                        axis=-1)
    return _srgb_encoded(planes, x.shape[:-1])


def _linear_planes(x: np.ndarray, transfer: int) -> list[np.ndarray]:
    """The coded signal in linear light, as three planes, not an (h, w, 3) array: numpy's
    per-pixel steps over interleaved samples cost several times a pass over one contiguous
    plane (1080p: 0.3 s against 0.05 s)."""
    import numpy as np

    if x.dtype in (np.uint8, np.uint16):
        table = _decode_table(transfer, int(np.iinfo(x.dtype).max))
        return [table[x[..., c]] for c in range(3)]
    return [_decode(np.asarray(x[..., c], np.float32), transfer) for c in range(3)]


def _pq_tone_mapped(planes: list[np.ndarray], x: np.ndarray,
                    peak_nits: float | None) -> list[np.ndarray]:
    """PQ is monotonic per sample: the brightest linear component is the brightest code's,
    and the whole per-pixel Hable factor is one table read."""
    import numpy as np

    top = np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])
    factor = _pq_factor_table(int(np.iinfo(x.dtype).max), peak_nits or _PQ_DEFAULT_PEAK)[top]
    return [p * factor for p in planes]


def _hable_tone_mapped(planes: list[np.ndarray], cicp: Cicp, to_xyz: np.ndarray | None,
                       peak_nits: float | None) -> list[np.ndarray]:
    """Hable's curve on each pixel's brightest linear component (HLG after its OOTF)."""
    import numpy as np

    if cicp.hdr == "HLG":
        # the OOTF: display light = peak * Ys^0.2 * scene light (gamma 1.2, 1000 cd/m2)
        w = (to_xyz if to_xyz is not None else np.array(_SRGB_TO_XYZ_ROWS))[1]
        ys = planes[0] * w[0] + planes[1] * w[1] + planes[2] * w[2]
        gain = _lookup(_ootf_table(), ys, 1.0)
        planes = [p * gain for p in planes]
        peak = _HLG_PEAK / HDR_REFERENCE_WHITE
    else:
        peak = (peak_nits or _PQ_DEFAULT_PEAK) / HDR_REFERENCE_WHITE
    sig = np.maximum(np.maximum(planes[0], planes[1]), planes[2])
    factor = _lookup(_hable_factor_table(peak), sig, peak)
    return [p * factor for p in planes]


def _srgb_encoded(planes: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Linear planes -> 8-bit sRGB (..., 3) through the curve's table (the planes are used up)."""
    import numpy as np

    enc = _encode_table()
    out = np.empty(shape + (3,), np.uint8)
    for c, p in enumerate(planes):
        p *= _ENCODE_STEPS
        np.clip(p, 0, _ENCODE_STEPS, out=p)
        out[..., c] = enc[p.astype(np.uint16)]
    return out


#: steps of the tables that stand in for a power or the Hable curve on linear light
_TABLE_STEPS = 65535


def _lookup(table: np.ndarray, v: np.ndarray, top: float) -> np.ndarray:
    """``table`` (sampled over 0..top) at ``v``, to the nearest step."""
    import numpy as np

    idx = v * np.float32(_TABLE_STEPS / top)
    np.clip(idx, 0, _TABLE_STEPS, out=idx)
    return table[idx.astype(np.uint16)]


@lru_cache(maxsize=1)
def _ootf_table() -> np.ndarray:
    """HLG's OOTF gain per scene luminance Ys (0..1): peak * Ys^0.2, in SDR-white units."""
    import numpy as np

    ys = np.maximum(np.arange(_TABLE_STEPS + 1) / _TABLE_STEPS, 0.5 / _TABLE_STEPS)
    return (np.power(ys, 0.2) * (_HLG_PEAK / HDR_REFERENCE_WHITE)).astype(np.float32)


@lru_cache(maxsize=8)
def _hable_factor_table(peak: float) -> np.ndarray:
    """Hable(L) / Hable(peak) / L for L over 0..peak (SDR-white units)."""
    import numpy as np

    sig = np.maximum(np.arange(_TABLE_STEPS + 1) / _TABLE_STEPS * peak, 1e-6)
    return (_hable(sig) / _hable(peak) / sig).astype(np.float32)


@lru_cache(maxsize=8)
def _pq_factor_table(top: int, peak_nits: float) -> np.ndarray:
    """Per PQ code: Hable(L) / Hable(peak) / L, with L the code's light in SDR-white units."""
    import numpy as np

    sig = np.maximum(_decode_table(16, top).astype(np.float64), 1e-6)
    return (_hable(sig) / _hable(peak_nits / HDR_REFERENCE_WHITE) / sig).astype(np.float32)


#: linear light is quantised to this many steps before the sRGB curve's table: 1/65535 is
#: below an 8-bit output's smallest step even in the darks (1/3300 there)
_ENCODE_STEPS = 65535


@lru_cache(maxsize=1)
def _encode_table() -> np.ndarray:
    import numpy as np

    return (srgb_encode(np.arange(_ENCODE_STEPS + 1) / _ENCODE_STEPS) * 255 + 0.5).astype(
        np.uint8)


def _decode(x: np.ndarray, transfer: int) -> np.ndarray:
    """Coded signal 0..1 -> linear light: PQ in units of the SDR white, HLG scene light
    (0..1, before the OOTF), anything else the sRGB curve."""
    import numpy as np

    if transfer == 16:
        return (pq_to_nits(x) / HDR_REFERENCE_WHITE).astype(np.float32)
    if transfer == 18:
        e = np.clip(x, 0.0, 1.0)
        return np.where(e <= 0.5, e * e / 3,
                        (np.exp((e - _HLG_C) / _HLG_A) + _HLG_B) / 12).astype(np.float32)
    return srgb_decode(x).astype(np.float32)


@lru_cache(maxsize=8)
def _decode_table(transfer: int, top: int) -> np.ndarray:
    import numpy as np

    return _decode(np.arange(top + 1, dtype=np.float64) / top, transfer)


def tone_map_image(img: Image.Image, cicp: Cicp, *,
                   peak_nits: float | None = None) -> Image.Image:
    """:func:`tone_map` on a decoded picture (RGB or RGBA, 8 bits of the coded signal)."""
    import numpy as np

    alpha = img.getchannel("A") if img.mode == "RGBA" else None
    out = Image.fromarray(tone_map(np.asarray(img.convert("RGB")), cicp, peak_nits=peak_nits),
                          "RGB")
    if alpha is not None:
        out.putalpha(alpha)
    out.info = {k: v for k, v in img.info.items() if k not in ("icc_profile", "nclx_profile")}
    out.format = img.format
    return out


# ----------------------------------------------------------------------------------- alpha

def parse_colour(text: str) -> tuple[int, int, int]:
    """``white``, ``black``, ``#rrggbb`` or any name Pillow knows -> (r, g, b); ValueError
    when it is none of these."""
    from PIL import ImageColor

    try:
        value = ImageColor.getrgb(text.strip())
    except (ValueError, AttributeError):
        raise ValueError(f"not a colour: {text!r} (try white, black or #rrggbb)") from None
    return value[0], value[1], value[2]


def alpha_in_use(img: Image.Image) -> bool:
    """Whether any pixel of ``img`` is (partly) transparent."""
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return img.getchannel("A").getextrema()[0] < 255
    if "transparency" in img.info:
        return True
    return False


def flatten(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Composite ``img`` (any mode with alpha) onto ``background``: RGB, or L when the
    picture and the background are grey."""
    grey = img.mode in ("LA", "La", "L") and background[0] == background[1] == background[2]
    rgba = img.convert("LA" if grey else "RGBA")
    mode = "L" if grey else "RGB"
    bg = Image.new(mode, img.size, background[0] if grey else background)
    bg.paste(rgba.convert(mode), mask=rgba.getchannel("A"))
    bg.info = {k: v for k, v in img.info.items() if k not in ("transparency",)}
    return bg


# ------------------------------------------------------------------------------ what a file is


@dataclass(frozen=True)
class ColourFacts:
    """What an opened picture's numbers mean, when that is not plain sRGB (the probe's)."""

    colour: str | None = None
    shift: float | None = None
    cicp: Cicp | None = None


def colour_facts(im: Image.Image, head: bytes) -> ColourFacts:
    """Read from an opened (not decoded) picture: its ICC profile, judged, and an HEIF/AVIF
    nclx box (``head``: the file's opening bytes). The profile costs one LittleCMS transform
    of 729 colours the first time a process meets it, nothing after."""
    cicp = _cicp_of(im, head)
    if cicp is not None and cicp.hdr:  # an HDR transfer outranks any profile beside it
        return ColourFacts(cicp.describe(), None, cicp)
    icc = im.info.get("icc_profile")
    verdict = judge_profile(bytes(icc)) if icc else None
    if im.mode == "CMYK":
        return _cmyk_facts(verdict, cicp)
    if verdict is not None and verdict.space == "RGB":
        return _rgb_profile_facts(verdict, cicp)
    if cicp is not None and cicp.wide:
        return ColourFacts(cicp.describe(), None, cicp)
    return ColourFacts(None, None, cicp)


def _cicp_of(im: Image.Image, head: bytes) -> Cicp | None:
    """The picture's CICP: Pillow's nclx profile (HEIF), else an ISO BMFF file's nclx box."""
    nclx = im.info.get("nclx_profile")
    if isinstance(nclx, dict) and "transfer_characteristics" in nclx:
        return Cicp(int(nclx.get("color_primaries", 2)), int(nclx["transfer_characteristics"]),
                    int(nclx.get("matrix_coefficients", 2)), bool(nclx.get("full_range_flag")))
    if head[4:8] == b"ftyp":
        return read_nclx(head)
    return None


def _cmyk_facts(verdict: ProfileVerdict | None, cicp: Cicp | None) -> ColourFacts:
    """CMYK, named after its profile when it has a CMYK one."""
    name = verdict.name if verdict is not None and verdict.space == "CMYK" else None
    return ColourFacts(f"CMYK ({name})" if name else "CMYK", None, cicp)


def _rgb_profile_facts(verdict: ProfileVerdict, cicp: Cicp | None) -> ColourFacts:
    if verdict.same_as_srgb:
        return ColourFacts(None, None, cicp)
    return ColourFacts(f"{verdict.name} (ICC)", round(verdict.shift or 0.0, 2), cicp)


#: A Hald CLUT of this level (64 steps a side, a 512x512 picture) carries the tone map into
#: FFmpeg's haldclut filter for video: trilinear between nodes 1/63 of the signal apart
HALD_LEVEL = 8


@lru_cache(maxsize=4)
def hald_clut(cicp: Cicp) -> np.ndarray:
    """:func:`tone_map` as a Hald CLUT picture (rgb48, HALD_LEVEL**3 square): node (r, g, b)
    of the input signal's cube at index r + g*n + b*n*n, n = HALD_LEVEL**2."""
    import numpy as np

    n = HALD_LEVEL * HALD_LEVEL
    steps = np.arange(n, dtype=np.float32) / (n - 1)
    b, g, r = np.meshgrid(steps, steps, steps, indexing="ij")
    cube = np.stack([r, g, b], axis=-1).reshape(-1, 3)
    side = HALD_LEVEL ** 3
    return tone_map(cube, cicp, deep=True).reshape(side, side, 3)
