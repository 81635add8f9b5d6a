"""Token estimates as findings and report fields (rule and sources in mediaprep.tokens)."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        extra.append(finding(row, f"{report.path}: about {est:,} tokens (estimate), above "
                                  f"--max-image-tokens {row.value:,}; prep scales it down", est,
                             fixable=True))
    row = limits.get("tokens.max_request")
    if row is not None and row.value is not None and est > row.value:
        extra.append(finding(row, f"{report.path}: about {est:,} tokens (estimate), above "
                                  f"--max-tokens {row.value:,}; prep scales it down", est,
                             fixable=True))
    report.findings += extra
