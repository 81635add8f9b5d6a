"""Every limit mediaprep enforces, as data: one table per target, each row with its source.

Each target's table lives in its own module (``mediaprep/targets/``); this module applies user
overrides to it and answers questions about it. Each :class:`Limit` names the finding code it
produces, its severity, and the document it comes from (:data:`SOURCES`, with the date of the
document in hand). Users override any row by key (``--limit image.min_side=16`` or
``[tool.mediaprep.limits]``); :func:`limits_for` applies the overrides.

Sizes: the providers write "10 MB" and quote 10,485,760 bytes in their error messages, so MB
here is MiB (1024·1024) throughout.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from .errors import MediaprepError
from .targets import NAMES, REGISTRY, get_target
from .targets.base import (
    DIALECTS,
    SHARED_SOURCES,
    TRANSPORTS,
    GiB,
    KiB,
    Limit,
    MiB,
    Source,
    Target,
)

#: Request body bytes besides the media that a request with ONE image needs (JSON keys, model
#: name, a short prompt): what a base64 image may not use of a whole-body limit.
IMAGE_REQUEST_OVERHEAD = 16 * KiB
#: The same for a video: its file part, or a frame list whose per-frame part keys (~60 B each)
#: add up over hundreds of frames; hence larger than the image's.
VIDEO_REQUEST_OVERHEAD = 64 * KiB
#: Download cap for a URL input when the target's table has no byte row for its kind.
FETCH_MAX_BYTES_UNLISTED = 100 * MiB

#: Bytes mediaprep reads of a config file or an input manifest before refusing it (an endless
#: file such as /dev/zero would otherwise grow until MemoryError): about 500,000 listed paths.
TEXT_INPUT_MAX_BYTES = 64 * MiB

#: The upload transport's network behaviour (mediaprep's defaults; no provider documents them):
#: attempts per request (429, 5xx and dropped connections are retried), the first backoff and
#: the longest wait (exponential with jitter; a Retry-After is honoured up to the longest wait),
#: seconds a connection or a read may stall, and the file size from which a terminal shows
#: upload progress in bytes.
UPLOAD_ATTEMPTS = 5
UPLOAD_BACKOFF_SECONDS = 0.5
UPLOAD_MAX_WAIT_SECONDS = 60.0
UPLOAD_STALL_SECONDS = 120.0
UPLOAD_PROGRESS_MIN_BYTES = 8 * MiB

#: Bump when a row changes meaning or value: the prep cache keys on it.
TABLE_VERSION = "2026-12-07.1"

#: The targets' names and tables (each target's module is its home: mediaprep/targets/).
TARGETS = NAMES
TABLES: Mapping[str, Mapping[str, Limit]] = MappingProxyType(
    {name: t.table for name, t in REGISTRY.items()})
#: Every source any table cites, by key.
SOURCES: Mapping[str, Source] = MappingProxyType(
    {**SHARED_SOURCES, **{k: v for t in REGISTRY.values() for k, v in t.sources.items()}})

__all__ = ["DIALECTS", "GiB", "KiB", "Limit", "Limits", "LimitError", "MiB", "Source",
           "TABLES", "TARGETS", "TRANSPORTS", "Target", "context_tokens", "fetch_cap",
           "limits_for", "parse_limit_value", "row_elsewhere"]


#: Defaults of parameters (not limits): what the providers do when the user says nothing.
DEFAULT_TARGET = "dashscope"
DEFAULT_DIALECT = "openai"
DEFAULT_TRANSPORT = "base64"
DEFAULT_MODEL = get_target(DEFAULT_TARGET).default_model
DEFAULT_FPS = 2.0  # dashscope-vision: "default 2"
DEFAULT_MAX_FRAMES = 2000  # dashscope-vision: "default 2,000"


class Limits(Mapping[str, Limit]):
    """The limits in force for one target, after user overrides. Read-only mapping key -> Limit."""

    def __init__(self, target: str, rows: dict[str, Limit]) -> None:
        self.target = str(target)
        self._rows = rows

    def __getitem__(self, key: str) -> Limit:
        return self._rows[key]

    def __iter__(self):  # type: ignore[override]
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def value(self, key: str, default: Any = None) -> Any:
        row = self._rows.get(key)
        return default if row is None else row.value

    def to_json(self) -> dict[str, Any]:
        out = {}
        for key, row in self._rows.items():
            src = SOURCES[row.source]
            out[key] = {
                "value": _jsonable(row.value),
                "strict": row.strict,
                "code": row.code,
                "severity": row.severity,
                "note": row.note,
                "source": {"title": src.title, "url": src.url, "as_of": src.as_of},
            }
        return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return dict(v)
    if isinstance(v, frozenset):
        return sorted(v)
    if isinstance(v, tuple):
        return list(v)
    return v


class LimitError(MediaprepError, ValueError):
    """A limit override that cannot be applied (unknown key, bad value)."""


#: Rows that cannot be switched off (``off``/``none``): the checks read them as sets, ranges or
#: parameters; every other row may be off (no limit).
ALWAYS_ON = frozenset({
    "param.fps.min", "param.fps.max", "param.max_frames.max", "image.formats",
    "image.formats_above_tier", "image.format_tier_box", "video.formats", "video.audio",
    "models.vision", "models.text_only", "dialects", "transports",
})
#: Rows whose value must be above zero (zero would divide or refuse every input as a parameter).
POSITIVE = frozenset({"param.fps.min", "param.fps.max", "param.max_frames.max"})


def parse_limit_value(row: Limit, raw: Any) -> Any:
    """Turn an override (from a command line string or a TOML value) into the row's type.

    Raises:
        LimitError: the value is empty, not a number where one is needed, not finite (nan,
            inf), negative, or ``off`` for a row that cannot be off.
    """
    value = _parse_limit_value(row, raw)
    if value is None and row.key in ALWAYS_ON:
        raise LimitError(f"limit {row.key} cannot be off")
    for number in _numbers_in(value):
        if not math.isfinite(number) or number < 0 or (number == 0 and row.key in POSITIVE):
            lowest = "above 0" if row.key in POSITIVE else "0 or more"
            raise LimitError(f"limit {row.key} takes a finite number {lowest}, "
                             f"got {raw!r}")
    return value


def _numbers_in(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, tuple):
        return [v for v in value if isinstance(v, (int, float))]
    if isinstance(value, Mapping):
        return [v for v in value.values() if isinstance(v, (int, float))]
    return []


def _parse_limit_value(row: Limit, raw: Any) -> Any:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise LimitError(f"limit {row.key} needs a value (or off), got {raw!r}")
    if isinstance(raw, str) and raw.strip().lower() in ("none", "off"):
        return None
    try:
        return _value_parser(row.value)(row.value, raw)
    except (ValueError, TypeError) as exc:
        raise LimitError(f"cannot read {raw!r} as a value for limit {row.key}") from exc


def _value_parser(cur: Any) -> Callable[[Any, Any], Any]:
    """How an override is read for a row whose value is ``cur`` (a row off reads a number)."""
    if cur is None:
        return _parse_number
    return next((parse for kind, parse in _VALUE_PARSERS if isinstance(cur, kind)),
                _parse_as_given)


def _parse_set(_cur: frozenset[str], raw: Any) -> frozenset[str]:
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return frozenset(str(i).strip() for i in items if str(i).strip())


def _parse_pair(_cur: tuple[int, int], raw: Any) -> tuple[int, int]:
    a, b = raw.lower().replace("×", "x").split("x") if isinstance(raw, str) else raw
    return (int(a), int(b))


def _parse_flag(_cur: bool, raw: Any) -> bool:
    return str(raw).lower() in ("1", "true", "yes")


def _parse_number(_cur: Any, raw: Any) -> int | float:
    f = float(raw)
    return int(f) if f.is_integer() else f


def _parse_float(_cur: float, raw: Any) -> float:
    return float(raw)


def _parse_as_given(_cur: Any, raw: Any) -> Any:
    return raw


def _parse_per_model(cur: Mapping[str, Any], raw: Any) -> Any:
    """A per-model row: one number (every model), ``model=N,...`` or a TOML table (those
    models; the others keep theirs)."""
    if isinstance(raw, Mapping):
        pairs = list(raw.items())
    elif isinstance(raw, str) and "=" in raw:
        pairs = [tuple(x.split("=", 1)) for x in raw.split(",") if x.strip()]
    else:
        return _count(raw)
    out = dict(cur)
    for model, value in pairs:
        out[str(model).strip()] = _count(value)
    return MappingProxyType(out)


def _count(value: Any) -> int:
    """A whole number of at least 1 (a ValueError otherwise)."""
    f = float(value)
    if not f.is_integer() or f < 1:
        raise ValueError(value)
    return int(f)


#: How an override is read, by the type of the row's value (in this order: a bool is an int).
_VALUE_PARSERS: tuple[tuple[type, Callable[[Any, Any], Any]], ...] = (
    (Mapping, _parse_per_model), (frozenset, _parse_set), (tuple, _parse_pair),
    (bool, _parse_flag), (int, _parse_number), (float, _parse_float))


def context_tokens(limits: Mapping[str, Limit], model: str) -> int | None:
    """The context (tokens) in force for ``model``: the ``tokens.context`` row, per model, or
    one number for all; None when it is off or the model has no figure."""
    row = limits.get("tokens.context")
    if row is None or row.value is None:
        return None
    if isinstance(row.value, Mapping):
        value = row.value.get(model)
        return None if value is None else int(value)
    return int(row.value)


def limits_for(target: str | Target = DEFAULT_TARGET,
               overrides: Mapping[str, Any] | None = None) -> Limits:
    """The limits in force for a target, with overrides applied.

    Args:
        target: a name of :data:`TARGETS` (``dashscope``, ``moonshot``, ``vllm``) or a Target.
        overrides: row key -> value (or its string form, as ``--limit KEY=VALUE`` gives it).

    Returns:
        The :class:`Limits` table (every row with its source and date).

    Raises:
        LimitError: an unknown target or row key, a row only other targets have (an override
            that would do nothing), or a value the row cannot take.
    """
    try:
        rows = dict(get_target(target).table)
    except KeyError as exc:
        raise LimitError(exc.args[0]) from None
    for key, raw in (overrides or {}).items():
        if key not in rows:
            elsewhere = row_elsewhere(target, key)
            if elsewhere:
                raise LimitError(elsewhere)
            known = ", ".join(sorted({k for table in TABLES.values() for k in table}))
            raise LimitError(f"unknown limit {key!r}; known: {known}")
        rows[key] = dataclasses.replace(rows[key], value=parse_limit_value(rows[key], raw))
    return Limits(target, rows)


def row_elsewhere(target: str | Target, key: str) -> str | None:
    """Why an override of ``key`` cannot apply to ``target`` when only other targets have the
    row (``"limit request.max_data_urls: target moonshot has no such row (dashscope, vllm have
    it)"``); None when ``target`` has it or no target does (an unknown key)."""
    name = get_target(target).name
    having = [other for other, table in TABLES.items() if key in table]
    if not having or name in having:
        return None
    verb = "has" if len(having) == 1 else "have"
    return f"limit {key}: target {name} has no such row ({', '.join(having)} {verb} it)"


def fetch_cap(limits: Mapping[str, Limit], kind: str | None) -> int:
    """Bytes a URL input of ``kind`` may download: the table's URL byte row for the kind
    (``image.max_bytes.url`` 10 MiB, ``video.max_bytes.url`` 2 GiB on DashScope), else the
    whole-body limit, else :data:`FETCH_MAX_BYTES_UNLISTED`. ``kind`` None (not known yet):
    the largest of the image and video caps."""
    if kind not in ("image", "video"):
        return max(fetch_cap(limits, "image"), fetch_cap(limits, "video"))
    for key in (f"{kind}.max_bytes.url", "request.max_body_bytes"):
        row = limits.get(key)
        if row is not None and row.value is not None:
            return int(row.value)
    return FETCH_MAX_BYTES_UNLISTED
