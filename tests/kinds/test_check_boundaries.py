"""Every finding code at and just past its boundary, through the public ``mediaprep.check``.

Real files come from tests/fixtures/generate.py (the session fixture ``generated``); boundaries that
would need big or long files (10 MB data URLs, 2 GB videos, 2,001 frames) are checked on a
:class:`MediaInfo` through ``check_info``, which is the same code after the probe.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageFile

import mediaprep
from mediaprep.backends.sniff import data_url_size
from mediaprep.cli import main
from mediaprep.kinds import check_info
from mediaprep.limits import GiB, MiB
from mediaprep.settings import Settings
from mediaprep.types import MediaInfo
from tests.fixtures.generate import png_chunk

DATA_URL_LIMIT = 10_485_760


def codes(report: mediaprep.Report) -> list[str]:
    return [f.code for f in report.findings]


def finding(report: mediaprep.Report, code: str) -> mediaprep.Finding:
    found = [f for f in report.findings if f.code == code]
    assert found, f"{code} not in {codes(report)}"
    return found[0]


def image_info(
    w: int = 64, h: int = 48, fmt: str = "png", n_bytes: int = 1000, path: str = "img.png"
) -> MediaInfo:
    return MediaInfo(
        path=path,
        kind="image",
        format=fmt,
        width=w,
        height=h,
        bytes=n_bytes,
        extension=fmt,
        mode="RGB",
        bit_depth=8,
    )


def video_info(
    duration: float = 10.0,
    fmt: str = "mp4",
    n_bytes: int = 100_000,
    w: int = 64,
    h: int = 48,
    path: str = "clip.mp4",
) -> MediaInfo:
    return MediaInfo(
        path=path,
        kind="video",
        format=fmt,
        width=w,
        height=h,
        bytes=n_bytes,
        duration=duration,
        fps=25.0,
        codec="h264",
        has_audio=False,
        rotation=0,
    )


def frames_info(n: int, path: str = "frames") -> MediaInfo:
    members = [image_info(path=f"{path}/f{i:04d}.jpg", fmt="jpeg") for i in range(n)]
    return MediaInfo(
        path=path,
        kind="frames",
        format="frames",
        width=64,
        height=48,
        bytes=sum(m.bytes for m in members),
        members=members,
    )


# --- image.too_small ---------------------------------------------------------------------------


def test_min_side_11_passes_10_fails(generated):
    ok = mediaprep.check(generated["png_11x400"])
    assert ok.ok and codes(ok) == []
    bad = mediaprep.check(generated["png_10x400"])
    assert not bad.ok
    f = finding(bad, "image.too_small")
    assert (f.severity, f.limit, f.actual, f.fixable) == ("error", 10, 10, True)


@pytest.mark.parametrize(
    ("w", "h", "fails"),
    [(11, 11, False), (10, 11, True), (11, 10, True), (400, 10, True), (1, 1, True)],
)
def test_min_side_either_side(w, h, fails):
    report = check_info(image_info(w, h), Settings())
    assert ("image.too_small" in codes(report)) is fails


# --- image.aspect_ratio ------------------------------------------------------------------------


def test_aspect_200_passes_201_fails(generated):
    assert codes(mediaprep.check(generated["png_2200x11"])) == []
    bad = mediaprep.check(generated["png_2211x11"])
    f = finding(bad, "image.aspect_ratio")
    assert f.limit == 200.0 and f.actual == pytest.approx(201.0)
    assert not bad.ok


@pytest.mark.parametrize(
    ("w", "h", "fails"),
    [
        (40_000, 200, False),  # 200:1
        (40_100, 200, True),  # 200.5:1
        (200, 40_100, True),  # portrait 200.5:1
        (200, 40_000, False),
        (40_001, 200, True),  # 200.005:1
    ],
)
def test_aspect_fractional(w, h, fails):
    report = check_info(image_info(w, h), Settings())
    assert ("image.aspect_ratio" in codes(report)) is fails


# --- image.format_tier and image.resolution ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "tier"),
    [
        ("webp_3840x2160", False),
        ("webp_3841x2160", True),
        ("webp_2160x3840", False),
        ("webp_2160x3841", True),
        ("tiff_3840x2160", False),
        ("tiff_3841x2160", True),
    ],
)
def test_format_tier_at_4k(generated, name, tier):
    report = mediaprep.check(generated[name])
    assert ("image.format_tier" in codes(report)) is tier
    assert report.ok is not tier
    if tier:
        f = finding(report, "image.format_tier")
        assert f.limit == ["jpeg", "png"] and f.severity == "error"


@pytest.mark.parametrize("fmt", ["bmp", "heic", "webp", "tiff"])
def test_format_tier_formats_below_4k_only(fmt):
    assert "image.format_tier" not in codes(check_info(image_info(3840, 2160, fmt), Settings()))
    assert "image.format_tier" in codes(check_info(image_info(3840, 2161, fmt), Settings()))


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_jpeg_png_fine_up_to_8k(fmt):
    assert codes(check_info(image_info(7680, 4320, fmt), Settings())) == []
    assert codes(check_info(image_info(4320, 7680, fmt), Settings())) == []


def test_resolution_warning_above_8k(generated):
    assert codes(mediaprep.check(generated["png_7680x4320"])) == []
    report = mediaprep.check(generated["png_7681x4320"])
    assert codes(report) == ["image.resolution"]
    f = report.findings[0]
    assert f.severity == "warning" and f.limit == [7680, 4320] and f.actual == [7681, 4320]
    assert report.ok  # a warning does not fail the file


def test_resolution_moonshot_4k_is_4096x2160(generated):
    # Moonshot's guide: "4k (4096x2160)"; boundary cases are in tests/test_cli_edges.py
    assert codes(mediaprep.check(generated["webp_3840x2160"], target="moonshot")) == []
    assert codes(mediaprep.check(generated["webp_3841x2160"], target="moonshot")) == []
    assert codes(mediaprep.check(generated["webp_2160x3841"], target="moonshot")) == []


# --- base64.too_large (images) -----------------------------------------------------------------


def _largest_fitting(mime: str, limit: int = DATA_URL_LIMIT) -> int:
    """Largest payload whose data URL is at most ``limit`` bytes."""
    return 3 * ((limit - len(f"data:{mime};base64,")) // 4)


def test_data_url_size_formula():
    n = 7_864_302
    assert data_url_size(n, "image/png") == len("data:image/png;base64,") + 4 * math.ceil(n / 3)
    assert data_url_size(0, "image/png") == 22
    assert data_url_size(1, "image/png") == 26


def test_image_data_url_boundary():
    # "data:image/png;base64," is 22 characters and base64 grows in steps of 4, so no PNG makes
    # a data URL of exactly 10,485,760: the largest fitting one is 10,485,758 bytes.
    n = _largest_fitting("image/png")
    assert data_url_size(n, "image/png") == 10_485_758
    assert data_url_size(n + 1, "image/png") == 10_485_762
    ok = check_info(image_info(n_bytes=n), Settings())
    assert "base64.too_large" not in codes(ok)
    bad = check_info(image_info(n_bytes=n + 1), Settings())
    f = finding(bad, "base64.too_large")
    assert (f.limit, f.actual, f.severity) == (DATA_URL_LIMIT, 10_485_762, "error")


def test_image_data_url_exactly_at_limit_passes():
    # an override that a payload hits exactly: the limit itself is allowed ("<= 10 MB")
    n = 3000
    exact = data_url_size(n, "image/jpeg")
    s = Settings(limit_overrides={"image.max_data_url_bytes": exact})
    assert "base64.too_large" not in codes(check_info(image_info(fmt="jpeg", n_bytes=n), s))
    assert "base64.too_large" in codes(check_info(image_info(fmt="jpeg", n_bytes=n + 1), s))


def _padded_png(path: Path, total: int) -> Path:
    """A real 64x48 PNG padded to ``total`` bytes with a tEXt chunk before IEND."""
    import io

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, "PNG")
    data = buf.getvalue()
    iend = data.rindex(b"IEND") - 4
    pad = total - len(data) - 12
    assert pad >= 8
    text = b"Comment\x00" + b"x" * (pad - 8)
    path.write_bytes(data[:iend] + png_chunk(b"tEXt", text) + data[iend:])
    assert path.stat().st_size == total
    return path


def test_image_data_url_boundary_real_file(tmp_path):
    n = _largest_fitting("image/png")
    ok = mediaprep.check(_padded_png(tmp_path / "fits.png", n))
    assert ok.ok and "base64.too_large" not in codes(ok)
    bad = mediaprep.check(_padded_png(tmp_path / "over.png", n + 1))
    assert codes(bad) == ["base64.too_large"]


def test_image_file_bytes_url_and_path_real_file(tmp_path):
    at = _padded_png(tmp_path / "at.png", 10 * MiB)
    over = _padded_png(tmp_path / "over.png", 10 * MiB + 1)
    assert codes(mediaprep.check(at, transport="url")) == []
    f = finding(mediaprep.check(over, transport="url"), "file.too_large")
    assert (f.limit, f.actual) == (10 * MiB, 10 * MiB + 1)
    path_opts = {"transport": "path", "dialect": "dashscope"}
    assert codes(mediaprep.check(at, **path_opts)) == []
    assert codes(mediaprep.check(over, **path_opts)) == ["file.too_large"]
    # the same file as base64 is far beyond the data URL limit
    assert codes(mediaprep.check(at)) == ["base64.too_large"]


@pytest.mark.parametrize("transport", ["url", "path"])
def test_image_file_bytes_info(transport):
    s = Settings(transport=transport, dialect="dashscope")
    assert "file.too_large" not in codes(check_info(image_info(n_bytes=10 * MiB), s))
    assert "file.too_large" in codes(check_info(image_info(n_bytes=10 * MiB + 1), s))


# --- videos: bytes -----------------------------------------------------------------------------


def test_video_path_100mib_url_2gib():
    path = Settings(transport="path", dialect="dashscope")
    assert codes(check_info(video_info(n_bytes=100 * MiB), path)) == []
    f = finding(check_info(video_info(n_bytes=100 * MiB + 1), path), "file.too_large")
    assert f.limit == 100 * MiB
    url = Settings(transport="url")
    assert codes(check_info(video_info(n_bytes=2 * GiB), url)) == []
    assert codes(check_info(video_info(n_bytes=2 * GiB + 1), url)) == ["file.too_large"]


def test_video_data_url_strictly_below_limit():
    # "data:video/quicktime;base64," is 28 characters, so a MOV hits 10,485,760 exactly
    mime = "video/quicktime"
    n = _largest_fitting(mime)
    assert data_url_size(n, mime) == DATA_URL_LIMIT
    bad = check_info(video_info(fmt="mov", n_bytes=n, path="clip.mov"), Settings())
    f = finding(bad, "base64.too_large")
    assert (f.limit, f.actual) == (DATA_URL_LIMIT, DATA_URL_LIMIT)
    ok = check_info(video_info(fmt="mov", n_bytes=n - 3, path="clip.mov"), Settings())
    assert "base64.too_large" not in codes(ok)
    # and an mp4 just under passes, just over fails
    m = _largest_fitting("video/mp4")
    assert data_url_size(m, "video/mp4") < DATA_URL_LIMIT
    assert codes(check_info(video_info(n_bytes=m), Settings())) == []
    assert codes(check_info(video_info(n_bytes=m + 1), Settings())) == ["base64.too_large"]


# --- videos: duration, params, formats ---------------------------------------------------------


def test_video_2s_passes_1_9s_fails(generated):
    ok = mediaprep.check(generated["video_2s"])
    assert ok.ok and codes(ok) == []
    bad = mediaprep.check(generated["video_1_9s"])
    f = finding(bad, "video.too_short")
    assert (f.limit, f.actual, f.severity) == (2.0, 1.9, "error")


def test_video_3600s_passes_3601s_fails(generated):
    assert codes(mediaprep.check(generated["video_3600s"])) == []
    f = finding(mediaprep.check(generated["video_3601s"]), "video.too_long")
    assert (f.limit, f.actual) == (3600.0, 3601.0)


@pytest.mark.parametrize(
    ("duration", "code"),
    [
        (1.999, "video.too_short"),
        (2.0, None),
        (3600.0, None),
        (3600.001, "video.too_long"),
        (3601.0, "video.too_long"),
    ],
)
def test_video_duration_info(duration, code):
    got = codes(check_info(video_info(duration=duration), Settings()))
    # past an hour frames are what could go, and 250 base64 frames over an hour come below
    # the 0.1 fps minimum: param.fps says so (issue 22 item 16)
    assert got == ([code] if code else []) + (["param.fps"] if code == "video.too_long" else [])


@pytest.mark.parametrize(
    ("fps", "fails"), [(0.1, False), (10, False), (2, False), (0.09, True), (10.1, True), (0, True)]
)
def test_param_fps(generated, fps, fails):
    report = mediaprep.check(generated["video_2s"], fps=fps)
    assert ("param.fps" in codes(report)) is fails
    if fails:
        assert finding(report, "param.fps").limit == [0.1, 10.0]


@pytest.mark.parametrize(
    ("max_frames", "fails"), [(2000, False), (1, False), (2001, True), (0, True)]
)
def test_param_max_frames(generated, max_frames, fails):
    report = mediaprep.check(generated["video_2s"], max_frames=max_frames)
    assert ("param.max_frames" in codes(report)) is fails


def test_params_apply_to_frame_lists(generated):
    assert "param.fps" in codes(mediaprep.check(generated["frames_4"], fps=11))


def test_params_do_not_apply_to_images(generated):
    assert codes(mediaprep.check(generated["png"], fps=11, max_frames=5000)) == []


@pytest.mark.parametrize("model", ["kimi-k2-thinking", "Moonshot-Kimi-K2-Instruct"])
@pytest.mark.parametrize("name", ["png", "video_2s", "frames_4"])
def test_text_only_models(generated, model, name):
    report = mediaprep.check(generated[name], model=model)
    f = finding(report, "model.no_vision")
    assert f.severity == "error" and f.actual == model and not report.ok


@pytest.mark.parametrize("model", ["kimi-k2.5", "kimi-k2.6", "kimi-k2.7-code"])
def test_vision_models(generated, model):
    found = codes(mediaprep.check(generated["png"], model=model))
    assert "model.no_vision" not in found and "model.unknown" not in found


@pytest.mark.parametrize("target", ["dashscope", "moonshot"])
def test_a_model_in_neither_list_is_a_warning(generated, target):
    """A typo ("kimi-k25") or a model newer than the table: a warning (fails with --strict)."""
    report = mediaprep.check(generated["png"], model="kimi-k25", target=target)
    f = finding(report, "model.unknown")
    assert f.severity == "warning" and f.actual == "kimi-k25" and report.ok
    assert "kimi-k2.5" in f.limit
    newer = mediaprep.check(generated["png"], model="kimi-k3",
                            limit_overrides={"models.vision": "kimi-k3,kimi-k2.5"})
    assert "model.unknown" not in codes(newer)


def test_video_resolution_warning():
    assert codes(check_info(video_info(w=2560, h=1440), Settings())) == []
    assert codes(check_info(video_info(w=1440, h=2560), Settings())) == []
    report = check_info(video_info(w=2561, h=1440), Settings())
    assert codes(report) == ["video.resolution"] and report.ok
    assert codes(check_info(video_info(w=1440, h=2561), Settings())) == ["video.resolution"]
    moon = Settings(target="moonshot")
    assert codes(check_info(video_info(w=2562, h=1440), moon)) == ["video.resolution"]


def test_audio_track_is_info(generated):
    report = mediaprep.check(generated["video_audio"])
    f = finding(report, "video.audio_ignored")
    assert f.severity == "info" and report.ok


def test_audio_only_is_no_video_stream(generated):
    report = mediaprep.check(generated["audio_only"])
    assert codes(report) == ["video.no_video_stream"] and not report.ok


# --- image lists -------------------------------------------------------------------------------


def test_frames_3_fail_4_and_5_pass(generated):
    report = mediaprep.check(generated["frames_3"])
    assert report.kind == "frames"
    f = finding(report, "frames.too_few")
    assert (f.limit, f.actual) == (4, 3)
    assert codes(mediaprep.check(generated["frames_4"])) == []
    assert codes(mediaprep.check(generated["frames_5"])) == []


def test_frames_as_list_of_paths(generated):
    files = sorted(generated["frames_5"].iterdir())
    assert codes(mediaprep.check(files[:3])) == ["frames.too_few"]
    assert codes(mediaprep.check(files[:4])) == []


def test_frames_too_many():
    s = Settings(transport="url")
    assert "frames.too_many" not in codes(check_info(frames_info(2000), s))
    report = check_info(frames_info(2001), s)
    f = finding(report, "frames.too_many")
    assert (f.limit, f.actual) == (2000, 2001)


def test_frames_data_url_count_250_base64():
    assert codes(check_info(frames_info(250), Settings())) == []
    f = finding(check_info(frames_info(251), Settings()), "request.too_many_data_urls")
    assert (f.limit, f.actual) == (250, 251)


def test_frames_url_count_256():
    s = Settings(transport="url")
    assert codes(check_info(frames_info(256), s)) == []
    f = finding(check_info(frames_info(257), s), "request.too_many_data_urls")
    assert (f.limit, f.actual) == (256, 257)


def test_frames_member_problems_are_reported(generated, tmp_path):
    frames = sorted(generated["frames_5"].iterdir())
    report = mediaprep.check([*frames, generated["png_10x400"]])
    assert "image.too_small" in codes(report)


# --- Moonshot ----------------------------------------------------------------------------------


def test_moonshot_image_formats(generated):
    # an animation is taken as is, and the warning says what becomes of it (issue 14 item 5)
    assert codes(mediaprep.check(generated["gif_animated"], target="moonshot")) == [
        "image.animated"]
    bad = mediaprep.check(generated["bmp"], target="moonshot")
    f = finding(bad, "file.unsupported_format")
    assert f.limit == ["gif", "jpeg", "png", "webp"] and f.actual == "bmp"
    # and the other way round on DashScope
    assert codes(mediaprep.check(generated["bmp"])) == []
    assert codes(mediaprep.check(generated["gif_animated"])) == ["file.unsupported_format",
                                                                 "image.animated"]


def test_moonshot_video_formats(generated):
    assert codes(mediaprep.check(generated["video_3gp"], target="moonshot")) == []
    assert codes(mediaprep.check(generated["video_webm"], target="moonshot")) == []
    bad = mediaprep.check(generated["video_mkv"], target="moonshot")
    assert codes(bad) == ["file.unsupported_format"]
    # DashScope takes MKV, not 3GP/WebM/TS
    assert codes(mediaprep.check(generated["video_mkv"])) == []
    for name in ("video_3gp", "video_webm", "video_ts"):
        assert codes(mediaprep.check(generated[name])) == ["file.unsupported_format"], name


def test_moonshot_request_too_large():
    moon = Settings(target="moonshot")
    mime = "video/mp4"
    n = _largest_fitting(mime, 100 * MiB)
    assert codes(check_info(video_info(n_bytes=n), moon)) == []
    f = finding(check_info(video_info(n_bytes=n + 1), moon), "request.too_large")
    assert f.limit == 100 * MiB and f.actual == data_url_size(n + 1, mime)


def test_moonshot_has_no_dashscope_limits():
    moon = Settings(target="moonshot")
    # 20 MB video: too big for a DashScope data URL, fine for Moonshot's 100 MB body
    assert codes(check_info(video_info(n_bytes=20 * MiB), moon)) == []
    assert codes(check_info(video_info(n_bytes=20 * MiB), Settings())) == ["base64.too_large"]


# --- bombs, unreadable, unsupported, misnamed --------------------------------------------------


class _Decoded(AssertionError):
    pass


@pytest.fixture
def no_decode(monkeypatch):
    """Any pixel decode raises (probe catches no AssertionError, so it would surface)."""

    def refuse(self, *a, **k):
        raise _Decoded("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", refuse)
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def test_no_decode_fixture_works(generated, no_decode):
    with pytest.raises(_Decoded):
        mediaprep.check(generated["jpeg"], deep=True)


@pytest.mark.parametrize(
    ("name", "pixels"), [("jpeg_bomb", 65_000 * 65_000), ("png_bomb", 100_000 * 100_000)]
)
def test_decompression_bomb_from_header(generated, no_decode, name, pixels):
    path = generated[name]
    assert path.stat().st_size < 1000  # a few hundred bytes declaring billions of pixels
    report = mediaprep.check(path)
    assert codes(report) == ["image.decompression_bomb"]
    f = report.findings[0]
    assert f.severity == "error" and f.actual == pixels and f.limit == 1 << 30
    assert path.name in f.message


def test_bomb_limit_override(generated, no_decode):
    # raising the pixel limit above the declared size lets the header through (still no decode)
    report = mediaprep.check(
        generated["jpeg_bomb"], limits={"image.max_decode_pixels": 5_000_000_000}
    )
    assert "image.decompression_bomb" not in codes(report)
    assert report.info.width == 65_000


def test_regular_check_decodes_nothing(generated, no_decode):
    for name in ("jpeg", "png", "webp_3841x2160", "tiff_3840x2160", "heic", "bmp"):
        assert mediaprep.check(generated[name]).info.width, name


@pytest.mark.parametrize(
    "name", ["empty", "jpeg_truncated", "png_truncated", "random_jpg", "text_png"]
)
def test_unreadable(generated, name):
    report = mediaprep.check(generated[name])
    assert codes(report) == ["file.unreadable"]
    assert generated[name].name in report.findings[0].message
    assert not report.ok


def test_text_file_is_unsupported(generated):
    report = mediaprep.check(generated["text_txt"])
    assert codes(report) == ["file.unsupported_format"]
    assert "notes.txt" in report.findings[0].message


def test_avif_is_unsupported_but_fixable(generated):
    report = mediaprep.check(generated["avif"])
    f = finding(report, "file.unsupported_format")
    assert f.actual == "avif" and f.fixable


def test_extension_mismatch(generated):
    report = mediaprep.check(generated["png_as_jpg"])
    assert codes(report) == ["file.extension_mismatch"]
    f = report.findings[0]
    assert f.severity == "warning" and (f.limit, f.actual) == ("jpg", "png")
    assert report.ok and report.info.format == "png"


# --- limit overrides ---------------------------------------------------------------------------


def test_override_library(generated):
    report = mediaprep.check(generated["png_11x400"], limits={"image.min_side": 20})
    f = finding(report, "image.too_small")
    assert (f.limit, f.actual) == (20, 11)
    # other rows stay as they were
    assert codes(mediaprep.check(generated["png_2200x11"], limits={"image.min_side": 5})) == []


def test_override_unknown_key(generated):
    with pytest.raises(ValueError, match="unknown limit"):
        mediaprep.check(generated["png"], limits={"image.min_sid": 20})


def _cli_json(args: list[str]) -> tuple[int, dict]:
    import json

    result = CliRunner().invoke(main, ["check", "--format", "json", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def test_override_cli(generated):
    path = str(generated["png_11x400"])
    code, data = _cli_json([path])
    assert code == 0 and data["files"][0]["findings"] == []
    code, data = _cli_json(["--limit", "image.min_side=20", path])
    assert code == 1
    f = data["files"][0]["findings"][0]
    assert (f["code"], f["limit"], f["actual"]) == ("image.too_small", 20, 11)


def test_override_pyproject(generated, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.mediaprep.limits]\n"image.min_side" = 20\n'
    )
    monkeypatch.chdir(tmp_path)
    code, data = _cli_json([str(generated["png_11x400"])])
    assert code == 1 and data["files"][0]["findings"][0]["limit"] == 20
    # the command line wins over the file
    code, _ = _cli_json(["--limit", "image.min_side=10", str(generated["png_11x400"])])
    assert code == 0


def test_override_mediaprep_toml(generated, tmp_path, monkeypatch):
    (tmp_path / "mediaprep.toml").write_text(
        'transport = "url"\n\n[limits]\n"image.min_side" = 20\n'
    )
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)  # found by walking up
    code, data = _cli_json([str(generated["png_11x400"])])
    assert code == 1 and data["transport"] == "url"
    assert data["files"][0]["findings"][0]["code"] == "image.too_small"


def test_override_mediaprep_toml_wins_over_pyproject(generated, tmp_path, monkeypatch):
    (tmp_path / "mediaprep.toml").write_text('[limits]\n"image.min_side" = 20\n')
    (tmp_path / "pyproject.toml").write_text('[tool.mediaprep.limits]\n"image.min_side" = 5\n')
    monkeypatch.chdir(tmp_path)
    code, _ = _cli_json([str(generated["png_11x400"])])
    assert code == 1


# --- probe facts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "facts"),
    [
        (
            "jpeg",
            {
                "kind": "image",
                "format": "jpeg",
                "width": 64,
                "height": 48,
                "mode": "RGB",
                "bit_depth": 8,
                "orientation": None,
            },
        ),
        ("png", {"kind": "image", "format": "png", "width": 64, "height": 48, "mode": "RGB"}),
        ("heic", {"kind": "image", "format": "heic", "width": 64, "height": 48, "bit_depth": 8}),
        ("avif", {"kind": "image", "format": "avif", "width": 64, "height": 48}),
        ("bmp", {"kind": "image", "format": "bmp", "width": 64, "height": 48}),
        ("gif_animated", {"kind": "image", "format": "gif", "frames": 3, "mode": "P"}),
        ("jpeg_exif6", {"format": "jpeg", "width": 64, "height": 48, "orientation": 6}),
        ("jpeg_cmyk", {"format": "jpeg", "mode": "CMYK"}),
        ("png_16bit", {"format": "png", "bit_depth": 16, "mode": "I;16"}),
        ("png_7681x4320", {"format": "png", "width": 7681, "height": 4320, "bit_depth": 1}),
        ("tiff_3840x2160", {"format": "tiff", "width": 3840, "height": 2160}),
        ("webp_2160x3841", {"format": "webp", "width": 2160, "height": 3841}),
        ("png_as_jpg", {"format": "png", "extension": "jpg", "extension_matches": False}),
        (
            "video_2s",
            {
                "kind": "video",
                "format": "mp4",
                "codec": "h264",
                "width": 64,
                "height": 48,
                "duration": 2.0,
                "fps": 10.0,
                "rotation": 0,
                "has_audio": False,
                "frame_count": 20,
            },
        ),
        ("video_1_9s", {"duration": 1.9, "frame_count": 19}),
        ("video_audio", {"kind": "video", "duration": 3.0, "has_audio": True}),
        ("video_webm", {"kind": "video", "format": "webm", "codec": "vp8", "duration": 2.5}),
        ("video_mkv", {"kind": "video", "format": "mkv", "codec": "h264"}),
        ("video_ts", {"kind": "video", "format": "ts", "codec": "h264"}),
        ("video_3gp", {"kind": "video", "format": "3gp"}),
        ("video_rotated", {"kind": "video", "rotation": 90, "width": 64, "height": 48}),
        ("video_3600s", {"duration": 3600.0, "frame_count": 60}),
        ("video_3601s", {"duration": 3601.0}),
        ("audio_only", {"kind": "other", "has_audio": True, "error_code": "video.no_video_stream"}),
        ("frames_5", {"kind": "frames", "format": "frames", "width": 64, "height": 48}),
    ],
)
def test_probe_facts(generated, name, facts):
    info = mediaprep.probe(generated[name])
    got = {k: getattr(info, k) for k in facts}
    expected = {k: (pytest.approx(v) if isinstance(v, float) else v) for k, v in facts.items()}
    assert got == expected


def test_probe_display_size(generated):
    assert mediaprep.probe(generated["jpeg_exif6"]).display_size == (48, 64)
    assert mediaprep.probe(generated["video_rotated"]).display_size == (48, 64)
    assert mediaprep.probe(generated["jpeg"]).display_size == (64, 48)


def test_probe_frames_members(generated):
    info = mediaprep.probe(generated["frames_5"])
    assert len(info.members) == 5
    assert [Path(m.path).name for m in info.members] == [f"frame_{i:03d}.jpg" for i in range(1, 6)]
    assert info.bytes == sum(p.stat().st_size for p in generated["frames_5"].iterdir())


def test_probe_bytes_and_file_objects(generated):
    data = generated["png"].read_bytes()
    assert mediaprep.probe(data).width == 64
    with open(generated["video_2s"], "rb") as fh:
        assert mediaprep.probe(fh).duration == pytest.approx(2.0)
    assert codes(mediaprep.check(data)) == []


def test_settings_travel_to_workers_without_their_limits_table() -> None:
    import pickle

    s = Settings(limit_overrides={"image.max_bytes.url": 5_000_000}, max_tokens=9000)
    table = s.limits  # cached on the object
    data = pickle.dumps(s)
    assert b"image.recommended_box" not in data  # the table stays home
    back = pickle.loads(data)
    assert back == s
    assert back.limits.value("image.max_bytes.url") == 5_000_000 == table.value(
        "image.max_bytes.url")
    assert back.limits.value("tokens.max_request") == 9000
