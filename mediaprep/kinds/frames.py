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
    if not settings.target.frame_lists:
        return [Finding("transport.unsupported", "error",
                        f"{info.path}: the {settings.target.title} takes no list of images as "
                        "a video (its API has no such part); send the frames as images, or "
                        "make them a video file", None, len(info.members))]
    out = [f for judge in _LIST_JUDGES for f in judge(info, settings)]
    for m in info.members:
        out += probe_failure(m, settings.limits) or check_image(m, settings)
    return out


def _too_few(info: MediaInfo, settings: Settings) -> list[Finding]:
    n = len(info.members)
    row = settings.limits.get("frames.min")
    if row is None or row.value is None or not row.below_min(n):
        return []
    return [finding(row, f"{info.path}: {n} frames; a video as an image list needs at least "
                         f"{row.value}", n)]


def _too_many(info: MediaInfo, settings: Settings) -> list[Finding]:
    n = len(info.members)
    row = settings.limits.get("frames.max")
    if row is None or row.value is None or not row.exceeds_max(n):
        return []
    return [finding(row, f"{info.path}: {n} frames; at most {row.value} are taken; prep "
                         "samples them uniformly", n, fixable=True)]


def _too_many_urls(info: MediaInfo, settings: Settings) -> list[Finding]:
    n = len(info.members)
    base64 = settings.transport == "base64"
    row = settings.limits.get("request.max_data_urls" if base64 else "request.max_media_urls")
    if row is None or row.value is None or not row.exceeds_max(n):
        return []
    return [finding(row, f"{info.path}: {n} frames in one request; at most {row.value} "
                         f"{'data URLs' if base64 else 'URLs'} are accepted; prep samples "
                         "fewer frames", n, fixable=True)]


def _body_too_large(info: MediaInfo, settings: Settings) -> list[Finding]:
    row = settings.limits.get("request.max_body_bytes")
    if row is None or row.value is None or settings.transport != "base64":
        return []
    total = sum(data_url_size(m.bytes, mime_for(m.format)) for m in info.members)
    if not row.exceeds_max(total):
        return []
    return [finding(row, f"{info.path}: the frames make a {total:,}-byte request, above "
                         f"{row.value:,}; prep shrinks the frames", total, fixable=True)]


# What check_frames judges of the list as a whole, in the order its findings are listed
_LIST_JUDGES: tuple[Callable[[MediaInfo, Settings], list[Finding]], ...] = (
    _too_few, _too_many, _too_many_urls, _body_too_large)


def prepare_frames_list(src: Resource, report: Report, settings: Settings, sink: Sink
                        ) -> Prepared:
    """An image list: each frame prepared as an image; uniformly sampled down when too many."""
    info = report.info
    result = Prepared(path=src.name, kind="frames", ok=False, info=info,
                      findings=list(report.findings), bytes_in=info.bytes, tokens=report.tokens)
    members = list(src.frames or [])
    cap, per_item = frame_budget(len(members), settings)
    if len(members) > cap:
        result.changes.append(Change("sampled", f"{len(info.members)} frames",
                                     f"{cap} taken uniformly", f"at most {cap} fit one request"))
        members = _uniform(members, cap)
    members, max_side = _fit_list_tokens(members, info, settings, result)
    done = prepare_frame_images(members, _frame_settings(settings, max_side, per_item), sink,
                                result)
    if done is None:
        return result
    urls, outputs, sizes = done
    if len(urls) < (settings.limits.value("frames.min") or 1):
        return result
    result.part = frames_part(urls, settings.fps, settings.dialect)
    result.fps = settings.fps
    est = settings.estimator
    if sizes and est is not None:
        result.tokens = est.to_json(est.frame_list(sizes))
    result.outputs = outputs
    result.ok = True
    return result


def _uniform(members: list[Resource], k: int) -> list[Resource]:
    """``k`` of the frames, spread evenly from the first."""
    step = len(members) / k
    return [members[int(j * step)] for j in range(k)]


def _fit_list_tokens(members: list[Resource], info: MediaInfo, settings: Settings,
                     result: Prepared) -> tuple[list[Resource], int]:
    """--max-tokens for the whole list: fewer and smaller frames (tokens.fit_video); returns
    the frames kept and the longest side each may have."""
    max_side = settings.max_side
    est = settings.estimator
    if not (est and over_token_cap(result, settings) and members and info.width
            and info.height):
        return members, max_side
    tcap = settings.limits.value("tokens.max_request")
    fit = est.fit_video(len(members), info.width, info.height, tcap,
                        min_frames=settings.limits.value("frames.min") or 1)
    if fit is None:
        return members, max_side
    n2, fw, fh = fit
    result.changes.append(Change(
        "sampled", f"{len(members)} frames of {info.width}x{info.height}", f"{n2} of {fw}x{fh}",
        f"--max-tokens {tcap:,}: about {est.video(n2, fw, fh):,} tokens, estimate"))
    if n2 < len(members):
        members = _uniform(members, n2)
    if (fw, fh) != (info.width, info.height):
        max_side = max(fw, fh)
    return members, max_side


def _frame_settings(settings: Settings, max_side: int, per_item: int) -> Settings:
    """The settings each frame is prepared as an image with: the token budget is the whole
    list's (fitted already), not each frame's; a data URL's share of the request."""
    overrides = {k: v for k, v in settings.limit_overrides.items() if k != "tokens.max_request"}
    if settings.transport == "base64" and "image.max_data_url_bytes" in settings.limits:
        overrides["image.max_data_url_bytes"] = per_item  # a row Moonshot's table has not
    return settings.replace(max_side=max_side, max_tokens=None, limit_overrides=overrides)


prepare = prepare_frames_list  # the kind protocol's name (mediaprep.kinds.KINDS)
