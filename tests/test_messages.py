"""What the command says to a new user (issue 27, item 9): an unknown model said once per run,
a stopped run saying what to fix, config errors naming the file, table and key, library
warnings kept with the file they are about, and plurals."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mediaprep.batch import check_many, prep_many
from mediaprep.cli import main
from mediaprep.settings import make_settings
from tests.conftest import REALMEDIA

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: Any) -> Any:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture()
def three(tmp_path: Path, generated: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        shutil.copy(generated["png"], folder / name)
    monkeypatch.chdir(tmp_path)
    return folder


# --- model.unknown: about the run, said once ---------------------------------------------------


def test_unknown_model_is_said_once_not_per_file(three: Path) -> None:
    result = cli("check", "-j", "0", "--model", "kimi-k25", "--format", "json", three)
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert len(files) == 3
    assert all("model.unknown" not in [f["code"] for f in e["findings"]] for e in files)
    assert result.stderr.count("model.unknown") == 1
    assert "kimi-k25" in result.stderr


def test_unknown_model_with_strict_fails_the_run_once_not_every_file(three: Path) -> None:
    result = cli("check", "-j", "0", "--model", "kimi-k25", "--strict", "--format", "json",
                 three)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["summary"]["failed"] == 0 and report["summary"]["passed"] == 3
    assert result.stderr.count("model.unknown") == 1
    assert "--strict: the run fails" in result.stderr


def test_unknown_model_in_prep_is_said_once(three: Path, tmp_path: Path) -> None:
    result = cli("prep", "-j", "0", "--no-report", "--model", "kimi-k25", "-o",
                 tmp_path / "out", three)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("model.unknown") == 1


def test_run_findings_through_the_library(three: Path, tmp_path: Path) -> None:
    settings = make_settings(None, model="kimi-k25")
    checked = check_many([three], settings, jobs=0, strict=True)
    assert [f.code for f in checked.run_findings] == ["model.unknown"]
    assert checked.run_failed and checked.failed == 0
    prepared = prep_many([three], tmp_path / "out", settings, jobs=0, html_report=False)
    assert [f.code for f in prepared.run_findings] == ["model.unknown"]
    assert all("model.unknown" not in json.dumps(line["findings"]) for line in prepared.lines())
    known = check_many([three], make_settings(None, model="kimi-k2.5"), jobs=0, strict=True)
    assert known.run_findings == [] and not known.run_failed


# --- a stopped run says what to fix -----------------------------------------------------------

READ_ONLY_DOUBLE = textwrap.dedent('''
    import errno, functools
    from pathlib import Path
    from mediaprep.batch.executors import LocalExecutor

    def read_only(fn, item):
        task = getattr(item, "task", item)
        if Path(task.source).name.startswith("ro") and item is not task:
            raise OSError(errno.EROFS, "Read-only file system", task.out_dir)
        return fn(item)

    class ReadOnlyExecutor(LocalExecutor):
        def run(self, tasks, fn, **options):
            return super().run(tasks, functools.partial(read_only, fn), **options)
''')


def test_read_only_output_says_what_to_fix(tmp_path: Path, generated: dict[str, Path]) -> None:
    media = tmp_path / "in"
    media.mkdir()
    shutil.copy(generated["png"], media / "ro.png")
    dbl = tmp_path / "double"
    dbl.mkdir()
    (dbl / "double.py").write_text(READ_ONLY_DOUBLE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(dbl), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "mediaprep", "prep", str(media), "-o",
                           str(tmp_path / "out"), "-j", "0", "--no-cache", "-q",
                           "--executor", "double:ReadOnlyExecutor"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "read-only" in proc.stderr
    assert "choose another output folder with -o" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_unwritable_output_folder_says_what_to_fix(tmp_path: Path,
                                                   generated: dict[str, Path]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = cli("prep", "-j", "0", generated["png"], "-o", locked / "out")
    finally:
        locked.chmod(0o755)
    assert result.exit_code == 2
    assert "make the output folder writable" in result.stderr


# --- config errors name the file, the table and the key ---------------------------------------


@pytest.mark.parametrize(("name", "text", "said"), [
    ("pyproject.toml", '[tool.mediaprep]\nfps = "fast"\n',
     ["pyproject.toml", "[tool.mediaprep]", "fps", "'fast'", "must be a number"]),
    ("pyproject.toml", '[tool.mediaprep]\nmax-frames = "many"\n',
     ["[tool.mediaprep]", "max_frames", "whole number"]),
    ("mediaprep.toml", 'fps = "fast"\n', ["mediaprep.toml", "top-level", "fps"]),
    ("mediaprep.toml", 'fpss = 2\n', ["mediaprep.toml", "unknown key 'fpss'"]),
    ("pyproject.toml", '[tool.mediaprep.limits]\n"image.min_side" = "big"\n',
     ["[tool.mediaprep.limits]", "image.min_side", "'big'"]),
    ("pyproject.toml", '[[tool.mediaprep.overrides]]\npaths = ["*"]\nfps = "fast"\n',
     ["[[tool.mediaprep.overrides]] #1", "fps"]),
    ("pyproject.toml", '[[tool.mediaprep.overrides]]\npaths = ["*"]\nfast = 1\n',
     ["[[tool.mediaprep.overrides]] #1", "unknown key 'fast'"]),
])
def test_config_type_errors_name_file_table_and_key(tmp_path: Path, generated: dict[str, Path],
                                                    monkeypatch: pytest.MonkeyPatch, name: str,
                                                    text: str, said: list[str]) -> None:
    (tmp_path / name).write_text(text)
    shutil.copy(generated["png"], tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    result = cli("check", "-j", "0", "a.png")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "could not convert" not in result.stderr
    for words in said:
        assert words in result.stderr, (words, result.stderr)


# --- library warnings stay with their file ----------------------------------------------------

BAD_EXIF = REALMEDIA / "images" / "pil_hopper_bad_exif.jpg"


@pytest.mark.skipif(not BAD_EXIF.is_file(), reason="real-world media absent")
@pytest.mark.parametrize("jobs", ["0", "1"])
def test_pillow_warning_becomes_a_note_of_the_file_not_stderr(tmp_path: Path, jobs: str) -> None:
    shutil.copy(BAD_EXIF, tmp_path / "bad_exif.jpg")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def mediaprep(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mediaprep", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)

    quiet = mediaprep("check", "-q", "-j", jobs, "bad_exif.jpg")
    assert quiet.returncode == 0, quiet.stderr
    assert "Warning" not in quiet.stderr and "EXIF" not in quiet.stderr
    as_json = mediaprep("check", "-j", jobs, "--format", "json", "bad_exif.jpg")
    [entry] = json.loads(as_json.stdout)["files"]
    assert entry["path"] == "bad_exif.jpg"
    assert any("Pillow: Corrupt EXIF data" in n for n in entry["info"]["notes"])
    assert "Warning" not in as_json.stderr
    prep = mediaprep("prep", "-q", "-j", jobs, "-o", "out", "bad_exif.jpg")
    assert prep.returncode == 0, prep.stderr
    assert "Warning" not in prep.stderr and "EXIF" not in prep.stderr
    probe = mediaprep("probe", "bad_exif.jpg")
    assert "note: Pillow: Corrupt EXIF data" in probe.stdout
    assert probe.stdout.startswith("bad_exif.jpg: image")
    assert "Warning" not in probe.stderr


# --- plurals ----------------------------------------------------------------------------------


def test_one_token_one_file_and_a_frame_folder(tmp_path: Path, generated: dict[str, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (12, 12), "red").save(tmp_path / "dot.png")
    text = cli("check", "-j", "0", "-v", "dot.png")
    # one vision token and the 4 of the media prompt around it
    assert "~5 tokens for 1 file " in text.stdout, text.stdout
    assert "dot.png: ok (~5 tokens for" in text.stdout
    assert "1 files" not in text.stdout
    github = cli("check", "-j", "0", "--format", "github", "dot.png")
    assert "mediaprep: 1 file, 1 passed" in github.stderr
    frames = cli("check", "-j", "0", "--frames-dir", generated["frames_4"])
    assert frames.stdout.startswith("Checked 1 frame folder:"), frames.stdout
    both = cli("check", "-j", "0", "--frames-dir", generated["frames_4"], "dot.png")
    assert both.stdout.startswith("Checked 1 file and 1 frame folder:"), both.stdout
