"""The Moonshot open platform: the Kimi vision models, OpenAI-compatible dialect only."""

from __future__ import annotations

from types import MappingProxyType

from .base import GiB, Limit, MiB, Source, Target, Uploads, rows, shared_rows
from .dashscope import CONTEXT, MODELS, TEXT_ONLY

_MS = "moonshot-vision"

SOURCES = {
    _MS: Source(
        "Moonshot open platform: using the Kimi vision models (image and video input)",
        "https://platform.moonshot.ai/docs/guide/use-kimi-vision-model",
        "2026-11",
    ),
    "moonshot-files": Source(
        "Moonshot open platform: files API (POST /v1/files with purpose image or video, "
        "referenced as ms://<id>; up to 100 MB a file, 1,000 files and 10 GB per account; "
        "files stay until deleted)",
        "https://platform.moonshot.ai/docs/api/files",
        "2026-11",
    ),
}

#: Where ``--transport upload`` puts files: the account's files (ms://<id>), kept until
#: deleted, so ``mediaprep uploads prune`` deletes what mediaprep put there.
UPLOADS = Uploads(
    protocol="moonshot",
    key_env="MOONSHOT_API_KEY",
    api_base="https://api.moonshot.ai/v1",
    regions=MappingProxyType({"global": "https://api.moonshot.ai/v1",
                              "china": "https://api.moonshot.cn/v1"}),
    scheme="ms",
    deletable=True,
)

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
    Limit("transports", frozenset({"base64", "upload"}), "transport.unsupported", "error", _MS,
          "base64, or uploaded to the account's files (ms://<id>); http(s) image URLs are "
          "refused"),
    Limit("image.max_bytes.upload", 100 * MiB, "file.too_large", "error", "moonshot-files",
          "image file bytes sent as an uploaded file (ms://<id>)"),
    Limit("video.max_bytes.upload", 100 * MiB, "file.too_large", "error", "moonshot-files",
          "video file bytes sent as an uploaded file (ms://<id>)"),
    Limit("upload.max_file_bytes", 100 * MiB, "file.too_large", "error", "moonshot-files",
          "bytes of one uploaded file"),
    Limit("upload.max_files", 1000, "upload.failed", "error", "moonshot-files",
          "files one account may keep (mediaprep uploads prune deletes mediaprep's)"),
    Limit("upload.max_total_bytes", 10 * GiB, "upload.failed", "error", "moonshot-files",
          "bytes one account may keep in files"),
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
    uploads=UPLOADS,
)
