"""Findings: what check and prepare say about an input, with codes users can key on.

Every code mediaprep can emit is listed in :data:`CODES` (one home). The first block is the
stable set from SPEC section 4; the second block are codes mediaprep adds where the contract is
silent (each is documented in README.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

#: code -> one-line description (also used for SARIF rule descriptions and `mediaprep limits`).
CODES: dict[str, str] = {
    # SPEC section 4 (stable)
    "file.unreadable": "The file cannot be read or decoded (empty, truncated, corrupt, timed out).",
    "file.unsupported_format": "The format or container is not accepted by the target.",
    "file.too_large": "The file is larger than the target accepts for this transport.",
    "base64.too_large": "The base64 data URL is larger than the per-item limit.",
    "image.too_small": "An image side is not larger than the minimum.",
    "image.aspect_ratio": "The ratio of the long to the short side is above the maximum.",
    "image.resolution": "The image is above the recommended resolution.",
    "image.format_tier": "The format is accepted only below a resolution tier (e.g. 4K).",
    "image.decompression_bomb": "The declared pixel count is above the safe decode limit.",
    "video.too_short": "The video is shorter than the minimum duration.",
    "video.too_long": "The video is longer than the maximum duration.",
    "video.resolution": "The video is above the recommended resolution.",
    "frames.too_few": "An image list has fewer frames than a video needs.",
    "frames.too_many": "An image list has more frames than a video may have.",
    "param.fps": "The fps parameter is outside the accepted range.",
    "param.max_frames": "The max_frames parameter is outside the accepted range.",
    "model.no_vision": "The model takes text only.",
    "request.too_large": "The request body is larger than the target accepts.",
    "request.too_many_data_urls": "The request holds more media items than the target accepts.",
    # mediaprep additions (the contract is silent; documented in README.md)
    "file.extension_mismatch": "The file's extension does not match what its bytes are.",
    "video.audio_ignored": "The audio track is ignored by the model (dropped when transcoding).",
    "video.no_video_stream": "The container holds no video stream (audio-only or empty).",
    "transport.unsupported": "The transport cannot carry this kind of media to this target.",
    "url.not_verified": "A URL was passed through without being fetched and checked.",
    "tokens.image_too_many": "The image costs more tokens than --max-image-tokens.",
    "tokens.request_too_many": "The request costs more tokens than --max-tokens.",
    "model.unknown": "The model is in neither model list of the target's limits table.",
}


@dataclass
class Finding:
    """One thing check or prepare has to say about an input."""

    code: str
    severity: Severity
    message: str
    limit: Any = None
    actual: Any = None
    fixable: bool = False
    path: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.code not in CODES:  # a typo here would silently break users keying on codes
            raise ValueError(f"unknown finding code {self.code!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "limit": _jsonable(self.limit),
            "actual": _jsonable(self.actual),
            "fixable": self.fixable,
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, frozenset | set):
        return sorted(v)
    return v


def has_errors(findings: list[Finding], *, strict: bool = False) -> bool:
    bad = ("error", "warning") if strict else ("error",)
    return any(f.severity in bad for f in findings)
