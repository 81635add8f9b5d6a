"""Findings every kind shares: the model, params, extension, item bytes, the token estimate.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..backends.sniff import MIME, data_url_size, mime_for  # noqa: F401  (re-exported)
from ..limits import Limit, Limits, context_tokens
from ..settings import Settings
from ..targets.base import Estimator
from ..types import Finding, MediaInfo, Report

log = logging.getLogger("mediaprep")


def finding(row: Limit, message: str, actual: object, *, fixable: bool = False,
            limit: object = None) -> Finding:
    return Finding(code=row.code, severity=row.severity, message=message,
                   limit=row.value if limit is None else limit, actual=actual, fixable=fixable)


def in_box(w: int, h: int, box: tuple[int, int]) -> bool:
    """Inside a resolution box in either orientation (portrait 4K counts as 4K)."""
    return max(w, h) <= max(box) and min(w, h) <= min(box)


def probe_failure(info: MediaInfo, limits: Limits) -> list[Finding]:
    if info.error_code is None:
        return []
    name = info.path
    if info.error_code == "image.decompression_bomb":
        row = limits["image.max_decode_pixels"]
        actual = info.declared_pixels or info.pixels
        # the probe's message names the rule that refused it (pixels, bytes, ratio, scans)
        return [finding(row, f"{name}: {info.error}; refused before decoding", actual)]
    if info.error_code == "video.no_video_stream":
        return [Finding("video.no_video_stream", "error",
                        f"{name}: {info.error}; nothing to show the model", None, None)]
    if info.error_code == "file.unsupported_format":
        return [Finding("file.unsupported_format", "error", f"{name}: {info.error}")]
    if info.error_code == "video.undecodable":
        return [Finding("video.undecodable", "error", f"{name}: {info.error}")]
    if info.error_code == "url.not_verified":
        return [Finding("url.not_verified", "info", f"{name}: {info.error}")]
    return [Finding("file.unreadable", "error", f"{name}: {info.error}")]


def check_model(settings: Settings) -> list[Finding]:
    limits = settings.limits
    vision = limits.value("models.vision", frozenset())
    text_only = limits.value("models.text_only", frozenset())
    names = ", ".join(sorted(vision))
    if settings.model in text_only:
        return [Finding("model.no_vision", "error",
                        f"model {settings.model} takes text only; use a vision model "
                        f"({names})", sorted(vision), settings.model)]
    if vision and settings.model not in vision:
        # A typo ("kimi-k25") or a model newer than the table: say so rather than check
        # against limits that may not be its own; a new model can be added with --limit.
        return [Finding("model.unknown", "warning",
                        f"model {settings.model} is not in the {settings.target} limits table "
                        f"(vision models: {names}); its limits are assumed and its tokens not "
                        f"estimated (a typo? a newer model: --limit models.vision=...)",
                        sorted(vision), settings.model)]
    return []


def check_params(settings: Settings) -> list[Finding]:
    limits = settings.limits
    out = []
    lo, hi = limits["param.fps.min"], limits["param.fps.max"]
    if lo.below_min(settings.fps) or hi.exceeds_max(settings.fps):
        out.append(finding(lo, f"fps {settings.fps:g} is outside {lo.value:g} to {hi.value:g}",
                           settings.fps, limit=[lo.value, hi.value]))
    mf = limits["param.max_frames.max"]
    if settings.max_frames < 1 or mf.exceeds_max(settings.max_frames):
        out.append(finding(mf, f"max_frames {settings.max_frames} is outside 1 to {mf.value}",
                           settings.max_frames))
    return out


def check_extension(info: MediaInfo) -> list[Finding]:
    if info.extension_matches or info.format is None:
        return []
    return [Finding("file.extension_mismatch", "warning",
                    f"{info.path}: named .{info.extension} but the bytes are {info.format}; "
                    "prep names its output by what the file is", info.extension, info.format,
                    fixable=True)]


def check_item_bytes(kind: str, name: str, n_bytes: int, mime: str, settings: Settings,
                     fix: str) -> list[Finding]:
    """The per-item byte limit of the transport in use (``kind`` is "image" or "video")."""
    limits = settings.limits
    if settings.transport == "base64":
        row = limits.get(f"{kind}.max_data_url_bytes")
        if row is None or row.value is None:
            return []
        size = data_url_size(n_bytes, mime)
        if row.exceeds_max(size):
            op = "below" if row.strict else "at most"
            return [finding(row, f"{name}: as a data URL it is {size:,} bytes; it must be {op} "
                                 f"{row.value:,}; {fix}", size, fixable=True)]
        return []
    row = limits.get(f"{kind}.max_bytes.{settings.transport}")
    if row is not None and row.value is not None and row.exceeds_max(n_bytes):
        return [finding(row, f"{name}: {n_bytes:,} bytes, above {row.value:,} for the "
                             f"{settings.transport} transport; {fix}", n_bytes, fixable=True)]
    return []




def _video_frame_size(info: MediaInfo) -> tuple[int, int]:
    w, h = info.display_size or (info.width, info.height)
    if info.sample_aspect_ratio:
        w = max(1, round(w * info.sample_aspect_ratio))
    return w, h


def estimate_for(report: Report, settings: Settings) -> int | None:
    """The input's token estimate as it is (None: no estimator, unreadable, size unknown)."""
    info = report.info
    est = settings.estimator
    if est is None or info.error_code or not (info.width and info.height):
        return None
    by_kind = _ESTIMATES.get(info.kind)
    return by_kind(info, est, settings) if by_kind is not None else None


def _image_estimate(info: MediaInfo, est: Estimator, settings: Settings) -> int | None:
    return est.image(info.width, info.height)


def _video_estimate(info: MediaInfo, est: Estimator, settings: Settings) -> int | None:
    if not info.duration:
        return None
    w, h = _video_frame_size(info)
    n = est.file_frames(info.duration, settings.fps, settings.max_frames, info.fps)
    return est.video(n, w, h)


def _frames_estimate(info: MediaInfo, est: Estimator, settings: Settings) -> int | None:
    """The frames sent (sampled as prep samples them), each chunk sized by its first frame;
    a member whose size is unknown counts as the largest."""
    n = min(len(info.members), settings.max_frames)
    if not n:
        return None
    step = len(info.members) / n
    sent = [info.members[int(k * step)] for k in range(n)]
    return est.frame_list([(m.width, m.height) if m.width and m.height
                           else (info.width, info.height) for m in sent])


_ESTIMATES: dict[str, Callable[[MediaInfo, Estimator, Settings], int | None]] = {
    "image": _image_estimate, "video": _video_estimate, "frames": _frames_estimate,
}


def token_findings(report: Report, settings: Settings) -> None:
    try:
        est = estimate_for(report, settings)
    except (ValueError, TypeError) as exc:
        # the report goes out without an estimate (and without the token findings)
        log.warning("%s: no token estimate: %s", report.path, exc)
        est = None
    if est is None:
        return
    report.tokens = settings.estimator.to_json(est)
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
    extra += context_findings(report, est, settings)
    report.findings += extra


def context_findings(report: Report, est: int, settings: Settings) -> list[Finding]:
    """``tokens.context``: the estimate is above the model's context. An error for what the
    client decides (an image, a frame list); a warning for a video file, whose frames the
    server samples at ``fps`` up to ``max_frames``: it names the fps or max_frames that fit."""
    ctx = context_tokens(settings.limits, settings.model)
    if ctx is None or est <= ctx:
        return []
    row = settings.limits["tokens.context"]
    what = (f"{report.path}: about {est:,} tokens (estimate), above the {ctx:,}-token context "
            f"of {settings.model}")
    if report.kind != "video":
        return [Finding(row.code, "error", f"{what}; send fewer or smaller frames/images",
                        ctx, est)]
    hints = _video_context_hints(report.info, ctx, settings)
    how = (" or ".join(hints) + " would fit") if hints else "no fps or max_frames fits"
    return [Finding(row.code, "warning",
                    f"{what} at fps {settings.fps:g} and max_frames {settings.max_frames} "
                    f"(the server samples the file); {how}", ctx, est)]


def _video_context_hints(info: MediaInfo, ctx: int, settings: Settings) -> list[str]:
    """The --fps and --max-frames that would bring a video file within ``ctx`` tokens."""
    estimator = settings.estimator
    k = estimator.cfg.temporal_merge_kernel_size
    fit_frames = (ctx // estimator.chunk(*_video_frame_size(info))) * k  # whole chunks of 4
    if fit_frames < 1:
        return []
    fps = _fps_within(fit_frames, info.duration, settings) if info.duration else None
    return ([f"--fps {fps:g}"] if fps is not None else []) + [f"--max-frames {fit_frames}"]


def _fps_within(fit_frames: int, duration: float, settings: Settings) -> float | None:
    """The highest fps (to 0.01) that samples at most ``fit_frames`` frames of ``duration``
    seconds, when the target allows it."""
    fps = math.floor(fit_frames / duration * 100) / 100
    while fps > 0 and round(duration * fps) > fit_frames:
        fps = round(fps - 0.01, 2)
    lo = settings.limits.value("param.fps.min", 0.1) or 0.0
    return fps if fps >= lo and fps > 0 else None


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


def report_for(info: MediaInfo, settings: Settings,
               kind_findings: Callable[[], list[Finding]]) -> Report:
    """The report of one probed input: the findings every kind shares around its own."""
    findings = check_model(settings) + probe_failure(info, settings.limits)
    if info.error_code is None or info.kind == "frames":
        findings += kind_findings()
        findings += _single_item_body(info, settings)
    report = Report(path=info.path, kind=info.kind, info=info, findings=findings)
    token_findings(report, settings)  # the estimate's rule and sources: mediaprep.tokens
    return report


def _single_item_body(info: MediaInfo, settings: Settings) -> list[Finding]:
    """A target with a whole-body limit: one item alone must fit in it."""
    row = settings.limits.get("request.max_body_bytes")
    if row is None or row.value is None or info.kind not in ("image", "video"):
        return []
    if settings.transport == "upload":
        return []  # the body carries a reference to the stored file, not its bytes
    size = (data_url_size(info.bytes, mime_for(info.format)) if settings.transport == "base64"
            else info.bytes)
    if row.exceeds_max(size):
        return [finding(row, f"{info.path}: a request carrying it is at least {size:,} bytes, "
                             f"above {row.value:,}; prep shrinks it", size, fixable=True)]
    return []
