"""The CI end of `check`: every --format read back with a real parser, exit codes, --strict,
configuration found by walking up, and the pre-commit hook definition."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from mediaprep.cli import main
from mediaprep.types import CODES

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "sarif_2_1_0_subset.schema.json").read_text())
GITHUB = re.compile(r"^::(error|warning|notice) file=([^,]+),title=([a-z_.]+)::(.+)$")


@pytest.fixture()
def repo(tmp_path: Path, generated: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder: a passing, a failing and a warning image, and a video (info only)."""
    media = tmp_path / "media"
    media.mkdir()
    for name, key in {"ok.png": "png", "small.png": "png_10x400", "huge.png": "png_7681x4320",
                      "clip.mp4": "video_audio"}.items():
        shutil.copy(generated[key], media / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check(*args: Any) -> Any:
    return CliRunner().invoke(main, ["check", "-j", "2", *map(str, args)],
                              catch_exceptions=False)


def test_github_annotations(repo: Path) -> None:
    r = check("media", "--format", "github")
    assert r.exit_code == 1
    found = [GITHUB.match(line) for line in r.stdout.splitlines()]
    assert all(found), r.stdout
    got = {(m.group(1), m.group(2), m.group(3)) for m in found if m}
    assert ("error", "media/small.png", "image.too_small") in got
    assert ("warning", "media/huge.png", "image.resolution") in got
    assert not any(m.group(2) == "media/ok.png" for m in found if m)
    assert all((repo / m.group(2)).is_file() for m in found if m)  # paths relative to the repo


def test_junit_one_testcase_per_file(repo: Path) -> None:
    r = check("media", "--format", "junit")
    assert r.exit_code == 1
    tree = ET.fromstring(r.stdout)
    cases = {c.get("name"): c for c in tree.iter("testcase")}
    assert set(cases) == {"media/ok.png", "media/small.png", "media/huge.png", "media/clip.mp4"}
    failures = {n: [f.get("type") for f in c.findall("failure")] for n, c in cases.items()}
    assert failures["media/small.png"] == ["image.too_small"]
    assert failures["media/ok.png"] == [] and failures["media/huge.png"] == []
    assert int(tree.get("failures")) == 1 and int(tree.get("tests")) == 4
    strict = ET.fromstring(check("media", "--format", "junit", "--strict").stdout)
    assert [f.get("type") for c in strict.iter("testcase") if c.get("name") == "media/huge.png"
            for f in c.findall("failure")] == ["image.resolution"]
    assert int(strict.get("failures")) == 2


def test_sarif_validates_and_rules_are_finding_codes(repo: Path) -> None:
    r = check("media", "--format", "sarif")
    assert r.exit_code == 1
    log = json.loads(r.stdout)
    jsonschema.validate(log, SCHEMA)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rules and set(rules) <= set(CODES)
    results = run["results"]
    assert {res["ruleId"] for res in results} == set(rules)
    assert all(rules[res["ruleIndex"]] == res["ruleId"] for res in results)
    levels = {(res["ruleId"], res["level"]) for res in results}
    assert ("image.too_small", "error") in levels and ("image.resolution", "warning") in levels
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"]
            for res in results for loc in res["locations"]}
    assert "media/small.png" in uris and not any(u.startswith("/") for u in uris)


def test_json_is_the_spec_object(repo: Path) -> None:
    r = check("media", "--format", "json")
    data = json.loads(r.stdout)
    assert set(data) == {"target", "dialect", "transport", "files", "summary"}
    assert data["summary"] == {"files": 4, "passed": 3, "failed": 1, "errors": 1,
                               "warnings": 1}
    for f in data["files"]:
        assert {"path", "kind", "ok", "info", "findings"} <= set(f)
        for x in f["findings"]:
            assert set(x) == {"code", "severity", "message", "limit", "actual", "fixable"}
    assert "4 files, 3 passed, 1 failed" in r.stderr  # the summary goes to stderr


def test_text_and_exit_codes(repo: Path) -> None:
    r = check("media")
    assert r.exit_code == 1
    assert "media/small.png" in r.stdout and "image.too_small" in r.stdout
    assert check("media/ok.png", "media/huge.png").exit_code == 0
    assert check("media/ok.png", "media/huge.png", "--strict").exit_code == 1
    assert check("media/clip.mp4", "--strict").exit_code == 0  # info never fails
    assert check("media", "--format", "yaml").exit_code == 2
    assert check().exit_code == 2


def test_config_found_by_walking_up(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "pyproject.toml").write_text('''
[project]
name = "someone-elses"

[tool.mediaprep]
target = "moonshot"
include = ["media/**"]
exclude = ["**/huge.png"]

[[tool.mediaprep.overrides]]
paths = ["media/ok.png"]
model = "kimi-k2-thinking"
''')
    sub = repo / "deep" / "er"
    sub.mkdir(parents=True)
    (repo / "elsewhere.png").write_bytes((repo / "media" / "ok.png").read_bytes())
    monkeypatch.chdir(sub)
    r = check(repo, "--format", "json")
    data = json.loads(r.stdout)
    assert data["target"] == "moonshot"
    names = sorted(Path(f["path"]).name for f in data["files"])
    assert names == ["clip.mp4", "ok.png", "small.png"]  # excluded, and outside include
    ok = next(f for f in data["files"] if f["path"].endswith("ok.png"))
    assert [x["code"] for x in ok["findings"]] == ["model.no_vision"]  # the per-path override
    small = next(f for f in data["files"] if f["path"].endswith("small.png"))
    assert "model.no_vision" not in [x["code"] for x in small["findings"]]
    # a command-line option wins over the file
    assert json.loads(check(repo, "--format", "json", "--target", "dashscope").stdout)[
        "target"] == "dashscope"


def test_mediaprep_toml_and_bad_config(repo: Path) -> None:
    (repo / "mediaprep.toml").write_text('transport = "url"\n')
    assert json.loads(check("media", "--format", "json").stdout)["transport"] == "url"
    (repo / "mediaprep.toml").write_text('fps = "fast"\n')
    assert check("media").exit_code == 2


def test_pre_commit_hook_definition() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    by_id = {h["id"]: h for h in hooks}
    hook = by_id["mediaprep-check"]
    assert hook["entry"].split()[:2] == ["mediaprep", "check"]
    assert hook["language"] == "python" and hook.get("pass_filenames", True)
    files = re.compile(hook["files"])
    for name in ("a.jpg", "b/c.JPEG", "d.png", "e.mp4", "f.heic", "g.mov", "h.webp"):
        assert files.search(name), name
    for name in ("a.py", "README.md", "jpg.txt"):
        assert not files.search(name), name
