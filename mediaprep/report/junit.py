"""JUnit XML: one ``<testcase>`` per checked file.

``<testsuites><testsuite name="mediaprep" tests= failures= errors="0" skipped="0">``;
each test case is ``classname="mediaprep.<kind>" name="<path>"``. A failing file gets
one ``<failure message="CODE: msg" type="CODE">`` (the first failing finding) whose
text lists all of the file's findings. Warnings fail a file only with ``strict``;
otherwise they, and ``info`` findings, go to the test case's ``<system-out>``.
``errors`` stays 0: a finding is a failed check, not a crashed test.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from . import (
    RunReport,
    code_of,
    file_failed,
    files_of,
    findings_of,
    message_of,
    path_of,
    severity_of,
)

# Characters XML 1.0 forbids even as character references (and lone surrogates, which
# come from undecodable file names); ElementTree would write them and parsers reject them.
_XML_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """``value`` as text that is legal in XML 1.0 (forbidden characters dropped)."""
    # '\r\n' -> '\n' because XML parsers normalise line ends in text anyway.
    return _XML_FORBIDDEN.sub("", str(value).replace("\r\n", "\n"))


def _finding_line(finding: Mapping[str, Any]) -> str:
    return f"{severity_of(finding)} {code_of(finding)}: {message_of(finding)}"


def _is_failing(finding: Mapping[str, Any], strict: bool) -> bool:
    severity = severity_of(finding)
    return severity == "error" or (strict and severity == "warning")


def _testcase(suite: ET.Element, file: Mapping[str, Any], strict: bool) -> bool:
    """Append the file's test case; return whether it failed."""
    kind = str(file.get("kind") or "unknown")
    case = ET.SubElement(
        suite, "testcase", classname=xml_text(f"mediaprep.{kind}"), name=xml_text(path_of(file))
    )
    findings = findings_of(file)
    details = xml_text("\n".join(_finding_line(f) for f in findings))
    if file_failed(file, strict=strict):
        failing = [f for f in findings if _is_failing(f, strict)]
        if failing:
            first = failing[0]
            message, ftype = f"{code_of(first)}: {message_of(first)}", code_of(first)
        else:  # the checker said ok=false without saying why
            message, ftype = "file failed the check", "failed"
        failure = ET.SubElement(case, "failure", message=xml_text(message), type=xml_text(ftype))
        failure.text = details
        return True
    if findings:
        ET.SubElement(case, "system-out").text = details
    return False


def render(report: RunReport, *, strict: bool = False) -> str:
    """The JUnit XML document as a string (UTF-8 declared)."""
    files = files_of(report)
    root = ET.Element("testsuites", name="mediaprep")
    suite = ET.SubElement(root, "testsuite", name="mediaprep")
    # Properties first: the JUnit schema puts <properties> before the test cases.
    props = [(key, report.get(key)) for key in ("target", "dialect", "transport")]
    props = [(k, v) for k, v in props if v not in (None, "")]
    if props or strict:
        properties = ET.SubElement(suite, "properties")
        for key, value in props:
            ET.SubElement(properties, "property", name=key, value=xml_text(value))
        if strict:
            ET.SubElement(properties, "property", name="strict", value="true")
    failures = sum(_testcase(suite, file, strict) for file in files)
    counts = {"tests": str(len(files)), "failures": str(failures), "errors": "0", "skipped": "0"}
    for element in (root, suite):  # totals on both: consumers read one or the other
        element.attrib.update(counts)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
