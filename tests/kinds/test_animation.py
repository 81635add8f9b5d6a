"""Animated GIF/APNG/WebP: image.animated, and --animation frames (a video image list)."""

from __future__ import annotations

import base64
import io
import json

import pytest
from click.testing import CliRunner
from PIL import Image

import mediaprep
from mediaprep.cli import main


def animation(n: int, ms: int | list[int], fmt: str = "GIF", size=(64, 48)) -> bytes:
    frames = [Image.new("RGB", size, ((i * 50) % 256, 120, 255 - (i * 30) % 256))
              for i in range(n)]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=ms, loop=0)
    return buf.getvalue()


def animated(findings):
    return [f for f in findings if f.code == "image.animated"]


def frame_urls(part: dict) -> list[str]:
    assert part["type"] == "video"
    return part["video"]


def test_still_gif_has_no_warning():
    rep = mediaprep.check(animation(1, 100))
    assert not animated(rep.findings)
    res = mediaprep.prepare(animation(1, 100), animation="frames")
    assert res.ok and res.part["type"] == "image_url" and not animated(res.findings)


def test_animated_gif_warns_only_first_frame_sent():
    rep = mediaprep.check(animation(5, 100))
    (f,) = animated(rep.findings)
    assert f.severity == "warning" and f.actual == 5
    assert "5 frames; only the first is sent" in f.message
    res = mediaprep.prepare(animation(5, 100))  # default: first
    assert res.ok and res.part["type"] == "image_url" and animated(res.findings)


def test_three_frames_stay_first_and_say_why():
    data = animation(3, 100)
    res = mediaprep.prepare(data, animation="frames")
    assert res.ok and res.part["type"] == "image_url" and res.fps is None
    (f,) = animated(res.findings)
    assert "only the first is sent" in f.message and "at least 4 frames" in f.message


def test_five_gif_frames_of_100ms_go_at_10_fps_as_jpeg():
    res = mediaprep.prepare(animation(5, 100), animation="frames")
    assert res.ok, res.findings
    urls = frame_urls(res.part)
    assert len(urls) == 5 and res.fps == 10.0 and res.part["fps"] == 10.0
    assert all(u.startswith("data:image/jpeg;base64,") for u in urls)
    frame = Image.open(io.BytesIO(base64.b64decode(urls[2].split(",", 1)[1])))
    assert frame.format == "JPEG" and frame.size == (64, 48)
    assert "sent as frames" in res.change_kinds()
    assert res.timestamps == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_two_seconds_per_frame_gives_half_fps():
    res = mediaprep.prepare(animation(5, 2000), animation="frames")
    assert res.ok and res.fps == 0.5 and len(frame_urls(res.part)) == 5


def test_fps_is_clamped_to_the_range():
    fast = mediaprep.prepare(animation(6, 50, "PNG"), animation="frames")  # 20 fps asked
    assert fast.ok and fast.fps == 10.0 and any("20 fps" in x for x in fast.fixes)
    slow = mediaprep.prepare(animation(4, 20000), animation="frames")  # 0.05 fps
    assert slow.ok and slow.fps == 0.1


def test_apng_as_frames():
    data = animation(6, 250, "PNG")
    rep = mediaprep.check(data)
    assert rep.info.format == "png" and rep.info.frames == 6 and animated(rep.findings)
    res = mediaprep.prepare(data, animation="frames")
    assert res.ok and res.fps == 4.0 and len(frame_urls(res.part)) == 6


def test_animated_webp_as_frames():
    data = animation(6, 300, "WEBP")
    assert animated(mediaprep.check(data).findings)
    res = mediaprep.prepare(data, animation="frames")
    assert res.ok and res.fps == pytest.approx(10 / 3, rel=1e-5)
    assert all(u.startswith("data:image/jpeg;") for u in frame_urls(res.part))


def test_moonshot_passes_a_gif_through_with_the_warning():
    data = animation(5, 100)
    res = mediaprep.prepare(data, target="moonshot")
    assert res.ok and res.data == data and res.mime == "image/gif"
    (f,) = animated(res.findings)
    assert f.severity == "warning" and "passed through" in f.message
    assert "makes of the animation" in f.message


def test_frames_are_written_to_the_output_folder(tmp_path):
    src = tmp_path / "spin.gif"
    src.write_bytes(animation(5, 100))
    before = src.read_bytes()
    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["prep", str(src), "-o", str(out), "--animation", "frames",
                                    "--transport", "path", "--dialect", "dashscope",
                                    "--no-cache", "--no-report", "-q"])
    assert run.exit_code == 0, run.output
    line = json.loads((out / "parts.jsonl").read_text().splitlines()[0])
    assert line["ok"] and line["fps"] == 10.0 and len(line["outputs"]) == 5
    assert all(o.endswith(".jpg") for o in line["outputs"])
    assert src.read_bytes() == before


def test_cli_check_names_the_animation(tmp_path):
    src = tmp_path / "spin.gif"
    src.write_bytes(animation(5, 100))
    run = CliRunner().invoke(main, ["check", str(src), "--format", "json"])
    assert "image.animated" in run.output and "spin.gif" in run.output
    bad = CliRunner().invoke(main, ["check", str(src), "--animation", "all"])
    assert bad.exit_code == 2
