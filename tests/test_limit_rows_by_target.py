"""A limit override for a row the chosen target does not have (issue: silently ignored).

``--limit request.max_data_urls=2`` with ``--target moonshot`` did nothing: Moonshot's table
has no such row (DashScope's and vLLM's do). Given on the command line or to the library it is
now refused, naming the row and the targets that have it. In a config file it is left out with
a warning: one config may serve several targets (a team that checks for DashScope and for
Moonshot keeps one pyproject.toml), so refusing it there would make a shared config unusable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import mediaprep
from mediaprep.cli import main
from mediaprep.limits import LimitError, limits_for
from mediaprep.settings import Settings, SettingsError

# rows one target lacks (mediaprep/targets/): Moonshot has no request.max_data_urls,
# DashScope and vLLM have no upload.max_files
DASHSCOPE_ROW = "request.max_data_urls"
MOONSHOT_ROW = "upload.max_files"


def run(*args: str | Path):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), (200, 120, 40)).save(path)
    return path


def write_config(folder: Path, limits: dict[str, object], extra: str = "",
                 top: str = "") -> Path:
    rows = "".join(f'"{key}" = {json.dumps(value)}\n' for key, value in limits.items())
    path = folder / "pyproject.toml"
    path.write_text(f"[tool.mediaprep]\n{top}[tool.mediaprep.limits]\n{rows}{extra}",
                    encoding="utf-8")
    return path


def limits_json(*args: str | Path) -> dict:
    result = run("limits", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["limits"]


# --- on the command line and in the library: refused ------------------------------------------


def test_cli_limit_for_a_row_the_target_lacks_is_a_usage_error(photo: Path) -> None:
    result = run("check", photo, "--target", "moonshot", "--limit", f"{DASHSCOPE_ROW}=2")
    assert result.exit_code == 2, result.output
    assert (f"limit {DASHSCOPE_ROW}: target moonshot has no such row (dashscope, vllm have it)"
            in result.stderr)
    assert "Traceback" not in result.output


@pytest.mark.parametrize("target", ["dashscope", "vllm"])
def test_cli_limit_for_a_moonshot_row_on_another_target(photo: Path, target: str) -> None:
    result = run("limits", "--target", target, "--limit", f"{MOONSHOT_ROW}=3")
    assert result.exit_code == 2, result.output
    assert f"target {target} has no such row (moonshot has it)" in result.stderr


def test_cli_limit_for_a_row_the_target_has_still_applies(photo: Path) -> None:
    assert run("check", photo, "--target", "dashscope", "--limit",
               f"{DASHSCOPE_ROW}=2").exit_code == 0
    assert limits_json("--target", "moonshot", "--limit",
                       f"{MOONSHOT_ROW}=3")[MOONSHOT_ROW]["value"] == 3


def test_library_refuses_the_row_with_a_settings_error(photo: Path) -> None:
    with pytest.raises(SettingsError, match=rf"limit {DASHSCOPE_ROW}: target moonshot has no "
                                            r"such row \(dashscope, vllm have it\)"):
        mediaprep.check(photo, target="moonshot", limits={DASHSCOPE_ROW: 2})
    with pytest.raises(SettingsError, match="target dashscope has no such row"):
        Settings(limit_overrides={MOONSHOT_ROW: 3})
    with pytest.raises(LimitError, match="target moonshot has no such row"):
        limits_for("moonshot", {DASHSCOPE_ROW: 2})


def test_a_row_no_target_has_is_still_unknown() -> None:
    with pytest.raises(LimitError, match="unknown limit 'image.no_such_row'"):
        limits_for("moonshot", {"image.no_such_row": 2})


# --- in a config file: left out with a warning -------------------------------------------------


def test_shared_config_applies_each_row_to_the_target_that_has_it(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {DASHSCOPE_ROW: 2, MOONSHOT_ROW: 3})
    assert limits_json("--config", cfg, "--target", "dashscope")[DASHSCOPE_ROW]["value"] == 2
    assert limits_json("--config", cfg, "--target", "moonshot")[MOONSHOT_ROW]["value"] == 3


@pytest.mark.parametrize(("target", "left_out", "having"),
                         [("moonshot", DASHSCOPE_ROW, "dashscope, vllm have it"),
                          ("dashscope", MOONSHOT_ROW, "moonshot has it")])
def test_shared_config_warns_of_the_row_it_leaves_out(photo: Path, tmp_path: Path, target: str,
                                                      left_out: str, having: str) -> None:
    cfg = write_config(tmp_path, {DASHSCOPE_ROW: 2, MOONSHOT_ROW: 3})
    result = run("check", photo, "--config", cfg, "--target", target)
    assert result.exit_code == 0, result.output
    assert (f"warning: {cfg}: [tool.mediaprep.limits]: limit {left_out}: target {target} has "
            f"no such row ({having})") in result.stderr
    assert result.stderr.count("warning:") == 1


def test_config_target_decides_without_a_cli_target(photo: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {DASHSCOPE_ROW: 2}, top='target = "moonshot"\n')
    result = run("check", photo, "--config", cfg)
    assert result.exit_code == 0, result.output
    assert f"limit {DASHSCOPE_ROW}: target moonshot has no such row" in result.stderr


def test_shared_config_row_with_a_bad_value_is_refused_on_any_target(photo: Path,
                                                                      tmp_path: Path) -> None:
    """Left out for Moonshot, but a typo still shows: its value is read for DashScope."""
    cfg = write_config(tmp_path, {DASHSCOPE_ROW: "many"}, top='target = "moonshot"\n')
    result = run("check", photo, "--config", cfg)
    assert result.exit_code == 2, result.output
    assert str(cfg) in result.stderr and DASHSCOPE_ROW in result.stderr
    assert "[tool.mediaprep.limits]" in result.stderr


def test_per_path_override_row_for_another_target_warns(photo: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {}, extra=(
        '[[tool.mediaprep.overrides]]\npaths = ["**/*.jpg"]\n'
        f'limits = {{"{MOONSHOT_ROW}" = 3, "image.min_side" = 16}}\n'))
    result = run("check", photo, "--config", cfg, "--target", "dashscope")
    assert result.exit_code == 0, result.output
    assert (f"{cfg}: [[tool.mediaprep.overrides]] #1: limit {MOONSHOT_ROW}: target dashscope "
            "has no such row (moonshot has it)") in result.stderr


def test_cli_limit_is_refused_even_where_the_config_row_is_left_out(photo: Path,
                                                                    tmp_path: Path) -> None:
    cfg = write_config(tmp_path, {DASHSCOPE_ROW: 2})
    result = run("check", photo, "--config", cfg, "--target", "moonshot",
                 "--limit", f"{DASHSCOPE_ROW}=3")
    assert result.exit_code == 2, result.output
    assert f"limit {DASHSCOPE_ROW}: target moonshot has no such row" in result.stderr


# --- mediaprep's own overrides keep to the target's rows ---------------------------------------


@pytest.mark.parametrize("target", ["dashscope", "moonshot"])  # vllm takes no frame lists
def test_frames_are_prepared_for_every_target(tmp_path: Path, target: str) -> None:
    """prep gives each frame of a list or an animation a share of the data-URL budget as an
    override of image.max_data_url_bytes, a row only DashScope has: on Moonshot it is not set
    (it was silently dropped before; it would now be refused)."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(4):
        Image.new("RGB", (64, 48), (40 * i, 90, 200)).save(frames / f"frame_{i + 1:03d}.jpg")
    gif = tmp_path / "moving.gif"
    pictures = [Image.new("RGB", (64, 48), (60 * i, 20, 90)) for i in range(4)]
    pictures[0].save(gif, save_all=True, append_images=pictures[1:], duration=250, loop=0)
    for src, opts in ((frames, {}), (gif, {"animation": "frames"})):
        prepared = mediaprep.prepare(src, target=target, out_dir=tmp_path / f"out-{src.stem}",
                                     **opts)
        assert prepared.ok, (src.name, [f.message for f in prepared.findings])
