"""Token estimates as findings and report fields (rule and sources in mediaprep.tokens)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..findings import Finding
from ..settings import Settings
from ..tokens import VISION_MODELS_WITH_ESTIMATE, frames_for_video, image_tokens, video_tokens
from .common import finding

if TYPE_CHECKING:
    from . import Report


def estimate_for(report: Report, settings: Settings) -> int | None:
    info = report.info
    if settings.model not in VISION_MODELS_WITH_ESTIMATE or info.error_code:
        return None
    if info.kind == "image" and info.width and info.height:
        return image_tokens(info.width, info.height)
    if info.kind == "video" and info.width and info.height and info.duration:
        w, h = info.display_size or (info.width, info.height)
        if info.sample_aspect_ratio:
            w = max(1, round(w * info.sample_aspect_ratio))
        n = frames_for_video(info.duration, settings.fps, settings.max_frames)
        return video_tokens(n, w, h)
    if info.kind == "frames" and info.width and info.height:
        n = min(len(info.members), settings.max_frames)
        return video_tokens(max(1, n), info.width, info.height) if n else None
    return None


def token_findings(report: Report, settings: Settings) -> None:
    try:
        est = estimate_for(report, settings)
    except (ValueError, TypeError):
        est = None
    if est is None:
        return
    report.tokens = {"estimate": est, "model": settings.model}
    limits = settings.limits
    extra: list[Finding] = []
    row = limits.get("tokens.max_image")
    if row is not None and row.value is not None and report.kind == "image" and est > row.value:
        extra.append(
            finding(
                row,
                f"{report.path}: about {est:,} tokens (estimate), above "
                f"--max-image-tokens {row.value:,}; prep scales it down",
                est,
                fixable=True,
            )
        )
    row = limits.get("tokens.max_request")
    if row is not None and row.value is not None and est > row.value:
        extra.append(
            finding(
                row,
                f"{report.path}: about {est:,} tokens (estimate), above "
                f"--max-tokens {row.value:,}; prep scales it down",
                est,
                fixable=True,
            )
        )
    report.findings += extra


def request_tokens(items: Iterable[Any], model: str | None = None) -> dict[str, Any]:
    """Estimated vision tokens of one request made of ``items`` (prepared inputs, check
    reports, or anything else such as text strings, which count 0 vision tokens).

    ``{"estimate": N, "model": M, "items": K, "unknown": U}``: the sum of the per-item
    estimates (each an estimate: see mediaprep.tokens for the rule and its sources), how many
    items carried one, and how many media items had none (unknown model, unreadable input).
    """
    total = counted = unknown = 0
    for item in items:
        tokens = getattr(item, "tokens", None)
        kind = getattr(item, "kind", None)
        if isinstance(tokens, Mapping) and tokens.get("estimate") is not None:
            total += int(tokens["estimate"])
            counted += 1
            model = model or tokens.get("model")
        elif kind in ("image", "video", "frames"):
            unknown += 1
    return {"estimate": total, "model": model, "items": counted, "unknown": unknown}


def request_token_findings(items: Iterable[Any], settings: Settings) -> list[Finding]:
    """``tokens.request_too_many`` when the items of one request together exceed
    ``--max-tokens`` (each item alone is checked by :func:`token_findings`)."""
    row = settings.limits.get("tokens.max_request")
    if row is None or row.value is None:
        return []
    est = request_tokens(items, settings.model)
    if est["estimate"] <= row.value:
        return []
    return [
        finding(
            row,
            f"the request is about {est['estimate']:,} tokens (estimate, "
            f"{est['items']} media items), above --max-tokens {row.value:,}",
            est["estimate"],
            fixable=False,
        )
    ]
