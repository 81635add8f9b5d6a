"""Probe stage: what an input is, from its bytes (kind, format, size, dimensions, timing)."""

from __future__ import annotations

from pathlib import Path

from ..info import MediaInfo
from ..limits import Limits, limits_for
from ..sources import Source, SourceLike, to_source
from .frames import probe_frames
from .image import probe_image
from .sniff import HEAD_BYTES, Sniffed, extension_matches, sniff
from .video import probe_video

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
    from .sniff import EXTENSIONS, IMAGE_FORMATS, VIDEO_FORMATS

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
