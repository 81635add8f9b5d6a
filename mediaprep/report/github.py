"""GitHub Actions workflow commands, one annotation per finding.

``error`` -> ``::error``, ``warning`` -> ``::warning``, ``info`` -> ``::notice``.
``strict`` does not change an annotation's severity (it only decides whether the run
fails, which is the CLI's exit code); it is accepted for a uniform renderer signature.
Files without findings produce no output; with no findings the result is ``""``.
Control characters (OSC, CSI, C1, bidi) in paths, codes and messages are shown escaped as the
text format shows them (:func:`mediaprep.report.displayable`): the workflow log is a terminal.
"""

from __future__ import annotations

import re

from . import (
    RunReport,
    code_of,
    displayable,
    files_of,
    findings_of,
    message_of,
    path_of,
    severity_of,
)

_LINE_BREAK = re.compile("(\r\n|\r|\n)")
_COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(value: str) -> str:
    """Escape a command's message per the GitHub Actions toolkit (``escapeData``).

    Lone surrogates (undecodable file-name bytes) become ``\\udcNN`` so writing the
    line to stdout cannot raise ``UnicodeEncodeError``.
    """
    value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    # '%' first so the escapes added after it are not themselves escaped.
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a command property value (``escapeProperty``): data rules plus ``:`` ``,``."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def render(report: RunReport, *, strict: bool = False) -> str:
    """One ``::error|warning|notice file=PATH,title=CODE::message`` line per finding."""
    del strict  # see the module docstring: severities are reported as they are
    lines = []
    for file in files_of(report):
        path = escape_property(displayable(path_of(file)))
        for finding in findings_of(file):
            command = _COMMAND[severity_of(finding)]
            title = escape_property(displayable(code_of(finding)))
            # line breaks stay (an annotation may span lines, as %0A); every other control
            # is shown escaped
            pieces = _LINE_BREAK.split(message_of(finding))
            message = escape_data("".join(
                piece if _LINE_BREAK.fullmatch(piece) else displayable(piece)
                for piece in pieces))
            lines.append(f"::{command} file={path},title={title}::{message}")
    return "".join(line + "\n" for line in lines)
