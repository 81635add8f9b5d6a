"""Every limit mediaprep enforces, as data: one table per target, each row with its source.

A new provider document means editing this file only. Each :class:`Limit` names the finding code
it produces, its severity, and the document it comes from (:data:`SOURCES`, with the date of the
document in hand). Users override any row by key (``--limit image.min_side=16`` or
``[tool.mediaprep.limits]``); :func:`limits_for` applies the overrides.

Sizes: the providers write "10 MB" and quote 10,485,760 bytes in their error messages, so MB
here is MiB (1024·1024) throughout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import MediaprepError
from .model import CODES, Severity
from .tokens import VISION_MODELS_WITH_ESTIMATE

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

#: Request body bytes besides the media that a request with ONE image needs (JSON keys, model
#: name, a short prompt): what a base64 image may not use of a whole-body limit.
IMAGE_REQUEST_OVERHEAD = 16 * KiB
#: The same for a video: its file part, or a frame list whose per-frame part keys (~60 B each)
#: add up over hundreds of frames; hence larger than the image's.
VIDEO_REQUEST_OVERHEAD = 64 * KiB
#: Download cap for a URL input when the target's table has no byte row for its kind.
FETCH_MAX_BYTES_UNLISTED = 100 * MiB

#: Bump when a row changes meaning or value: the prep cache keys on it.
TABLE_VERSION = "2026-11-23.2"

TARGETS = ("dashscope", "moonshot")
DIALECTS = ("openai", "dashscope")
TRANSPORTS = ("base64", "url", "path")


@dataclass(frozen=True)
class Source:
    title: str
    url: str
    as_of: str  # date of the document in hand


SOURCES: dict[str, Source] = {
    "dashscope-vision": Source(
        "Alibaba Cloud Model Studio: image and video understanding (Kimi vision models), "
        "input limits",
        "https://www.alibabacloud.com/help/en/model-studio/vision",
        "2026-11",
    ),
    "dashscope-errors": Source(
        "Model Studio server messages: 'Exceeded limit on max bytes per data-uri item : "
        "10485760', 'max data-uri per request: 250'",
        "https://www.alibabacloud.com/help/en/model-studio/error-code",
        "2026-11",
    ),
    "dashscope-models": Source(
        "Alibaba Cloud Model Studio: Kimi model list (kimi-k2.7-code, kimi-k2.6, kimi-k2.5 "
        "vision; kimi-k2-thinking, Moonshot-Kimi-K2-Instruct text only)",
        "https://www.alibabacloud.com/help/en/model-studio/kimi-api",
        "2026-11",
    ),
    "moonshot-vision": Source(
        "Moonshot open platform: using the Kimi vision models (image and video input)",
        "https://platform.moonshot.ai/docs/guide/use-kimi-vision-model",
        "2026-11",
    ),
    "moonshot-models": Source(
        "Moonshot open platform: model list and pricing (kimi-k2.5 and the other K2 models: "
        "256K context window, 262,144 tokens)",
        "https://platform.moonshot.ai/docs/pricing/chat",
        "2026-11",
    ),
    "mediaprep": Source(
        "mediaprep safety default (no provider limit documented)",
        "https://github.com/mediaprep/mediaprep#limits",
        "2026-11",
    ),
}


@dataclass(frozen=True)
class Limit:
    """One enforced limit.

    ``value`` is the boundary itself; ``strict`` says the boundary value is already outside
    (e.g. "each side must exceed 10 px": min 10, strict; "< 10 MB": max, strict).
    """

    key: str
    value: Any
    code: str
    severity: Severity
    source: str
    note: str
    strict: bool = False

    def __post_init__(self) -> None:
        assert self.code in CODES, self.code
        assert self.source in SOURCES, self.source

    def exceeds_max(self, actual: float) -> bool:
        return actual >= self.value if self.strict else actual > self.value

    def below_min(self, actual: float) -> bool:
        return actual <= self.value if self.strict else actual < self.value


def _rows(*rows: Limit) -> dict[str, Limit]:
    return {r.key: r for r in rows}


#: Models that take images and video: the models mediaprep.tokens has a processor config for.
VISION_MODELS = frozenset(VISION_MODELS_WITH_ESTIMATE)
TEXT_ONLY_MODELS = frozenset({"kimi-k2-thinking", "Moonshot-Kimi-K2-Instruct"})

_DS = "dashscope-vision"

#: The model's context in tokens, per vision model. Moonshot documents a 256K (262,144-token)
#: context for kimi-k2.5 and the other K2 models; Model Studio says "the total number of tokens
#: for all images and text must not exceed the model's maximum input limit" (dashscope-vision).
#: kimi-k2.6 and kimi-k2.7-code: the same 256K is assumed (no other figure is documented).
MODEL_CONTEXT: Mapping[str, int] = MappingProxyType(
    {"kimi-k2.5": 262_144, "kimi-k2.6": 262_144, "kimi-k2.7-code": 262_144})

_COMMON_PARAMS = (
    Limit("param.fps.min", 0.1, "param.fps", "error", _DS, "lowest fps"),
    Limit("param.fps.max", 10.0, "param.fps", "error", _DS, "highest fps"),
    Limit("param.max_frames.max", 2000, "param.max_frames", "error", _DS, "max_frames ceiling"),
    Limit("image.max_frames", 1, "image.animated", "warning", "mediaprep",
          "frames of an animated GIF/APNG/WebP that are sent (the first); --animation frames "
          "sends all as a video image list, fps from their durations within the fps range"),
    Limit("image.max_decode_pixels", 1 << 30, "image.decompression_bomb", "error",
          "mediaprep", "pixels an image may declare before mediaprep refuses to decode it "
          "(32768 x 32768, libheif's own ceiling; a 200 MP phone photo is 0.2 G)"),
    Limit("image.max_decode_bytes", 1 << 30, "image.decompression_bomb", "error", "mediaprep",
          "bytes the decoded image would take (pixels x bytes per pixel, at the scale the "
          "decoder really uses: a JPEG is decoded at 1/2-1/8 when that covers the box; an "
          "animation's whole canvas, RGBA)"),
    Limit("image.max_pixels_per_byte", 1000, "image.decompression_bomb", "error", "mediaprep",
          "pixels a large image (decoded above 256 MiB) may claim per input byte: a photo "
          "claims tens, a bomb thousands"),
    Limit("image.max_jpeg_scans", 100, "image.decompression_bomb", "error", "mediaprep",
          "scans (SOS markers) in a JPEG: encoders write 1-3 (baseline) or ~10 (progressive), "
          "a few dozen at most; each scan costs a pass over every block (djpeg -maxscans)"),
    Limit("image.max_decode_seconds", 60.0, "file.unreadable", "error", "mediaprep",
          "seconds one image decode may take, checked between the decoder's input reads"),
    Limit("tokens.max_image", None, "tokens.image_too_many", "error", "mediaprep",
          "estimated tokens per image (off unless --max-image-tokens)"),
    Limit("tokens.max_request", None, "tokens.request_too_many", "error", "mediaprep",
          "estimated tokens per request (off unless --max-tokens)"),
    Limit("tokens.context", MODEL_CONTEXT, "tokens.context", "error", "moonshot-models",
          "the model's context in tokens, per model (Model Studio: all images and text must "
          "fit the model's maximum input); checked against the vision-token estimate: an "
          "error for what the client decides (images, frames, a request), a warning for a "
          "video file the server samples. Override with one number for every model, "
          "model=N,... for some, or off"),
    Limit("models.vision", VISION_MODELS, "model.no_vision", "error", "dashscope-models",
          "models that take images and video"),
    Limit("models.text_only", TEXT_ONLY_MODELS, "model.no_vision", "error", "dashscope-models",
          "models that take text only"),
)

DASHSCOPE: dict[str, Limit] = _rows(
    Limit("image.min_side", 10, "image.too_small", "error", _DS,
          "each image side must exceed this many px", strict=True),
    Limit("image.max_aspect_ratio", 200.0, "image.aspect_ratio", "error", _DS,
          "longest/shortest side"),
    Limit("image.recommended_box", (7680, 4320), "image.resolution", "warning", _DS,
          "recommended maximum resolution (8K), either orientation"),
    Limit("image.formats", frozenset({"bmp", "jpeg", "png", "tiff", "webp", "heic"}),
          "file.unsupported_format", "error", _DS, "image formats accepted below 4K"),
    Limit("image.format_tier_box", (3840, 2160), "image.format_tier", "error", _DS,
          "above this resolution (4K, either orientation) only the tier formats are accepted"),
    Limit("image.formats_above_tier", frozenset({"jpeg", "png"}), "image.format_tier", "error",
          _DS, "image formats accepted from 4K to 8K"),
    Limit("image.max_bytes.url", 10 * MiB, "file.too_large", "error", _DS,
          "image file bytes sent by URL"),
    Limit("image.max_bytes.path", 10 * MiB, "file.too_large", "error", _DS,
          "image file bytes sent by local path"),
    Limit("image.max_data_url_bytes", 10 * MiB, "base64.too_large", "error",
          "dashscope-errors", "whole data URL of one image"),
    Limit("request.max_data_urls", 250, "request.too_many_data_urls", "error",
          "dashscope-errors", "base64 data URLs in one request"),
    Limit("request.max_media_urls", 256, "request.too_many_data_urls", "error", _DS,
          "images by URL or path in one request"),
    Limit("frames.min", 4, "frames.too_few", "error", _DS, "images in a video image list"),
    Limit("frames.max", 2000, "frames.too_many", "error", _DS, "images in a video image list"),
    Limit("video.max_bytes.url", 2 * GiB, "file.too_large", "error", _DS,
          "video file bytes sent by URL"),
    Limit("video.max_bytes.path", 100 * MiB, "file.too_large", "error", _DS,
          "video file bytes sent by local path"),
    Limit("video.max_data_url_bytes", 10 * MiB, "base64.too_large", "error", _DS,
          "whole data URL of one video (the document says strictly less than 10 MB)",
          strict=True),
    Limit("video.min_duration", 2.0, "video.too_short", "error", _DS, "seconds"),
    Limit("video.max_duration", 3600.0, "video.too_long", "error", _DS, "seconds"),
    Limit("video.formats", frozenset({"mp4", "avi", "mkv", "mov", "flv", "wmv"}),
          "file.unsupported_format", "error", _DS, "video containers"),
    Limit("video.recommended_box", (2560, 1440), "video.resolution", "warning", _DS,
          "recommended maximum video resolution ('2K' read as 2560x1440), either orientation"),
    Limit("video.audio", "ignored", "video.audio_ignored", "info", _DS,
          "the model ignores audio; it is dropped when transcoding"),
    Limit("dialects", frozenset(DIALECTS), "transport.unsupported", "error", _DS,
          "API dialects the target speaks"),
    Limit("transports", frozenset(TRANSPORTS), "transport.unsupported", "error", _DS,
          "how media can reach the target (path only in the dashscope dialect)"),
    *_COMMON_PARAMS,
)

_MS = "moonshot-vision"

MOONSHOT: dict[str, Limit] = _rows(
    Limit("image.formats", frozenset({"png", "jpeg", "webp", "gif"}), "file.unsupported_format",
          "error", _MS, "image formats"),
    Limit("image.recommended_box", (4096, 2160), "image.resolution", "warning", _MS,
          "recommended maximum image resolution (the guide's '4k (4096x2160)'), "
          "either orientation"),
    Limit("video.formats",
          frozenset({"mp4", "mpeg", "mov", "avi", "flv", "webm", "wmv", "3gp"}),
          "file.unsupported_format", "error", _MS, "video containers"),
    Limit("video.recommended_box", (2048, 1080), "video.resolution", "warning", _MS,
          "recommended maximum video resolution (the guide's '2k (2048x1080)'), "
          "either orientation"),
    Limit("request.max_body_bytes", 100 * MiB, "request.too_large", "error", _MS,
          "whole request body"),
    Limit("dialects", frozenset({"openai"}), "transport.unsupported", "error", _MS,
          "Moonshot speaks the OpenAI-compatible dialect only"),
    Limit("transports", frozenset({"base64"}), "transport.unsupported", "error", _MS,
          "images go as base64 only (http(s) image URLs are refused)"),
    Limit("frames.min", 4, "frames.too_few", "error", "mediaprep",
          "image-list videos: DashScope's bounds applied (Moonshot documents none)"),
    Limit("frames.max", 2000, "frames.too_many", "error", "mediaprep",
          "image-list videos: DashScope's bounds applied (Moonshot documents none)"),
    *_COMMON_PARAMS,
)

TABLES: dict[str, dict[str, Limit]] = {"dashscope": DASHSCOPE, "moonshot": MOONSHOT}

#: Defaults of parameters (not limits): what the providers do when the user says nothing.
DEFAULT_TARGET = "dashscope"
DEFAULT_DIALECT = "openai"
DEFAULT_TRANSPORT = "base64"
DEFAULT_MODEL = "kimi-k2.5"
DEFAULT_FPS = 2.0  # dashscope-vision: "default 2"
DEFAULT_MAX_FRAMES = 2000  # dashscope-vision: "default 2,000"


class Limits(Mapping[str, Limit]):
    """The limits in force for one target, after user overrides. Read-only mapping key -> Limit."""

    def __init__(self, target: str, rows: dict[str, Limit]) -> None:
        self.target = target
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


def parse_limit_value(row: Limit, raw: Any) -> Any:
    """Turn an override (from a command line string or a TOML value) into the row's type."""
    cur = row.value
    try:
        if isinstance(raw, str) and raw.strip().lower() in ("none", "off", ""):
            return None
        if isinstance(cur, Mapping):
            return _parse_per_model(cur, raw)
        if isinstance(cur, frozenset):
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return frozenset(str(i).strip() for i in items if str(i).strip())
        if isinstance(cur, tuple):
            if isinstance(raw, str):
                a, b = raw.lower().replace("×", "x").split("x")
                return (int(a), int(b))
            a, b = raw
            return (int(a), int(b))
        if isinstance(cur, bool):
            return str(raw).lower() in ("1", "true", "yes")
        if isinstance(cur, int) or cur is None:
            f = float(raw)
            return int(f) if f.is_integer() else f
        if isinstance(cur, float):
            return float(raw)
        return raw
    except (ValueError, TypeError) as exc:
        raise LimitError(f"cannot read {raw!r} as a value for limit {row.key}") from exc


def _parse_per_model(cur: Mapping[str, Any], raw: Any) -> Any:
    """A per-model row: one number (every model), ``model=N,...`` or a TOML table (those
    models; the others keep theirs)."""
    if isinstance(raw, Mapping):
        pairs = list(raw.items())
    elif isinstance(raw, str) and "=" in raw:
        pairs = [tuple(x.split("=", 1)) for x in raw.split(",") if x.strip()]
    else:
        f = float(raw)
        if not f.is_integer() or f < 1:
            raise ValueError(raw)
        return int(f)
    out = dict(cur)
    for model, value in pairs:
        f = float(value)
        if not f.is_integer() or f < 1:
            raise ValueError(value)
        out[str(model).strip()] = int(f)
    return MappingProxyType(out)


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


def limits_for(target: str = DEFAULT_TARGET, overrides: Mapping[str, Any] | None = None) -> Limits:
    """The limits in force for a target, with overrides applied.

    Args:
        target: ``dashscope`` or ``moonshot``.
        overrides: row key -> value (or its string form, as ``--limit KEY=VALUE`` gives it).

    Returns:
        The :class:`Limits` table (every row with its source and date).

    Raises:
        LimitError: an unknown target or row key, or a value the row cannot take.
    """
    if target not in TABLES:
        raise LimitError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    rows = dict(TABLES[target])
    for key, raw in (overrides or {}).items():
        if key not in rows:
            if any(key in table for table in TABLES.values()):
                continue  # a row of another target: one shared config serves both targets
            known = ", ".join(sorted({k for table in TABLES.values() for k in table}))
            raise LimitError(f"unknown limit {key!r}; known: {known}")
        rows[key] = dataclasses.replace(rows[key], value=parse_limit_value(rows[key], raw))
    return Limits(target, rows)


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
