"""Tests for mediaprep.backends.av_encode: remux, transcode_to_fit, verify.

Clips are generated into tmp_path with PyAV (small, a few seconds) by :func:`_clip`, which is
kept here rather than shared so these tests do not move when other generators change.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from mediaprep.backends import av_encode as vmod
from mediaprep.backends.av import side_data
from mediaprep.backends.av_encode import (
    DoesNotFit,
    RemuxNotPossible,
    VerifyError,
    remux,
    transcode_to_fit,
    verify,
)
from tests.conftest import REALMEDIA

VIDEOS = REALMEDIA / "videos"
DATA_URL_LIMIT = 10_485_760


def data_url_size(n: int) -> int:
    return len("data:video/mp4;base64,") + 4 * math.ceil(n / 3)


def _frame(i: int, w: int, h: int, rng: np.random.Generator, noise: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = (xx * 255 // max(w - 1, 1) + 4 * i) % 256
    img[..., 1] = (yy * 255 // max(h - 1, 1) + 2 * i) % 256
    img[..., 2] = ((xx // 16 + yy // 16 + i) % 2) * 200
    # Red block in the top-left quarter: tells which way up the output is.
    img[: h // 4, : w // 4] = (255, 0, 0)
    if noise:
        img = np.clip(img + rng.integers(-noise, noise + 1, img.shape), 0, 255).astype(np.uint8)
    return img


def _clip(
    path: Path,
    *,
    width: int = 160,
    height: int = 120,
    seconds: float = 2.0,
    fps: int = 30,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    sar: Fraction | None = None,
    audio: bool = False,
    noise: int = 0,
    pts: list[int] | None = None,
) -> Path:
    """Write a test clip. ``pts`` (in 1/fps units) makes it variable frame rate."""
    rng = np.random.default_rng(0)
    stamps = pts if pts is not None else list(range(round(seconds * fps)))
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            s.codec_context.options = {"qp": "8", "preset": "ultrafast"}
        if sar is not None:
            s.codec_context.sample_aspect_ratio = sar
        if rotation is not None:
            s.set_display_rotation(rotation)
        a = c.add_stream("aac", rate=48000) if audio else None
        for i, p in enumerate(stamps):
            f = av.VideoFrame.from_ndarray(_frame(i, width, height, rng, noise), format="rgb24")
            f.pts, f.time_base = p, Fraction(1, fps)
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
        if a is not None:
            for k in range(int(seconds * 48000 / 1024)):
                af = av.AudioFrame.from_ndarray(
                    np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
                )
                af.sample_rate, af.pts = 48000, k * 1024
                for pkt in a.encode(af):
                    c.mux(pkt)
            for pkt in a.encode(None):
                c.mux(pkt)
    return path


def _probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        first = next(c.decode(s))
        return {
            "types": [x.type for x in c.streams],
            "codec": s.codec_context.name,
            "width": s.codec_context.width,
            "height": s.codec_context.height,
            "pix_fmt": s.codec_context.format.name,
            "sar": s.sample_aspect_ratio,
            "duration": c.duration / av.time_base,
            "rotation": first.rotation,
            "side_data": [str(sd.type) for sd in side_data(first)],
            "rgb": first.to_ndarray(format="rgb24"),
        }


def _faststart(path: Path) -> bool:
    head = path.read_bytes()
    return 0 <= head.find(b"moov") < head.find(b"mdat")


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".mediaprep-")]


# ------------------------------------------------------------------------------------- remux


def test_remux_mkv_h264_to_mp4(tmp_path: Path) -> None:
    src = _clip(tmp_path / "a.mkv", seconds=3, audio=True)
    out = remux(src, tmp_path / "a.mp4")
    dst = tmp_path / "a.mp4"
    assert out.remuxed and not out.transcoded and out.container == "mp4" and out.codec == "h264"
    assert out.bytes == dst.stat().st_size
    info = _probe(dst)
    assert info["types"] == ["video"]  # audio dropped
    assert abs(info["duration"] - 3.0) < 0.1 and abs(out.duration - 3.0) < 0.1
    assert _faststart(dst)
    verify(dst, expected_duration=3.0)
    with av.open(str(src)) as a, av.open(str(dst)) as b:  # the packets are copied, not re-coded
        pa = [bytes(p) for p in a.demux(video=0) if p.size]
        pb = [bytes(p) for p in b.demux(video=0) if p.size]
    assert len(pa) == len(pb) and sum(map(len, pa)) == sum(map(len, pb))


def test_remux_codec_mp4_refuses(tmp_path: Path) -> None:
    # FFmpeg's mp4 muxer has no tag for VP8 (it has one for VP9).
    src = _clip(tmp_path / "v.webm", codec="libvpx", seconds=1)
    with pytest.raises(RemuxNotPossible):
        remux(src, tmp_path / "v.mp4")
    assert not (tmp_path / "v.mp4").exists()
    assert _leftovers(tmp_path) == []
    out = remux(src, tmp_path / "v.mkv", container="matroska")  # but Matroska takes it
    assert out.codec == "vp8" and abs(out.duration - 1.0) < 0.1


# ---------------------------------------------------------------------------------- transcode


def test_transcode_fits_budget(tmp_path: Path, ordinary_mode: int) -> None:
    src = _clip(tmp_path / "big.mkv", width=640, height=480, seconds=4, noise=6, audio=True)
    src_size = src.stat().st_size
    budget = 120_000
    assert src_size > 10 * budget
    dst = tmp_path / "small.mp4"
    out = transcode_to_fit(src, dst, max_bytes=budget)
    size = dst.stat().st_size
    assert size == out.bytes <= budget * (1 - 0.03)
    assert out.transcoded and out.attempts >= 1 and out.steps
    verify(dst, expected_duration=4.0)
    info = _probe(dst)
    assert info["types"] == ["video"]
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["width"] % 2 == 0 and info["height"] % 2 == 0
    assert (info["width"], info["height"]) == (640, 480)
    assert abs(info["duration"] - 4.0) <= 0.1 and abs(out.duration - 4.0) <= 0.1
    assert _faststart(dst)
    assert _leftovers(tmp_path) == []
    assert dst.stat().st_mode & 0o777 == ordinary_mode  # not mkstemp's 0600


def test_transcode_data_url_budget(tmp_path: Path) -> None:
    src = _clip(tmp_path / "c.mp4", width=320, height=240, seconds=3, noise=6)
    budget = 60_000
    out = transcode_to_fit(src, tmp_path / "o.mp4", max_bytes=budget, size_of=data_url_size)
    assert data_url_size(out.bytes) <= budget * 0.97
    assert out.bytes > 0.6 * budget * 0.97 * 3 / 4  # and it used most of what it had


def test_huge_budget_is_not_spent(tmp_path: Path) -> None:
    # "no limit" callers pass enormous budgets: the rate is capped (and x264's ints survive).
    src = _clip(tmp_path / "h.mp4", width=160, height=120, seconds=1, noise=4)
    out = transcode_to_fit(src, tmp_path / "h_out.mp4", max_bytes=1 << 62)
    assert out.bitrate is not None and out.bitrate < 0.4 * 160 * 120 * 30


def test_rotated_source_is_turned_upright(tmp_path: Path) -> None:
    src = _clip(tmp_path / "r.mp4", width=160, height=120, rotation=90)
    with av.open(str(src)) as c:
        assert next(c.decode(video=0)).rotation == 90
    dst = tmp_path / "r_out.mp4"
    out = transcode_to_fit(src, dst, max_bytes=200_000)
    info = _probe(dst)
    assert (out.width, out.height) == (info["width"], info["height"]) == (120, 160)
    assert info["rotation"] == 0
    assert not any("DISPLAYMATRIX" in t for t in info["side_data"])
    # rotation 90 is counter-clockwise: the top-left red block ends up bottom-left.
    rgb = info["rgb"].astype(int)
    h, w = rgb.shape[:2]
    bottom_left, top_left = rgb[h - 5, 5], rgb[5, 5]
    assert bottom_left[0] > 200 and bottom_left[1] < 60 and bottom_left[2] < 60
    assert not (top_left[0] > 200 and top_left[1] < 60 and top_left[2] < 60)


def test_sar_is_made_square(tmp_path: Path) -> None:
    src = _clip(tmp_path / "s.mp4", width=320, height=240, sar=Fraction(2, 1))
    with av.open(str(src)) as c:
        assert c.streams.video[0].sample_aspect_ratio == 2
    out = transcode_to_fit(src, tmp_path / "s_out.mp4", max_bytes=200_000)
    info = _probe(tmp_path / "s_out.mp4")
    assert info["sar"] in (None, 0, 1)
    # display aspect 320*2:240 = 8:3, kept, without enlarging any axis
    assert abs(out.width / out.height - 8 / 3) < 0.03
    assert out.width <= 320 and out.height <= 240


def test_odd_dimensions_become_even(tmp_path: Path) -> None:
    # 4:4:4 lets x264 store odd sizes; the output must be 4:2:0 and even.
    src = _clip(tmp_path / "odd.mkv", width=321, height=241, pix_fmt="yuv444p", seconds=1)
    out = transcode_to_fit(src, tmp_path / "odd.mp4", max_bytes=200_000)
    info = _probe(tmp_path / "odd.mp4")
    assert (out.width, out.height) == (320, 240)
    assert info["pix_fmt"] == "yuv420p"


def test_max_box_downscale_either_orientation(tmp_path: Path) -> None:
    src = _clip(tmp_path / "b.mp4", width=640, height=480, seconds=1)
    out = transcode_to_fit(src, tmp_path / "b1.mp4", max_bytes=500_000, max_box=(200, 320))
    # box is orientation-agnostic: long side <= 320, short side <= 200
    assert max(out.width, out.height) <= 320 and min(out.width, out.height) <= 200
    assert out.width % 2 == 0 and out.height % 2 == 0
    assert abs(out.width / out.height - 4 / 3) < 0.02
    # never upscale
    out2 = transcode_to_fit(src, tmp_path / "b2.mp4", max_bytes=500_000, max_box=(4000, 4000))
    assert (out2.width, out2.height) == (640, 480)


def test_vfr_timing_kept(tmp_path: Path) -> None:
    stamps = [0, 1, 2, 3, 6, 7, 15, 16, 17, 30, 31, 32, 45, 60, 61, 62, 89]  # 1/30 s units
    src = _clip(tmp_path / "vfr.mp4", pts=stamps, fps=30)
    with av.open(str(src)) as c:
        s = c.streams.video[0]
        src_times = [float(f.pts * f.time_base) for f in c.decode(s)]
        src_dur = c.duration / av.time_base
    out = transcode_to_fit(src, tmp_path / "vfr_out.mp4", max_bytes=200_000)
    with av.open(out.path) as c:
        times = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    assert len(times) == len(src_times)
    assert max(abs(a - b) for a, b in zip(times, src_times, strict=True)) < 0.002
    assert abs(out.duration - src_dur) <= 0.1


def test_max_duration_cuts(tmp_path: Path) -> None:
    src = _clip(tmp_path / "long.mp4", seconds=3)
    out = transcode_to_fit(src, tmp_path / "cut.mp4", max_bytes=200_000, max_duration=1.5)
    assert abs(out.duration - 1.5) <= 0.1


def test_impossible_budget_raises_and_leaves_nothing(tmp_path: Path) -> None:
    src = _clip(tmp_path / "x.mp4", seconds=2)
    dst = tmp_path / "x_out.mp4"
    with pytest.raises(DoesNotFit) as ei:
        transcode_to_fit(src, dst, max_bytes=3_000)
    assert ei.value.budget <= 3_000
    assert not dst.exists() and _leftovers(tmp_path) == []


def _overshooting_encoder(monkeypatch: pytest.MonkeyPatch, pad: int, times: int) -> list[int]:
    """Make the first ``times`` encodes come out ``pad`` bytes too big, as x264 can overshoot."""
    real = vmod._encode
    calls: list[int] = []

    def encode(src, tmp, scan, att, max_duration):  # type: ignore[no-untyped-def]
        stats = real(src, tmp, scan, att, max_duration)
        calls.append(att.bitrate)
        if len(calls) <= times:
            with open(tmp, "ab") as f:
                f.write(b"\0" * pad)
        return stats

    monkeypatch.setattr(vmod, "_encode", encode)
    return calls


def test_retry_lowers_bitrate_until_it_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _clip(tmp_path / "z.mp4", seconds=1, noise=6)
    calls = _overshooting_encoder(monkeypatch, pad=60_000, times=1)
    out = transcode_to_fit(src, tmp_path / "z_out.mp4", max_bytes=50_000)
    assert out.attempts == 2 and len(calls) == 2 and calls[1] < calls[0]
    assert out.bytes <= 50_000 * 0.97
    assert _leftovers(tmp_path) == []


def test_too_big_after_all_attempts_reports_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _clip(tmp_path / "y.mp4", seconds=1)
    dst = tmp_path / "y_out.mp4"
    calls = _overshooting_encoder(monkeypatch, pad=100_000, times=99)
    with pytest.raises(DoesNotFit) as ei:
        transcode_to_fit(src, dst, max_bytes=50_000)
    assert len(calls) == vmod.MAX_ATTEMPTS
    assert ei.value.best_bytes is not None and ei.value.best_bytes > ei.value.budget
    assert not dst.exists() and _leftovers(tmp_path) == []


def test_interrupted_write_leaves_no_dst(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _clip(tmp_path / "i.mp4", seconds=1)
    dst = tmp_path / "i_out.mp4"

    def boom(*a: object, **k: object) -> None:
        raise VerifyError("simulated crash before the rename")

    monkeypatch.setattr(vmod, "verify", boom)
    with pytest.raises(VerifyError):
        transcode_to_fit(src, dst, max_bytes=200_000)
    assert not dst.exists() and _leftovers(tmp_path) == []
    # an existing destination is not clobbered by a failed run
    dst.write_bytes(b"old")
    with pytest.raises(VerifyError):
        transcode_to_fit(src, dst, max_bytes=200_000)
    with pytest.raises(VerifyError):
        remux(src, dst)
    assert dst.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_corrupt_packets_are_skipped(tmp_path: Path) -> None:
    src = _clip(tmp_path / "k.ts", width=160, height=120, seconds=2, noise=4)
    data = bytearray(src.read_bytes())
    # Trash payload bytes (not the 4-byte TS headers) in a few packets mid-file.
    for k in range(len(data) // 188 // 2, len(data) // 188 // 2 + 6):
        off = k * 188 + 20
        data[off : off + 100] = os.urandom(100)
    bad = tmp_path / "k_bad.ts"
    bad.write_bytes(bytes(data))
    out = transcode_to_fit(bad, tmp_path / "k_out.mp4", max_bytes=500_000)
    verify(out.path, expected_duration=out.duration)
    assert abs(out.duration - 2.0) <= 0.15


# ------------------------------------------------------------------------------------- verify


def test_verify_catches_truncation_and_wrong_duration(tmp_path: Path) -> None:
    src = _clip(tmp_path / "t.mp4", seconds=2)
    verify(src, expected_duration=2.0)
    with pytest.raises(VerifyError):
        verify(src, expected_duration=3.0)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    with pytest.raises(VerifyError):
        verify(cut, expected_duration=2.0)


# --------------------------------------------------------------------------------- real media


@pytest.mark.skipif(not VIDEOS.is_dir(), reason=f"no real media at {REALMEDIA}")
@pytest.mark.parametrize(
    "name", ["mb_hevc.ts", "mpy_transparent.webm", "ft_fixture.3gp", "dec_corrupted.mp4"]
)
def test_real_media_fits_data_url(tmp_path: Path, name: str) -> None:
    src = VIDEOS / name
    dst = tmp_path / (name + ".mp4")
    out = transcode_to_fit(src, dst, max_bytes=DATA_URL_LIMIT, size_of=data_url_size)
    assert data_url_size(dst.stat().st_size) <= DATA_URL_LIMIT
    info = _probe(dst)
    assert info["types"] == ["video"] and info["codec"] == "h264"
    assert info["pix_fmt"] == "yuv420p" and out.width % 2 == 0 and out.height % 2 == 0
    verify(dst, expected_duration=out.duration)
    with av.open(str(src)) as c:  # the content's span, not a header that may lie
        s = c.streams.video[0]
        ts = [(p.pts, p.duration or 0) for p in c.demux(s) if p.size and p.pts is not None]
        span = float((max(a + d for a, d in ts) - min(a for a, _ in ts)) * s.time_base)
    assert abs(out.duration - span) <= 0.1
