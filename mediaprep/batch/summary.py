"""A run's results as data: failed inputs, the check report's totals.
"""

from __future__ import annotations

import os
from typing import Any

from ..model import Report
from ..settings import Settings


def report_json(reports: list[Report], settings: Settings, *,
                strict: bool = False) -> dict[str, Any]:
    """The ``check --format json`` object of SPEC section 4."""
    files = [r.to_json() for r in reports]
    failed = sum(1 for r in reports if r.failed(strict=strict))
    return {
        "target": settings.target,
        "dialect": settings.dialect,
        "transport": settings.transport,
        "files": files,
        "summary": {
            "files": len(reports),
            "passed": len(reports) - failed,
            "failed": failed,
            "errors": sum(r.errors for r in reports),
            "warnings": sum(r.warnings for r in reports),
        },
    }


def failed_json(file: dict[str, Any], *, strict: bool = False) -> bool:
    """Whether a ``check --format json`` file entry fails the run."""
    bad = ("error", "warning") if strict else ("error",)
    return any(f.get("severity") in bad for f in file.get("findings") or [])


def report_from_files(files: list[dict[str, Any]], settings: Settings, *,
                      strict: bool = False) -> dict[str, Any]:
    """The ``check --format json`` object from file entries already in JSON shape."""
    failed = sum(1 for f in files if failed_json(f, strict=strict))

    def count(sev: str) -> int:
        return sum(1 for f in files for x in f.get("findings") or [] if x.get("severity") == sev)

    return {
        "target": settings.target,
        "dialect": settings.dialect,
        "transport": settings.transport,
        "files": files,
        "summary": {"files": len(files), "passed": len(files) - failed, "failed": failed,
                    "errors": count("error"), "warnings": count("warning")},
    }


def unreadable_finding(message: str) -> dict[str, Any]:
    """The finding of an input whose worker timed out, crashed or raised."""
    return {"code": "file.unreadable", "severity": "error", "message": message,
            "limit": None, "actual": None, "fixable": False}


def task_failure_message(display: str, error: Any) -> str:
    """``a.mp4: gave up after 60 s (...)`` for a :class:`~mediaprep.batch.runner.TaskError`."""
    kind = getattr(error, "kind", "exception")
    text = getattr(error, "message", str(error))
    what = {"timeout": "processing took too long", "crash": "the decoder crashed",
            }.get(kind, "processing failed")
    return f"{display}: {what}: {text}"


def failed_check_entry(display: str, source: str, error: Any) -> dict[str, Any]:
    """A ``check`` file entry for an input whose task did not return."""
    try:
        size = os.stat(source).st_size
    except (OSError, ValueError):
        size = 0
    return {"path": display, "kind": "other", "ok": False, "info": {"bytes": size},
            "findings": [unreadable_finding(task_failure_message(display, error))]}


def failed_prep_line(display: str, error: Any) -> dict[str, Any]:
    """A ``parts.jsonl`` line for an input whose task did not return."""
    return {"path": display, "ok": False, "kind": "other", "part": None, "outputs": [],
            "findings": [unreadable_finding(task_failure_message(display, error))]}
