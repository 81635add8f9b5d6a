"""Human-readable, ruff-like text report.

One line per finding, ``path: severity code: message``; a multi-line message
continues on indented lines so every unindented line still starts with a path, and
control characters are shown escaped (``\\x1b``, ``\\u202e``) so no path or message can forge
lines or reorder what is shown.
Files without findings are listed only with ``verbose``. A summary line ends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import (
    RunReport,
    code_of,
    displayable,
    files_of,
    findings_of,
    message_of,
    path_of,
    severity_of,
    summary_of,
)

_CONTINUATION = "    "


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _inputs(files: list[Mapping[str, Any]]) -> str:
    """``"3 files"``, ``"1 frame folder"``, ``"2 files and 1 frame folder"``: a folder of
    frames checked as one video is not "1 file"."""
    folders = sum(1 for f in files if f.get("kind") == "frames")
    said = [_plural(len(files) - folders, "file")] if len(files) > folders or not files else []
    if folders:
        said.append(_plural(folders, "frame folder"))
    return " and ".join(said)


def _finding_lines(path: str, finding: Mapping[str, Any], raw_path: str = "") -> list[str]:
    message = message_of(finding)
    # messages name their file for library users; the line already starts with it
    for prefix in {f"{path}: ", f"{raw_path}: "}:
        if prefix.strip(": ") and message.startswith(prefix):
            message = message[len(prefix):]
    first, *rest = [displayable(line) for line in message.splitlines()] or [""]
    code = displayable(code_of(finding))
    lines = [f"{path}: {severity_of(finding)} {code}: {first}"]
    lines.extend(_CONTINUATION + line for line in rest)
    return lines


def _ok_line(path: str, file: Mapping[str, Any]) -> str:
    tokens = file.get("tokens")
    if isinstance(tokens, Mapping) and tokens.get("estimate") is not None:
        model = f" for {tokens['model']}" if tokens.get("model") else ""
        return f"{path}: ok (~{_plural(tokens['estimate'], 'token')}{model}, estimate)"
    return f"{path}: ok"


def _context(report: RunReport, strict: bool) -> str:
    """`` (target dashscope, dialect openai, strict: warnings fail)``: the limits depend on
    target, dialect and transport, so the line says which were in force."""
    context = [f"{key} {report[key]}" for key in ("target", "dialect", "transport")
               if report.get(key)]
    if strict:
        context.append("strict: warnings fail")
    return f" ({', '.join(context)})" if context else ""


def _has_estimate(file: Mapping[str, Any]) -> bool:
    tokens = file.get("tokens")
    return isinstance(tokens, Mapping) and isinstance(tokens.get("estimate"), int)


def _estimate(report: RunReport) -> str:
    """``; ~1,234 tokens for 3 files (estimate, kimi-k2.5)``: what the model will be charged if
    every file goes in one request ("" when no file has an estimate)."""
    with_estimate = [f for f in files_of(report) if _has_estimate(f)]
    if not with_estimate:
        return ""
    estimates = [f["tokens"] for f in with_estimate]
    total = sum(t["estimate"] for t in estimates)
    models = sorted({str(t.get("model")) for t in estimates if t.get("model")})
    line = f"; ~{total:,} {'token' if total == 1 else 'tokens'} for {_inputs(with_estimate)}"
    return line + (f" (estimate, {', '.join(models)})" if models else " (estimate)")


def summary_line(report: RunReport, *, strict: bool = False) -> str:
    """``Checked N files: P passed, F failed, E errors, W warnings`` plus the context."""
    s = summary_of(report, strict=strict)
    return (
        f"Checked {_inputs(files_of(report))}: {s['passed']} passed, {s['failed']} failed, "
        f"{_plural(s['errors'], 'error')}, {_plural(s['warnings'], 'warning')}"
        + _context(report, strict) + _estimate(report)
    )


def render(report: RunReport, *, strict: bool = False, verbose: bool = False,
           quiet: bool = False) -> str:
    """Render the text report; see the module docstring for the layout.

    ``quiet`` keeps only the findings that fail a file (errors; warnings too with ``strict``)
    and the summary line.
    """
    lines: list[str] = []
    failing = ("error", "warning") if strict else ("error",)
    for file in files_of(report):
        path = displayable(path_of(file))
        findings = findings_of(file)
        if quiet:
            findings = [f for f in findings if severity_of(f) in failing]
            verbose = False
        if not findings:
            if verbose:
                lines.append(_ok_line(path, file))
            continue
        for finding in findings:
            lines.extend(_finding_lines(path, finding, str(path_of(file))))
    lines.append(summary_line(report, strict=strict))
    # every line, the summary's model names and targets too (escaping twice changes nothing)
    return "\n".join(displayable(line) for line in lines) + "\n"
