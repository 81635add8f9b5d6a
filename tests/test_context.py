"""Issue 14 item 2: the model's context (``tokens.context``), SPEC section 1."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import mediaprep
from mediaprep.cli import main
from mediaprep.emit.request import RequestLimitError, check_request, request_body
from mediaprep.kinds import check_info
from mediaprep.limits import context_tokens, limits_for
from mediaprep.settings import make_settings
from mediaprep.tokens import MEDIA_PROMPT_CHUNK, MEDIA_PROMPT_IMAGE
from mediaprep.types import MediaInfo
from tests.fixtures.generate import encode_video


def _context(findings):
    return [f for f in findings if f.code == "tokens.context"]


def test_context_row_per_model_with_source_and_overridable() -> None:
    table = limits_for("dashscope").to_json()["tokens.context"]
    assert table["value"] == {"kimi-k2.5": 262144, "kimi-k2.6": 262144,
                              "kimi-k2.7-code": 262144}
    assert "256K" in table["source"]["title"] and table["source"]["url"].startswith("https://")
    assert limits_for("moonshot")["tokens.context"].value["kimi-k2.5"] == 262144
    assert context_tokens(limits_for(overrides={"tokens.context": "1000"}), "kimi-k2.6") == 1000
    some = limits_for(overrides={"tokens.context": "kimi-k2.6=5"})
    assert (context_tokens(some, "kimi-k2.6"), context_tokens(some, "kimi-k2.5")) == (5, 262144)
    assert context_tokens(limits_for(overrides={"tokens.context": "off"}), "kimi-k2.5") is None


def _long_720p() -> MediaInfo:
    return MediaInfo(path="talk.mp4", kind="video", format="mp4", bytes=5_000_000, width=1280,
                     height=720, extension="mp4", extension_matches=True, container="mp4",
                     codec="h264", duration=1200.0, fps=30.0)


def test_20_minute_720p_video_warns_at_default_fps_and_names_what_fits() -> None:
    report = check_info(_long_720p(), make_settings())
    # 500 chunks x (1,075 vision tokens + the chunk's media prompt)
    assert report.tokens["estimate"] == 500 * (1_075 + MEDIA_PROMPT_CHUNK) == 543_000
    [f] = _context(report.findings)
    assert f.severity == "warning" and f.limit == 262144 and f.actual == 543_000
    assert "--fps 0.8 " in f.message and "--max-frames 964" in f.message
    assert report.ok  # a warning: the server samples the file
    # what it names does fit; one step more does not
    assert not _context(check_info(_long_720p(), make_settings(fps=0.8)).findings)
    assert _context(check_info(_long_720p(), make_settings(fps=0.81)).findings)
    assert not _context(check_info(_long_720p(), make_settings(max_frames=964)).findings)
    assert _context(check_info(_long_720p(), make_settings(max_frames=965)).findings)


def test_fps_half_on_the_20_minute_video_gives_no_context_warning() -> None:
    report = check_info(_long_720p(), make_settings(fps=0.5))
    assert report.tokens["estimate"] == 150 * (1_075 + MEDIA_PROMPT_CHUNK) == 162_900
    assert not _context(report.findings)


def test_a_real_video_file_warns_when_the_context_is_set_below_its_estimate(tmp_path) -> None:
    clip = tmp_path / "c.mp4"
    encode_video(clip, n_frames=100, fps=10)  # 10 s
    est = mediaprep.check(clip).tokens["estimate"]
    assert not _context(mediaprep.check(clip, limits={"tokens.context": est}).findings)
    [f] = _context(mediaprep.check(clip, limits={"tokens.context": est - 1}).findings)
    assert f.severity == "warning" and "--fps" in f.message


def _uhd_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (3840, 2160), (90, 120, 30)).save(buf, "JPEG", quality=40)
    return buf.getvalue()


@pytest.fixture(scope="module")
def uhd():
    prepared = mediaprep.prepare(_uhd_jpeg())
    assert prepared.ok and prepared.tokens["estimate"] == 4214 + MEDIA_PROMPT_IMAGE
    return prepared


def test_70_uhd_images_in_one_request_body_is_an_error(uhd) -> None:
    settings = make_settings()
    with pytest.raises(RequestLimitError) as err:
        request_body([uhd] * 70 + ["Compare."], settings)
    [f] = err.value.findings
    assert f.code == "tokens.context" and f.severity == "error"
    assert f.actual == 70 * (4214 + MEDIA_PROMPT_IMAGE) and f.limit == 262144
    with pytest.raises(RequestLimitError):  # bare parts are counted from their headers
        request_body([uhd.part] * 70, settings)
    body = request_body([uhd] * 62, settings)  # 261,516 tokens: fits
    assert not check_request(body, settings)
    body["messages"][0]["content"] += [uhd.part] * 8
    [f] = check_request(body, settings)
    per_image = 4214 + MEDIA_PROMPT_IMAGE
    assert (f.code, f.severity, f.actual) == ("tokens.context", "error", 70 * per_image)
    # off, or another model's context: as told
    assert request_body([uhd] * 70, make_settings(limits={"tokens.context": "off"}))
    with pytest.raises(RequestLimitError):
        request_body([uhd] * 3, make_settings(limits={"tokens.context": 3 * per_image - 1}))


def test_an_image_alone_above_the_context_is_an_error(uhd) -> None:
    report = mediaprep.check(_uhd_jpeg(), limits={"tokens.context": 4213})
    [f] = _context(report.findings)
    assert f.severity == "error" and not report.ok


def test_batch_requests_group_cuts_requests_to_fit_the_context(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        Image.new("RGB", (300, 200), (i * 40, 80, 80)).save(src / f"{i}.png")
    per = mediaprep.check(src / "0.png").tokens["estimate"]
    reqs = tmp_path / "b.jsonl"
    r = CliRunner().invoke(main, ["prep", str(src), "-o", str(tmp_path / "out"), "--no-cache",
                                  "--batch-requests", str(reqs), "--prompt", "x",
                                  "--group", "70", "--limit", f"tokens.context={2 * per}"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    bodies = [json.loads(x)["body"] for x in reqs.read_text().splitlines()]
    assert [len(b["messages"][0]["content"]) - 1 for b in bodies] == [2, 2, 1]
    settings = make_settings(limits={"tokens.context": 2 * per})
    assert all(not check_request(b, settings) for b in bodies)
