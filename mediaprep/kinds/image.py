"""The image kind: check an image's limits, plan its fix, prepare it.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..backends.colour import Cicp, alpha_in_use, tone_map_image
from ..backends.heif import HEIF_FORMATS, plan_strip, strip_unused
from ..backends.pillow import (
    ENCODABLE,
    JPEG_TRAILER_KEPT_BYTES,
    BombError,
    DecodeGuard,
    _fit_size,
    animation_durations,
    apply_orientation,
    fit_and_pad_to_aspect,
    iter_animation,
    keep_ratio,
    load_image,
    normalise_mode,
    open_lazy,
    pad_to_min_side,
    preview_or_none,
    probe_image,
    resize_to,
    resize_within,
    structural_problem,
    trailer_kind,
    verify_decodes,
)
from ..backends.pillow_encode import (
    BudgetError,
    EncodedImage,
    encode_to_budget,
    estimate_lossy_bytes,
    quality_from_scale,
)
from ..backends.sniff import (
    HEAD_BYTES,
    MIME,
    Sniffed,
    data_url_size,
    extension_matches,
    identity_size,
    largest_payload,
    sniff,
)
from ..emit.parts import frames_part, image_part
from ..emit.sink import Sink, emit_url
from ..limits import IMAGE_REQUEST_OVERHEAD, Limits
from ..output import safe_relative
from ..resource import Resource
from ..settings import Settings
from ..targets.base import Estimator
from ..tokens import KimiVisionConfig, model_resize
from ..tuning import (  # noqa: F401  (DRAFT_SNAP re-exported)
    COLOUR_VISIBLE_SHIFT,
    DOWNSCALE_QUALITY,
    DRAFT_SNAP,
    PNG_RECOMPRESS_FLOOR,
    PREFER_DOWNSCALE_BELOW,
    TILE_MIN_ASPECT,
    TILE_OVERLAP,
)
from ..types import UNENCODED, Change, Finding, MediaInfo, Prepared, Report
from .common import check_extension, check_item_bytes, finding, in_box, mime_for, report_for

# formats prep can convert from (it decodes them); anything else is a dead end
CONVERTIBLE = frozenset({"jpeg", "png", "gif", "webp", "bmp", "tiff", "heic", "avif",
                         "jpeg2000", "ico", "cur", "mpo", "ppm", "tga", "dng"})


def probe(src: Resource, limits: Limits, *, deep: bool = False,
          sniffed: Sniffed | None = None) -> MediaInfo:
    """What an image input is (header, structure walk; ``deep`` decodes it)."""
    if src.image is not None:
        return probe_image(src, Sniffed("image", None),
                           max_pixels=limits.value("image.max_decode_pixels"))
    if sniffed is None:
        sniffed = sniff(src.head(HEAD_BYTES))
    info = probe_image(src, sniffed, max_pixels=limits.value("image.max_decode_pixels"),
                       deep=deep, limits=limits)
    if (info.format == "avif" and info.error_code == "file.unreadable" and info.width is None
            and structural_problem("avif", src, None) is None):
        _ffmpeg_fallback(src, info, limits)
    if info.format in HEIF_FORMATS and info.error_code is None:
        _note_unused_heif_bytes(src, info)
    info.extension = src.extension
    info.extension_matches = extension_matches(src.extension, info.format)
    return info


def _note_unused_heif_bytes(src: Resource, info: MediaInfo) -> None:
    """A HEIF whose items and boxes the primary image does not use (a motion photo's video,
    thumbnails, depth and gain maps) take more than a JPEG trailer may: what prep sends is the
    file without them (:attr:`MediaInfo.image_bytes`, which the byte limits judge)."""
    with src.open() as fh:
        plan = plan_strip(fh, src.size)
    if plan is not None and src.size - plan.size > JPEG_TRAILER_KEPT_BYTES:
        info.image_bytes = plan.size
        info.notes.append(f"{src.size - plan.size:,} bytes the primary image does not use "
                          f"({plan.what})")


def wire_format(fmt: str | None) -> str:
    """The format of what is sent when the input is sent unchanged: an MPO is a JPEG with
    more pictures after it (cut off), a DNG stands for its embedded JPEG preview."""
    return "jpeg" if fmt in ("mpo", "dng") else fmt or ""


def _ffmpeg_fallback(src: Resource, info: MediaInfo, limits: Limits) -> None:
    """An AVIF Pillow's libavif refuses (full alpha, 10-bit with HDR metadata, a property it
    is strict about) that the bundled FFmpeg (dav1d) reads: its pixels come from FFmpeg."""
    from ..backends.av import probe_still  # PyAV: imported only by the stills that need it

    found = probe_still(src)
    if found is None:
        return
    w, h, alpha = found
    try:
        DecodeGuard.from_limits(limits).judge(w, h, mode="RGBA" if alpha else "RGB",
                                              file_bytes=src.size)
    except BombError as exc:
        info.error_code, info.error = "image.decompression_bomb", str(exc)
        info.declared_pixels = exc.pixels
        return
    refused = info.error
    info.error = info.error_code = None
    info.width, info.height, info.mode, info.bit_depth = w, h, "RGBA" if alpha else "RGB", 8
    info.decoder = "ffmpeg"
    info.notes.append(f"decoded by the bundled FFmpeg (Pillow: {refused})")


def check(info: MediaInfo, settings: Settings) -> Report:
    """Every limit an image input meets or breaks."""
    return report_for(info, settings,
                      lambda: check_extension(info) + check_image(info, settings))


def check_image(info: MediaInfo, settings: Settings) -> list[Finding]:
    """The image's own limits: format, size, aspect, bytes, frames, colour, what the model
    keeps of it."""
    out: list[Finding] = []
    for check_one in _SHAPE_CHECKS:
        out += check_one(info, settings)
    wire_fmt = wire_format(info.format or "unknown")
    out += check_item_bytes("image", info.path, info.sent_bytes, mime_for(wire_fmt), settings,
                            "prep re-encodes or scales it down")
    out += check_animated(info, settings)
    out += check_colour(info, settings)
    out += check_downscaled(info, settings)
    out += _check_raw_preview(info, settings)
    return out


def _check_format(info: MediaInfo, settings: Settings) -> list[Finding]:
    """image.formats: a format the target does not take (an MPO is a JPEG with extra pictures
    appended; providers read it as the JPEG it starts with)."""
    row = settings.limits.get("image.formats")
    fmt = info.format or "unknown"
    if row is None:
        return []
    if fmt == UNENCODED:
        return [finding(row, f"{info.path}: an image in memory, not yet in a file format; prep "
                             "encodes it", fmt, fixable=True, limit=sorted(row.value))]
    if wire_format(fmt) in row.value:
        return []
    return [finding(row, f"{info.path}: {fmt} images are not accepted by {settings.target} "
                         f"(accepted: {', '.join(sorted(row.value))}); prep converts it",
                    fmt, fixable=fmt in CONVERTIBLE, limit=sorted(row.value))]


def _check_min_side(info: MediaInfo, settings: Settings) -> list[Finding]:
    """image.too_small: no pixels at all (a 0x0 PIL image: nothing to pad or send), or a side
    at or below the target's minimum (prep pads it)."""
    row = settings.limits.get("image.min_side")
    w, h = info.width or 0, info.height or 0
    if 0 in (info.width, info.height):
        return [Finding("image.too_small", "error", f"{info.path}: {w}x{h} px, an image without "
                        "pixels", limit=None if row is None else row.value, actual=0)]
    if row is None or row.value is None or not (row.below_min(w) or row.below_min(h)):
        return []
    return [finding(row, f"{info.path}: {w}x{h} px; each side must be more than {row.value} px"
                         " (prep pads it)", min(w, h), fixable=True)]


def _check_aspect(info: MediaInfo, settings: Settings) -> list[Finding]:
    row = settings.limits.get("image.max_aspect_ratio")
    w, h = info.width or 0, info.height or 0
    if row is None or row.value is None or not (w and h):
        return []
    ratio = max(w, h) / min(w, h)
    if not row.exceeds_max(ratio):
        return []
    fix = "prep pads it" if settings.pad_aspect else "prep pads it with --pad-aspect"
    return [finding(row, f"{info.path}: aspect ratio {ratio:.1f}:1 is above {row.value:g}:1; "
                         f"crop it, or {fix}", round(ratio, 3), fixable=settings.pad_aspect)]


def _check_box(info: MediaInfo, settings: Settings) -> list[Finding]:
    row = settings.limits.get("image.recommended_box")
    w, h = info.width or 0, info.height or 0
    if row is None or row.value is None or not w or in_box(w, h, row.value):
        return []
    bw, bh = row.value
    return [finding(row, f"{info.path}: {w}x{h} px is above the recommended {bw}x{bh}; "
                         "prep scales it down", [w, h], fixable=True, limit=[bw, bh])]


def _check_format_tier(info: MediaInfo, settings: Settings) -> list[Finding]:
    """image.format_tier: above the tier's box the target takes fewer formats (a format it
    does not take at all is image.formats' finding)."""
    limits = settings.limits
    tier_box = limits.get("image.format_tier_box")
    tier_formats = limits.get("image.formats_above_tier")
    w, h = info.width or 0, info.height or 0
    fmt = info.format or "unknown"
    wire_fmt = wire_format(fmt)
    if tier_box is None or tier_formats is None or not w or in_box(w, h, tier_box.value):
        return []
    if wire_fmt in tier_formats.value or wire_fmt not in limits.value("image.formats",
                                                                      {wire_fmt}):
        return []
    bw, bh = tier_box.value
    return [finding(tier_formats, f"{info.path}: {fmt} at {w}x{h} px; above {bw}x{bh} only "
                                  f"{', '.join(sorted(tier_formats.value))} are accepted"
                                  " (prep converts it)", fmt, fixable=True,
                    limit=sorted(tier_formats.value))]


def _check_raw_preview(info: MediaInfo, settings: Settings) -> list[Finding]:
    if info.format != "dng":
        return []
    w, h = info.width or 0, info.height or 0
    raw = f" ({info.raw_size[0]}x{info.raw_size[1]} raw)" if info.raw_size else ""
    return [Finding("image.raw_preview", "warning",
                    f"{info.path}: a DNG raw file{raw}; its embedded {w}x{h} JPEG preview is "
                    "sent, as the camera rendered it (mediaprep does not develop raw data)",
                    actual=[w, h])]


#: The checks of the picture's format and shape, in the order their findings are listed.
_SHAPE_CHECKS = (_check_format, _check_min_side, _check_aspect, _check_box, _check_format_tier)


def check_colour(info: MediaInfo, settings: Settings) -> list[Finding]:
    """What the model would see wrong in colour if the file went as it is: HDR shown flat and
    grey, a wide-gamut or CMYK profile ignored, transparency shown as the colour under it
    (the Kimi processor decodes with ``Image.open(...).convert("RGB")``)."""
    return (_check_hdr_or_profile(info, settings) + _check_bit_depth(info)
            + _check_transparency(info, settings))


def _check_hdr_or_profile(info: MediaInfo, settings: Settings) -> list[Finding]:
    if info.hdr and settings.hdr == "convert":
        return [Finding("image.hdr", "info",
                        f"{info.path}: HDR ({info.colour}); a decoder that does not tone-map "
                        "shows it flat and grey: prep tone-maps it to SDR sRGB (--hdr keep "
                        "sends it as it is)", actual=info.colour, fixable=True)]
    if not needs_colour_conversion(info):
        return []
    if info.colour_shift is None:
        shift, actual = " wrong", info.colour
    else:
        shift = f" off by a mean \N{GREEK CAPITAL LETTER DELTA}E2000 of {info.colour_shift:.1f}"
        actual = info.colour_shift
    return [Finding("image.colour_profile", "warning",
                    f"{info.path}: colours are {info.colour}; a decoder that ignores that "
                    f"(the model's processor does) shows them{shift}: prep converts it "
                    "to sRGB", limit=COLOUR_VISIBLE_SHIFT, actual=actual, fixable=True)]


def _check_bit_depth(info: MediaInfo) -> list[Finding]:
    if not ((info.mode or "").startswith("I;16") or info.mode in ("I", "F")):
        return []
    samples, clipped = ("float", "black") if info.mode == "F" else ("16/32-bit integer", "white")
    return [Finding("image.high_bit_depth", "warning",
                    f"{info.path}: {samples} grey samples; the model's processor converts them "
                    f"to 8-bit RGB by clipping ({clipped}): prep scales them to 8 bits",
                    actual=info.mode, fixable=True)]


def _check_transparency(info: MediaInfo, settings: Settings) -> list[Finding]:
    if not (has_alpha_channel(info) and settings.target.drops_alpha):
        return []
    return [Finding("image.transparency", "info",
                    f"{info.path}: has an alpha channel; the model's processor drops it and "
                    "shows the colour stored under transparent pixels: prep flattens "
                    f"them onto {settings.background}", actual=info.mode, fixable=True)]


def needs_colour_conversion(info: MediaInfo) -> bool:
    """Whether ignoring the file's colour description would shift colours visibly (CMYK, an ICC
    profile above :data:`COLOUR_VISIBLE_SHIFT`, or wide-gamut nclx primaries)."""
    if info.colour is None or info.hdr:
        return False
    if info.colour_shift is not None:
        return info.colour_shift > COLOUR_VISIBLE_SHIFT
    return True  # CMYK, or BT.2020/P3 primaries in an nclx box


def has_alpha_channel(info: MediaInfo) -> bool:
    return (info.mode or "") in ALPHA_MODES


def check_downscaled(info: MediaInfo, settings: Settings) -> list[Finding]:
    """image.downscaled (info): the model's processor keeps less than half of the image's
    long side (a full-page screenshot's text becomes unreadable); what --tiles would cost."""
    est = settings.estimator
    if est is None or not tileable(info):
        return []
    up = _upright(info)
    try:
        kept = model_kept_size(*up, est)
        if max(kept) * 2 >= max(up):
            return []
        layout = tile_layout(up, settings.limits.value("image.recommended_box"), est)
    except (ValueError, TypeError):  # sizes the arithmetic refuses: no estimate, no finding
        return []
    tw, th = layout.tile
    how = (f"sent as tiles (--tiles), it is {len(layout.boxes)} images of {tw}x{th}, about "
           f"{len(layout.boxes) * est.image(tw, th):,} tokens against "
           f"{est.image(*up):,}" if len(layout.boxes) > 1 else "--tiles cannot help")
    return [Finding("image.downscaled", "info",
                    f"{info.path}: the model sees {_wxh(up)} at {_wxh(kept)}, less than half "
                    f"its size (small text is lost); {how}", limit=list(kept),
                    actual=list(up), fixable=len(layout.boxes) > 1)]


def tileable(info: MediaInfo) -> bool:
    """A still, tall or wide image (:data:`~mediaprep.tuning.TILE_MIN_ASPECT`)."""
    w, h = info.width or 0, info.height or 0
    return bool(w and h) and (info.frames or 0) <= 1 and max(w, h) >= TILE_MIN_ASPECT * min(w, h)


@dataclass(frozen=True)
class TileLayout:
    """How --tiles cuts an upright image: first scaled to ``size`` (when its short side is
    more than a tile can hold), then cut into ``boxes`` (left, top, right, bottom) of
    ``tile`` size, in reading order (top to bottom, or left to right), overlapping by
    :data:`~mediaprep.tuning.TILE_OVERLAP`."""

    size: tuple[int, int]
    tile: tuple[int, int]
    boxes: tuple[tuple[int, int, int, int], ...]


def tile_layout(upright: tuple[int, int], box: tuple[int, int] | None,
                est: Estimator) -> TileLayout:
    """The tiles of an image: each within the target's ``box`` and kept by the model as it
    is (its processor's resize is the identity on a tile: no shrinking)."""
    w, h = upright
    tall = h >= w
    short, long_ = (w, h) if tall else (h, w)
    cfg = est.cfg
    b_short, b_long = (min(box), max(box)) if box else (cfg.max_side_px, cfg.max_side_px)
    # a tile at least half as long as it is wide: the short side holds at most
    # p * sqrt(2 * limit) px (2534 for K2.5)
    s = min(short, b_short, cfg.max_side_px,
            int(cfg.patch_size * math.sqrt(2 * cfg.in_patch_limit)))
    length = max(1, round(long_ * (s / short))) if s != short else long_
    t = _tile_length(s, min(length, b_long), tall, cfg)
    return TileLayout(_across(s, length, tall), _across(s, t, tall),
                      _tile_boxes(s, t, length, tall))


def _across(short: int, long_: int, tall: bool) -> tuple[int, int]:
    """(width, height) of a tall or wide picture from its short and long sides."""
    return (short, long_) if tall else (long_, short)


def _tile_length(s: int, most: int, tall: bool, cfg: KimiVisionConfig) -> int:
    """The longest tile of short side ``s`` (at most ``most``) within the processor's patch
    limit that its resize keeps as it is."""
    p = cfg.patch_size
    t = min(most, cfg.max_side_px, (cfg.in_patch_limit // max(1, s // p)) * p)
    while t > p and model_resize(*_across(s, t, tall), cfg=cfg) != _across(s, t, tall):
        t -= p
    return t


def _tile_boxes(s: int, t: int, length: int, tall: bool) -> tuple[tuple[int, int, int, int], ...]:
    """Tiles of length ``t`` over ``length``, evenly spread, overlapping by at least
    TILE_OVERLAP, in reading order."""
    overlap = round(t * TILE_OVERLAP)
    n = 1 if length <= t else math.ceil((length - overlap) / (t - overlap))
    starts = [0] if n == 1 else [round(i * (length - t) / (n - 1)) for i in range(n)]
    return tuple((0, a, s, a + t) if tall else (a, 0, a + t, s) for a in starts)


def animation_as_frames(info: MediaInfo, settings: Settings) -> bool:
    """Whether prep sends this animation as a video image list (--animation frames, and at
    least frames.min frames)."""
    n = info.frames or 0
    return (settings.animation == "frames" and n > 1
            and n >= (settings.limits.value("frames.min") or 1))


def keeps_animation(info: MediaInfo, settings: Settings) -> bool:
    """The target takes the animated file itself (Moonshot takes GIF): it passes through,
    unless something else must change. The model then sees what the provider makes of it."""
    allowed = settings.limits.value("image.formats") or frozenset()
    return "gif" in allowed and (info.format or "") in allowed


def check_animated(info: MediaInfo, settings: Settings) -> list[Finding]:
    """image.animated: an animation of N frames, of which only the first is sent (or all, as
    a video image list, with --animation frames)."""
    row = settings.limits.get("image.max_frames")
    n = info.frames or 0
    if row is None or row.value is None or not row.exceeds_max(n):
        return []
    name, target = info.path, settings.target
    min_frames = settings.limits.value("frames.min") or 1
    if animation_as_frames(info, settings):
        msg = (f"{name}: {n} frames; prep sends them as a video image list "
               "(--animation frames, fps from the frame durations)")
    elif settings.animation == "frames":
        msg = (f"{name}: {n} frames; only the first is sent: a video image list needs at least "
               f"{min_frames} frames")
    elif keeps_animation(info, settings):
        msg = (f"{name}: {n} frames; {target} takes animated {info.format}: passed through "
               f"as is, and the model sees what {target} makes of the animation (only the "
               "first frame if prep must change the file; --animation frames sends all "
               "frames as a video image list)")
    else:
        msg = (f"{name}: {n} frames; only the first is sent (--animation frames sends them "
               "as a video image list)")
    return [finding(row, msg, n, fixable=animation_as_frames(info, settings)),
            *check_animation_cost(info, settings)]


def check_animation_cost(info: MediaInfo, settings: Settings) -> list[Finding]:
    """image.decompression_bomb when sending an animation as frames would composite more
    than ``image.max_animation_pixels``: every frame up to the last one sent is drawn onto
    the whole canvas (a 69 kB GIF of 3,000 frames on 4000x4000 is 48 G pixels, a minute of
    CPU), so this is judged from the header before any frame is decoded."""
    row = settings.limits.get("image.max_animation_pixels")
    if row is None or row.value is None or not animation_as_frames(info, settings):
        return []
    n, w, h = info.frames or 0, info.width or 0, info.height or 0
    if not row.exceeds_max(n * w * h):
        return []
    return [finding(row, f"{info.path}: --animation frames would composite {n:,} frames of a "
                         f"{w}x{h} canvas, {n * w * h:,} pixels, above "
                         f"image.max_animation_pixels {row.value:,}; refused before decoding "
                         "(--animation first sends the first frame)", n * w * h)]


ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


@dataclass
class ImagePlan:
    passthrough: bool
    out_format: str = "jpeg"
    box: tuple[int, int] | None = None
    max_side: int | None = None
    max_pixels: int | None = None
    exact_size_cap: tuple[int, int] | None = None  # model resize / token budget
    exact_cap_reason: str | None = None  # "model" or "tokens"
    pad_min_side: int | None = None
    pad_aspect: float | None = None
    max_ratio: float | None = None  # the target's aspect limit: no resize may break it
    budget: int | None = None
    budget_is_data_url: bool = False
    allow_format_change: bool = True
    try_png: bool = True  # False: a PNG of this size is known not to fit; go lossy at once
    reasons: list[str] = field(default_factory=list)

    def target_size(self, upright: tuple[int, int]) -> tuple[int, int]:
        """The size the pixels must have at most before encoding (hard limits only): the
        box/--max-side/--max-pixels fit of ``upright``, or exactly the token/model cap."""
        fit = _fit_size(upright, box=self.box, max_side=self.max_side, max_pixels=self.max_pixels,
                        max_ratio=self.max_ratio)
        if self.exact_size_cap is not None:
            cw, ch = self.exact_size_cap
            if (cw > ch) != (upright[0] > upright[1]) and upright[0] != upright[1]:
                cw, ch = ch, cw  # pixels turned by EXIF the header reading did not see
            if cw * ch < fit[0] * fit[1]:
                return (cw, ch)
        return fit

    def raw_budget(self) -> int | None:
        """Largest payload in bytes (before base64) that meets the budget, margin not taken."""
        if self.budget is None:
            return None
        if not self.budget_is_data_url:
            return self.budget
        return largest_payload(self.budget, MIME["jpeg"])


def _blocking(findings: list[Finding]) -> list[Finding]:
    return [
        f
        for f in findings
        if f.severity in ("error", "warning")
        and f.code not in ("file.extension_mismatch", "image.animated", "image.raw_preview")
    ]


def plan_image(
    info: MediaInfo, findings: list[Finding], settings: Settings, *, from_pil: bool = False
) -> ImagePlan:
    """What prep does to an image: the size caps, the output format, the byte budget and the
    reasons to change it at all (none: it passes through)."""
    limits = settings.limits
    max_ratio = limits.value("image.max_aspect_ratio")
    plan = ImagePlan(
        passthrough=False,
        # the box the pixels must fit: the recommended resolution, and the user's caps
        box=limits.value("image.recommended_box"),
        max_side=settings.max_side,
        max_pixels=settings.max_pixels,
        pad_min_side=limits.value("image.min_side"),
        max_ratio=max_ratio,
        pad_aspect=max_ratio if settings.pad_aspect else None,
    )
    _plan_size_caps(plan, info, settings)
    allowed = limits.value("image.formats") or frozenset(ENCODABLE)
    plan.out_format = _output_format(info, limits, allowed)
    plan.budget, plan.budget_is_data_url = _byte_budget(settings)
    plan.reasons += _change_reasons(info, findings, settings, allowed)
    plan.passthrough = not plan.reasons and not from_pil
    _plan_png(plan, info)
    return plan


def _sizing_estimator(settings: Settings) -> Estimator:
    """The estimator that sizes images: an unknown model is sized by the target's own model's
    processor."""
    return settings.estimator or settings.target.estimator(settings.target.default_model)


def _plan_size_caps(plan: ImagePlan, info: MediaInfo, settings: Settings) -> None:
    """The exact size caps: what the model keeps (--resize model) and what one image may cost
    in tokens on its own (the request's budget); the smaller one holds."""
    est = _sizing_estimator(settings)
    up = _upright(info)
    caps = []
    if settings.resize_model:
        mw, mh = keep_ratio(model_kept_size(*up, est), up, plan.max_ratio)
        if (mw, mh) != up:
            caps.append(((mw, mh), "model"))
            plan.reasons.append(f"resize to what the model keeps ({mw}x{mh})")
    token_cap = _image_token_cap(settings.limits)
    if token_cap is not None:
        cap = keep_ratio(size_for_tokens(*up, token_cap, est), up, plan.max_ratio)
        if cap != up:
            caps.append((cap, "tokens"))
            plan.reasons.append(f"scale to at most {token_cap} tokens ({cap[0]}x{cap[1]})")
    if caps:
        plan.exact_size_cap, plan.exact_cap_reason = min(caps, key=lambda c: c[0][0] * c[0][1])


def _image_token_cap(limits: Limits) -> int | None:
    """One image must fit the image cap and the request's budget on its own."""
    caps = [v for v in (limits.value("tokens.max_image"), limits.value("tokens.max_request"))
            if v is not None]
    return min(caps) if caps else None


def _output_format(info: MediaInfo, limits: Limits, allowed: frozenset[str]) -> str:
    """The format prep encodes to: the input's own when the target takes it at this size,
    else PNG for a picture with transparency (when taken), else JPEG."""
    fmt = info.format or ""
    wire = wire_format(fmt)
    if wire in ENCODABLE and wire in allowed and _tier_takes(info, limits, wire):
        return wire
    has_alpha = (info.mode or "") in ALPHA_MODES or (info.mode == "P" and fmt in ("png", "gif"))
    return "png" if has_alpha and "png" in allowed else "jpeg"


def _tier_takes(info: MediaInfo, limits: Limits, wire: str) -> bool:
    """Whether the format tier allows ``wire`` at the input's size (above the tier's box only
    some formats are accepted)."""
    tier_box = limits.value("image.format_tier_box")
    tier_formats = limits.value("image.formats_above_tier")
    if tier_box is None or tier_formats is None:
        return True
    return in_box(info.width or 1, info.height or 1, tier_box) or wire in tier_formats


def _byte_budget(settings: Settings) -> tuple[int | None, bool]:
    """The bytes one image may take on this transport, and whether they count as a data URL
    (base64: also within the request body's limit, less the rest of the request)."""
    limits = settings.limits
    if settings.transport != "base64":
        return limits.value(f"image.max_bytes.{settings.transport}"), False
    budget = limits.value("image.max_data_url_bytes")
    body = limits.value("request.max_body_bytes")
    if body is not None:
        body_budget = body - IMAGE_REQUEST_OVERHEAD
        budget = min(budget, body_budget) if budget else body_budget
    return budget, True


def _change_reasons(info: MediaInfo, findings: list[Finding], settings: Settings,
                    allowed: frozenset[str]) -> list[str]:
    """Why the image cannot go as it is, beyond the size caps (empty: it may pass through)."""
    reasons = []
    if info.orientation not in (None, 1):
        reasons.append(f"apply {_orientation_source(info)} orientation {info.orientation}")
    reasons += [f.code for f in _blocking(findings)]
    if info.hdr and settings.hdr == "convert":
        reasons.append("image.hdr")
    if _above_user_caps(info, settings):
        reasons.append("fit --max-side/--max-pixels")
    if (info.frames or 0) > 1 and "gif" not in allowed:
        reasons.append("take the first frame of an animation")
    if info.decoder == "ffmpeg":  # a file Pillow refuses may be refused by the provider too
        reasons.append("decode with the bundled FFmpeg")
    return reasons


def _above_user_caps(info: MediaInfo, settings: Settings) -> bool:
    w, h = info.width or 1, info.height or 1
    if settings.max_side is not None and max(w, h) > settings.max_side:
        return True
    return settings.max_pixels is not None and w * h > settings.max_pixels


def _plan_png(plan: ImagePlan, info: MediaInfo) -> None:
    """Skip the PNG attempts when a PNG input is far over the budget even allowing for better
    compression: a lossless encode of 24 MP costs seconds and cannot succeed."""
    raw = plan.raw_budget()
    if plan.passthrough or plan.out_format != "png" or info.format != "png" or not raw:
        return
    w, h = _upright(info)
    tw, th = plan.target_size((w, h))
    expect = info.bytes * PNG_RECOMPRESS_FLOOR * (tw * th) / (w * h)
    if plan.allow_format_change and expect > raw:
        plan.try_png = False


#: libjpeg's standard luminance quantisation table (ITU T.81 Annex K), summed: the input's own
#: table over it gives the quantiser scale, hence the input's quality, from the header alone.
_STD_LUMA_SUM = 3688


def jpeg_quality_of(quantization: dict[int, list[int]] | None) -> float | None:
    """Quality a JPEG was saved at, estimated from its luminance quantisation table."""
    if not quantization or 0 not in quantization:
        return None
    table = list(quantization[0])
    if len(table) != 64:
        return None
    return min(max(quality_from_scale(100.0 * sum(table) / _STD_LUMA_SUM), 1.0), 100.0)


def budget_decode_size(
    plan: ImagePlan, info: MediaInfo, quantization: dict[int, list[int]] | None, margin: float
) -> tuple[int, int] | None:
    """Before decoding a JPEG: the smaller size the byte budget will call for, or None.

    From the input's bytes per pixel at its own quality (quantisation table) and the search's
    quality curve: when the planned size could only be sent below PREFER_DOWNSCALE_BELOW, the
    size where DOWNSCALE_QUALITY is expected to fit. The caller decodes with the DCT draft
    scale that still covers it (see :func:`draft_size`); encode then settles the exact size.
    """
    raw = plan.raw_budget()
    q_in = jpeg_quality_of(quantization)
    if raw is None or q_in is None or not info.bytes or not info.width or not info.height:
        return None
    raw = raw * (1.0 - margin)
    up = _upright(info)
    tw, th = plan.target_size(up)
    bpp = info.bytes / (up[0] * up[1])
    low = estimate_lossy_bytes("jpeg", tw * th, PREFER_DOWNSCALE_BELOW, bpp, q_in)
    if low <= raw:
        return None
    good = estimate_lossy_bytes("jpeg", tw * th, DOWNSCALE_QUALITY, bpp, q_in)
    scale = math.sqrt(raw / good)
    return (max(1, int(tw * scale)), max(1, int(th * scale)))


def draft_size(
    full: tuple[int, int], want: tuple[int, int], planned: tuple[int, int] | None
) -> tuple[int, int]:
    """The size to ask JPEG ``draft`` for: ``want`` (the hard target), or, when the budget plans
    a smaller size, the largest 1/2, 1/4, 1/8 reduction of ``full`` that is at least
    DRAFT_SNAP times the planned size (never below it by more)."""
    if planned is None or planned[0] * planned[1] >= want[0] * want[1]:
        return want
    best = want
    for d in (2, 4, 8):
        dw, dh = -(-full[0] // d), -(-full[1] // d)
        if dw < DRAFT_SNAP * planned[0] or dh < DRAFT_SNAP * planned[1]:
            break
        best = (dw, dh)
    if best[0] > want[0] or best[1] > want[1]:
        return want
    return best


def _upright(info: MediaInfo) -> tuple[int, int]:
    return info.display_size or (info.width or 1, info.height or 1)


#: The processor's resize is not idempotent (4981x1761 -> 3026x1070 -> 3023x1068): it is
#: applied until it keeps the size, at most this many times (a handful are ever needed).
MODEL_RESIZE_MAX_STEPS = 16


def model_kept_size(w: int, h: int, est: Estimator) -> tuple[int, int]:
    """The size the model keeps: the fixed point of its processor's resize, so that an image
    sent at that size is not resized (resampled) again by the model."""
    size = (w, h)
    for _ in range(MODEL_RESIZE_MAX_STEPS):
        new = model_resize(*size, cfg=est.cfg)
        if new == size:
            break
        size = new
    return size


def size_for_tokens(w: int, h: int, max_tokens: int, est: Estimator) -> tuple[int, int]:
    """The largest size of the same aspect whose token estimate is within ``max_tokens``."""
    if est.image(w, h) <= max_tokens:
        return (w, h)
    lo, hi = 0.0, 1.0
    for _ in range(30):  # bisection on the scale; tokens grow (nearly) with the scale
        mid = (lo + hi) / 2
        cw, ch = max(1, math.floor(w * mid)), max(1, math.floor(h * mid))
        if est.image(cw, ch) <= max_tokens:
            lo = mid
        else:
            hi = mid
    return (max(1, math.floor(w * lo)), max(1, math.floor(h * lo)))


def prepare_image(src: Resource, report: Report, settings: Settings, sink: Sink) -> Prepared:
    """Prepare one image: as it is when nothing must change (proved to decode), else decoded,
    fixed and encoded within the budget, then checked again; or as frames (--animation frames)
    or tiles (--tiles)."""
    info = report.info
    result = Prepared(path=src.name, kind="image", ok=False, info=info,
                      findings=list(report.findings), bytes_in=info.bytes)
    other = _prepare_otherwise(src, report, settings, sink, result)
    if other is not None:
        return other
    src = _image_source(src, info)
    plan = plan_image(info, report.findings, settings, from_pil=src.image is not None)
    if plan.passthrough and _transparency_shows(src, info, settings):
        plan.passthrough = False  # the processor would show what lies under the transparency
        plan.reasons.append("image.transparency")
    if plan.passthrough:
        return _pass_through(src, report, settings, sink, result)
    encoded = _encode_or_finding(src, plan, result, settings, sink)
    if encoded is None:
        return result
    data, fmt = encoded
    # re-check what will be sent: the header and structure of the bytes encoded here
    out_info = probe(Resource(name=f"{src.name} (prepared)", data=data), settings.limits)
    recheck = check(out_info, settings)
    problems = [f for f in recheck.findings if f.severity == "error"]
    if problems:
        result.findings += problems
        return result
    return _emitted(result, src, data, fmt, out_info, recheck, settings, sink)


def _prepare_otherwise(src: Resource, report: Report, settings: Settings, sink: Sink,
                       result: Prepared) -> Prepared | None:
    """An animation sent as frames, or a tall or wide image sent as tiles (None: neither)."""
    info = report.info
    if src.image is None and animation_as_frames(info, settings):
        return prepare_animation(src, report, settings, sink, result)
    if not (settings.tiles and tileable(info)):
        return None
    layout = tile_layout(_upright(info), settings.limits.value("image.recommended_box"),
                         _sizing_estimator(settings))
    if len(layout.boxes) > 1:
        return prepare_tiles(src, info, layout, settings, sink, result)
    return None


def _image_source(src: Resource, info: MediaInfo) -> Resource:
    """The image prepared: a raw file's embedded preview (its pixels, its bytes) from here on,
    else the input itself."""
    if info.image_offset is None or info.image_bytes is None:
        return src
    with src.open() as fh:
        fh.seek(info.image_offset)
        return Resource(name=src.name, data=fh.read(info.image_bytes))


def _transparency_shows(src: Resource, info: MediaInfo, settings: Settings) -> bool:
    """Whether the model's processor would show the colour under transparent pixels."""
    return (has_alpha_channel(info) and settings.target.drops_alpha
            and _transparent(src, settings))


def _encode_or_finding(src: Resource, plan: ImagePlan, result: Prepared, settings: Settings,
                       sink: Sink) -> tuple[bytes, str] | None:
    """The encoded bytes and their format, or None with the finding in ``result``."""
    try:
        return _transform_and_encode(src, plan, result, settings, keep_preview=sink.keep_preview)
    except BudgetError as exc:
        result.findings.append(_budget_finding(src.name, exc, settings))
    except _DECODE_ERRORS as exc:
        result.findings.append(
            Finding("file.unreadable", "error", f"{src.name}: cannot decode the image: {exc}"))
    return None


def _pass_through(src: Resource, report: Report, settings: Settings, sink: Sink,
                  result: Prepared) -> Prepared:
    """The input's bytes sent as they are, already probed and checked: not probed again, only
    proved to decode (a JPEG at 1/8 scale: every scan's entropy data is still decoded)."""
    info = report.info
    data = first_image_bytes(src, info, result)
    fmt = wire_format(info.format)
    emitted = None
    if fmt == "png" and sink.out_dir is None:
        # nothing is written: the data URL is encoded while the verify inflates
        problem, emitted = _verify_beside(
            data, settings, lambda: emit_url(sink, src.name, data, fmt, mime_for(fmt), settings))
    else:
        keep = None
        if sink.keep_preview:  # the verify's pixels are the preview's (no decode again)
            def keep(im: Image.Image) -> None:
                _keep_preview(result, im)
        problem = verify_decodes(data, settings.limits, keep=keep)
    if problem:
        result.findings.append(Finding("file.unreadable", "error", f"{src.name}: {problem}"))
        return result
    return _emitted(result, src, data, fmt, info, report, settings, sink, emitted)


def _emitted(result: Prepared, src: Resource, data: bytes, fmt: str, out_info: MediaInfo,
             recheck: Report, settings: Settings, sink: Sink,
             emitted: tuple[str, list[Path]] | None = None) -> Prepared:
    """``result`` completed with what is sent: the bytes, written or as a data URL, its part."""
    result.output_info = out_info
    result.tokens = recheck.tokens
    result.mime = mime_for(fmt)
    result.data = data
    result.bytes_out = len(data)
    url, outputs = emitted or emit_url(sink, src.name, data, fmt, result.mime, settings)
    result.outputs = outputs
    result.part = image_part(url, settings.dialect)
    result.ok = True
    return result


def _transparent(src: Resource, settings: Settings) -> bool:
    """Whether an image with an alpha channel has any pixel that is not opaque (decoded once;
    an image that cannot be decoded is left to the verify that follows to report)."""
    try:
        with open_lazy(src.path or src.data, **_open_args(settings.limits)) as im:
            return alpha_in_use(im)
    except Exception:  # noqa: BLE001 - the passthrough's verify names what is wrong
        return False


def first_image_bytes(src: Resource, info: MediaInfo, result: Prepared | None) -> bytes:
    """The input's bytes as sent unchanged: up to the first image's end when more follows it
    (a motion photo's video, an MPF gain map: the model sees the first image only), recorded
    in ``result`` as a lossless strip."""
    data = src.read_bytes()
    if info.format == "dng" and result is not None:  # src is its preview (prepare_image)
        result.changes.append(Change("converted", "DNG", f"its embedded JPEG preview "
                                     f"{_wxh((info.width or 0, info.height or 0))}, "
                                     f"{_human_bytes(len(data))}",
                                     "a raw file: the camera's own rendering is sent"))
        return data
    if info.image_bytes is None or info.image_bytes >= len(data):
        return data
    if info.format in HEIF_FORMATS:
        return _heif_without_unused(data, result)
    if result is not None:
        what = trailer_kind(src, info.image_bytes, info.format)
        result.changes.append(Change("stripped", _human_bytes(len(data)),
                                     _human_bytes(info.image_bytes),
                                     f"{what} after the image; the model sees the first "
                                     "image only"))
    return data[:info.image_bytes]


def _heif_without_unused(data: bytes, result: Prepared | None) -> bytes:
    """A HEIF without the items and boxes its primary image does not use, losslessly (the
    probe found them: :func:`_note_unused_heif_bytes`), the strip recorded in ``result``."""
    stripped = strip_unused(data)
    if stripped is None:
        return data
    new, plan = stripped
    if result is not None:
        result.changes.append(Change("stripped", _human_bytes(len(data)), _human_bytes(len(new)),
                                     f"{plan.what}: the model sees the primary image only"))
    return new


def prepare_tiles(src: Resource, info: MediaInfo, layout: TileLayout, settings: Settings,
                  sink: Sink, result: Prepared) -> Prepared:
    """--tiles: the image decoded once, turned upright, scaled to the layout's size when it
    must be, and cut into its tiles, each prepared as an image of its own (its own part, in
    reading order, in ``result.parts``)."""
    try:
        img, layout, rotated = _decode_for_tiles(src, info, layout, settings)
    except _DECODE_ERRORS as exc:
        return _unreadable(result, f"{src.name}: cannot decode the image: {exc}")
    if rotated:
        result.changes.append(Change("rotated", why=f"as its {_orientation_source(info)} "
                                                    "orientation says"))
    tokens = _prepare_each_tile(src, img, layout, settings, sink, result)
    if tokens is None:
        return result
    tw, th = layout.tile
    est = settings.estimator
    about = f"; about {tokens:,} tokens" if est is not None and tokens else ""
    result.changes.append(Change("tiled", _wxh(_upright(info)),
                                 f"{len(layout.boxes)} tiles of {tw}x{th}",
                                 f"--tiles: the model sees each tile whole{about}"))
    if est is not None and tokens:
        result.tokens = est.to_json(tokens)
    result.ok = True
    return result


def _decode_for_tiles(src: Resource, info: MediaInfo, layout: TileLayout,
                      settings: Settings) -> tuple[Image.Image, TileLayout, bool]:
    """The whole picture decoded, upright, at the layout's size (laid out again when the
    decode disagrees with the header), and whether it was turned."""
    limits = settings.limits
    if info.decoder == "ffmpeg":
        from ..backends.av import decode_still

        img = decode_still(src)
    else:
        opened = _open_still(src, info, limits)
        img = load_image(opened)
        if src.image is None and opened is not img:
            opened.close()
    img, rotated = apply_orientation(img, info.orientation)
    if tuple(img.size) != tuple(_upright(info)):  # a header the decode did not agree with
        layout = tile_layout(img.size, limits.value("image.recommended_box"),
                             _sizing_estimator(settings))
    if img.size != layout.size:
        img = resize_to(img, layout.size)
    return img, layout, rotated


def _prepare_each_tile(src: Resource, img: Image.Image, layout: TileLayout, settings: Settings,
                       sink: Sink, result: Prepared) -> int | None:
    """Each tile prepared as an image, its part, outputs and bytes added to ``result``; the
    tiles' tokens, or None when one fails (its errors are in ``result``)."""
    tile_settings = settings.replace(tiles=False)
    base = sink.stem or safe_relative(src.name).with_suffix("")
    n = len(layout.boxes)
    tokens = 0
    for i, box in enumerate(layout.boxes):
        tile = Resource(name=f"{src.name} (tile {i + 1} of {n})", image=img.crop(box))
        t_report = check(probe(tile, settings.limits), tile_settings)
        one = prepare_image(tile, t_report, tile_settings,
                            Sink(sink.out_dir, base.with_name(f"{base.name}_tile{i + 1:02d}")))
        if not one.ok or one.part is None:
            result.findings += [f for f in one.findings if f.severity == "error"]
            return None
        result.parts.append(one.part)
        result.outputs += one.outputs
        result.bytes_out += one.bytes_out
        tokens += int((one.tokens or {}).get("estimate", 0))
    return tokens


def _verify_beside(data: bytes, settings: Settings,
                   work: Callable[[], tuple[str, list[Path]]]
                   ) -> tuple[str | None, tuple[str, list[Path]]]:
    """:func:`verify_decodes` in a thread while ``work`` (the base64 encoding) runs here: zlib
    releases the GIL while it inflates, so a PNG costs max(verify, encode), not the sum.
    (Pillow's JPEG decoder holds the GIL: a JPEG gains nothing and is verified first.)"""
    box: list[str | None] = []
    thread = threading.Thread(target=lambda: box.append(verify_decodes(data, settings.limits)),
                              name="mediaprep-verify", daemon=True)
    thread.start()
    try:
        out = work()
    finally:
        thread.join()
    return (box[0] if box else "the decode check did not finish"), out


def prepare_frame_images(
    frames: Iterable[Resource], frame_settings: Settings, sink: Sink, result: Prepared, *,
    errors_only: bool = False, keep_changes: bool = True,
) -> tuple[list[str], list[Path], list[tuple[int, int]]] | None:
    """Prepare each frame of a video image list as an image, into ``frame_NNNNNN`` below the
    sink's stem: the one loop for frame lists and animations. Adds the bytes (and, with
    ``keep_changes``, the frames' change kinds) to ``result``. Returns the frames' URLs, the
    outputs and each frame's size; None when a frame cannot be prepared (its findings, or
    with ``errors_only`` its errors, are added to ``result``)."""
    urls: list[str] = []
    outputs: list[Path] = []
    sizes: list[tuple[int, int]] = []
    for k, m in enumerate(frames):
        m_report = check(probe(m, frame_settings.limits), frame_settings)
        stem = (sink.stem / f"frame_{k:06d}") if sink.stem is not None else None
        one = prepare_image(m, m_report, frame_settings, Sink(sink.out_dir, stem))
        if not one.ok or one.part is None:
            result.findings += [f for f in one.findings
                                if not errors_only or f.severity == "error"]
            return None
        urls.append(one.part.get("image_url", {}).get("url") or one.part.get("image"))
        sizes += _output_size(one)
        outputs += one.outputs
        result.bytes_out += one.bytes_out
        if keep_changes:
            _add_change_kinds(result, one)
    return urls, outputs, sizes


def _output_size(one: Prepared) -> list[tuple[int, int]]:
    """The size of what was sent, when known (as a list of one, or empty)."""
    if one.output_info is None or not one.output_info.width:
        return []
    return [(one.output_info.width, one.output_info.height or 1)]


def _add_change_kinds(result: Prepared, one: Prepared) -> None:
    """Each kind of change once: the first frame's record stands for all."""
    seen = {c.kind for c in result.changes}
    result.changes += [c for c in one.changes if c.kind not in seen]


def animation_schedule(durations: list[int], cap: int, lo: float, hi: float,
                       min_frames: int) -> tuple[list[int], float]:
    """Which frames (indices, in order; a long frame may be sent more than once) and at what
    fps an animation of these frame ``durations`` (ms) is sent, so that count / fps is its
    real length: every frame when its own rate is within ``lo``-``hi`` and ``cap`` allows,
    else the frame shown at each of count evenly spaced moments (count = length x the nearest
    rate in range, at most ``cap``). An animation too short for ``min_frames`` frames at ``hi``
    goes whole at ``hi``: it is then sent longer than it lasts (no list can be shorter)."""
    n = len(durations)
    seconds = sum(durations) / 1000.0
    if n == 0 or seconds <= 0:
        return list(range(n)), hi
    natural = n / seconds
    if lo <= natural <= hi and n <= cap:
        return list(range(n)), n / seconds
    if natural > hi or n > cap:
        count = min(cap, math.floor(seconds * min(hi, natural) + 1e-9))
    else:
        count = min(cap, math.ceil(seconds * lo - 1e-9))
    if count < min_frames:  # too short for a list at hi: every frame (or cap), at hi
        return list(range(min(n, cap))), hi
    starts = list(itertools.accumulate(durations, initial=0))
    picks = [min(n - 1, bisect.bisect_right(starts, k * seconds * 1000.0 / count) - 1)
             for k in range(count)]
    return picks, min(hi, max(lo, count / seconds))


@dataclass(frozen=True)
class _AnimationPlan:
    """The frames of an animation that are sent (:func:`animation_schedule`), and why."""

    durations: list[int]
    picks: list[int]
    fps: float
    cap: int  # frames one request holds
    lo: float
    hi: float
    min_frames: int

    @property
    def seconds(self) -> float:
        return sum(self.durations) / 1000.0


def _plan_animation(durations: list[int], n: int, settings: Settings) -> _AnimationPlan:
    from .video import frame_budget  # the video kind (and PyAV) only for --animation frames

    limits = settings.limits
    lo = limits.value("param.fps.min") or 0.1
    hi = limits.value("param.fps.max") or 10.0
    min_frames = limits.value("frames.min") or 1
    # a slow animation repeats frames: the list may hold more than the file
    cap, _ = frame_budget(max(n, math.ceil(sum(durations) / 1000.0 * lo)), settings)
    picks, fps = animation_schedule(durations, cap, lo, hi, min_frames)
    return _AnimationPlan(durations, picks, fps, cap, lo, hi, min_frames)


#: What a decoder may raise on a broken or hostile picture.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, MemoryError,
                  Image.DecompressionBombError)


def prepare_animation(src: Resource, report: Report, settings: Settings, sink: Sink,
                      result: Prepared) -> Prepared:
    """--animation frames: an animated GIF/APNG/WebP/AVIF as a video image list, its frames
    composited and prepared one at a time as images in the target's frame format (JPEG). The
    frames sent and their fps (:func:`animation_schedule`) keep the animation's real length:
    frame count / fps is the sum of its frame durations, within the fps range."""
    source = src.path or src.data
    open_args = _open_args(settings.limits)
    try:
        durations = animation_durations(source, report.info.frames or 0, **open_args)
    except _DECODE_ERRORS as exc:
        return _unreadable(result, f"{src.name}: cannot read the animation's frames: {exc}")
    plan = _plan_animation(durations, report.info.frames or 0, settings)
    _record_sampling(result, plan)
    from .video import frame_budget

    _, per_item = frame_budget(len(plan.picks), settings)
    frame_settings = _animation_frame_settings(settings, per_item)
    frames = _animation_frames(src.name, source, plan.picks, open_args)
    try:
        done = prepare_frame_images(frames, frame_settings, sink, result, errors_only=True,
                                    keep_changes=False)
    except _DECODE_ERRORS as exc:
        return _unreadable(result, f"{src.name}: cannot decode the animation's frames: {exc}")
    if done is None:
        return result
    urls, outputs, sizes = done
    if len(urls) < plan.min_frames:
        result.findings.append(Finding("frames.too_few", "error",
                                       f"{src.name}: only {len(urls)} frames could be read; at "
                                       f"least {plan.min_frames} are needed", plan.min_frames,
                                       len(urls)))
        return result
    _finish_animation(result, plan, urls, outputs, sizes, settings)
    return result


def _unreadable(result: Prepared, message: str) -> Prepared:
    result.findings.append(Finding("file.unreadable", "error", message))
    return result


def _record_sampling(result: Prepared, plan: _AnimationPlan) -> None:
    """A change when the frames sent are not every frame once (taken at even moments)."""
    picks, n = plan.picks, len(plan.durations)
    if sorted(set(picks)) == list(range(n)) and len(picks) <= n:
        return
    cap = f" and at most {plan.cap} fit one request" if len(picks) == plan.cap else ""
    result.changes.append(Change("sampled", f"{n} frames", f"{len(picks)} taken at even moments",
                                 f"{len(picks)} frames at {plan.fps:.4g} fps keep its "
                                 f"{plan.seconds:g} s within the fps range{cap}"))


def _animation_frame_settings(settings: Settings, per_item: int) -> Settings:
    """Each frame is prepared as an image of the frame list: at most the frame side, no token
    cap of its own (the list's is the request's), the data URL's share of the request."""
    overrides = {k: v for k, v in settings.limit_overrides.items() if k != "tokens.max_request"}
    if settings.transport == "base64" and "image.max_data_url_bytes" in settings.limits:
        overrides["image.max_data_url_bytes"] = per_item  # a row Moonshot's table has not
    return settings.replace(
        max_side=min(settings.max_side or settings.frame_max_side, settings.frame_max_side),
        max_tokens=None, animation="first", limit_overrides=overrides)


def _animation_frames(name: str, source: Path | bytes | None, picks: list[int],
                      open_args: dict[str, Any]) -> Iterator[Resource]:
    """The picked frames, composited, in the frame format, one in memory at a time (a frame
    shown longer than a step goes more than once)."""
    from .video import FRAME_FORMAT

    sends = collections.Counter(picks)
    for i, frame in iter_animation(source, max(picks, default=-1) + 1, set(sends), **open_args):
        try:
            flat, _ = normalise_mode(frame, FRAME_FORMAT)
        except BaseException:
            frame.close()
            raise
        if flat is not frame:
            frame.close()
        for _ in range(sends[i]):
            yield Resource(name=f"{name} (frame {i})", image=flat)
        flat.close()  # prepared by now: one frame in memory at a time


def _finish_animation(result: Prepared, plan: _AnimationPlan, urls: list[str],
                      outputs: list[Path], sizes: list[tuple[int, int]],
                      settings: Settings) -> None:
    """The frame list's part, fps, timestamps, change record and tokens."""
    seconds = plan.seconds
    fps = plan.fps
    if len(urls) < len(plan.picks) and seconds > 0:  # the file held fewer frames than it said
        fps = min(plan.hi, max(plan.lo, len(urls) / seconds))
    fps = round(fps, 6)
    result.part = frames_part(urls, fps, settings.dialect)
    result.fps = fps
    result.timestamps = _frame_times(plan, len(urls))
    result.outputs = outputs
    result.changes.append(_sent_as_frames(plan, len(urls), fps))
    est = settings.estimator
    if sizes and est is not None:
        result.tokens = est.to_json(est.frame_list(sizes))
    result.ok = True


def _frame_times(plan: _AnimationPlan, sent: int) -> list[float]:
    """When each frame sent is shown: its own start when every frame is sent, else the moment
    it was taken at."""
    picks = plan.picks
    if len(picks) == len(plan.durations):
        starts = list(itertools.accumulate(plan.durations, initial=0))
        return [round(starts[i] / 1000.0, 6) for i in picks[:sent]]
    step = plan.seconds / len(picks) if picks else 0.0
    return [round(k * step, 6) for k in range(len(picks[:sent]))]


def _sent_as_frames(plan: _AnimationPlan, sent: int, fps: float) -> Change:
    seconds = plan.seconds
    length = sent / fps
    why = "--animation frames"
    if not math.isclose(length, seconds, rel_tol=1e-3):
        why += (f"; the durations give {len(plan.durations) / seconds:.4g} fps; sent as "
                f"{length:g} s: a video image list holds at least {plan.min_frames} frames, at "
                f"most {plan.hi:g} fps")
    return Change("sent as frames", f"a {seconds:g} s animation", f"{sent} frames at {fps:g} fps",
                  why)


def _transform_and_encode(
    src: Resource, plan: ImagePlan, result: Prepared, settings: Settings, *,
    keep_preview: bool = False,
) -> tuple[bytes, str]:
    """Decode the input, bring its pixels to the plan (upright, resized, padded, in the output
    mode and colours), encode them within the budget; the changes are recorded in ``result``."""
    info = result.info
    assert info is not None
    # What prep would send without --resize model, to report the bytes the resize saves.
    plain = _plan_without_model_resize(src, plan, result, settings)
    img = _decode_for_plan(src, info, plan, plain, settings)
    result.stats["decoded"] = list(img.size)  # after any JPEG draft (DCT scaling)
    # a JPEG draft decodes at 1/2-1/8 already: the fix messages name the input's own size
    drafted = (info.width, info.height) != img.size and info.width is not None
    img = _turn_upright(img, info, result, keep_input=keep_preview)
    before = tuple(_upright(info)) if drafted else img.size
    target = plan.target_size(img.size)  # the pixels really decoded (and turned)
    img, padded = _pad_to_aspect(img, plan, before, result)
    if padded:
        target = before = img.size
    uncapped = _fit_plain(img, plain)
    img = _resize_to_target(img, target, before, drafted, plan, result)
    img = _pad_to_min_side(img, plan, settings, result)
    img, note = _to_output_mode(img, info, plan, settings, result)
    enc = _encode(img, plan, settings)
    _record_encode(result, enc, note, plan)
    if plain is not None:
        replacement = _bytes_saved(src, result, plain, uncapped, enc, settings)
        if replacement is not None:
            return replacement
    if keep_preview and enc.image is not None:
        # the pixels encoded: a PNG decodes back to exactly these; a JPEG or WebP to nearly
        # these (the same picture at 256 px; the report stores that thumbnail with the run)
        _keep_preview(result, enc.image)
    return enc.data, enc.format


def _plan_without_model_resize(src: Resource, plan: ImagePlan, result: Prepared,
                               settings: Settings) -> ImagePlan | None:
    """With --resize model: the plan prep would follow without it (None otherwise)."""
    if plan.exact_cap_reason != "model":
        return None
    assert result.info is not None
    return plan_image(result.info, result.findings, settings.replace(resize_model=False),
                      from_pil=src.image is not None)


def _open_args(limits: Limits) -> dict[str, Any]:
    """The decode guard's ceilings for :func:`open_lazy` and its kin."""
    ceiling = limits.value("image.max_decode_pixels")
    return {"max_pixels": 1 << 62 if ceiling is None else ceiling,
            "seconds": limits.value("image.max_decode_seconds")}


def _open_still(src: Resource, info: MediaInfo, limits: Limits) -> Image.Image:
    """The input opened (not decoded), or decoded by FFmpeg when Pillow refuses it."""
    if info.decoder == "ffmpeg":
        from ..backends.av import decode_still

        return decode_still(src)
    return open_lazy(src.image if src.image is not None else (src.path or src.data),
                     **_open_args(limits))


def _decode_for_plan(src: Resource, info: MediaInfo, plan: ImagePlan, plain: ImagePlan | None,
                     settings: Settings) -> Image.Image:
    """The input's pixels, decoded at the smallest JPEG draft scale the plan allows."""
    opened = _open_still(src, info, settings.limits)
    try:
        img = load_image(opened, target_box=_decode_size(opened, info, plan, plain, settings))
    except BaseException:
        if src.image is None:
            opened.close()
        raise
    if src.image is None and opened is not img:
        opened.close()  # a frame was copied out of a multi-frame file
    return img


def _decode_size(opened: Image.Image, info: MediaInfo, plan: ImagePlan,
                 plain: ImagePlan | None, settings: Settings) -> tuple[int, int]:
    """The size to decode at: the hard target (of the plan without --resize model, whose
    pixels are encoded too), or the draft size the byte budget calls for (a JPEG)."""
    up = _upright(info)
    hard = plan if plain is None or plain.passthrough else plain
    planned = None
    if opened.format in ("JPEG", "MPO") and plan.out_format in ("jpeg", "webp", "png"):
        planned = budget_decode_size(plan, info, getattr(opened, "quantization", None),
                                     settings.safety_margin)
    return draft_size(up, hard.target_size(up), planned)


def _turn_upright(img: Image.Image, info: MediaInfo, result: Prepared, *,
                  keep_input: bool = False) -> Image.Image:
    """``img`` turned by its orientation; with ``keep_input``, a turned image's picture as
    stored is kept as the input's preview (:func:`_keep_input_preview`)."""
    upright, rotated = apply_orientation(img, info.orientation)
    if rotated:
        result.changes.append(Change("rotated", why=f"as its {_orientation_source(info)} "
                                                    "orientation says"))
        if keep_input:
            _keep_input_preview(result, img)
    return upright


def _pad_to_aspect(img: Image.Image, plan: ImagePlan, before: tuple[int, int],
                   result: Prepared) -> tuple[Image.Image, bool]:
    """--pad-aspect: pad to the target's aspect limit, shrunk first when the padded picture
    would break the plan's caps. Returns the picture and whether it was padded."""
    if not plan.pad_aspect:
        return img, False
    cap = plan.exact_size_cap
    max_pixels = (plan.max_pixels if cap is None
                  else min(plan.max_pixels or 1 << 62, cap[0] * cap[1]))

    def fit(size: tuple[int, int]) -> tuple[int, int]:
        return _fit_size(size, box=plan.box, max_side=plan.max_side, max_pixels=max_pixels)

    img, padded, shrunk = fit_and_pad_to_aspect(img, plan.pad_aspect, fit)
    if padded:
        if shrunk:
            result.changes.append(Change("resized", _wxh(before), why="to fit once padded"))
        result.changes.append(Change("padded", after=_wxh(img.size),
                                     why=f"to a {plan.pad_aspect:g}:1 aspect ratio"))
    return img, padded


def _fit_plain(img: Image.Image, plain: ImagePlan | None) -> Image.Image:
    """The pixels as the plan without --resize model would encode them (see _bytes_saved)."""
    if plain is None or plain.passthrough:
        return img
    fitted, _ = resize_within(img, box=plain.box, max_side=plain.max_side,
                              max_pixels=plain.max_pixels, max_ratio=plain.max_ratio)
    return fitted


_CAP_REASONS = {"model": "what the model keeps", "tokens": "the token cap"}


def _resize_to_target(img: Image.Image, target: tuple[int, int], before: tuple[int, int],
                      drafted: bool, plan: ImagePlan, result: Prepared) -> Image.Image:
    """Exactly the planned size (the model's W'xH' or the token cap keep their own rounding),
    recorded as a resize (also when the draft decode alone brought it there)."""
    if img.width > target[0] or img.height > target[1]:
        img = resize_to(img, target)
    elif not (drafted and img.size != before):
        return img
    if plan.exact_size_cap and sorted(target) == sorted(plan.exact_size_cap):
        why = _CAP_REASONS.get(plan.exact_cap_reason or "")
    else:
        why = _size_reason(plan)
    result.changes.append(Change("resized", _wxh(before), _wxh(img.size), why))
    return img


def _pad_to_min_side(img: Image.Image, plan: ImagePlan, settings: Settings,
                     result: Prepared) -> Image.Image:
    if plan.pad_min_side is None:
        return img
    small = img.size
    upscale = settings.small_image_fix == "upscale"
    img, padded = pad_to_min_side(img, plan.pad_min_side, upscale=upscale)
    if padded:
        result.changes.append(Change(
            "padded", _wxh(small), _wxh(img.size),
            f"each side must exceed {plan.pad_min_side} px" + ("; upscaled" if upscale else "")))
    return img


def _to_output_mode(img: Image.Image, info: MediaInfo, plan: ImagePlan, settings: Settings,
                    result: Prepared) -> tuple[Image.Image, str | None]:
    """Tone-mapped or converted to sRGB, in a mode the output format holds, transparency
    flattened where it must be. Returns the picture and the note of what was converted."""
    had_alpha = img.mode in ALPHA_MODES or "transparency" in img.info
    img, tone_note = _tone_map(img, info)
    drops = settings.target.drops_alpha
    img, note = normalise_mode(img, plan.out_format,
                               background=settings.background_rgb if drops else None)
    if tone_note:
        note = "; ".join(x for x in (tone_note, note) if x)
    if had_alpha and _flattened(img, note):
        _record_flatten(result, plan, settings)
    if note:
        result.stats["mode"] = note
    return img, note


def _record_flatten(result: Prepared, plan: ImagePlan, settings: Settings) -> None:
    """A flattening is a change the model sees when it drops alpha or JPEG cannot hold it."""
    drops = settings.target.drops_alpha
    if drops:
        result.changes.append(Change("flattened", "transparent", f"on {settings.background}",
                                     "the model's processor drops alpha"))
    elif plan.out_format == "jpeg":
        result.changes.append(Change("flattened", "transparent", "opaque",
                                     "JPEG has no transparency"))


def _flattened(img: Image.Image, note: str | None) -> bool:
    """Whether normalise_mode composited the transparency away (its note says so)."""
    return img.mode not in ("RGBA", "LA") and bool(note) and "flattened" in (note or "")


def _tone_map(img: Image.Image, info: MediaInfo) -> tuple[Image.Image, str | None]:
    """Decoded HDR is always tone-mapped (--hdr keep only keeps a file that goes as it is): an
    8-bit JPEG/PNG/WebP cannot say it holds PQ or HLG. Wide primaries without an ICC profile
    are converted to sRGB. Returns the picture and the note, if anything was done."""
    cicp = Cicp(*info.cicp) if info.cicp else None
    if cicp is None or not (cicp.hdr or cicp.wide and not img.info.get("icc_profile")):
        return img, None
    to = "SDR sRGB, tone-mapped" if cicp.hdr else "sRGB"
    return tone_map_image(img, cicp), f"colour {cicp.describe()} -> {to}"


def _record_encode(result: Prepared, enc: EncodedImage, note: str | None,
                   plan: ImagePlan) -> None:
    result.stats["encodes"] = enc.encodes
    result.stats["sample_encodes"] = enc.sample_encodes
    result.stats["size"] = [enc.width, enc.height]
    result.stats["quality"] = enc.quality
    result.stats["encode_steps"] = [s for s in enc.steps if s]
    result.changes.append(_encode_change(result.info, enc, note, plan))


def _keep_preview(result: Prepared, img: Image.Image) -> None:
    if (small := preview_or_none(img)) is not None:
        result.previews[0] = small


def _keep_input_preview(result: Prepared, stored: Image.Image) -> None:
    """The input's own picture as stored (not turned), for the report: a turned image's
    input is not its output's picture, and would be decoded again for its thumbnail."""
    if (small := preview_or_none(stored)) is not None:
        result.previews["input"] = small


def _orientation_source(info: MediaInfo | None) -> str:
    """Where an image's orientation is written: a HEIF/AVIF's irot/imir item properties, else
    EXIF."""
    return info.orientation_source if info is not None else "EXIF"


def _wxh(size: tuple[int, int] | list[int]) -> str:
    return f"{size[0]}x{size[1]}"


_FORMAT_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "gif": "GIF", "bmp": "BMP",
                 "tiff": "TIFF", "heic": "HEIC", "avif": "AVIF", "mpo": "JPEG",
                 "dng": "DNG"}


def _format_name(fmt: str | None) -> str:
    return _FORMAT_NAMES.get(fmt or "", (fmt or "unknown").upper())


def _size_reason(plan: ImagePlan) -> str | None:
    """Why the plan shrinks the picture, in words (the first size reason it has)."""
    for reason in plan.reasons:
        if reason in ("image.resolution", "image.format_tier"):
            return f"above the {_wxh(plan.box)} box" if plan.box else "above the box"
        if reason.startswith(("file.too_large", "base64.too_large", "request.too_large")):
            return "to fit the byte limit"
        if reason.startswith("fit --max"):
            return "--max-side/--max-pixels"
    return "to fit the byte limit" if plan.budget is not None else None


def _encode_change(info: MediaInfo | None, enc: EncodedImage, note: str | None,
                   plan: ImagePlan) -> Change:
    """The encode as a change: converted (another format) or re-encoded (the same one)."""
    quality = f"quality {enc.quality}" if enc.quality else "lossless"
    after = f"{_format_name(enc.format)} {_wxh((enc.width, enc.height))}, {quality}, " \
            f"{_human_bytes(len(enc.data))}"
    colour = _colour_change_words(note, plan)
    before = _format_name(info.format if info else None)
    # by name: an MPO re-encoded is a JPEG re-encoded (a DNG's preview becomes a JPEG)
    if info is not None and _format_name(enc.format) == before:
        return Change("re-encoded", None, after, colour)  # "re-encoded to JPEG 240x320, ..."
    unsupported = ("file.unsupported_format" in plan.reasons
                   or "image.format_tier" in plan.reasons)
    why = "not a format the target takes" if unsupported else None
    return Change("converted", before, after, "; ".join(x for x in (why, colour) if x) or None)


def _colour_change_words(note: str | None, plan: ImagePlan) -> str | None:
    """What the encode did to the colours, in words (None: nothing)."""
    words = [_colour_words(p) for p in (note or "").split("; ")
             if p.startswith("colour ") or p == "CMYK -> RGB"]
    if "image.high_bit_depth" in plan.reasons:
        words.append("16-bit or float samples scaled to 8 bits")
    return "; ".join(words) or None


def _colour_words(piece: str) -> str:
    """``colour Display P3 -> sRGB`` (normalise_mode's note) as words."""
    if piece == "CMYK -> RGB":
        return "colours converted from CMYK to RGB"
    a, _, b = piece.removeprefix("colour ").partition(" -> ")
    return f"colours converted from {a} to {b}"


def _human_bytes(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MiB"


def _encode(img: Image.Image, plan: ImagePlan, settings: Settings) -> EncodedImage:
    size_of = data_url_size if plan.budget_is_data_url else identity_size
    return encode_to_budget(
        img,
        format=plan.out_format,
        max_bytes=plan.budget if plan.budget is not None else 1 << 62,
        size_of=size_of,
        margin=settings.safety_margin,
        allow_format_change=plan.allow_format_change,
        try_png=plan.try_png,
        prefer_downscale_below=PREFER_DOWNSCALE_BELOW,
        downscale_quality=DOWNSCALE_QUALITY,
    )


def _bytes_saved(
    src: Resource,
    result: Prepared,
    plain: ImagePlan,
    uncapped: Image.Image,
    enc: EncodedImage,
    settings: Settings,
) -> tuple[bytes, str] | None:
    """--resize model: what prep would have sent without it (the input itself when it would
    have passed through, else the same encode of the uncapped pixels), and the difference.

    When that is smaller (a tiny lossless file, or a PNG that now fits losslessly where the big
    one had to become JPEG), it is sent instead: the model resizes it to the same W'xH' itself,
    and the option promises fewer bytes, never more. Returns the replacement, if any."""
    info = result.info
    assert info is not None
    if plain.passthrough:
        data = first_image_bytes(src, info, None)
        fmt = wire_format(info.format)
        size = list(info.display_size or (info.width, info.height))
    else:
        img, _ = normalise_mode(uncapped, plain.out_format)
        other = _encode(img, plain, settings)
        data, fmt, size = other.data, other.format, [other.width, other.height]
    without, with_ = len(data), len(enc.data)
    use_plain = without < with_
    result.stats["resize_model"] = {
        "bytes_without": without,
        "bytes_with": with_,
        "bytes_saved": max(without - with_, 0),
        "size_without": size,
        "size_with": [enc.width, enc.height],
        "sent": "without" if use_plain else "with",
    }
    if use_plain:
        if plain.passthrough:  # the input itself is sent after all
            result.changes[:] = []
        else:  # the same encode without the resize: its record replaces the resized one
            result.changes[:] = [c for c in result.changes if c.kind != "resized"]
        return data, fmt
    return None


def _budget_finding(name: str, exc: BudgetError, settings: Settings) -> Finding:
    code = "base64.too_large" if settings.transport == "base64" else "file.too_large"
    return Finding(
        code,
        "error",
        f"{name}: cannot be encoded within {exc.max_bytes:,} bytes ({exc})",
        exc.max_bytes,
        exc.smallest,
    )


prepare = prepare_image  # the kind protocol's name (mediaprep.kinds.KINDS)
