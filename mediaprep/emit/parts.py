"""Content parts for the OpenAI-compatible and DashScope native dialects (docs/formats.md,
"Content parts")."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import quote


class DataURL(str):
    """A ``data:`` URL this program made (:func:`data_url`): a MIME type from its own table
    and base64, so its JSON text is itself between quotes (ASCII, no quote, backslash or
    control character): a line is written without JSON's scan of megabytes. ``path`` is the
    file whose bytes it carries, once written (:func:`mediaprep.emit.sink.emit_url`)."""

    json_safe = True
    path: Path | None = None


def data_url(data: bytes, mime: str) -> str:
    """A ``data:`` URL carrying ``data`` in base64.

    Args:
        data: the file's bytes.
        mime: its MIME type (``image/jpeg``, ``video/mp4``...).

    Returns:
        ``data:<mime>;base64,<...>``. Raises: nothing.
    """
    return DataURL(f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}")


def file_uri(path: Path) -> str:
    """The ``file://`` URI of a local file, as the DashScope SDKs expect (path transport).

    Args:
        path: the file; made absolute.

    Returns:
        ``file:///abs/path``, percent-encoded. Raises: nothing.
    """
    return Path(path).resolve().as_uri()


def prefixed_url(prefix: str, relative: str) -> str:
    """Where the user hosts a prepared file (url transport).

    Args:
        prefix: ``--url-prefix``, e.g. ``https://cdn.example.com/media``.
        relative: the file's path below the output folder.

    Returns:
        ``prefix/relative``, the path percent-encoded. Raises: nothing.
    """
    return prefix.rstrip("/") + "/" + quote(relative.replace("\\", "/"))


def image_part(url: str, dialect: str) -> dict[str, Any]:
    """An image content part (docs/formats.md, "Content parts").

    Args:
        url: a data URL, ``file://`` URI or https URL.
        dialect: ``openai`` or ``dashscope``.

    Returns:
        ``{"type": "image_url", ...}`` (openai) or ``{"image": url}`` (dashscope).
        Raises: nothing.
    """
    if dialect == "dashscope":
        return {"image": url}
    return {"type": "image_url", "image_url": {"url": url}}


def video_file_part(url: str, fps: float, dialect: str,
                    max_frames: int | None = None) -> dict[str, Any]:
    """A video-file content part: the server samples frames at ``fps`` up to ``max_frames``.

    Args:
        url: a data URL, ``file://`` URI or https URL of the video file.
        fps: the sampling rate asked of the server.
        dialect: ``openai`` or ``dashscope``.
        max_frames: sent in the dashscope dialect when the user set it.

    Returns:
        The part as docs/formats.md ("Content parts") writes it. Raises: nothing.
    """
    if dialect == "dashscope":
        part: dict[str, Any] = {"video": url, "fps": fps}
        if max_frames is not None:
            part["max_frames"] = max_frames
        return part
    return {"type": "video_url", "video_url": {"url": url}, "fps": fps}


def frames_part(urls: list[str], fps: float, dialect: str) -> dict[str, Any]:
    """A video sent as a list of images.

    Args:
        urls: one URL per frame, in order.
        fps: the rate the frames were really taken at.
        dialect: ``openai`` or ``dashscope``.

    Returns:
        ``{"type": "video", "video": [...], "fps": F}`` or ``{"video": [...], "fps": F}``.
        Raises: nothing.
    """
    if dialect == "dashscope":
        return {"video": list(urls), "fps": fps}
    return {"type": "video", "video": list(urls), "fps": fps}


def text_part(text: str, dialect: str) -> dict[str, Any]:
    """A text content part.

    Args:
        text: the text.
        dialect: ``openai`` or ``dashscope``.

    Returns:
        ``{"type": "text", "text": T}`` or ``{"text": T}``. Raises: nothing.
    """
    if dialect == "dashscope":
        return {"text": text}
    return {"type": "text", "text": text}


def urls_in(part: dict[str, Any]) -> list[str]:
    """Every media URL a part carries (for counting data URLs and body bytes).

    Args:
        part: a content part of either dialect.

    Returns:
        Its URLs (several for a frame list; none for text). Raises: nothing.
    """
    if "image_url" in part:
        return [part["image_url"]["url"]]
    if "video_url" in part:
        return [part["video_url"]["url"]]
    for key in ("image", "video"):
        if key in part:
            value = part[key]
            return list(value) if isinstance(value, list) else [value]
    return []
