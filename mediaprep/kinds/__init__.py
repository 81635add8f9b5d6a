"""Media kinds: each kind module (image, video, frames) holds its probe -> check -> plan ->
prepare strategy; this module picks the kind of an input and routes to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends.av import probe_video
from ..backends.pillow import probe_image
from ..backends.sniff import HEAD_BYTES, Sniffed, data_url_size, extension_matches, mime_for, sniff
from ..limits import Limits, limits_for
from ..model import Finding, MediaInfo, has_errors
from ..resource import Source, SourceLike, to_source
from ..settings import Settings
from .common import check_extension, check_model, check_params, finding, probe_failure
from .frames import check_frames, probe_frames
from .image import check_image
from .video import check_video

__all__ = ["probe", "probe_source", "sniff"]


def probe(source: SourceLike, *, limits: Limits | None = None, deep: bool = False) -> MediaInfo:
    """What ``source`` is. Never raises for bad media: failures come back in ``info.error``."""
    return probe_source(to_source(source), limits=limits, deep=deep)


def probe_source(src: Source, *, limits: Limits | None = None, deep: bool = False) -> MediaInfo:
    limits = limits or limits_for()
    max_pixels = limits.value("image.max_decode_pixels")
    if src.frames is not None:
        return probe_frames(src, lambda m: probe_source(m, limits=limits, deep=deep))
    if src.url is not None:
        info = MediaInfo(path=src.name, kind="other")
        info.error_code = "url.not_verified"
        info.error = "a URL input is not fetched unless allowed"
        return info
    if src.image is not None:
        return probe_image(src, Sniffed("image", None), max_pixels=max_pixels)
    if src.path is not None:
        problem = _path_problem(src.path)
        if problem:
            return MediaInfo(path=src.name, kind="other", error=problem,
                             error_code="file.unreadable")
    try:
        head = src.head(HEAD_BYTES)
    except OSError as exc:
        return MediaInfo(path=src.name, kind="other", error=f"cannot read: {exc.strerror}",
                         error_code="file.unreadable")
    sniffed = sniff(head)
    if sniffed.kind == "empty":
        return MediaInfo(path=src.name, kind="other", bytes=0, extension=src.extension,
                         error="the file is empty (0 bytes)", error_code="file.unreadable")
    if sniffed.kind == "image":
        info = probe_image(src, sniffed, max_pixels=max_pixels, deep=deep, limits=limits)
    elif sniffed.kind == "video":
        info = probe_video(src, sniffed)
    else:
        info = _unknown(src, sniffed)
    info.extension = src.extension
    info.extension_matches = extension_matches(src.extension, info.format)
    return info


def _path_problem(path: Path) -> str | None:
    try:
        if not path.exists():
            if path.is_symlink():
                return "a symbolic link that leads nowhere (dangling, or a loop)"
            return "no such file"
        if path.is_dir():
            return "a folder, not a file"
        if not path.is_file():
            # FIFOs and devices never end; reading them would hang the batch
            return "not a regular file (device, pipe or socket)"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    return None


def _unknown(src: Source, sniffed: Sniffed) -> MediaInfo:
    """Bytes no magic number matched: try the decoders before giving up (e.g. TGA, raw MPEG)."""
    from ..backends.sniff import EXTENSIONS, IMAGE_FORMATS, VIDEO_FORMATS

    claimed = EXTENSIONS.get(src.extension or "")
    what = "text" if sniffed.detail == "text" else "data"
    if sniffed.detail != "text":
        info = probe_image(src, Sniffed("image", None), max_pixels=None)
        if info.error_code is None:
            return info
        vinfo = probe_video(src, Sniffed("video", None))
        if vinfo.error_code is None:
            return vinfo
    info = MediaInfo(path=src.name, kind="other", bytes=src.size)
    if claimed in IMAGE_FORMATS or claimed in VIDEO_FORMATS:
        info.error_code = "file.unreadable"
        info.error = f"named .{src.extension} but the bytes are not a {claimed} file ({what})"
    else:
        info.error_code = "file.unsupported_format"
        info.error = f"not an image or a video (looks like {what})"
    return info


__all__ = ["Report", "check_info", "data_url_size", "mime_for"]




def check_info(info: MediaInfo, settings: Settings) -> Report:
    """Findings for a probed input under ``settings``."""
    findings = check_model(settings) + probe_failure(info, settings.limits)
    if info.error_code is None or info.kind == "frames":
        if info.kind == "image":
            findings += check_extension(info) + check_image(info, settings)
        elif info.kind == "video":
            findings += check_extension(info) + check_params(settings)
            findings += check_video(info, settings)
        elif info.kind == "frames":
            findings += check_params(settings) + check_frames(info, settings)
        findings += _single_item_body(info, settings)
    report = Report(path=info.path, kind=info.kind, info=info, findings=findings)
    _attach_tokens(report, settings)
    return report


def _single_item_body(info: MediaInfo, settings: Settings) -> list[Finding]:
    """A target with a whole-body limit: one item alone must fit in it."""
    row = settings.limits.get("request.max_body_bytes")
    if row is None or row.value is None or info.kind not in ("image", "video"):
        return []
    size = (data_url_size(info.bytes, mime_for(info.format)) if settings.transport == "base64"
            else info.bytes)
    if row.exceeds_max(size):
        return [finding(row, f"{info.path}: a request carrying it is at least {size:,} bytes, "
                             f"above {row.value:,}; prep shrinks it", size, fixable=True)]
    return []


def _attach_tokens(report: Report, settings: Settings) -> None:
    """Token estimate for the Kimi vision models (see mediaprep.tokens for the rule)."""
    from .common import token_findings

    token_findings(report, settings)
