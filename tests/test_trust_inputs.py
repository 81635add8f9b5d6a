"""Issue 22 items 18-20: what a user or a file hands in is validated before use (limit values,
terminal controls in the github format, empty images, endless config and manifest files)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import mediaprep
from mediaprep.cli import main


def run(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


# --- item 18: limit values -----------------------------------------------------------------------

BAD_LIMITS = [
    ("image.max_decode_pixels", "nan"),
    ("image.max_decode_bytes", "inf"),
    ("video.max_duration", "-1"),
    ("video.max_duration", "1e400"),
    ("image.max_decode_seconds", ""),
    ("image.min_side", "-5"),
    ("image.recommended_box", "-5x3"),
    ("param.fps.min", "0"),
    ("param.fps.max", "off"),
    ("param.max_frames.max", "off"),
    ("image.formats", "off"),
    ("models.vision", "off"),
    ("tokens.context", "kimi-k2.5=nan"),
]


@pytest.mark.parametrize(("key", "value"), BAD_LIMITS)
def test_bad_limit_on_the_command_line_is_a_usage_error(generated, key, value):
    result = run("check", "--limit", f"{key}={value}", generated["png"])
    assert result.exit_code == 2, result.output
    assert key in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-3.0", '""'])
def test_bad_limit_in_a_config_file_is_a_usage_error(generated, tmp_path, value):
    cfg = tmp_path / "mediaprep.toml"
    cfg.write_text(f'[limits]\n"video.max_duration" = {value}\n')
    result = run("check", "--config", cfg, generated["png"])
    assert result.exit_code == 2, result.output
    assert "video.max_duration" in result.output


@pytest.mark.parametrize(("key", "value"), [("image.max_decode_pixels", float("nan")),
                                            ("video.max_duration", float("inf")),
                                            ("image.max_decode_bytes", -1),
                                            ("param.fps.min", None)])
def test_bad_limit_in_the_library_is_a_mediaprep_error(generated, key, value):
    with pytest.raises(mediaprep.MediaprepError, match=key.replace(".", r"\.")):
        mediaprep.check(generated["png"], limits={key: value})


def test_limits_that_may_be_off_still_can(generated):
    for key in ("image.max_decode_pixels", "video.max_duration", "tokens.context"):
        assert run("check", "--limit", f"{key}=off", generated["png"]).exit_code == 0


# --- item 19: the github format shows controls escaped --------------------------------------------

HOSTILE_NAME = "a\x1b]0;owned\x07\x1b[2J\x9b31m\u202egpj.exe.png"


def test_github_format_escapes_controls_in_names_and_messages(tmp_path):
    (tmp_path / HOSTILE_NAME).write_bytes(b"not a picture at all")
    result = run("check", "--format", "github", tmp_path)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("::error file=")
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in result.output
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u202egpj.exe.png" in result.output


# --- item 20: an image without pixels; endless config and manifest files ------------------------


@pytest.mark.parametrize("size", [(0, 0), (0, 5), (7, 0)])
@pytest.mark.parametrize("limits", [None, {"image.min_side": "off"}])
def test_an_image_without_pixels_is_a_finding(size, limits):
    from PIL import Image

    options = {"limits": limits} if limits else {}
    prepared = mediaprep.prepare(Image.new("RGB", size), **options)
    assert not prepared.ok
    found = [f for f in prepared.findings if f.code == "image.too_small"]
    assert found and found[0].severity == "error" and not found[0].fixable
    assert "without pixels" in found[0].message
    assert not mediaprep.check(Image.new("RGB", size), **options).ok


def _cli_under_2gb(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a process whose address space is capped: reading /dev/zero whole would end
    in MemoryError there instead of in the OOM killer."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "mediaprep", *args], capture_output=True,
                          text=True, env=env, preexec_fn=cap, timeout=120)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("option", ["--config", "--manifest"])
def test_endless_config_or_manifest_is_a_usage_error(generated, option):
    result = _cli_under_2gb("check", option, "/dev/zero", str(generated["png"]))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "/dev/zero" in result.stderr and "larger than" in result.stderr


def test_a_config_just_over_the_cap_is_refused_and_one_under_is_read(generated, tmp_path):
    from mediaprep.limits import TEXT_INPUT_MAX_BYTES

    big = tmp_path / "mediaprep.toml"
    with open(big, "wb") as fh:
        fh.write(b'target = "dashscope"\n')
        fh.truncate(TEXT_INPUT_MAX_BYTES + 1)  # NULs after the line: refused for size first
    result = run("check", "--config", big, generated["png"])
    assert result.exit_code == 2 and "larger than" in result.output
    manifest = tmp_path / "list.txt"
    manifest.write_text(f"{generated['png']}\n" + "# padding\n" * 1000)
    assert run("check", "--manifest", manifest).exit_code == 0


# --- item 21: a HEIF item's data must be able to hold a picture of its declared size ------------


def test_heic_whose_data_cannot_be_its_declared_picture_fails_check(tmp_path):
    from tests.fixtures.hostile import heic_declaring

    liar = tmp_path / "liar.heic"
    liar.write_bytes(heic_declaring(1596, 1064))
    report = mediaprep.check(liar)
    assert not report.ok
    assert [f.code for f in report.findings] == ["file.unreadable"]
    assert "18 bytes" in report.findings[0].message
    assert not mediaprep.prepare(liar, out_dir=tmp_path / "out").ok
    honest = tmp_path / "honest.heic"
    honest.write_bytes(heic_declaring(64, 64))  # the same 18 bytes, truly 64 x 64
    assert mediaprep.check(honest).ok


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
@pytest.mark.parametrize("side", [1596, 4000])
def test_flat_pictures_at_the_lowest_quality_still_pass(tmp_path, fmt, side):
    """The floor sits well under what real encoders write for the cheapest picture there is."""
    import pillow_heif
    from PIL import Image

    path = tmp_path / f"flat.{fmt.lower()}"
    im = Image.new("RGB", (side, side * 2 // 3), (0, 0, 0))
    if fmt == "HEIF":
        pillow_heif.from_pillow(im).save(path, quality=0)
    else:
        im.save(path, format="AVIF", quality=0)
    report = mediaprep.check(path)
    assert not [f for f in report.findings if f.code == "file.unreadable"], report.findings
