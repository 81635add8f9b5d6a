"""Content parts (SPEC section 2) for the OpenAI-compatible and DashScope native dialects."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import quote


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def file_uri(path: Path) -> str:
    """``file:///abs/path`` (absolute, percent-encoded) as the DashScope SDK expects."""
    return Path(path).resolve().as_uri()


def prefixed_url(prefix: str, relative: str) -> str:
    """Where the user hosts a prepared file: ``--url-prefix`` + its path under the output dir."""
    return prefix.rstrip("/") + "/" + quote(relative.replace("\\", "/"))


def image_part(url: str, dialect: str) -> dict[str, Any]:
    if dialect == "dashscope":
        return {"image": url}
    return {"type": "image_url", "image_url": {"url": url}}


def video_file_part(url: str, fps: float, dialect: str,
                    max_frames: int | None = None) -> dict[str, Any]:
    if dialect == "dashscope":
        part: dict[str, Any] = {"video": url, "fps": fps}
        if max_frames is not None:
            part["max_frames"] = max_frames
        return part
    return {"type": "video_url", "video_url": {"url": url}, "fps": fps}


def frames_part(urls: list[str], fps: float, dialect: str) -> dict[str, Any]:
    if dialect == "dashscope":
        return {"video": list(urls), "fps": fps}
    return {"type": "video", "video": list(urls), "fps": fps}


def text_part(text: str, dialect: str) -> dict[str, Any]:
    if dialect == "dashscope":
        return {"text": text}
    return {"type": "text", "text": text}


def urls_in(part: dict[str, Any]) -> list[str]:
    """Every media URL a part carries (for counting data URLs and body bytes)."""
    if "image_url" in part:
        return [part["image_url"]["url"]]
    if "video_url" in part:
        return [part["video_url"]["url"]]
    for key in ("image", "video"):
        if key in part:
            value = part[key]
            return list(value) if isinstance(value, list) else [value]
    return []
