"""Render a ``check`` report (docs/formats.md, "check --format json") for CI.

The input is the plain JSON-shaped dict, not library objects, so a report can be
rendered from a saved ``--format json`` file and every renderer sees exactly what
machines see.

Formats:

- ``text``: ruff-like ``path: severity code: message`` lines plus a summary line.
- ``json``: the report itself, pretty printed.
- ``github``: GitHub Actions workflow commands (``::error file=...``), one per finding.
- ``junit``: JUnit XML, one test case per file.
- ``sarif``: SARIF 2.1.0 (GitHub code scanning and other SARIF viewers).
- ``html``: one self-contained page with inline thumbnails of the inputs (see
  :mod:`mediaprep.report.html`, which also writes ``prep``'s ``DIR/report.html``).

``strict`` means "warnings fail the run". It changes what *fails* (text summary
counts, JUnit failures); it never rewrites a finding's severity, so GitHub
annotations and SARIF levels stay as the checker reported them. The exit code is
the CLI's business.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

__all__ = [
    "FORMATS",
    "RunReport",
    "Severity",
    "code_of",
    "codes_of",
    "displayable",
    "file_failed",
    "files_of",
    "findings_of",
    "message_of",
    "path_of",
    "render",
    "severity_of",
    "summary_of",
]

#: A whole run's report as ``check --format json`` gives it (docs/formats.md); one file's
#: check is :class:`mediaprep.types.Report`.
RunReport = Mapping[str, Any]
Severity = Literal["error", "warning", "info"]

FORMATS: tuple[str, ...] = ("text", "json", "github", "junit", "sarif", "html")


def render(report: RunReport, fmt: str, *, strict: bool = False, verbose: bool = False,
           quiet: bool = False) -> str:
    """Render ``report`` in format ``fmt`` (one of :data:`FORMATS`).

    ``verbose`` and ``quiet`` only affect ``text`` (``verbose`` also lists files without
    findings; ``quiet`` lists only the findings that fail a file, then the summary).
    Output ends with a newline unless it is empty (``github`` with no findings).
    Raises ``ValueError`` for an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    # Imported lazily: the submodules import the helpers below from this package,
    # and a CLI run needs only one renderer.
    module = importlib.import_module(f"{__name__}.{fmt}")
    if fmt == "text":
        return module.render(report, strict=strict, verbose=verbose, quiet=quiet)
    if fmt == "json":
        return module.render(report)
    return module.render(report, strict=strict)


# --- helpers shared by the renderers -------------------------------------------------
# They are lenient on purpose: a renderer that crashes on a slightly odd report would
# hide the findings a CI run exists to show.


def files_of(report: RunReport) -> list[Mapping[str, Any]]:
    """The report's file entries (an absent or null ``files`` means none)."""
    files = report.get("files") or []
    return [f for f in files if isinstance(f, Mapping)]


def findings_of(file: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The file entry's findings (an absent or null ``findings`` means none)."""
    findings = file.get("findings") or []
    return [f for f in findings if isinstance(f, Mapping)]


def severity_of(finding: Mapping[str, Any]) -> Severity:
    """Normalised severity; anything unrecognised counts as ``error``.

    Why: a CI check must not let an unexpected severity slip through as a pass.
    """
    sev = str(finding.get("severity", "error")).strip().lower()
    if sev in ("warning", "warn"):
        return "warning"
    if sev in ("info", "note", "notice", "information"):
        return "info"
    return "error"


def input_failed(entry: dict[str, Any], *, strict: bool = False) -> bool:
    """Did this input fail: the one predicate for a ``check --format json`` file entry and a
    ``parts.jsonl`` line. It failed when ``ok`` is false (an entry without ``ok``: when it has
    an error finding); with ``strict`` a warning fails it too. A prepared input whose errors
    were fixed is ``ok`` (its findings keep the errors it had)."""
    findings = entry.get("findings") or []
    ok = entry.get("ok")
    if ok is None:
        ok = not any(f.get("severity") == "error" for f in findings)
    if not ok:
        return True
    return strict and any(f.get("severity") == "warning" for f in findings)


def file_failed(file: Mapping[str, Any], *, strict: bool = False) -> bool:
    """Whether this file fails: :func:`input_failed` (the one rule),
    after the report's severities are normalised with :func:`severity_of`, so that a checker's
    unknown severity counts as an error. ``info`` findings never fail a file.
    """
    return input_failed({"ok": file.get("ok"),
                         "findings": [{"severity": severity_of(f)} for f in findings_of(file)]},
                        strict=strict)


def _counted(files: list[Mapping[str, Any]]) -> dict[str, int]:
    severities = [severity_of(x) for f in files for x in findings_of(f)]
    failed = sum(file_failed(f) for f in files)
    return {"files": len(files), "passed": len(files) - failed, "failed": failed,
            "errors": severities.count("error"), "warnings": severities.count("warning")}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def summary_of(report: RunReport, *, strict: bool = False) -> dict[str, int]:
    """Summary counts: ``files``, ``passed``, ``failed``, ``errors``, ``warnings``.

    ``errors``/``warnings`` come from the report's own ``summary`` where present (the
    checker is the authority), else they are counted. ``passed``/``failed`` are
    recounted under ``strict`` because strict changes what fails.
    """
    files = files_of(report)
    counted = _counted(files)
    given = report.get("summary")
    if isinstance(given, Mapping):
        counted.update({k: given[k] for k in counted if _is_count(given.get(k))})
    if strict:
        counted["failed"] = sum(file_failed(f, strict=True) for f in files)
        counted["passed"] = len(files) - counted["failed"]
    return counted


def message_of(finding: Mapping[str, Any]) -> str:
    """A finding's message as text (never empty: falls back to the code)."""
    message = finding.get("message")
    if message is None or message == "":
        return code_of(finding)
    return str(message)


def code_of(finding: Mapping[str, Any]) -> str:
    """A finding's code (``unknown`` if missing)."""
    code = finding.get("code")
    return str(code) if code not in (None, "") else "unknown"


def path_of(file: Mapping[str, Any]) -> str:
    """A file entry's path as given by the checker (``<unknown>`` if missing)."""
    path = file.get("path")
    return str(path) if path not in (None, "") else "<unknown>"


def codes_of(files: Sequence[Mapping[str, Any]]) -> list[str]:
    """Distinct finding codes, sorted so rule indexes are stable across runs."""
    return sorted({code_of(x) for f in files for x in findings_of(f)})


# C0 controls (tab and newline included), DEL and C1 controls: in a terminal or CI log they
# can recolour output or fake extra lines (a file name with '\n' could forge a finding). Bidi
# controls (U+202E right-to-left override, the isolates, the marks) and the line and paragraph
# separators reorder or break what is shown: "gpj.exe" can pass for "exe.jpg".
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def displayable(value: str) -> str:
    """``value`` safe to print on one line: control characters shown as ``\\xNN``, bidi
    controls and line separators as ``\\uNNNN``.

    Lone surrogates (undecodable file-name bytes) become ``\\udcNN`` so printing never
    raises ``UnicodeEncodeError``.
    """
    value = _CONTROL.sub(_escape, value)
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
