"""A run's results as data (the one failure predicate, :func:`input_failed`, lives in
mediaprep.report and is re-exported here): the one
summary builder of each command (:func:`report_from_files` for check, :func:`run_summary` for
prep), and the entries of inputs whose task did not return.
"""

from __future__ import annotations

import os
from typing import Any

from ..report import input_failed  # noqa: F401  (the one failure rule, re-exported)
from ..settings import Settings


def warnings_left(line: dict[str, Any]) -> list[dict[str, Any]]:
    """The warnings of a prepared input that still hold for what is sent (``image.animated``:
    only the first of 30 frames): a warning prep fixed (an image scaled down to the
    recommended size) no longer does. The one rule for the per-file lines and the counts."""
    if not line.get("ok"):
        return []
    changed = bool(line.get("changes"))
    return [f for f in line.get("findings") or [] if f.get("severity") == "warning"
            and not (changed and f.get("fixable"))]


def report_from_files(files: list[dict[str, Any]], settings: Settings, *,
                      strict: bool = False) -> dict[str, Any]:
    """The ``check --format json`` object from file entries already in JSON shape."""
    failed = sum(1 for f in files if input_failed(f, strict=strict))

    def count(sev: str) -> int:
        return sum(1 for f in files for x in f.get("findings") or [] if x.get("severity") == sev)

    return {
        "target": settings.target.name,
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
    """``a.mp4: gave up after 60 s (...)`` for a :class:`~mediaprep.batch.pool.TaskError`."""
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
    from ..types import line_of

    return line_of(path=display, ok=False, kind="other",
                   findings=[unreadable_finding(task_failure_message(display, error))])


def not_ours_line(display: str, taken: str) -> dict[str, Any]:
    """A ``parts.jsonl`` line for an input refused because ``taken``, where its outputs would
    go, is someone else's (batch.ownership)."""
    from ..types import Finding, line_of

    message = (f"{display}: not prepared: {taken} is already there and no mediaprep run "
               "made it; mediaprep replaces only what it wrote itself (move it away, or "
               "choose another -o folder)")
    finding = Finding("output.not_ours", "error", message, actual=taken)
    return line_of(path=display, ok=False, kind="other", findings=[finding.to_json()])


def run_summary(total: int, passed: int, fixed: int, failed: int, bytes_in: int,
                bytes_out: int, elapsed: float, warned: int = 0) -> str:
    """``"200 files, 180 passed, 15 fixed, 5 failed, 1.2 GiB in → 340 MiB out, 12.3 s"``;
    ``warned``: prepared inputs with a warning that holds for what is sent (said when any)."""
    n = passed + fixed + failed
    files = plural(n, "file")
    if n != total:  # interrupted, or some inputs never counted
        files = f"{n} of {total} files"
    parts = [files, f"{passed} passed", f"{fixed} fixed", f"{failed} failed"]
    if warned:
        parts.append(f"{warned} with warnings")
    if bytes_in or bytes_out:
        parts.append(f"{human_bytes(bytes_in)} in → {human_bytes(bytes_out)} out")
    parts.append(human_duration(elapsed))
    return ", ".join(parts)


def plural(n: int, word: str) -> str:
    """``"1 file"``, ``"2 files"``, ``"0 requests"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def human_bytes(n: int) -> str:
    """``"512 B"``, ``"12.3 MiB"``, ``"340 MiB"`` (binary units, as the providers' limits)."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024 or unit == "PiB":
            break
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def human_duration(seconds: float) -> str:
    """``"0.8 s"``, ``"2 min 05 s"``, ``"1 h 02 min"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
