"""The library's front door: probe, check (and prepare, in mediaprep.prepare)."""

from __future__ import annotations

from typing import Any

from .check import Report, check_info
from .info import MediaInfo
from .probe import probe_source
from .settings import Settings, make_settings
from .sources import SourceLike, to_source


def probe(source: SourceLike, *, deep: bool = False, **options: Any) -> MediaInfo:
    """What ``source`` is: kind, format, size, dimensions, timing. Never raises for bad media."""
    settings = make_settings(options.pop("settings", None), **options)
    src = to_source(source)
    if src.url is not None and settings.allow_url:
        from .sources import probe_url

        return probe_url(src, settings, deep=deep)
    return probe_source(src, limits=settings.limits, deep=deep)


def check(source: SourceLike, *, settings: Settings | None = None, **options: Any) -> Report:
    """Check ``source`` against every applicable limit; nothing is written.

    Options are the fields of :class:`~mediaprep.settings.Settings` (``target``, ``dialect``,
    ``transport``, ``model``, ``fps``, ``max_frames``, ...), plus ``limits={key: value}`` to
    override rows of the limits table.
    """
    s = make_settings(settings, **options)
    src = to_source(source)
    if src.url is not None:  # fetched only when allowed (mediaprep.sources.check_url)
        from .sources import check_url

        return check_url(src, s)
    info = probe_source(src, limits=s.limits, deep=s.deep)
    return check_info(info, s)

