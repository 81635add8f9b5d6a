"""Check stage: every applicable limit becomes a :class:`~mediaprep.findings.Finding`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..findings import Finding, has_errors
from ..info import MediaInfo
from ..settings import Settings
from .common import (
    check_extension,
    check_model,
    check_params,
    data_url_size,
    finding,
    mime_for,
    probe_failure,
)
from .frames import check_frames
from .image import check_image
from .video import check_video

__all__ = ["Report", "check_info", "data_url_size", "mime_for"]


@dataclass
class Report:
    """What check says about one input."""

    path: str
    kind: str
    info: MediaInfo
    findings: list[Finding] = field(default_factory=list)
    tokens: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)

    def failed(self, *, strict: bool = False) -> bool:
        return has_errors(self.findings, strict=strict)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind, "ok": self.ok,
                               "info": self.info.to_json()}
        if self.tokens is not None:
            out["tokens"] = self.tokens
        out["findings"] = [f.to_json() for f in self.findings]
        return out


def check_info(info: MediaInfo, settings: Settings) -> Report:
    """Findings for a probed input under ``settings``."""
    findings = check_model(settings) + probe_failure(info, settings.limits)
    if info.error_code is None or info.kind == "frames":
        if info.kind == "image":
            findings += check_extension(info) + check_image(info, settings)
        elif info.kind == "video":
            findings += check_extension(info) + check_params(settings)
            findings += check_video(info, settings)
        elif info.kind == "frames":
            findings += check_params(settings) + check_frames(info, settings)
        findings += _single_item_body(info, settings)
    report = Report(path=info.path, kind=info.kind, info=info, findings=findings)
    _attach_tokens(report, settings)
    return report


def _single_item_body(info: MediaInfo, settings: Settings) -> list[Finding]:
    """A target with a whole-body limit: one item alone must fit in it."""
    row = settings.limits.get("request.max_body_bytes")
    if row is None or row.value is None or info.kind not in ("image", "video"):
        return []
    size = (data_url_size(info.bytes, mime_for(info.format)) if settings.transport == "base64"
            else info.bytes)
    if row.exceeds_max(size):
        return [finding(row, f"{info.path}: a request carrying it is at least {size:,} bytes, "
                             f"above {row.value:,}; prep shrinks it", size, fixable=True)]
    return []


def _attach_tokens(report: Report, settings: Settings) -> None:
    """Token estimate for the Kimi vision models (see mediaprep.tokens for the rule)."""
    from .tokens import token_findings

    token_findings(report, settings)
