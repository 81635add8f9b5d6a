"""The frame-list kind: a video sent as a list of images (a list, or a folder of frames).
"""

from __future__ import annotations

from collections.abc import Callable

from ..emit.parts import frames_part
from ..emit.sink import Sink
from ..resource import Resource
from ..settings import Settings
from ..types import Change, Finding, MediaInfo, Prepared, Report
from .common import check_params, data_url_size, finding, mime_for, probe_failure, report_for
from .image import check_image, prepare_frame_images
from .video import frame_budget, over_token_cap


def probe_frames(src: Resource, probe_one: Callable[[Resource], MediaInfo]) -> MediaInfo:
    members = [probe_one(m) for m in src.frames or []]
    info = MediaInfo(path=src.name, kind="frames", format="frames",
                     bytes=sum(m.bytes for m in members), members=members)
    good = [m for m in members if m.error_code is None and m.width]
    if good:
        # the largest frame decides resolution limits for the list as a whole
        big = max(good, key=lambda m: (m.pixels or 0))
        info.width, info.height = big.width, big.height
    return info


def check(info: MediaInfo, settings: Settings) -> Report:
    """Every limit a frame list meets or breaks (its frames are checked as images)."""
    return report_for(info, settings, lambda: check_params(settings) + check_frames(info, settings))


def check_frames(info: MediaInfo, settings: Settings) -> list[Finding]:
    limits = settings.limits
    name = info.path
    n = len(info.members)
    if not settings.target.frame_lists:
        return [Finding("transport.unsupported", "error",
                        f"{name}: the {settings.target.title} takes no list of images as a "
                        "video (its API has no such part); send the frames as images, or "
                        "make them a video file", None, n)]
    out: list[Finding] = []
    row = limits.get("frames.min")
    if row is not None and row.value is not None and row.below_min(n):
        out.append(finding(row, f"{name}: {n} frames; a video as an image list needs at least "
                                f"{row.value}", n))
    row = limits.get("frames.max")
    if row is not None and row.value is not None and row.exceeds_max(n):
        out.append(finding(row, f"{name}: {n} frames; at most {row.value} are taken; prep "
                                "samples them uniformly", n, fixable=True))
    key = "request.max_data_urls" if settings.transport == "base64" else "request.max_media_urls"
    row = limits.get(key)
    if row is not None and row.value is not None and row.exceeds_max(n):
        out.append(finding(row, f"{name}: {n} frames in one request; at most {row.value} "
                                f"{'data URLs' if settings.transport == 'base64' else 'URLs'} "
                                "are accepted; prep samples fewer frames", n, fixable=True))
    row = limits.get("request.max_body_bytes")
    if row is not None and row.value is not None and settings.transport == "base64":
        total = sum(data_url_size(m.bytes, mime_for(m.format)) for m in info.members)
        if row.exceeds_max(total):
            out.append(finding(row, f"{name}: the frames make a {total:,}-byte request, above "
                                    f"{row.value:,}; prep shrinks the frames", total,
                               fixable=True))
    for m in info.members:
        out += probe_failure(m, limits) or check_image(m, settings)
    return out


def prepare_frames_list(src: Resource, report: Report, settings: Settings, sink: Sink
                        ) -> Prepared:
    """An image list: each frame prepared as an image; uniformly sampled down when too many."""
    info = report.info
    result = Prepared(path=src.name, kind="frames", ok=False, info=info,
                      findings=list(report.findings), bytes_in=info.bytes, tokens=report.tokens)
    members = list(src.frames or [])
    cap, per_item = frame_budget(len(members), settings)
    if len(members) > cap:
        step = len(members) / cap
        members = [members[int(k * step)] for k in range(cap)]
        result.changes.append(Change("sampled", f"{len(info.members)} frames",
                                     f"{cap} taken uniformly", f"at most {cap} fit one request"))
    max_side = settings.max_side
    est = settings.estimator
    if est and over_token_cap(result, settings) and members and info.width and info.height:
        tcap = settings.limits.value("tokens.max_request")
        fit = est.fit_video(len(members), info.width, info.height, tcap,
                            min_frames=settings.limits.value("frames.min") or 1)
        if fit is not None:
            n2, fw, fh = fit
            result.changes.append(Change(
                "sampled", f"{len(members)} frames of {info.width}x{info.height}",
                f"{n2} of {fw}x{fh}",
                f"--max-tokens {tcap:,}: about {est.video(n2, fw, fh):,} tokens, estimate"))
            if n2 < len(members):
                step = len(members) / n2
                members = [members[int(k * step)] for k in range(n2)]
            if (fw, fh) != (info.width, info.height):
                max_side = max(fw, fh)
    # the token budget is the whole list's (fitted above), not each frame's
    frame_settings = settings.replace(max_side=max_side, max_tokens=None, limit_overrides={
        **{k: v for k, v in settings.limit_overrides.items() if k != "tokens.max_request"},
        **({"image.max_data_url_bytes": per_item} if settings.transport == "base64" else {})})
    done = prepare_frame_images(members, frame_settings, sink, result)
    if done is None:
        return result
    urls, outputs, sizes = done
    n = len(urls)
    min_frames = settings.limits.value("frames.min") or 1
    if n < min_frames:
        return result
    result.part = frames_part(urls, settings.fps, settings.dialect)
    result.fps = settings.fps
    if sizes and est is not None:
        result.tokens = est.to_json(est.frame_list(sizes))
    result.outputs = outputs
    result.ok = True
    return result


prepare = prepare_frames_list  # the kind protocol's name (mediaprep.kinds.KINDS)
