"""Whole messages and request bodies, as the official openai and dashscope SDKs accept them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from ..model import Finding
from ..settings import Settings, SettingsError
from .parts import text_part, urls_in

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
    """A user message: media (Prepared objects or parts) and text (str), in order."""
    return {"role": "user", "content": _content(items, dialect)}


def openai_body(model: str, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """An OpenAI-compatible chat/completions body (DashScope compatible mode, Moonshot)."""
    return {"model": model, "messages": messages, **extra}


def dashscope_body(model: str, messages: list[dict[str, Any]],
                   parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """A native DashScope MultiModalConversation body (``input.messages``, ``parameters``)."""
    return {"model": model, "input": {"messages": messages}, "parameters": dict(parameters or {})}


def request_body(items: Sequence[Any], settings: Settings, *, system: str | None = None,
                 **extra: Any) -> dict[str, Any]:
    """One user turn as a whole body in the settings' dialect."""
    messages = []
    if system:
        messages.append({"role": "system", "content": system if settings.dialect == "openai"
                         else [text_part(system, "dashscope")]})
    messages.append(user_message(items, dialect=settings.dialect))
    if settings.dialect == "dashscope":
        return dashscope_body(settings.model, messages, extra or None)
    return openai_body(settings.model, messages, **extra)


def check_request(body: dict[str, Any], settings: Settings) -> list[Finding]:
    """Request-level limits: media count per request and whole-body bytes."""
    limits = settings.limits
    messages = body.get("messages") or body.get("input", {}).get("messages", [])
    urls = [u for m in messages if isinstance(m.get("content"), list)
            for p in m["content"] for u in urls_in(p)]
    data_urls = sum(1 for u in urls if u.startswith("data:"))
    other = len(urls) - data_urls
    out: list[Finding] = []
    row = limits.get("request.max_data_urls")
    if row is not None and row.value is not None and row.exceeds_max(data_urls):
        out.append(Finding(row.code, row.severity, f"the request carries {data_urls} data URLs;"
                           f" at most {row.value} are accepted", row.value, data_urls))
    row = limits.get("request.max_media_urls")
    if row is not None and row.value is not None and row.exceeds_max(other):
        out.append(Finding(row.code, row.severity, f"the request carries {other} media URLs; "
                           f"at most {row.value} are accepted", row.value, other))
    row = limits.get("request.max_body_bytes")
    if row is not None and row.value is not None:
        size = len(json.dumps(body, separators=(",", ":")).encode())
        if row.exceeds_max(size):
            out.append(Finding(row.code, row.severity, f"the request body is {size:,} bytes; "
                               f"at most {row.value:,} are accepted", row.value, size))
    return out
