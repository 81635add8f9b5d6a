"""Whole messages and request bodies, as the official openai and dashscope SDKs accept them."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..errors import MediaprepError
from ..limits import Limits, context_tokens
from ..settings import Settings, SettingsError
from ..targets.base import Estimator
from ..types import Finding
from .parts import text_part, urls_in

#: Bytes of an image read to learn its size (its header) from a data URL or file:// path.
_HEADER_BYTES = 256 * 1024


class RequestLimitError(MediaprepError, ValueError):
    """A whole request breaks a limit the client decides (``tokens.context``): ``findings``
    say which. Raised by :func:`request_body`; :func:`check_request` returns the findings."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__("; ".join(f.message for f in findings))
        self.findings = findings

_DASHSCOPE_KEYS = frozenset({"image", "video", "text", "audio"})


def part_dialect(part: dict[str, Any]) -> str | None:
    """The dialect a content part is written in: OpenAI-compatible parts name their ``type``;
    DashScope native parts are keyed by the medium (``image``, ``video``, ``text``)."""
    if "type" in part:
        return "openai"
    if _DASHSCOPE_KEYS & part.keys():
        return "dashscope"
    return None


def _summary(part: dict[str, Any]) -> str:
    """A short, readable naming of a part (never a whole data URL)."""
    def short(value: Any) -> Any:
        if isinstance(value, str) and len(value) > 48:
            return value[:45] + "..."
        if isinstance(value, dict):
            return {k: short(v) for k, v in value.items()}
        if isinstance(value, list):
            return [short(v) for v in value[:3]] + (["..."] if len(value) > 3 else [])
        return value

    return json.dumps(short(part), ensure_ascii=False, default=str)


def _content(items: Iterable[Any], dialect: str) -> list[dict[str, Any]]:
    content = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            content.append(text_part(item, dialect))
            continue
        if isinstance(item, dict):
            part = item
        elif getattr(item, "parts", None):  # a Prepared sent as tiles: every tile, in order
            content += _content(item.parts, dialect)
            continue
        elif getattr(item, "part", None) is not None:  # a Prepared
            part = item.part
        else:
            raise ValueError(f"cannot put {item!r} in a message (not prepared or failed?)")
        other = part_dialect(part)
        if other is not None and other != dialect:
            name = getattr(item, "path", None)
            what = f"item {index}" + (f" ({name})" if name else "")
            raise SettingsError(f"{what} is a {other}-dialect part, but the request is in the "
                                f"{dialect} dialect: prepare it with dialect={dialect!r}: "
                                f"{_summary(part)}")
        content.append(part)
    return content


def user_message(items: Sequence[Any], *, dialect: str = "openai") -> dict[str, Any]:
    """A user message: media (Prepared objects or parts) and text (str), in order.

    Args:
        items: Prepared results, content parts or strings (text).
        dialect: ``openai`` or ``dashscope``; parts of the other dialect are refused.

    Returns:
        ``{"role": "user", "content": [...]}``.

    Raises:
        SettingsError: an item is a part of the other dialect, or of no known shape.
    """
    return {"role": "user", "content": _content(items, dialect)}


def openai_body(model: str, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An OpenAI-compatible chat/completions body (DashScope compatible mode, Moonshot).

    Args:
        model: the model name, e.g. ``kimi-k2.5``.
        messages: the chat messages.
        extra: further body keys (``temperature``...).

    Returns:
        ``{"model", "messages", ...}``. Raises: nothing.
    """
    return {"model": model, "messages": messages, **extra}


def dashscope_body(model: str, messages: list[dict[str, Any]],
                   parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """A native DashScope MultiModalConversation body.

    Args:
        model: the model name.
        messages: the chat messages (native content lists).
        parameters: the body's ``parameters`` (none: empty).

    Returns:
        ``{"model", "input": {"messages"}, "parameters"}``. Raises: nothing.
    """
    return {"model": model, "input": {"messages": messages}, "parameters": dict(parameters or {})}


def request_body(items: Sequence[Any], settings: Settings, *, system: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    """One user turn as a whole request body in the settings' dialect.

    Args:
        items: Prepared results, content parts or strings, in order.
        settings: the dialect, model and limits (the model's context) in force.
        system: an optional system prompt.
        extra: further body keys (openai) or ``parameters`` (dashscope).

    Returns:
        A body the official ``openai`` / ``dashscope`` SDKs accept.

    Raises:
        RequestLimitError: the estimated vision tokens exceed the model's context
            (``tokens.context``); its ``findings`` say by how much.
        SettingsError: an item is a part of the other dialect.
    """
    messages = []
    if system:
        messages.append({"role": "system", "content": system if settings.dialect == "openai"
                         else [text_part(system, "dashscope")]})
    messages.append(user_message(items, dialect=settings.dialect))
    problems = context_request_findings(_items_tokens(items, settings.estimator), settings)
    if problems:
        raise RequestLimitError(problems)
    if settings.dialect == "dashscope":
        return dashscope_body(settings.model, messages, extra or None)
    return openai_body(settings.model, messages, **extra)


def request_headers(items: Sequence[Any], settings: Settings) -> dict[str, str]:
    """The HTTP headers a request with these items needs besides the key and content type:
    Model Studio resolves uploaded ``oss://`` references only when the request carries
    ``X-DashScope-OssResourceResolve: enable`` (its SDK adds it itself; the openai SDK takes it
    as ``extra_headers``, curl as ``-H``).

    Args:
        items: Prepared results, content parts or strings, as for :func:`request_body`.
        settings: the target in force.

    Returns:
        The headers (empty: none needed). Raises: nothing.
    """
    uploads = settings.target.uploads
    if uploads is None or not uploads.headers:
        return {}
    prefix = uploads.scheme + "://"
    for item in items:
        if any(u.startswith(prefix) for part in _media_parts(item) for u in urls_in(part)):
            return dict(uploads.headers)
    return {}


def _media_parts(item: Any) -> list[dict[str, Any]]:
    """The content parts an item puts in a message: a part itself, a Prepared's part or its
    tiles (``parts``); none for text."""
    if isinstance(item, Mapping):
        return [dict(item)]
    tiles = getattr(item, "parts", None)
    if tiles:
        return [dict(p) for p in tiles]
    part = getattr(item, "part", None)
    return [dict(part)] if isinstance(part, Mapping) else []


def _image_size(url: str) -> tuple[int, int] | None:
    """An image's size from the header of a data URL or a file:// path (None: not known)."""
    try:
        if url.startswith("data:"):
            comma = url.find(",")
            if comma < 0 or ";base64" not in url[:comma]:
                return None
            chars = url[comma + 1: comma + 1 + _HEADER_BYTES * 4 // 3]
            head = base64.b64decode(chars[: len(chars) // 4 * 4])
        elif url.startswith("file:"):
            with open(Path(unquote(urlparse(url).path)), "rb") as fh:
                head = fh.read(_HEADER_BYTES)
        else:
            return None
        from ..backends.pillow import picture_size

        return picture_size(io.BytesIO(head))
    except Exception:  # any header PIL cannot read (or a bomb it refuses): not counted
        return None


def part_tokens(part: Mapping[str, Any], est: Estimator) -> int | None:
    """The vision-token estimate of what the client decides in one part: an image, or a frame
    list (each chunk of frames counted at its first frame's size, as the processor does).
    None for text, a video file (the server samples it) and media whose size cannot be read
    (an https URL)."""
    if part.get("type") == "image_url" or "image" in part:
        raw = part.get("image_url", {}).get("url") if "image_url" in part else part.get("image")
        size = _image_size(raw) if isinstance(raw, str) else None
        return est.image(*size) if size else None
    frames = part.get("video")
    if isinstance(frames, list) and frames:
        sizes = _chunk_sizes(frames, est.cfg.temporal_merge_kernel_size)
        return None if sizes is None else est.frame_list(sizes)
    return None


def _chunk_sizes(frames: list[Any], k: int) -> list[tuple[int, int]] | None:
    """Each frame's size as the processor takes it: its chunk's (``k`` frames) first frame's
    (None: a size cannot be read)."""
    sizes: list[tuple[int, int]] = []
    for i in range(0, len(frames), k):  # only a chunk's first frame sizes it
        size = _image_size(frames[i]) if isinstance(frames[i], str) else None
        if size is None:
            return None
        sizes += [size] * len(frames[i:i + k])
    return sizes


def _items_tokens(items: Iterable[Any], est: Estimator | None) -> int:
    return sum(_item_tokens(item, est) for item in items if not isinstance(item, str))


def _item_tokens(item: Any, est: Estimator | None) -> int:
    """The vision tokens the client decides in one item: a Prepared image's or frame list's own
    estimate, else its part's (a video file's part counts 0)."""
    estimate = _prepared_estimate(item)
    if estimate is not None:
        return estimate
    part = item if isinstance(item, dict) else getattr(item, "part", None)
    if isinstance(part, Mapping) and est is not None:
        return part_tokens(part, est) or 0
    return 0


def _prepared_estimate(item: Any) -> int | None:
    """A Prepared image's, frame list's or sampled video's token estimate (None: it has none)."""
    kind = getattr(item, "kind", None)
    sampled = kind == "video" and getattr(item, "timestamps", None) is not None
    if kind not in ("image", "frames") and not sampled:
        return None
    tokens = getattr(item, "tokens", None)
    if isinstance(tokens, Mapping) and tokens.get("estimate") is not None:
        return int(tokens["estimate"])
    return None


def context_request_findings(total: int, settings: Settings) -> list[Finding]:
    """``tokens.context`` (error) when the vision tokens the client decides in one request
    (``total``) are above the model's context."""
    if settings.estimator is None:
        return []
    ctx = context_tokens(settings.limits, settings.model)
    if ctx is None or total <= ctx:
        return []
    return [Finding("tokens.context", "error",
                    f"the request is about {total:,} vision tokens (estimate), above the "
                    f"{ctx:,}-token context of {settings.model}; split it into smaller "
                    "requests (prep --batch-requests --group cuts them to fit)", ctx, total)]


def check_request(body: dict[str, Any], settings: Settings) -> list[Finding]:
    """Request-level limits of a whole body: media per request, body bytes, the context.

    Args:
        body: a body as :func:`request_body` makes it (either dialect).
        settings: the limits in force.

    Returns:
        The findings (empty: the request is within every limit). Raises: nothing.
    """
    parts = _content_parts(body)
    urls = [u for p in parts for u in urls_in(p)]
    data_urls = sum(1 for u in urls if u.startswith("data:"))
    out = _url_count_findings(settings.limits, data_urls, len(urls) - data_urls)
    out += _body_size_findings(settings.limits, body)
    if context_tokens(settings.limits, settings.model) is not None:
        out += context_request_findings(_parts_tokens(parts, settings.estimator), settings)
    return out


def _content_parts(body: dict[str, Any]) -> list[Any]:
    """The content parts of a body's messages, in either dialect."""
    messages = body.get("messages") or body.get("input", {}).get("messages", [])
    return [p for m in messages if isinstance(m.get("content"), list) for p in m["content"]]


def _parts_tokens(parts: list[Any], est: Estimator | None) -> int:
    if est is None:
        return 0
    return sum(part_tokens(p, est) or 0 for p in parts if isinstance(p, Mapping))


def _url_count_findings(limits: Limits, data_urls: int, other: int) -> list[Finding]:
    out: list[Finding] = []
    row = limits.get("request.max_data_urls")
    if row is not None and row.value is not None and row.exceeds_max(data_urls):
        out.append(Finding(row.code, row.severity, f"the request carries {data_urls} data URLs;"
                           f" at most {row.value} are accepted", row.value, data_urls))
    row = limits.get("request.max_media_urls")
    if row is not None and row.value is not None and row.exceeds_max(other):
        out.append(Finding(row.code, row.severity, f"the request carries {other} media URLs; "
                           f"at most {row.value} are accepted", row.value, other))
    return out


def _body_size_findings(limits: Limits, body: dict[str, Any]) -> list[Finding]:
    row = limits.get("request.max_body_bytes")
    if row is None or row.value is None:
        return []
    size = len(json.dumps(body, separators=(",", ":")).encode())
    if not row.exceeds_max(size):
        return []
    return [Finding(row.code, row.severity, f"the request body is {size:,} bytes; "
                    f"at most {row.value:,} are accepted", row.value, size)]
