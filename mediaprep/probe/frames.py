"""Probe an image list (a folder of frames or a list of images) as one video."""

from __future__ import annotations

from collections.abc import Callable

from ..info import MediaInfo
from ..sources import Source


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
