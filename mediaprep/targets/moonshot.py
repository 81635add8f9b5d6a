"""The Moonshot open platform: the Kimi vision models, OpenAI-compatible dialect only."""

from __future__ import annotations

from .base import Limit, MiB, Source, Target, rows, shared_rows
from .dashscope import CONTEXT, MODELS, TEXT_ONLY

_MS = "moonshot-vision"

SOURCES = {
    _MS: Source(
        "Moonshot open platform: using the Kimi vision models (image and video input)",
        "https://platform.moonshot.ai/docs/guide/use-kimi-vision-model",
        "2026-11",
    ),
}

TABLE = rows(
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
    # the same Kimi models as on Model Studio
    *shared_rows(vision=frozenset(MODELS), text_only=TEXT_ONLY, context=CONTEXT,
                 models_source="dashscope-models", context_source="moonshot-models"),
)

TARGET = Target(
    name="moonshot",
    title="Moonshot open platform",
    sources=SOURCES,
    table=TABLE,
    models=MODELS,
    default_model="kimi-k2.5",
)
