"""The ``mediaprep`` command's check, probe and limits: exit codes, JSON shapes, folder walks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mediaprep.cli import main

REPORT_KEYS = {"target", "dialect", "transport", "files", "summary"}
FILE_KEYS = {"path", "kind", "ok", "info", "findings"}
FILE_KEYS_OPTIONAL = {"tokens"}
FINDING_KEYS = {"code", "severity", "message", "limit", "actual", "fixable"}
SUMMARY_KEYS = {"files", "passed", "failed", "errors", "warnings"}


def run(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    # a traceback is never an answer: only click's own exits are
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def check_json(*args: str) -> tuple[int, dict]:
    result = run("check", "--format", "json", *args)
    return result.exit_code, json.loads(result.stdout)


def assert_report_shape(data: dict) -> None:
    assert set(data) == REPORT_KEYS
    assert data["target"] in ("dashscope", "moonshot")
    assert data["dialect"] in ("openai", "dashscope")
    assert data["transport"] in ("base64", "url", "path")
    assert set(data["summary"]) == SUMMARY_KEYS
    for entry in data["files"]:
        assert FILE_KEYS <= set(entry) <= FILE_KEYS | FILE_KEYS_OPTIONAL
        assert isinstance(entry["ok"], bool)
        assert isinstance(entry["path"], str)
        assert list(entry["info"])[:4] == ["format", "width", "height", "bytes"]
        for f in entry["findings"]:
            assert set(f) == FINDING_KEYS
            assert f["severity"] in ("error", "warning", "info")
            assert isinstance(f["message"], str) and f["message"]
            assert isinstance(f["fixable"], bool)
        if "tokens" in entry:
            assert set(entry["tokens"]) == {"estimate", "model", "counts"}
    s = data["summary"]
    assert s["files"] == len(data["files"]) == s["passed"] + s["failed"]
    assert s["failed"] == sum(1 for e in data["files"] if not e["ok"])
    assert s["errors"] == sum(
        1 for e in data["files"] for f in e["findings"] if f["severity"] == "error"
    )
    assert s["warnings"] == sum(
        1 for e in data["files"] for f in e["findings"] if f["severity"] == "warning"
    )


# --- exit codes --------------------------------------------------------------------------------


def test_exit_0_when_all_pass(generated):
    result = run("check", generated["png"], generated["video_2s"])
    assert result.exit_code == 0, result.output


def test_exit_1_when_a_file_fails(generated):
    result = run("check", generated["png"], generated["png_10x400"])
    assert result.exit_code == 1
    assert "image.too_small" in result.output
    assert "png_10x400.png" in result.output


def test_warnings_pass_unless_strict(generated):
    assert run("check", generated["png_7681x4320"]).exit_code == 0
    assert run("check", "--strict", generated["png_7681x4320"]).exit_code == 1


def test_info_findings_never_fail(generated):
    assert run("check", "--strict", generated["video_audio"]).exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["--target", "moonshot", "--dialect", "dashscope"],
        ["--transport", "path"],  # file:// URIs need the DashScope dialect
        ["--target", "moonshot", "--transport", "url"],
        ["--limit", "image.min_sid=20"],
        ["--limit", "image.min_side"],
        ["--limit", "image.min_side=abc"],
        ["--target", "nowhere"],
        ["--fps", "fast"],
        ["--no-such-option"],
    ],
)
def test_exit_2_on_usage_errors(generated, args):
    result = run("check", *args, generated["png"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_path_transport_with_dashscope_dialect_is_fine(generated):
    assert (
        run("check", "--transport", "path", "--dialect", "dashscope", generated["png"]).exit_code
        == 0
    )


def test_exit_2_without_paths():
    assert run("check").exit_code == 2


@pytest.mark.parametrize(
    "text",
    [
        "this is [not toml",
        'colour = "blue"\n',  # unknown key
        'target = "nowhere"\n',
        '[limits]\n"image.min_sid" = 3\n',
        "[limits]\nimage = 3\n",
        'fps = "fast"\n',
    ],
)
def test_exit_2_on_bad_config(generated, tmp_path, text):
    cfg = tmp_path / "mediaprep.toml"
    cfg.write_text(text)
    result = run("check", "--config", cfg, generated["png"])
    assert result.exit_code == 2, result.output
    assert "mediaprep.toml" in result.output


def test_exit_2_on_bad_config_found_by_search(generated, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.mediaprep]\ntarget = "nowhere"\n')
    monkeypatch.chdir(tmp_path)
    assert run("check", generated["png"]).exit_code == 2


def test_broken_pyproject_meant_for_us_is_an_error_and_others_are_skipped(generated, tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.mediaprep\ntarget = "moonshot"\n')
    r = run("check", generated["png"])
    assert r.exit_code == 2 and "not valid TOML" in r.output  # not silently the defaults
    (tmp_path / "pyproject.toml").write_text('[project\nname = "x"\n')  # someone else's
    assert run("check", generated["png"]).exit_code == 0


def test_missing_config_file_is_usage_error(generated, tmp_path):
    assert run("check", "--config", tmp_path / "absent.toml", generated["png"]).exit_code == 2


def test_missing_input_fails_the_file(tmp_path):
    code, data = check_json(tmp_path / "absent.png")
    assert code == 1
    assert data["files"][0]["findings"][0]["code"] == "file.unreadable"


# --- JSON shape --------------------------------------------------------------------------------


def test_json_shape(generated):
    names = [
        "png",
        "png_10x400",
        "png_7681x4320",
        "video_audio",
        "jpeg_bomb",
        "empty",
        "text_txt",
        "png_as_jpg",
    ]
    code, data = check_json("--frames-dir", generated["frames_3"], *(generated[n] for n in names))
    assert code == 1
    assert_report_shape(data)
    assert (data["target"], data["dialect"], data["transport"]) == ("dashscope", "openai", "base64")
    by_name = {Path(e["path"]).name: e for e in data["files"]}
    small = by_name["png_10x400.png"]
    assert small["kind"] == "image" and small["ok"] is False
    assert small["info"]["format"] == "png"
    assert (small["info"]["width"], small["info"]["height"]) == (10, 400)
    assert small["info"]["bytes"] == generated["png_10x400"].stat().st_size
    assert small["findings"][0] == {
        "code": "image.too_small",
        "severity": "error",
        "message": small["findings"][0]["message"],
        "limit": 10,
        "actual": 10,
        "fixable": True,
    }
    assert by_name["plain.png"]["ok"] is True and by_name["plain.png"]["findings"] == []
    assert by_name["png_7681x4320.png"]["ok"] is True
    assert by_name["frames_3"]["kind"] == "frames"
    assert data["summary"] == {"files": 9, "passed": 4, "failed": 5, "errors": 5, "warnings": 2}


def test_json_reflects_options(generated):
    code, data = check_json("--target", "moonshot", generated["bmp"])
    assert code == 1 and data["target"] == "moonshot"
    assert data["files"][0]["findings"][0]["code"] == "file.unsupported_format"
    code, data = check_json("--transport", "path", "--dialect", "dashscope", generated["png"])
    assert code == 0
    assert (data["dialect"], data["transport"]) == ("dashscope", "path")


def test_json_params(generated):
    # out-of-range --fps / --max-frames are usage errors (issue 14); within range they pass
    for opt, value, code_name in (("--fps", "10.1", "param.fps"),
                                  ("--max-frames", "2001", "param.max_frames")):
        res = CliRunner().invoke(main, ["check", "--format", "json", opt, value,
                                        str(generated["video_2s"])])
        assert res.exit_code == 2 and code_name in res.output
    code, data = check_json("--fps", "10", generated["video_2s"])
    assert code == 0
    code, data = check_json("--model", "kimi-k2-thinking", generated["png"])
    assert code == 1 and data["files"][0]["findings"][0]["code"] == "model.no_vision"


def test_other_formats_do_not_crash(generated):
    for fmt in ("text", "github", "junit", "sarif"):
        result = run("check", "--format", fmt, generated["png_10x400"], generated["png"])
        assert result.exit_code == 1, (fmt, result.output)
        assert "png_10x400" in result.stdout, fmt


# --- folders and frame folders -----------------------------------------------------------------


@pytest.fixture
def tree(generated, tmp_path, monkeypatch):
    root = tmp_path / "media"
    (root / "sub" / "deep").mkdir(parents=True)
    shutil.copy(generated["png"], root / "a.png")
    shutil.copy(generated["jpeg"], root / "sub" / "c.jpg")
    shutil.copy(generated["video_2s"], root / "sub" / "deep" / "d.mp4")
    shutil.copy(generated["png"], root / "sub" / "disguised.dat")  # media found by its bytes
    shutil.copy(generated["text_txt"], root / "notes.txt")
    (root / "sub" / "readme.md").write_text("# not media\n")
    (root / "data.bin").write_bytes(b"\x01\x02\x03" * 100)
    monkeypatch.chdir(tmp_path)
    return root


def test_folder_recursion_skips_non_media(tree):
    code, data = check_json("media")
    assert code == 0, data
    assert_report_shape(data)
    assert sorted(e["path"] for e in data["files"]) == [
        "media/a.png",
        "media/sub/c.jpg",
        "media/sub/deep/d.mp4",
        "media/sub/disguised.dat",
    ]


def test_named_non_media_file_is_checked(tree):
    code, data = check_json("media", "media/notes.txt")
    assert code == 1
    entry = [e for e in data["files"] if e["path"] == "media/notes.txt"][0]
    assert entry["ok"] is False
    assert entry["findings"][0]["code"] == "file.unsupported_format"


def test_file_named_twice_is_checked_once(tree):
    _, data = check_json("media/a.png", "media/a.png", "media")
    assert [e["path"] for e in data["files"]].count("media/a.png") == 1


def test_frames_dir(generated):
    code, data = check_json("--frames-dir", generated["frames_4"])
    assert code == 0
    entry = data["files"][0]
    assert entry["kind"] == "frames" and entry["ok"] is True
    assert entry["info"]["count"] == 4
    code, data = check_json("--frames-dir", generated["frames_3"], generated["png"])
    assert code == 1
    assert_report_shape(data)
    kinds = {e["kind"]: e for e in data["files"]}
    assert kinds["frames"]["findings"][0]["code"] == "frames.too_few"
    assert kinds["image"]["ok"] is True


def test_frames_dir_param_checks(generated):
    res = CliRunner().invoke(main, ["check", "--format", "json", "--fps", "0.05", "--frames-dir",
                                    str(generated["frames_5"])])
    assert res.exit_code == 2 and "param.fps" in res.output  # a usage error (issue 14)


# --- probe -------------------------------------------------------------------------------------


def test_probe_json(generated):
    result = run(
        "probe",
        "--json",
        generated["jpeg_exif6"],
        generated["video_rotated"],
        generated["gif_animated"],
    )
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert [i["kind"] for i in items] == ["image", "video", "image"]
    img, vid, gif = (i["info"] for i in items)
    assert (img["format"], img["width"], img["height"], img["orientation"]) == ("jpeg", 64, 48, 6)
    assert (vid["codec"], vid["rotation"], vid["duration"]) == ("h264", 90, 2.5)
    assert gif["frames"] == 3
    assert all("error" not in i for i in items)


def test_probe_json_error_exit_1(generated):
    result = run("probe", "--json", generated["png"], generated["empty"])
    assert result.exit_code == 1
    items = json.loads(result.stdout)
    assert "error" not in items[0]
    assert items[1]["error"]["code"] == "file.unreadable"
    assert "empty" in items[1]["error"]["message"]


def test_probe_text(generated):
    result = run("probe", generated["png_16bit"], generated["video_audio"])
    assert result.exit_code == 0
    assert "16-bit" in result.output and "audio" in result.output


# --- limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["dashscope", "moonshot"])
def test_limits_json_rows_have_sources(target):
    result = run("limits", "--json", "--target", target)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["target"] == target and data["version"]
    assert data["limits"]
    for key, row in data["limits"].items():
        src = row["source"]
        assert src["url"].startswith("https://"), key
        assert src["as_of"], key
        assert src["title"], key
        assert {"value", "code", "severity", "note", "strict"} <= set(row), key


def test_limits_json_values():
    data = json.loads(run("limits", "--json").stdout)["limits"]
    assert data["image.min_side"]["value"] == 10 and data["image.min_side"]["strict"] is True
    assert data["image.max_aspect_ratio"]["value"] == 200
    assert data["image.max_data_url_bytes"]["value"] == 10_485_760
    assert data["video.max_data_url_bytes"]["strict"] is True
    assert data["request.max_data_urls"]["value"] == 250
    assert data["request.max_media_urls"]["value"] == 256
    assert (data["video.min_duration"]["value"], data["video.max_duration"]["value"]) == (2, 3600)
    assert data["image.format_tier_box"]["value"] == [3840, 2160]
    moon = json.loads(run("limits", "--json", "--target", "moonshot").stdout)["limits"]
    assert moon["request.max_body_bytes"]["value"] == 100 * 1024 * 1024
    assert moon["image.formats"]["value"] == ["gif", "jpeg", "png", "webp"]


def test_limits_override_shown():
    data = json.loads(run("limits", "--json", "--limit", "image.min_side=20").stdout)
    assert data["limits"]["image.min_side"]["value"] == 20
    assert run("limits", "--limit", "nope=1").exit_code == 2


def test_limits_text():
    result = run("limits", "--target", "moonshot")
    assert result.exit_code == 0
    assert "request.max_body_bytes" in result.output and "2026-11" in result.output


# --- the real console script -------------------------------------------------------------------


def _console_script() -> list[str]:
    exe = shutil.which("mediaprep")
    if exe is None:
        candidate = Path(sys.executable).parent / "mediaprep"
        if not candidate.exists():
            pytest.skip("the mediaprep console script is not installed")
        exe = str(candidate)
    return [exe]


def test_console_script_subprocess(generated, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [
        *_console_script(),
        "check",
        "--format",
        "json",
        str(generated["png"]),
        str(generated["png_10x400"]),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert_report_shape(data)
    assert data["summary"]["failed"] == 1
    assert "Traceback" not in proc.stderr
    ok = subprocess.run(
        [*_console_script(), "check", str(generated["png"])],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_cli_import_leaves_media_libraries_for_later():
    """`mediaprep --help`, `limits` and the fork server's head start need no PyAV or numpy."""
    proc = _fresh_python(
        "import sys, mediaprep, mediaprep.cli\n"
        "print(sorted(m for m in ('av', 'numpy', 'PIL', 'pillow_heif') if m in sys.modules))"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_fork_server_preloads_what_the_task_functions_use():
    from mediaprep.batch.journal import prep_job
    from mediaprep.batch.pool import preload_modules
    from mediaprep.batch.tasks import check_one, media_imports

    assert "mediaprep.api" in preload_modules(check_one)
    # the video kind (PyAV) is preloaded when the run's inputs may hold a video, not otherwise
    assert {"mediaprep.batch.journal", "mediaprep.api", "mediaprep.kinds.video"} <= set(
        preload_modules(prep_job, media_imports(["a.jpg", "b.mp4"])))
    assert {"mediaprep.batch.journal", "mediaprep.api"} <= set(
        preload_modules(prep_job, media_imports(["a.jpg", "b.PNG"])))
    assert "mediaprep.kinds.video" not in preload_modules(prep_job, media_imports(["a.jpg"]))
    assert preload_modules(len) == ["mediaprep"]  # not a mediaprep function: nothing extra


def test_python_dash_m_runs_the_command(generated, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mediaprep", "check", str(generated["png"]),
                           "-j", "1"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1 passed" in proc.stdout
    usage = subprocess.run([sys.executable, "-m", "mediaprep", "--help"], capture_output=True,
                           text=True, timeout=120)
    assert usage.returncode == 0 and usage.stdout.startswith("Usage: mediaprep")
