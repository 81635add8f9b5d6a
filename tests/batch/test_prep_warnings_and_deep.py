"""prep's terminal lines show the warnings that hold for what is sent and the summary counts
them; ``prep --deep`` decodes as ``check --deep`` does (issue 27, item 3)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mediaprep.batch import prep_many
from mediaprep.cli import main
from mediaprep.settings import make_settings
from tests.conftest import REALMEDIA

DAMAGED = REALMEDIA / "videos" / "dec_corrupted.mp4"  # packet 31 of 50 does not decode


def cli(*args: Any) -> Any:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture()
def media(tmp_path: Path, generated: dict[str, Path]) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(generated["gif_animated"], folder / "anim.gif")  # loses 2 of its 3 frames
    shutil.copy(generated["png_7681x4320"], folder / "wide.png")  # scaled down: fixed
    shutil.copy(generated["png"], folder / "plain.png")
    return folder


def lines_by_name(text: str) -> dict[str, str]:
    """Each per-file line by its file's name, the line from that name on."""
    out = {}
    for line in text.splitlines():
        if ": " in line and not line.startswith("prep:"):
            path, rest = line.split(": ", 1)
            out[Path(path).name] = f"{Path(path).name}: {rest}"
    return out


def test_prep_lines_show_warnings_and_the_summary_counts_them(media: Path,
                                                              tmp_path: Path) -> None:
    result = cli("prep", "-j", "0", "--no-report", "-o", tmp_path / "out", media)
    assert result.exit_code == 0, result.output
    lines = lines_by_name(result.stdout)
    assert "warning image.animated" in lines["anim.gif"], lines
    assert "only the first is sent" in lines["anim.gif"]
    assert "anim.gif: anim.gif" not in lines["anim.gif"]  # the name is said once
    assert "warning" not in lines["wide.png"]  # scaled down: its resolution warning is fixed
    assert lines["plain.png"] == "plain.png: ok, unchanged"
    assert "0 failed, 1 with warnings" in result.stderr
    again = cli("prep", "-j", "0", "--no-report", "-o", tmp_path / "out", media)
    assert "warning image.animated" in lines_by_name(again.stdout)["anim.gif"]  # journal
    assert "1 with warnings" in again.stderr


def test_prep_json_carries_the_warnings(media: Path, tmp_path: Path) -> None:
    result = cli("prep", "-j", "0", "--no-report", "--format", "json", "-o", tmp_path / "out",
                 media)
    data = json.loads(result.stdout)
    assert data["summary"]["warned"] == 1
    by_path = {Path(r["path"]).name: r for r in data["results"]}
    assert by_path["anim.gif"]["warnings"] == ["image.animated"]
    assert by_path["wide.png"]["warnings"] == [] and by_path["plain.png"]["warnings"] == []


def test_prep_help_says_what_the_shallow_check_does_not_see() -> None:
    text = " ".join(cli("prep", "--help").output.split())
    assert "--deep" in text
    assert "damage inside a video stream" in text and "is not seen" in text


@pytest.mark.skipif(not DAMAGED.is_file(), reason="real-world media absent")
def test_prep_deep_fails_a_video_damaged_mid_stream(tmp_path: Path) -> None:
    shutil.copy(DAMAGED, tmp_path / "damaged.mp4")
    shallow = cli("prep", "-j", "0", "--no-report", "-o", tmp_path / "a", tmp_path / "damaged.mp4")
    assert shallow.exit_code == 0 and "damaged.mp4: ok, unchanged" in shallow.stdout
    deep = cli("prep", "-j", "0", "--no-report", "--deep", "-o", tmp_path / "b",
               tmp_path / "damaged.mp4")
    assert deep.exit_code == 1
    assert "FAILED (video.undecodable" in deep.stdout
    [line] = [json.loads(x) for x in (tmp_path / "b" / "parts.jsonl").read_text().splitlines()]
    assert not line["ok"] and "video.undecodable" in [f["code"] for f in line["findings"]]
    check = cli("check", "-j", "0", "--deep", "--format", "json", tmp_path / "damaged.mp4")
    assert not json.loads(check.stdout)["files"][0]["ok"]  # the same verdict as check --deep


@pytest.mark.skipif(not DAMAGED.is_file(), reason="real-world media absent")
def test_prep_many_with_deep_settings(tmp_path: Path) -> None:
    shutil.copy(DAMAGED, tmp_path / "damaged.mp4")
    result = prep_many([tmp_path / "damaged.mp4"], tmp_path / "out",
                       make_settings(None, deep=True), jobs=0, html_report=False)
    assert result.failed == 1
