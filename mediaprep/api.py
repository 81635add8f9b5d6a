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
    return probe_source(to_source(source), limits=settings.limits, deep=deep)


def check(source: SourceLike, *, settings: Settings | None = None, **options: Any) -> Report:
    """Check ``source`` against every applicable limit; nothing is written.

    Options are the fields of :class:`~mediaprep.settings.Settings` (``target``, ``dialect``,
    ``transport``, ``model``, ``fps``, ``max_frames``, ...), plus ``limits={key: value}`` to
    override rows of the limits table.
    """
    s = make_settings(settings, **options)
    info = probe_source(to_source(source), limits=s.limits, deep=s.deep)
    return check_info(info, s)

