"""The frame-list kind: a video sent as a list of images (a list, or a folder of frames).
"""

from __future__ import annotations

from collections.abc import Callable

from ..backends.sniff import data_url_size, mime_for
from ..model import Finding, MediaInfo
from ..resource import Source
from ..settings import Settings
from .common import finding, probe_failure
from .image import check_image


def probe_frames(src: Source, probe_one: Callable[[Source], MediaInfo]) -> MediaInfo:
    members = [probe_one(m) for m in src.frames or []]
    info = MediaInfo(path=src.name, kind="frames", format="frames",
                     bytes=sum(m.bytes for m in members), members=members)
    good = [m for m in members if m.error_code is None and m.width]
    if good:
        # the largest frame decides resolution limits for the list as a whole
        big = max(good, key=lambda m: (m.pixels or 0))
        info.width, info.height = big.width, big.height
    return info


def check_frames(info: MediaInfo, settings: Settings) -> list[Finding]:
    limits = settings.limits
    name = info.path
    n = len(info.members)
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
