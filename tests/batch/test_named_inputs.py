"""Which inputs a run takes: TypeScript sources named .ts/.mts beside MPEG-TS clips, and
``--force-exclude`` (config ``force_exclude``), with the pre-commit hook run as pre-commit runs it
(issue 27, items 1 and 2)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import mediaprep
from mediaprep.batch import check_many
from mediaprep.cli import main
from mediaprep.config import Config
from tests.videogen import make_video

ROOT = Path(__file__).resolve().parents[2]
TYPESCRIPT = 'export interface Clip {\n  name: string;\n}\nexport const clips: Clip[] = [];\n'


def cli(*args: Any) -> Any:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def checked(result: Any) -> list[str]:
    return sorted(Path(f["path"]).name for f in json.loads(result.stdout)["files"])


@pytest.fixture()
def web_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A web project: TypeScript sources named .ts and .mts, and real clips (MPEG-TS with
    188-byte packets, M2TS with 192-byte ones, and an MPEG-TS cut mid-packet)."""
    repo = tmp_path / "web"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "index.ts").write_text(TYPESCRIPT)
    (repo / "src" / "types.mts").write_text("export type Id = string;\n")
    # text whose 'G's fall where the first three sync bytes of an MPEG-TS would be
    text = [*("// generated, do not edit\n" * 200)]
    for at in (0, 188, 376):
        text[at] = "G"
    (repo / "src" / "generated.ts").write_text("".join(text))
    # the targets take no MPEG-TS as it is (prep remuxes it); this project's limits do
    (repo / "pyproject.toml").write_text(
        '[tool.mediaprep.limits]\n"video.formats" = ["mp4", "ts"]\n')
    (repo / "media").mkdir()
    make_video(repo / "media" / "clip.ts", n_frames=25, container_format="mpegts")
    make_video(repo / "media" / "camera.m2ts", n_frames=25, container_format="mpegts")
    # a capture cut mid-packet: its sync bytes start 100 bytes in
    (repo / "media" / "cut.ts").write_bytes((repo / "media" / "clip.ts").read_bytes()[88:])
    monkeypatch.chdir(repo)
    return repo


def test_folder_walk_skips_typescript_and_checks_the_clips(web_repo: Path) -> None:
    result = cli("check", "-j", "0", "--format", "json", web_repo)
    assert result.exit_code == 0, result.output
    assert checked(result) == ["camera.m2ts", "clip.ts", "cut.ts"]
    entries = json.loads(result.stdout)["files"]
    assert all(e["kind"] == "video" and e["ok"] for e in entries)


def test_text_named_ts_on_the_command_line_gets_a_clear_finding(web_repo: Path) -> None:
    result = cli("check", "-j", "0", "--format", "json", "src/index.ts")
    assert result.exit_code == 1
    [entry] = json.loads(result.stdout)["files"]
    assert entry["path"] == "src/index.ts"
    [finding] = entry["findings"]
    assert finding["code"] == "file.unsupported_format"
    assert "not an image or a video" in finding["message"]
    assert "TypeScript" in finding["message"]


def hook_command() -> list[str]:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    entry = shlex.split(hooks["mediaprep-check"]["entry"])
    assert entry[0] == "mediaprep"
    # as the installed console script would run it, from this checkout
    return [sys.executable, "-m", "mediaprep", *entry[1:]]


def run_hook(repo: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """The hook's entry with the staged file names as arguments, as pre-commit runs it."""
    import re

    hook = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    pattern = re.compile(hook["mediaprep-check"]["files"])
    assert all(pattern.search(f) for f in files), "pre-commit would not pass all these"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*hook_command(), *files], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300)


def test_pre_commit_hook_passes_a_typescript_commit(web_repo: Path) -> None:
    done = run_hook(web_repo, "src/index.ts", "src/types.mts", "src/generated.ts")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "no images or videos" in done.stderr


def test_pre_commit_hook_still_checks_the_clips_staged_with_typescript(
        web_repo: Path, generated: dict[str, Path]) -> None:
    done = run_hook(web_repo, "src/index.ts", "media/clip.ts")
    assert done.returncode == 0, done.stderr
    assert "for 1 file " in done.stdout  # the clip, not the source
    shutil.copy(generated["png_10x400"], web_repo / "media" / "thin.png")
    done = run_hook(web_repo, "src/index.ts", "media/clip.ts", "media/thin.png")
    assert done.returncode == 1
    assert "media/thin.png" in done.stdout and "image.too_small" in done.stdout
    assert "index.ts" not in done.stdout + done.stderr


@pytest.fixture()
def project(tmp_path: Path, generated: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose config excludes its drafts; a draft fails the limits."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "site"\n\n[tool.mediaprep]\nexclude = ["drafts/**"]\n')
    (tmp_path / "drafts").mkdir()
    shutil.copy(generated["png_10x400"], tmp_path / "drafts" / "thin.png")
    (tmp_path / "assets").mkdir()
    shutil.copy(generated["png"], tmp_path / "assets" / "logo.png")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_named_files_bypass_exclude_without_force_exclude(project: Path) -> None:
    result = cli("check", "-j", "0", "--format", "json", "drafts/thin.png", "assets/logo.png")
    assert result.exit_code == 1
    assert checked(result) == ["logo.png", "thin.png"]


def test_force_exclude_applies_the_config_exclude_to_named_files(project: Path) -> None:
    result = cli("check", "-j", "0", "--format", "json", "--force-exclude",
                 "drafts/thin.png", "assets/logo.png")
    assert result.exit_code == 0, result.output
    assert checked(result) == ["logo.png"]


def test_force_exclude_with_only_excluded_files_says_nothing_was_checked(project: Path) -> None:
    result = cli("check", "-j", "0", "--force-exclude", "drafts/thin.png")
    assert result.exit_code == 0
    assert "no images or videos found" in result.stderr


def test_force_exclude_from_the_config(project: Path) -> None:
    with (project / "pyproject.toml").open("a") as fh:
        fh.write("force_exclude = true\n")
    result = cli("check", "-j", "0", "--format", "json", "drafts/thin.png", "assets/logo.png")
    assert result.exit_code == 0, result.output
    assert checked(result) == ["logo.png"]


def test_force_exclude_applies_include_too(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.mediaprep]\ninclude = ["assets/**"]\nforce_exclude = true\n')
    result = cli("check", "-j", "0", "--format", "json", "drafts/thin.png", "assets/logo.png")
    assert checked(result) == ["logo.png"]


def test_force_exclude_config_value_must_be_a_boolean(project: Path) -> None:
    with (project / "pyproject.toml").open("a") as fh:
        fh.write('force_exclude = "yes"\n')
    result = cli("check", "assets/logo.png")
    assert result.exit_code == 2
    assert "pyproject.toml" in result.stderr and "[tool.mediaprep]" in result.stderr
    assert "force_exclude" in result.stderr
    assert "Traceback" not in result.output


def test_prep_force_exclude(project: Path) -> None:
    out = project / "out"
    result = cli("prep", "-j", "0", "--no-report", "--force-exclude", "-o", out,
                 "drafts/thin.png", "assets/logo.png")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "parts.jsonl").read_text().splitlines()]
    assert [Path(r["path"]).name for r in records] == ["logo.png"]
    assert not list(out.rglob("thin*"))


def test_force_exclude_through_the_library(project: Path) -> None:
    config = Config(path=project / "pyproject.toml", exclude=["drafts/**"], force_exclude=True)
    result = check_many(["drafts/thin.png", "assets/logo.png"], jobs=0, config=config)
    assert [Path(f["path"]).name for f in result.report["files"]] == ["logo.png"]


def test_probe_ignores_force_exclude(project: Path) -> None:
    with (project / "pyproject.toml").open("a") as fh:
        fh.write("force_exclude = true\n")
    result = cli("probe", "--json", "drafts/thin.png")
    assert [Path(e["path"]).name for e in json.loads(result.stdout)] == ["thin.png"]
    assert mediaprep.probe(project / "drafts" / "thin.png").kind == "image"
