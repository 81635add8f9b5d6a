"""
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from .emit.sink import Sink
from .kinds import check_info, probe_source
from .kinds.image import prepare_image
from .model import Finding, MediaInfo, Prepared, Report
from .output import safe_relative
from .resource import SourceLike, to_source
from .settings import Settings, make_settings


def probe(source: SourceLike, *, deep: bool = False, **options: Any) -> MediaInfo:
    """What ``source`` is: kind, format, size, dimensions, timing. Never raises for bad media."""
    settings = make_settings(options.pop("settings", None), **options)
    src = to_source(source)
    if src.url is not None and settings.allow_url:
        from .resource import probe_url

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
        from .resource import check_url

        return check_url(src, s)
    info = probe_source(src, limits=s.limits, deep=s.deep)
    return check_info(info, s)


__all__ = ["Prepared", "Sink", "prepare"]


def prepare(source: SourceLike, *, settings: Settings | None = None,
            out_dir: str | Path | None = None, stem: PurePath | None = None,
            **options: Any) -> Prepared:
    """Make ``source`` sendable and return its content part (SPEC section 2).

    With ``out_dir``, outputs are written there (atomically; never over the input); without it,
    images stay in memory (base64 transport only). Options are those of
    :class:`~mediaprep.settings.Settings`. Bad media never raises: ``prepared.ok`` is False
    and ``prepared.findings`` say why.
    """
    s = make_settings(settings, **options)
    src = to_source(source)
    if src.url is not None:  # fetched only when allowed (mediaprep.sources.prepare_url)
        from .resource import prepare_url

        return prepare_url(src, s, out_dir, stem)
    if stem is None:  # the input's own name, never its folders (an absolute path would nest)
        stem = safe_relative(Path(src.name).name).with_suffix("")
    sink = Sink(Path(out_dir) if out_dir is not None else None, stem)
    info = probe_source(src, limits=s.limits)
    report = check_info(info, s)
    blocking = [f for f in report.findings if f.severity == "error" and not f.fixable]
    if blocking or info.error_code:
        return Prepared(path=src.name, kind=info.kind, ok=False, info=info,
                        findings=report.findings, bytes_in=info.bytes, tokens=report.tokens)
    if info.kind == "image":
        return prepare_image(src, report, s, sink)
    if info.kind in ("video", "frames"):
        from .kinds.video import prepare_frames_list, prepare_video

        if info.kind == "frames":
            return prepare_frames_list(src, report, s, sink)
        return prepare_video(src, report, s, sink)
    return Prepared(path=src.name, kind=info.kind, ok=False, info=info,
                    findings=report.findings + [Finding(
                        "file.unsupported_format", "error",
                        f"{src.name}: not an image or a video")])
