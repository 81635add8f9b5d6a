"""MIME types of the formats mediaprep sends, and the exact size of a base64 data URL."""

from __future__ import annotations

MIME = {
    "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
    "bmp": "image/bmp", "tiff": "image/tiff", "heic": "image/heic", "avif": "image/avif",
    "mp4": "video/mp4", "mov": "video/quicktime", "mkv": "video/x-matroska",
    "webm": "video/webm", "avi": "video/x-msvideo", "flv": "video/x-flv",
    "wmv": "video/x-ms-wmv", "mpeg": "video/mpeg", "ts": "video/mp2t", "3gp": "video/3gpp",
}


def mime_for(fmt: str | None) -> str:
    return MIME.get(fmt or "", "application/octet-stream")


def data_url_size(n_bytes: int, mime: str) -> int:
    """Exact length of ``data:<mime>;base64,<payload>`` for ``n_bytes`` of payload.

    Computed, not encoded: 4 characters per started 3 bytes, plus the prefix. The providers
    count the whole data URL against their per-item limit.
    """
    return len(f"data:{mime};base64,") + 4 * ((n_bytes + 2) // 3)
