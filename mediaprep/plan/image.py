"""Plan for one image: pass it through untouched, or what to change and how to encode it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..check.common import in_box
from ..encode.image import (
    DOWNSCALE_QUALITY,
    PREFER_DOWNSCALE_BELOW,
    estimate_lossy_bytes,
    quality_from_scale,
)
from ..findings import Finding
from ..info import MediaInfo
from ..mime import data_url_size
from ..settings import Settings
from ..tokens import image_tokens, model_resize
from ..transform.image import _fit_size

ENCODABLE = ("jpeg", "png", "webp")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
# body bytes a single-item request needs besides the data URL (JSON keys, model, text)
REQUEST_OVERHEAD = 16 * 1024


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
    budget: int | None = None
    budget_is_data_url: bool = False
    allow_format_change: bool = True
    try_png: bool = True  # False: a PNG of this size is known not to fit; go lossy at once
    reasons: list[str] = field(default_factory=list)

    def target_size(self, upright: tuple[int, int]) -> tuple[int, int]:
        """The size the pixels must have at most before encoding (hard limits only): the
        box/--max-side/--max-pixels fit of ``upright``, or exactly the token/model cap."""
        fit = _fit_size(upright, box=self.box, max_side=self.max_side, max_pixels=self.max_pixels)
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
        lo, hi = 0, self.budget
        while hi - lo > 1:  # data_url_size is monotone in n
            mid = (lo + hi) // 2
            if data_url_size(mid, "image/jpeg") <= self.budget:
                lo = mid
            else:
                hi = mid
        return lo


def _blocking(findings: list[Finding]) -> list[Finding]:
    return [
        f
        for f in findings
        if f.severity in ("error", "warning") and f.code != "file.extension_mismatch"
    ]


def plan_image(
    info: MediaInfo, findings: list[Finding], settings: Settings, *, from_pil: bool = False
) -> ImagePlan:
    limits = settings.limits
    w, h = info.width or 1, info.height or 1
    plan = ImagePlan(passthrough=False)
    # the box the pixels must fit: the recommended resolution, and the user's caps
    plan.box = limits.value("image.recommended_box")
    plan.max_side = settings.max_side
    plan.max_pixels = settings.max_pixels
    min_side = limits.value("image.min_side")
    plan.pad_min_side = min_side
    if settings.pad_aspect:
        plan.pad_aspect = limits.value("image.max_aspect_ratio")

    caps = []
    if settings.resize_model:
        mw, mh = model_resize(*_upright(info))
        if (mw, mh) != _upright(info):
            caps.append(((mw, mh), "model"))
            plan.reasons.append(f"resize to what the model keeps ({mw}x{mh})")
    # one image must also fit the request's budget on its own
    token_caps = [
        v
        for v in (limits.value("tokens.max_image"), limits.value("tokens.max_request"))
        if v is not None
    ]
    token_cap = min(token_caps) if token_caps else None
    if token_cap is not None:
        cap = size_for_tokens(*_upright(info), token_cap)
        if cap != _upright(info):
            caps.append((cap, "tokens"))
            plan.reasons.append(f"scale to at most {token_cap} tokens ({cap[0]}x{cap[1]})")
    if caps:
        plan.exact_size_cap, plan.exact_cap_reason = min(caps, key=lambda c: c[0][0] * c[0][1])

    fmt = info.format or ""
    wire = "jpeg" if fmt == "mpo" else fmt
    allowed = limits.value("image.formats") or frozenset(ENCODABLE)
    tier_box = limits.value("image.format_tier_box")
    tier_formats = limits.value("image.formats_above_tier")
    out_box_ok = tier_box is None or in_box(w, h, tier_box)
    has_alpha = (info.mode or "") in ALPHA_MODES or (info.mode == "P" and fmt in ("png", "gif"))

    if (
        wire in ENCODABLE
        and wire in allowed
        and (out_box_ok or tier_formats is None or wire in tier_formats)
    ):
        plan.out_format = wire
    elif has_alpha and "png" in allowed:
        plan.out_format = "png"
    else:
        plan.out_format = "jpeg"

    transport = settings.transport
    if transport == "base64":
        plan.budget = limits.value("image.max_data_url_bytes")
        plan.budget_is_data_url = True
        body = limits.value("request.max_body_bytes")
        if body is not None:
            body_budget = body - REQUEST_OVERHEAD
            plan.budget = min(plan.budget, body_budget) if plan.budget else body_budget
    else:
        plan.budget = limits.value(f"image.max_bytes.{transport}")

    needs = _blocking(findings)
    if info.orientation not in (None, 1):
        plan.reasons.append(f"apply EXIF orientation {info.orientation}")
    if needs:
        plan.reasons += [f.code for f in needs]
    user_caps = (settings.max_side is not None and max(w, h) > settings.max_side) or (
        settings.max_pixels is not None and w * h > settings.max_pixels
    )
    if user_caps:
        plan.reasons.append("fit --max-side/--max-pixels")
    animated = bool(info.frames and info.frames > 1) and "gif" not in allowed
    if animated:
        plan.reasons.append("take the first frame of an animation")
    plan.passthrough = not plan.reasons and not from_pil
    _plan_png(plan, info)
    return plan


#: A PNG input re-encoded as PNG (zlib 6) at the same pixel count is taken to be at least this
#: share of the input's bytes (inputs are rarely compressed much harder than zlib 6).
_PNG_RECOMPRESS_FLOOR = 0.6


def _plan_png(plan: ImagePlan, info: MediaInfo) -> None:
    """Skip the PNG attempts when a PNG input is far over the budget even allowing for better
    compression: a lossless encode of 24 MP costs seconds and cannot succeed."""
    raw = plan.raw_budget()
    if plan.passthrough or plan.out_format != "png" or info.format != "png" or not raw:
        return
    w, h = _upright(info)
    tw, th = plan.target_size((w, h))
    expect = info.bytes * _PNG_RECOMPRESS_FLOOR * (tw * th) / (w * h)
    if plan.allow_format_change and expect > raw:
        plan.try_png = False


#: A DCT draft decode is taken when it gives at least this share (linear) of the budget-planned
#: size: the plan is an estimate, and the quality search spends the freed bytes on quality.
DRAFT_SNAP = 0.85
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


def size_for_tokens(w: int, h: int, max_tokens: int) -> tuple[int, int]:
    """The largest size of the same aspect whose token estimate is within ``max_tokens``."""
    if image_tokens(w, h) <= max_tokens:
        return (w, h)
    lo, hi = 0.0, 1.0
    for _ in range(30):  # bisection on the scale; tokens grow (nearly) with the scale
        mid = (lo + hi) / 2
        cw, ch = max(1, math.floor(w * mid)), max(1, math.floor(h * mid))
        if image_tokens(cw, ch) <= max_tokens:
            lo = mid
        else:
            hi = mid
    return (max(1, math.floor(w * lo)), max(1, math.floor(h * lo)))
