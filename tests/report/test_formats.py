"""CI report renderers (mediaprep.report): every format is read back with a real parser.

README: the SARIF check uses tests/report/sarif_2_1_0_subset.schema.json, a hand-written subset
of the OASIS SARIF 2.1.0 schema (oasis-tcs/sarif-spec,
Documents/CommitteeSpecifications/2.1.0/sarif-schema-2.1.0.json) covering the objects
mediaprep emits; it needs ``jsonschema`` and is skipped without it.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from mediaprep.report import FORMATS, displayable, render, summary_of
from mediaprep.report.github import escape_data, escape_property
from mediaprep.report.sarif import code_descriptions, path_to_uri

SCHEMA_PATH = Path(__file__).with_name("sarif_2_1_0_subset.schema.json")

ODD_PATH = "media/a photo, v2: ünïcode 写真.jpg"
ODD_MESSAGE = "image is 100% too small\nsecond line\r\nthird: a,b"


def _finding(code: str, severity: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "severity": severity,
        "message": message,
        "limit": extra.get("limit"),
        "actual": extra.get("actual"),
        "fixable": extra.get("fixable", False),
    }


def sample_report() -> dict[str, Any]:
    """Five files: clean, error+warning (odd path/message), info-only, warning-only, bad."""
    files = [
        {
            "path": "media/ok.png",
            "kind": "image",
            "ok": True,
            "info": {"format": "png", "width": 640, "height": 480, "bytes": 1024},
            "findings": [],
            "tokens": {"estimate": 1369, "model": "kimi-k2.5"},
        },
        {
            "path": ODD_PATH,
            "kind": "image",
            "ok": False,
            "info": {"format": "jpeg", "width": 10, "height": 400, "bytes": 5120},
            "findings": [
                _finding(
                    "image.too_small", "error", ODD_MESSAGE, limit=10, actual=10, fixable=True
                ),
                _finding("image.resolution", "warning", "above 8K\x01\x1b[0m", limit=1, actual=2),
            ],
        },
        {
            "path": "clips/talk.mov",
            "kind": "video",
            "ok": True,
            "info": {"format": "mov", "duration": 12.5, "bytes": 2_000_000},
            "findings": [_finding("video.audio_ignored", "info", "audio track is ignored")],
        },
        {
            "path": "clips/big 100%.mp4",
            "kind": "video",
            "ok": True,
            "info": {"format": "mp4", "duration": 30.0, "bytes": 9_000_000},
            "findings": [_finding("video.resolution", "warning", "above 2K", limit=2048)],
        },
        {
            "path": "broken.bin",
            "kind": "unknown",
            "ok": False,
            "info": {},
            "findings": [_finding("file.unreadable", "error", "cannot identify file")],
        },
    ]
    return {
        "target": "dashscope",
        "dialect": "openai",
        "transport": "base64",
        "files": files,
        "summary": {"files": 5, "passed": 3, "failed": 2, "errors": 2, "warnings": 2},
    }


def empty_report() -> dict[str, Any]:
    return {
        "target": "moonshot",
        "dialect": "openai",
        "transport": "base64",
        "files": [],
        "summary": {"files": 0, "passed": 0, "failed": 0, "errors": 0, "warnings": 0},
    }


def all_findings(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f["path"], x) for f in report["files"] for x in f["findings"]]


# --- dispatcher ------------------------------------------------------------------------


def test_formats_and_dispatch() -> None:
    assert FORMATS == ("text", "json", "github", "junit", "sarif", "html")
    report = sample_report()
    for fmt in FORMATS:
        out = render(report, fmt)
        assert isinstance(out, str) and out.endswith("\n")
        assert render(report, fmt) == out  # deterministic
    with pytest.raises(ValueError, match="unknown report format"):
        render(report, "xml")


def test_render_does_not_mutate_report() -> None:
    report = sample_report()
    before = copy.deepcopy(report)
    for fmt in FORMATS:
        render(report, fmt, strict=True, verbose=True)
    assert report == before


# --- json ------------------------------------------------------------------------------


def test_json_round_trip() -> None:
    report = sample_report()
    out = render(report, "json")
    assert json.loads(out) == report
    assert out.isascii()  # escapes keep it safe for any log encoding
    assert "\n  " in out  # pretty printed


def test_json_is_strict_json_for_odd_values() -> None:
    report = empty_report()
    report["files"] = [
        {
            "path": Path("a.mp4"),
            "kind": "video",
            "ok": True,
            "info": {"duration": float("nan"), "dims": (1, 2)},
            "findings": [],
        }
    ]
    parsed = json.loads(render(report, "json"), parse_constant=pytest.fail)
    assert parsed["files"][0]["path"] == "a.mp4"
    assert parsed["files"][0]["info"] == {"duration": "nan", "dims": [1, 2]}


# --- text ------------------------------------------------------------------------------


def test_text_lines() -> None:
    report = sample_report()
    lines = render(report, "text").splitlines()
    finding_lines = [line for line in lines[:-1] if not line.startswith(" ")]
    expected = [
        f"{path}: {x['severity']} {x['code']}: {displayable(x['message'].splitlines()[0])}"
        for path, x in all_findings(report)
    ]
    assert r"above 8K\x01\x1b[0m" in expected[1]  # terminal escapes shown, not obeyed
    assert finding_lines == expected
    # The multi-line message continues on indented lines right after its first line.
    i = lines.index(expected[0])
    assert lines[i + 1 : i + 3] == ["    second line", "    third: a,b"]
    assert not any(line.startswith("media/ok.png") for line in lines)
    summary = lines[-1]
    assert summary.startswith("Checked 5 files: 3 passed, 2 failed, 2 errors, 2 warnings")
    assert "target dashscope" in summary


def test_text_cannot_forge_lines() -> None:
    report = empty_report()
    report["files"] = [
        {
            "path": "x.png: error fake.code: boo\nreal.png",
            "kind": "image",
            "ok": False,
            "findings": [_finding("image.too_small", "error", "small\x1b[31m")],
        }
    ]
    del report["summary"]
    lines = render(report, "text").splitlines()
    forged_path = r"x.png: error fake.code: boo\x0areal.png"
    assert lines[0] == forged_path + r": error image.too_small: small\x1b[31m"
    assert len(lines) == 2
    assert displayable("a\udcffb") == r"a\udcffb"  # undecodable bytes stay printable


def test_text_verbose_lists_clean_files() -> None:
    lines = render(sample_report(), "text", verbose=True).splitlines()
    assert "media/ok.png: ok (~1369 tokens for kimi-k2.5, estimate)" in lines


def test_text_info_only_file_passes_and_strict_fails_warnings() -> None:
    report = sample_report()
    assert summary_of(report) == report["summary"]
    # Without a summary in the report, it is counted; info-only talk.mov still passes.
    del report["summary"]
    assert summary_of(report) == sample_report()["summary"]
    strict = render(report, "text", strict=True).splitlines()[-1]
    # strict: the warning-only file fails too; the info-only file still passes.
    assert strict.startswith("Checked 5 files: 2 passed, 3 failed, 2 errors, 2 warnings")
    assert "strict" in strict


def test_text_singular_and_empty() -> None:
    report = empty_report()
    assert render(report, "text").splitlines() == [
        "Checked 0 files: 0 passed, 0 failed, 0 errors, 0 warnings "
        "(target moonshot, dialect openai, transport base64)"
    ]
    report["files"] = [sample_report()["files"][4]]
    del report["summary"]
    assert "Checked 1 file: 0 passed, 1 failed, 1 error, 0 warnings" in render(report, "text")


# --- github ----------------------------------------------------------------------------

GITHUB_LINE = re.compile(r"^::(error|warning|notice) file=([^,:\r\n]*),title=([^,:\r\n]*)::(.*)$")


def _unescape(value: str) -> str:
    # Inverse of the toolkit escaping; '%25' last so it cannot create new escapes.
    for escaped, raw in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        value = value.replace(escaped, raw)
    return value


def test_github_round_trip() -> None:
    report = sample_report()
    out = render(report, "github")
    lines = out.splitlines()
    expected = all_findings(report)
    assert len(lines) == len(expected)
    command = {"error": "error", "warning": "warning", "info": "notice"}
    for line, (path, finding) in zip(lines, expected, strict=True):
        match = GITHUB_LINE.match(line)
        assert match, line
        assert match.group(1) == command[finding["severity"]]
        assert _unescape(match.group(2)) == path
        assert _unescape(match.group(3)) == finding["code"]
        # line breaks round-trip; other controls are shown escaped, as the text format does
        shown = "".join(part if part in ("\r\n", "\r", "\n") else displayable(part)
                        for part in re.split("(\r\n|\r|\n)", finding["message"]))
        assert _unescape(match.group(4)) == shown


def test_github_escaping_rules() -> None:
    assert escape_data("50%\r\nx:y,z") == "50%25%0D%0Ax:y,z"
    assert escape_property("50%\r\nx:y,z") == "50%25%0D%0Ax%3Ay%2Cz"
    # strict leaves severities alone (only the CLI's exit code changes).
    assert render(sample_report(), "github", strict=True) == render(sample_report(), "github")


def test_github_empty() -> None:
    assert render(empty_report(), "github") == ""


# --- junit -----------------------------------------------------------------------------


def _cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in root.iter("testcase")}


def test_junit_counts_and_failures() -> None:
    report = sample_report()
    out = render(report, "junit")
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(out.encode("utf-8"))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "mediaprep"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "2", "0")
    assert suite.get("skipped") == "0"
    assert root.get("tests") == "5" and root.get("failures") == "2"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"target": "dashscope", "dialect": "openai", "transport": "base64"}

    cases = _cases(root)
    assert list(cases) == [f["path"] for f in report["files"]]
    assert cases[ODD_PATH].get("classname") == "mediaprep.image"
    assert cases["broken.bin"].get("classname") == "mediaprep.unknown"

    failure = cases[ODD_PATH].find("failure")
    assert failure is not None
    assert failure.get("type") == "image.too_small"
    # The newline in the attribute survives (written as &#10;); '\r\n' became '\n'.
    assert failure.get("message") == "image.too_small: " + ODD_MESSAGE.replace("\r\n", "\n")
    text = failure.text or ""
    assert "error image.too_small: image is 100% too small" in text
    # All findings are in the failure text, with XML-forbidden control chars stripped.
    assert "warning image.resolution: above 8K[0m" in text

    # Warnings and info are not failures without strict: they go to system-out.
    for name in ("clips/talk.mov", "clips/big 100%.mp4"):
        assert cases[name].find("failure") is None
    assert "video.resolution" in (cases["clips/big 100%.mp4"].findtext("system-out") or "")
    assert "video.audio_ignored" in (cases["clips/talk.mov"].findtext("system-out") or "")
    assert cases["media/ok.png"].find("system-out") is None


def test_junit_strict_moves_warnings_to_failures() -> None:
    root = ET.fromstring(render(sample_report(), "junit", strict=True))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "3"
    cases = _cases(root)
    failure = cases["clips/big 100%.mp4"].find("failure")
    assert failure is not None and failure.get("type") == "video.resolution"
    assert cases["clips/big 100%.mp4"].find("system-out") is None
    assert cases["clips/talk.mov"].find("failure") is None  # info never fails
    assert {p.get("name") for p in suite.iter("property")} >= {"strict"}


def test_junit_strips_forbidden_characters_everywhere() -> None:
    report = empty_report()
    report["files"] = [
        {
            "path": "bad\x00name\x07.png",
            "kind": "image\x0b",
            "ok": False,
            "findings": [_finding("image.too_small\x1f", "error", "m\x08sg \ud800 <&>\"'")],
        }
    ]
    root = ET.fromstring(render(report, "junit").encode("utf-8"))
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == "badname.png"
    assert case.get("classname") == "mediaprep.image"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "image.too_small: msg  <&>\"'"


def test_junit_empty() -> None:
    root = ET.fromstring(render(empty_report(), "junit"))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("0", "0")
    assert list(root.iter("testcase")) == []


# --- sarif -----------------------------------------------------------------------------

# RFC 3986 URI-reference characters (after percent-encoding nothing else may appear).
URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*$")


def _validate(log: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_sarif_structure() -> None:
    report = sample_report()
    log = json.loads(render(report, "sarif"))
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "mediaprep"
    assert driver["version"] == importlib.metadata.version("mediaprep")
    rule_ids = [rule["id"] for rule in driver["rules"]]
    codes = {x["code"] for _, x in all_findings(report)}
    assert sorted(rule_ids) == rule_ids and set(rule_ids) == codes
    assert all(rule["shortDescription"]["text"] for rule in driver["rules"])
    descriptions = code_descriptions()
    if descriptions:  # rule texts come from the one table of codes
        for rule in driver["rules"]:
            assert rule["shortDescription"]["text"] == descriptions.get(rule["id"], rule["id"])

    level = {"error": "error", "warning": "warning", "info": "note"}
    results = run["results"]
    assert len(results) == len(all_findings(report))
    for result, (path, finding) in zip(results, all_findings(report), strict=True):
        assert result["ruleId"] == finding["code"]
        assert rule_ids[result["ruleIndex"]] == finding["code"]
        assert result["level"] == level[finding["severity"]]
        assert result["message"]["text"] == finding["message"]
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert URI_CHARS.match(uri), uri
        assert unquote(uri) == path
        assert result["properties"]["limit"] == finding["limit"]
    assert run["properties"]["target"] == "dashscope"
    assert run["properties"]["summary"] == report["summary"]


def test_sarif_odd_uri_is_relative_and_percent_encoded() -> None:
    uri = path_to_uri(ODD_PATH)
    assert " " not in uri and "," not in uri and ":" not in uri
    assert uri.startswith("media/")
    assert unquote(uri) == ODD_PATH
    assert path_to_uri("clips/big 100%.mp4") == "clips/big%20100%25.mp4"
    assert path_to_uri("/abs/dir/a b.png") == "file:///abs/dir/a%20b.png"
    assert path_to_uri("C:\\media\\a b.png") == "file:///C:/media/a%20b.png"
    assert path_to_uri("\\\\srv\\share\\a,b.png") == "file://srv/share/a%2Cb.png"


def test_sarif_schema_valid() -> None:
    _validate(json.loads(render(sample_report(), "sarif")))


def test_sarif_schema_rejects_bad_level() -> None:
    # The subset must actually constrain: a wrong level or version is caught.
    log = json.loads(render(sample_report(), "sarif"))
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(AssertionError):
        _validate(log)
    log = json.loads(render(sample_report(), "sarif"))
    log["version"] = "2.0.0"
    with pytest.raises(AssertionError):
        _validate(log)


def test_sarif_empty() -> None:
    log = json.loads(render(empty_report(), "sarif"))
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["tool"]["driver"]["rules"] == []
    _validate(log)


def test_json_empty_round_trip() -> None:
    assert json.loads(render(empty_report(), "json")) == empty_report()


def test_sarif_information_uri_when_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    import mediaprep.report.sarif as sarif

    monkeypatch.setattr(sarif, "information_uri", lambda: "https://example.org/mediaprep")
    log = json.loads(render(sample_report(), "sarif"))
    assert log["runs"][0]["tool"]["driver"]["informationUri"] == "https://example.org/mediaprep"
    _validate(log)
