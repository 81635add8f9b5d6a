"""Kimi K2.5 served by yourself: vLLM's or SGLang's OpenAI-compatible server
(``vllm serve moonshotai/Kimi-K2.5 --trust-remote-code``, ``python -m sglang.launch_server
--model-path moonshotai/Kimi-K2.5``).

No provider byte caps: what limits a request is the server's own configuration, so those are
rows with documented defaults that you set to match your server (``--limit KEY=VALUE`` or
``[tool.mediaprep.limits]``):

- ``request.max_body_bytes``: off by default (neither server caps the body); set it to what
  your proxy takes (nginx's ``client_max_body_size``, say).
- ``request.max_data_urls`` / ``request.max_media_urls``: the server's
  ``--limit-mm-per-prompt`` (vLLM's default is 999 items of each modality).
- ``tokens.context``: the server's ``--max-model-len`` (default: the model's 262,144).
- ``file://`` parts (``--transport path``) are read only under the server's
  ``--allowed-local-media-path``: mediaprep's ``--allowed-local-media-path`` names the same
  folder, and an output outside it is refused.

Tokens follow the open processor exactly (:mod:`mediaprep.tokens`), plus the media prompt the
chat template puts around each item: ``<|media_begin|>image<|media_content|><|media_pad|>
<|media_end|>`` (4 text tokens around an image's pads) and, before each 4-frame video chunk,
its ``HH:MM:SS.fff`` timestamp (7 tokens: the tokenizer splits digits in groups of up to
three, each group and separator one token) and the same wrapper with ``video`` (4 more). A
video file is sampled by the processor at ``min(sample_fps, the video's fps)`` (2 fps), not at
the part's ``fps``. The server's API has no image-list video part, so videos go as files.
"""

from __future__ import annotations

from types import MappingProxyType

from ..tokens import KIMI_K25
from .base import Limit, Source, Target, TokenRule, rows, shared_rows

_VL = "vllm-multimodal"
_KP = "kimi-k25-processor"

SOURCES = {
    _VL: Source(
        "vLLM: multimodal inputs and engine arguments (--limit-mm-per-prompt, default 999 per "
        "modality; --max-model-len; --allowed-local-media-path); images decoded by Pillow, "
        "videos by its OpenCV loader",
        "https://docs.vllm.ai/en/latest/features/multimodal_inputs.html",
        "2026-11",
    ),
    _KP: Source(
        "The open Kimi K2.5 processor (moonshotai/Kimi-K2.5 media_proc_cfg; vLLM "
        "kimi_k25_vision_fused.py navit_resize_image/navit_resize_video, get_placeholder_str; "
        "SGLang kimi_k25.py)",
        "https://github.com/vllm-project/vllm/blob/main/vllm/model_executor/models/kimi_k25.py",
        "2026-11",
    ),
}

MODEL = "moonshotai/Kimi-K2.5"
MODELS = MappingProxyType({MODEL: KIMI_K25})
#: --max-model-len defaults to the model's max_position_embeddings
CONTEXT = MappingProxyType({MODEL: 262_144})
TEXT_ONLY = frozenset({"moonshotai/Kimi-K2-Instruct", "moonshotai/Kimi-K2-Thinking"})

#: What the server's loaders decode: Pillow without plugins (no HEIF, no AVIF guaranteed),
#: and OpenCV's FFmpeg build for videos.
IMAGE_FORMATS = frozenset({"jpeg", "png", "webp", "gif", "bmp", "tiff"})
VIDEO_FORMATS = frozenset({"mp4", "mov", "mkv", "webm", "avi"})

TABLE = rows(
    Limit("image.formats", IMAGE_FORMATS, "file.unsupported_format", "error", _VL,
          "image formats its loader decodes (Pillow, no plugins)"),
    Limit("video.formats", VIDEO_FORMATS, "file.unsupported_format", "error", _VL,
          "video containers its loader decodes (OpenCV)"),
    Limit("request.max_body_bytes", None, "request.too_large", "error", _VL,
          "whole request body: off (the server sets none); set it to what your proxy takes"),
    Limit("request.max_data_urls", 999, "request.too_many_data_urls", "error", _VL,
          "media items in one request: the server's --limit-mm-per-prompt (default 999)"),
    Limit("request.max_media_urls", 999, "request.too_many_data_urls", "error", _VL,
          "media items by URL or path in one request: --limit-mm-per-prompt (default 999)"),
    Limit("dialects", frozenset({"openai"}), "transport.unsupported", "error", _VL,
          "the OpenAI-compatible chat API only"),
    Limit("transports", frozenset({"base64", "url", "path"}), "transport.unsupported",
          "error", _VL, "data URLs, http(s) URLs, and file:// under the server's "
          "--allowed-local-media-path"),
    *shared_rows(vision=frozenset(MODELS), text_only=TEXT_ONLY, context=CONTEXT,
                 models_source=_KP, context_source=_VL),
)

TARGET = Target(
    name="vllm",
    title="self-hosted vLLM or SGLang server",
    sources=SOURCES,
    table=TABLE,
    models=MODELS,
    default_model=MODEL,
    tokens=TokenRule(video_sample_fps=KIMI_K25.sample_fps),
    path_dialects=frozenset({"openai"}),
    frame_lists=False,
    local_media_option="--allowed-local-media-path",
)
