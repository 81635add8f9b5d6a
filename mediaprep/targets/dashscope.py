"""Alibaba Cloud Model Studio (DashScope): the Kimi vision models, both dialects."""

from __future__ import annotations

from types import MappingProxyType

from ..tokens import KIMI_K25
from .base import (
    DIALECTS,
    TRANSPORTS,
    GiB,
    Limit,
    MiB,
    Source,
    Target,
    Uploads,
    rows,
    shared_rows,
)

_DS = "dashscope-vision"

SOURCES = {
    "dashscope-errors": Source(
        "Model Studio server messages: 'Exceeded limit on max bytes per data-uri item : "
        "10485760', 'max data-uri per request: 250'",
        "https://www.alibabacloud.com/help/en/model-studio/error-code",
        "2026-11",
    ),
    "dashscope-upload": Source(
        "Model Studio: upload a local file to temporary storage (GET /api/v1/uploads?action="
        "getPolicy, POST form to upload_host, oss:// URL valid 48 hours for the model and "
        "account that uploaded it, files up to 1 GB, policy call 100 QPS, header "
        "X-DashScope-OssResourceResolve: enable)",
        "https://www.alibabacloud.com/help/en/model-studio/get-temporary-file-url",
        "2026-11",
    ),
}

#: Where ``--transport upload`` puts files: Model Studio's temporary storage. The endpoint is
#: the SDK's ``dashscope.base_http_api_url`` (Beijing by default, as the SDK has it).
UPLOADS = Uploads(
    protocol="dashscope",
    key_env="DASHSCOPE_API_KEY",
    api_base="https://dashscope.aliyuncs.com/api/v1",
    regions=MappingProxyType({
        "cn-beijing": "https://dashscope.aliyuncs.com/api/v1",
        "ap-southeast-1 (Singapore)": "https://dashscope-intl.aliyuncs.com/api/v1",
        "us-east-1 (Virginia)": "https://dashscope-us.aliyuncs.com/api/v1",
    }),
    scheme="oss",
    expires=48 * 3600.0,
    margin=2 * 3600.0,  # a reference is not handed out with less than 2 h of life left
    headers=MappingProxyType({"X-DashScope-OssResourceResolve": "enable"}),
)

#: The vision models (all three use the K2.5 MoonViT processor: mediaprep.tokens) and the
#: text-only Kimi models, as Model Studio lists them.
MODELS = MappingProxyType({"kimi-k2.5": KIMI_K25, "kimi-k2.6": KIMI_K25,
                           "kimi-k2.7-code": KIMI_K25})
TEXT_ONLY = frozenset({"kimi-k2-thinking", "Moonshot-Kimi-K2-Instruct"})
#: Moonshot documents a 256K (262,144-token) context for kimi-k2.5 and the other K2 models;
#: Model Studio says "the total number of tokens for all images and text must not exceed the
#: model's maximum input limit". kimi-k2.6 and kimi-k2.7-code: the same 256K is assumed.
CONTEXT = MappingProxyType({name: 262_144 for name in MODELS})

TABLE = rows(
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
    Limit("image.max_bytes.upload", 10 * MiB, "file.too_large", "error", _DS,
          "image file bytes sent by an uploaded oss:// URL (the model's limit for image "
          "files)"),
    Limit("video.max_bytes.upload", 1 * GiB, "file.too_large", "error", "dashscope-upload",
          "video file bytes sent by an uploaded oss:// URL (temporary storage takes up to "
          "1 GB; the model takes 2 GB by URL)"),
    Limit("upload.max_file_bytes", 1 * GiB, "file.too_large", "error", "dashscope-upload",
          "bytes of one file in temporary storage"),
    Limit("upload.expires_seconds", 48 * 3600, "upload.failed", "error", "dashscope-upload",
          "an oss:// URL is valid this long after the upload (and only for that model)"),
    Limit("upload.policy_qps", 100, "upload.failed", "error", "dashscope-upload",
          "upload policy calls per second (mediaprep reuses one policy while it is valid)"),
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
          "how media can reach the target (path only in the dashscope dialect; upload: "
          "temporary storage, oss:// URLs)"),
    *shared_rows(vision=frozenset(MODELS), text_only=TEXT_ONLY, context=CONTEXT,
                 models_source="dashscope-models", context_source="moonshot-models"),
)

TARGET = Target(
    name="dashscope",
    title="Alibaba Cloud Model Studio (DashScope)",
    sources=SOURCES,
    table=TABLE,
    models=MODELS,
    default_model="kimi-k2.5",
    # file:// URIs are read by the DashScope SDK, which speaks the native dialect
    path_dialects=frozenset({"dashscope"}),
    uploads=UPLOADS,
)
