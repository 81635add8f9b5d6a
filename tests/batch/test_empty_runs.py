"""A run whose paths hold no media says so, and fails with ``--fail-on-empty`` (config
``fail_on_empty``): CI that checks nothing must not pass unnoticed (issue 27, item 4)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mediaprep.cli import main


def cli(*args: Any) -> Any:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture()
def project(tmp_path: Path, generated: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "empty").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("# notes\n")
    (tmp_path / "assets").mkdir()
    shutil.copy(generated["png"], tmp_path / "assets" / "logo.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("command", ["check", "prep"])
def test_no_media_is_said_and_passes_by_default(project: Path, command: str) -> None:
    extra = ["-o", project / "out"] if command == "prep" else []
    result = cli(command, "-j", "0", "--quiet", *extra, "empty", "docs")
    assert result.exit_code == 0, result.output
    assert f"mediaprep {command}: warning: no images or videos found" in result.stderr


@pytest.mark.parametrize("command", ["check", "prep"])
def test_fail_on_empty_makes_it_exit_1(project: Path, command: str) -> None:
    extra = ["-o", project / "out"] if command == "prep" else []
    result = cli(command, "-j", "0", "--fail-on-empty", *extra, "empty", "docs")
    assert result.exit_code == 1, result.output
    assert f"mediaprep {command}: error: no images or videos found" in result.stderr


def test_fail_on_empty_from_the_config_with_an_include_that_matches_nothing(
        project: Path) -> None:
    (project / "mediaprep.toml").write_text('include = ["asets/**"]\nfail_on_empty = true\n')
    result = cli("check", "-j", "0", ".")
    assert result.exit_code == 1
    assert "no images or videos found" in result.stderr
    (project / "mediaprep.toml").write_text('include = ["assets/**"]\nfail_on_empty = true\n')
    result = cli("check", "-j", "0", ".")
    assert result.exit_code == 0, result.output
    assert "no images or videos" not in result.stderr


def test_fail_on_empty_config_value_must_be_a_boolean(project: Path) -> None:
    (project / "mediaprep.toml").write_text('fail_on_empty = 1\n')
    result = cli("check", "assets")
    assert result.exit_code == 2
    assert "mediaprep.toml" in result.stderr and "fail_on_empty" in result.stderr
