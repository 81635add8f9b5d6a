"""Plan for one image: pass it through untouched, or what to change and how to encode it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..check.common import in_box
from ..findings import Finding
from ..info import MediaInfo
from ..settings import Settings
from ..tokens import image_tokens, model_resize

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
    pad_min_side: int | None = None
    pad_aspect: float | None = None
    budget: int | None = None
    budget_is_data_url: bool = False
    allow_format_change: bool = True
    reasons: list[str] = field(default_factory=list)


def _blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity in ("error", "warning")
            and f.code != "file.extension_mismatch"]


def plan_image(info: MediaInfo, findings: list[Finding], settings: Settings, *,
               from_pil: bool = False) -> ImagePlan:
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
            caps.append((mw, mh))
            plan.reasons.append(f"resize to what the model keeps ({mw}x{mh})")
    token_cap = limits.value("tokens.max_image")
    if token_cap is not None:
        cap = size_for_tokens(*_upright(info), token_cap)
        if cap != _upright(info):
            caps.append(cap)
            plan.reasons.append(f"scale to at most {token_cap} tokens ({cap[0]}x{cap[1]})")
    if caps:
        plan.exact_size_cap = min(caps, key=lambda c: c[0] * c[1])

    fmt = info.format or ""
    wire = "jpeg" if fmt == "mpo" else fmt
    allowed = limits.value("image.formats") or frozenset(ENCODABLE)
    tier_box = limits.value("image.format_tier_box")
    tier_formats = limits.value("image.formats_above_tier")
    out_box_ok = tier_box is None or in_box(w, h, tier_box)
    has_alpha = (info.mode or "") in ALPHA_MODES or (info.mode == "P" and fmt in ("png", "gif"))

    if wire in ENCODABLE and wire in allowed and (out_box_ok or tier_formats is None
                                                  or wire in tier_formats):
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
        settings.max_pixels is not None and w * h > settings.max_pixels)
    if user_caps:
        plan.reasons.append("fit --max-side/--max-pixels")
    animated = bool(info.frames and info.frames > 1) and "gif" not in allowed
    if animated:
        plan.reasons.append("take the first frame of an animation")
    plan.passthrough = not plan.reasons and not from_pil
    return plan


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
