"""prepare: make one input sendable (fix what can be fixed) and emit its content part."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from ..check import check_info
from ..findings import Finding
from ..output import safe_relative
from ..probe import probe_source
from ..settings import Settings, make_settings
from ..sources import SourceLike, to_source
from .image import prepare_image
from .result import Prepared
from .sink import Sink

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
        from ..sources import prepare_url

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
        from .video import prepare_frames_list, prepare_video

        if info.kind == "frames":
            return prepare_frames_list(src, report, s, sink)
        return prepare_video(src, report, s, sink)
    return Prepared(path=src.name, kind=info.kind, ok=False, info=info,
                    findings=report.findings + [Finding(
                        "file.unsupported_format", "error",
                        f"{src.name}: not an image or a video")])
