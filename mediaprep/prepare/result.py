"""What prepare returns for one input."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..findings import Finding
from ..info import MediaInfo


@dataclass
class Prepared:
    """A sendable input, or the reasons it could not be made sendable (``ok`` False).

    ``part`` is the content part (SPEC section 2). ``outputs`` are files written under the output
    folder; ``data`` holds an image's bytes when nothing was written. ``findings`` are the
    input's findings from check plus any from the re-check of the output; ``fixes`` say what was
    changed (in words) and ``changes`` the kinds of change, from
    :data:`mediaprep.report.changes.KINDS` (what the report and summary count).
    """

    path: str
    kind: str
    ok: bool
    part: dict[str, Any] | None = None
    outputs: list[Path] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    info: MediaInfo | None = None
    output_info: MediaInfo | None = None
    data: bytes | None = None
    mime: str | None = None
    fps: float | None = None
    timestamps: list[float] | None = None
    tokens: dict[str, Any] | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self, *, root: Path | None = None) -> dict[str, Any]:
        """One line of ``parts.jsonl`` (SPEC section 4)."""
        outputs = []
        base = root.resolve() if root else None
        for p in self.outputs:
            try:
                outputs.append(p.resolve().relative_to(base).as_posix() if base else str(p))
            except ValueError:
                outputs.append(str(p))
        out: dict[str, Any] = {"path": self.path, "ok": self.ok, "kind": self.kind,
                               "part": self.part, "outputs": outputs,
                               "findings": [f.to_json() for f in self.findings]}
        if self.fixes:
            out["fixes"] = list(self.fixes)
        if self.changes:
            out["changes"] = list(dict.fromkeys(self.changes))
        if self.fps is not None:
            out["fps"] = self.fps
        if self.timestamps is not None:
            out["timestamps"] = [round(t, 6) for t in self.timestamps]
        if self.tokens is not None:
            out["tokens"] = self.tokens
        return out
