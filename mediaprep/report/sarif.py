"""SARIF 2.1.0 log (GitHub code scanning, VS Code SARIF viewer, ...).

One run; ``tool.driver.rules`` holds one rule per finding code present (sorted, so
``ruleIndex`` is stable); one result per finding with level ``error``/``warning``/
``note`` and the file as an ``artifactLocation.uri``. ``strict`` does not change
levels (see :mod:`mediaprep.report`). Limit, actual and fixable ride along in each
result's property bag; target/dialect/transport/summary in the run's.
"""

from __future__ import annotations

import importlib.metadata
import ntpath
import os
import posixpath
from collections.abc import Mapping
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from . import (
    RunReport,
    code_of,
    codes_of,
    files_of,
    findings_of,
    message_of,
    path_of,
    severity_of,
    summary_of,
)
from .json import dumps

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def code_descriptions() -> Mapping[str, str]:
    """Finding code -> one-line description, from the one home in ``mediaprep.types``."""
    from ..types import CODES

    return CODES


def tool_version() -> str:
    """The installed mediaprep version, ``"0"`` when not installed (e.g. a source tree)."""
    try:
        return importlib.metadata.version("mediaprep")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def information_uri() -> str | None:
    """The project's home page from package metadata, or None.

    Why not a hard-coded URL: an invented address would send users somewhere wrong;
    ``informationUri`` is optional in SARIF, so it is left out until the package
    declares ``[project.urls]``.
    """
    try:
        meta = importlib.metadata.metadata("mediaprep")
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in meta.get_all("Project-URL") or []:
        _label, _, url = entry.partition(",")
        if url.strip().startswith(("https://", "http://")):
            return url.strip()
    home = meta.get("Home-page")
    if home and home.startswith(("https://", "http://")):
        return home
    return None


def path_to_uri(path: str) -> str:
    """A report path as a SARIF ``uri``: relative reference, or ``file://`` if absolute.

    Forward slashes; everything outside RFC 3986 unreserved characters and ``/`` is
    percent-encoded as UTF-8 (so spaces, ``,``, ``:``, ``%`` and non-ASCII are safe and a
    ``:`` can never be mistaken for a URI scheme). Undecodable file-name bytes kept as
    lone surrogates are encoded back to their original bytes.
    """
    if os.sep == "\\" or ntpath.splitdrive(path)[0]:
        # Windows path (or a report made on Windows): backslashes are separators.
        win = PureWindowsPath(path)
        if win.is_absolute():
            # 'C:/x' -> file:///C:/x; UNC '//server/share/x' -> file://server/share/x
            prefix = "file:" if win.drive.startswith("\\\\") else "file:///"
            return prefix + quote(win.as_posix(), safe="/:", errors="surrogateescape")
        path = win.as_posix()
    if posixpath.isabs(path):
        return "file://" + quote(str(PurePosixPath(path)), safe="/", errors="surrogateescape")
    return quote(path, safe="/", errors="surrogateescape")


def _rule(code: str, descriptions: Mapping[str, str]) -> dict[str, Any]:
    # An unknown code still gets a rule (described by itself) so ruleIndex always resolves.
    return {"id": code, "shortDescription": {"text": descriptions.get(code) or code}}


def _result(path: str, finding: Mapping[str, Any], rule_index: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": code_of(finding),
        "ruleIndex": rule_index,
        "level": _LEVEL[severity_of(finding)],
        "message": {"text": message_of(finding)},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": path_to_uri(path)}}}],
    }
    extra = {k: finding[k] for k in ("limit", "actual", "fixable") if k in finding}
    if extra:
        result["properties"] = extra
    return result


def build(report: RunReport) -> dict[str, Any]:
    """The SARIF log as a dict (before JSON encoding)."""
    files = files_of(report)
    codes = codes_of(files)
    index = {code: i for i, code in enumerate(codes)}
    driver: dict[str, Any] = {"name": "mediaprep", "version": tool_version()}
    uri = information_uri()
    if uri:
        driver["informationUri"] = uri
    descriptions = code_descriptions()
    driver["rules"] = [_rule(code, descriptions) for code in codes]
    results = [
        _result(path_of(file), finding, index[code_of(finding)])
        for file in files
        for finding in findings_of(file)
    ]
    properties: dict[str, Any] = {
        key: report[key] for key in ("target", "dialect", "transport") if key in report
    }
    properties["summary"] = summary_of(report)
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{"tool": {"driver": driver}, "results": results, "properties": properties}],
    }


def render(report: RunReport, *, strict: bool = False) -> str:
    """The SARIF log as pretty JSON text."""
    del strict  # levels are reported as they are; see the module docstring
    return dumps(build(report))
