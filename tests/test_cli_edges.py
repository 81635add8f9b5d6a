"""Edges a user meets through the CLI: Moonshot's own resolution boxes, probe's error lines, a
closed pipe, frames output errors, misnamed containers, dialect refusals, param options, quiet."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import mediaprep
from mediaprep import SettingsError
from mediaprep.cli import main
from mediaprep.emit.request import request_body, user_message

ROOT = Path(__file__).resolve().parents[1]


def _png(path: Path, w: int, h: int) -> Path:
    Image.new("RGB", (w, h), (40, 90, 160)).save(path, "PNG")
    return path


def _video(path: Path, w: int, h: int) -> Path:
    """Three frames of H.264 4:4:4 (odd sizes allowed, unlike 4:2:0)."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv444p"
        vs.options = {"preset": "ultrafast"}
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), i * 40, np.uint8),
                                               format="rgb24")
            frame.pts = i
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    return path


# --- item 1: Moonshot's recommended boxes ------------------------------------------------------


@pytest.mark.parametrize(("w", "h", "warns"), [
    (4096, 2160, False), (2160, 4096, False),     # the guide's "4k (4096x2160)", either way
    (4097, 2160, True), (4096, 2161, True), (2161, 4096, True), (2160, 4097, True),
])
def test_moonshot_image_box_is_4096x2160(tmp_path, w, h, warns):
    report = mediaprep.check(_png(tmp_path / f"i{w}x{h}.png", w, h), target="moonshot")
    assert ("image.resolution" in report.codes()) is warns
    assert report.ok  # a warning
    if warns:
        f = next(f for f in report.findings if f.code == "image.resolution")
        assert f.severity == "warning" and f.limit == [4096, 2160] and f.actual == [w, h]


@pytest.mark.parametrize(("w", "h", "warns"), [
    (2048, 1080, False), (1080, 2048, False),     # the guide's "2k (2048x1080)", either way
    (2049, 1080, True), (2048, 1081, True), (1081, 2048, True), (1080, 2049, True),
])
def test_moonshot_video_box_is_2048x1080(tmp_path, w, h, warns):
    report = mediaprep.check(_video(tmp_path / f"v{w}x{h}.mp4", w, h), target="moonshot")
    assert ("video.resolution" in report.codes()) is warns
    assert report.ok
    if warns:
        f = next(f for f in report.findings if f.code == "video.resolution")
        assert f.severity == "warning" and f.limit == [2048, 1080]


def test_dashscope_keeps_its_own_boxes(tmp_path):
    assert mediaprep.limits_for("dashscope").value("image.recommended_box") == (7680, 4320)
    assert mediaprep.limits_for("dashscope").value("video.recommended_box") == (2560, 1440)
    # 2049x1080 is past Moonshot's box, inside DashScope's
    assert "video.resolution" not in mediaprep.check(_video(tmp_path / "v.mp4", 2049, 1080)).codes()


def test_limits_command_shows_moonshot_boxes():
    res = CliRunner().invoke(main, ["limits", "--target", "moonshot", "--json"])
    rows = json.loads(res.output)["limits"]
    assert rows["image.recommended_box"]["value"] == [4096, 2160]
    assert rows["video.recommended_box"]["value"] == [2048, 1080]


# --- probe prints its lines, not \x0a ----------------------------------------------------------


def test_probe_error_goes_on_its_own_line(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image at all\n")
    res = CliRunner().invoke(main, ["probe", str(bad)])
    assert res.exit_code == 1
    assert "\\x0a" not in res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f"{bad}: ") and lines[1].startswith("  file.")


def test_probe_still_escapes_a_newline_in_a_name(tmp_path):
    odd = _png(tmp_path / "a\nb.png", 20, 20)
    res = CliRunner().invoke(main, ["probe", str(odd)])
    assert res.exit_code == 0 and "a\\x0ab.png" in res.output and len(res.output.splitlines()) == 1


# --- a closed pipe: quiet, as Unix tools ------------------------------------------------------


def _into_closed_pipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: every write fails
    try:
        return subprocess.run([sys.executable, "-m", "mediaprep", *args], stdout=write_end,
                              stderr=subprocess.PIPE, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [["limits"], ["limits", "--json"], ["probe", "{png}"],
                                  ["check", "-j", "0", "{png}"]])
def test_closed_pipe_exits_quietly(tmp_path, args):
    png = _png(tmp_path / "p.png", 20, 20)
    res = _into_closed_pipe(*[a.format(png=png) for a in args])
    assert res.stderr == b""
    assert res.returncode == 141  # 128 + SIGPIPE


def test_reader_that_stops_after_one_line():
    proc = subprocess.Popen([sys.executable, "-m", "mediaprep", "limits"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) in (0, 141)  # 0 if it had written everything already
    assert first.startswith(b"Limits for target") and err == b""


def test_other_os_errors_still_stop_with_exit_2(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = CliRunner().invoke(main, ["prep", str(_png(tmp_path / "p.png", 20, 20)), "-o",
                                    str(afile / "out")])
    assert res.exit_code == 2


# --- frames into a folder it cannot write: exit 2 ---------------------------------------------


def test_frames_output_that_cannot_be_made_is_exit_2(generated, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = CliRunner().invoke(main, ["frames", str(generated["video_2s"]), "-o",
                                    str(afile / "out")])
    assert res.exit_code == 2, res.output
    assert "file.unreadable" not in res.output and "afile" in res.output


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_frames_into_read_only_folder_is_exit_2(generated, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        res = CliRunner().invoke(main, ["frames", str(generated["video_2s"]), "-o", str(out)])
    finally:
        out.chmod(0o755)
    assert res.exit_code == 2, res.output
    assert "file.unreadable" not in res.output


def test_frames_of_a_broken_input_is_still_exit_1(generated, tmp_path):
    res = CliRunner().invoke(main, ["frames", str(generated["jpeg_truncated"]),
                                    "-o", str(tmp_path / "o")])
    assert res.exit_code == 1


# --- a Matroska file named .webm ---------------------------------------------------------------


def test_matroska_named_webm_warns(generated, tmp_path):
    lying = tmp_path / "clip.webm"
    shutil.copy(generated["video_mkv"], lying)
    for target in ("dashscope", "moonshot"):
        report = mediaprep.check(lying, target=target)
        mismatch = [f for f in report.findings if f.code == "file.extension_mismatch"]
        assert mismatch and mismatch[0].severity == "warning", (target, report.findings)
        assert "clip.webm" in mismatch[0].message
    moon = mediaprep.check(lying, target="moonshot")
    refused = next(f for f in moon.findings if f.code == "file.unsupported_format")
    assert "mkv" in refused.message and "to mp4" in refused.message and refused.fixable
    prepared = mediaprep.prepare(lying, target="moonshot", out_dir=tmp_path / "out")
    assert prepared.ok and all(p.suffix == ".mp4" for p in prepared.outputs)


def test_webm_named_mkv_is_a_fair_name(generated, tmp_path):
    fair = tmp_path / "clip.mkv"
    shutil.copy(generated["video_webm"], fair)  # a WebM is a Matroska file
    assert "file.extension_mismatch" not in mediaprep.check(fair, target="moonshot").codes()
    assert "file.extension_mismatch" not in mediaprep.check(generated["video_webm"]).codes()
    assert "file.extension_mismatch" not in mediaprep.check(generated["video_mkv"]).codes()


# --- request_body refuses the other dialect ----------------------------------------------------


def test_request_body_refuses_parts_of_the_other_dialect(generated):
    openai = mediaprep.Settings(dialect="openai")
    dashscope = mediaprep.Settings(dialect="dashscope")
    ds_part = mediaprep.prepare(generated["png"], dialect="dashscope")
    oa_part = mediaprep.prepare(generated["png"], dialect="openai")
    assert ds_part.ok and oa_part.ok
    with pytest.raises(SettingsError, match="dashscope-dialect part.*openai dialect") as exc:
        request_body([ds_part, "what is this?"], openai)
    assert Path(generated["png"]).name in str(exc.value) and "item 0" in str(exc.value)
    with pytest.raises(SettingsError, match="item 1 is a openai-dialect part"):
        request_body(["text", oa_part.part], dashscope)
    with pytest.raises(ValueError, match="dashscope-dialect"):
        user_message([{"image": "https://example.com/a.png"}], dialect="openai")
    # the matching dialect goes through, text parts made in the request's own dialect
    body = request_body([ds_part, "what is this?"], dashscope)
    assert body["input"]["messages"][0]["content"] == [ds_part.part, {"text": "what is this?"}]
    body = request_body([oa_part, "hi"], openai)
    assert body["messages"][0]["content"][1] == {"type": "text", "text": "hi"}


def test_dialect_refusal_never_prints_a_whole_data_url(generated):
    part = mediaprep.prepare(generated["png"], dialect="dashscope").part
    with pytest.raises(SettingsError) as exc:
        request_body([part], mediaprep.Settings())
    assert len(str(exc.value)) < 400


# --- --fps / --max-frames outside the table: a usage error -----------------------------------


@pytest.mark.parametrize(("opt", "value", "ok"), [
    ("--fps", "0", False), ("--fps", "20", False), ("--fps", "0.09", False),
    ("--fps", "10.01", False), ("--fps", "0.1", True), ("--fps", "10", True),
    ("--max-frames", "0", False), ("--max-frames", "2001", False), ("--max-frames", "2000", True),
])
@pytest.mark.parametrize("command", ["check", "prep", "frames"])
def test_param_options_are_usage_errors(generated, tmp_path, command, opt, value, ok):
    args = [command, str(generated["video_2s"]), opt, value, "-q" if command != "frames" else "",
            *([] if command == "check" else ["-o", str(tmp_path / "out")])]
    res = CliRunner().invoke(main, [a for a in args if a])
    if ok:
        assert res.exit_code == 0, res.output
    else:
        assert res.exit_code == 2, res.output
        assert ("param.fps" if opt == "--fps" else "param.max_frames") in res.output
        assert not (tmp_path / "out").exists()  # refused before any work


def test_param_override_moves_the_usage_boundary(generated):
    res = CliRunner().invoke(main, ["check", str(generated["video_2s"]), "--fps", "20",
                                    "--limit", "param.fps.max=30"])
    assert res.exit_code == 0, res.output


def test_library_keeps_the_param_finding(generated):
    assert "param.fps" in mediaprep.check(generated["video_2s"], fps=20).codes()


# --- the fix message names the input's size ---------------------------------------------------


def test_resize_message_names_the_input_size_after_a_jpeg_draft(tmp_path):
    src = tmp_path / "tall.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (2048, 12288), (200, 100, 50)).save(buf, "JPEG", quality=90)
    src.write_bytes(buf.getvalue())
    for target in ("moonshot", "dashscope"):
        p = mediaprep.prepare(src, target=target)
        assert p.ok, p.findings
        resized = [c for c in p.changes if c.kind == "resized"]
        assert resized and resized[0].before == "2048x12288", (target, p.changes)
        assert "resized" in p.change_kinds()


# --- check -q: only what fails, then the summary ----------------------------------------------


def test_check_quiet_prints_failures_and_summary(generated, tmp_path):
    warned = generated["png_7681x4320"]  # only a resolution warning
    args = ["check", "-j", "0", str(warned), str(generated["jpeg_truncated"])]
    loud = CliRunner().invoke(main, args)
    quiet = CliRunner().invoke(main, [*args, "-q"])
    assert loud.exit_code == quiet.exit_code == 1
    assert f"{warned}: warning image.resolution" in loud.output
    lines = quiet.output.splitlines()
    assert str(warned) not in quiet.output
    assert len(lines) == 2 and " error " in lines[0] and lines[1].startswith("Checked 2 files")
    strict = CliRunner().invoke(main, [*args, "-q", "--strict"])  # warnings fail: shown
    assert f"{warned}: warning image.resolution" in strict.output
    passing = CliRunner().invoke(main, ["check", "-q", "-v", str(generated["png"])])
    assert passing.exit_code == 0 and passing.output.splitlines()[0].startswith("Checked 1 file")


def test_quiet_is_documented_alike():
    help_text = CliRunner().invoke(main, ["check", "--help"]).output
    readme = (ROOT / "README.md").read_text()
    assert "only the" in help_text and "findings that fail" in " ".join(help_text.split())
    assert "`check` then prints only the findings that fail" in " ".join(readme.split())


@pytest.mark.parametrize("opt", ["--dialect=dashscope", "--transport=url", "--model=x",
                                 "--max-tokens=10", "--video-mode=file", "--animation=frames"])
def test_frames_takes_no_option_that_would_do_nothing(generated, tmp_path, opt):
    """frames writes JPEGs and frames.json: how media is sent means nothing to it, so it does
    not take those options (rather than take them and write the same bytes)."""
    from click.testing import CliRunner

    from mediaprep.cli import main

    r = CliRunner().invoke(main, ["frames", str(generated["video_2s"]), "-o",
                                  str(tmp_path / "f"), opt])
    assert r.exit_code == 2 and "No such option" in r.output
    assert not (tmp_path / "f").exists()
