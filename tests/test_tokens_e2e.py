"""Token estimates and model-aware sizing end to end, through mediaprep.prepare / check."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import mediaprep
from mediaprep.kinds.common import request_token_findings, request_tokens
from mediaprep.settings import Settings
from mediaprep.tokens import (
    MEDIA_PROMPT_CHUNK,
    MEDIA_PROMPT_IMAGE,
    image_tokens,
    model_resize,
    video_tokens,
)
from tests.fixtures.generate import jpeg_header_only

COUNTS = ["vision", "media_prompt"]


def _video_tokens(n: int, w: int, h: int) -> int:
    """A video's vision tokens and the media prompt before each of its 4-frame chunks."""
    return video_tokens(n, w, h) + -(-n // 4) * MEDIA_PROMPT_CHUNK


def _noisy(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w, 1), y * 255 // max(h, 1), (x + y) % 256], -1)
    arr = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def _jpeg(tmp: Path, w: int, h: int, q: int = 90, seed: int = 0) -> Path:
    p = tmp / f"img_{w}x{h}_{seed}.jpg"
    _noisy(w, h, seed).save(p, "JPEG", quality=q)
    return p


def _video(tmp: Path, w: int = 640, h: int = 360, n: int = 30, fps: int = 10) -> Path:
    p = tmp / f"clip_{w}x{h}.mp4"
    with av.open(str(p), "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.time_base = Fraction(1, fps)
        st.options = {"preset": "ultrafast"}
        for i in range(n):
            img = _noisy(w, h, seed=i % 3)
            fr = av.VideoFrame.from_image(img)
            fr.pts = i
            for pkt in st.encode(fr):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return p


def _decoded_size(prepared: mediaprep.Prepared) -> tuple[int, int]:
    assert prepared.data is not None
    return Image.open(io.BytesIO(prepared.data)).size


# ------------------------------------------------------------------ images: worked values


@pytest.mark.parametrize(
    ("w", "h", "tokens"), [(28, 28, 1), (1024, 1024, 1369), (1920, 1080, 2691)]
)
def test_prepare_reports_the_worked_values(tmp_path: Path, w: int, h: int, tokens: int) -> None:
    r = mediaprep.prepare(_jpeg(tmp_path, w, h))
    assert r.ok
    tokens += MEDIA_PROMPT_IMAGE
    assert r.tokens == {"estimate": tokens, "model": "kimi-k2.5", "counts": COUNTS}
    assert r.to_json()["tokens"]["estimate"] == tokens


@pytest.mark.parametrize(("w", "h", "tokens"), [(3840, 2160, 4214), (7168, 7168, 4096)])
def test_check_reports_the_worked_values_from_headers(
    tmp_path: Path, w: int, h: int, tokens: int
) -> None:
    p = tmp_path / f"h_{w}x{h}.jpg"
    p.write_bytes(jpeg_header_only(w, h))
    rep = mediaprep.check(p)
    want = {"estimate": tokens + MEDIA_PROMPT_IMAGE, "model": "kimi-k2.5", "counts": COUNTS}
    assert rep.tokens == want
    assert rep.to_json()["tokens"] == want


def test_resize_model_sends_exactly_what_the_model_keeps(tmp_path: Path) -> None:
    src = _jpeg(tmp_path, 3840, 2160, q=95)
    plain = mediaprep.prepare(src)
    r = mediaprep.prepare(src, resize_model=True)
    assert r.ok and plain.ok
    assert model_resize(3840, 2160) == (2392, 1345)
    assert _decoded_size(r) == (2392, 1345)
    # what the model sees is kept
    assert r.tokens == {"estimate": 4214 + MEDIA_PROMPT_IMAGE, "model": "kimi-k2.5",
                        "counts": COUNTS}
    saved = r.stats["resize_model"]
    assert saved["bytes_with"] == len(r.data or b"")
    assert saved["bytes_without"] == len(plain.data or b"")  # plain prep, really encoded
    assert saved["bytes_saved"] == saved["bytes_without"] - saved["bytes_with"] > 0
    assert saved["size_without"] == [3840, 2160] and saved["size_with"] == [2392, 1345]
    assert any(c.kind == "resized" and c.why == "what the model keeps" for c in r.changes)


def test_resize_model_counts_a_passthrough_as_the_input_bytes(tmp_path: Path) -> None:
    src = _jpeg(tmp_path, 3000, 2000, q=80)  # sendable as it is
    plain = mediaprep.prepare(src)
    assert plain.ok and plain.fixes == ["passed through unchanged"]
    r = mediaprep.prepare(src, resize_model=True)
    w, h = model_resize(3000, 2000)
    assert _decoded_size(r) == (w, h) != (3000, 2000)
    assert r.stats["resize_model"]["bytes_without"] == src.stat().st_size


def test_resize_model_is_off_by_default_and_small_images_are_untouched(tmp_path: Path) -> None:
    assert Settings().resize_model is False
    src = _jpeg(tmp_path, 1000, 800)
    r = mediaprep.prepare(src, resize_model=True)
    assert r.ok and _decoded_size(r) == (1000, 800) and "resize_model" not in r.stats


def test_max_image_tokens_scales_down_keeping_the_aspect(tmp_path: Path) -> None:
    src = _jpeg(tmp_path, 1920, 1080)
    rep = mediaprep.check(src, max_image_tokens=1000)
    assert "tokens.image_too_many" in rep.codes()
    r = mediaprep.prepare(src, max_image_tokens=1000)
    assert r.ok
    w, h = _decoded_size(r)
    assert image_tokens(w, h) <= 1000 and r.tokens["estimate"] <= 1000
    assert image_tokens(w + 2, h + 1) > 1000  # not shrunk more than needed
    assert abs(w / h - 1920 / 1080) < 0.01
    assert any("token cap" in f for f in r.fixes)


def test_max_tokens_caps_a_single_image(tmp_path: Path) -> None:
    src = _jpeg(tmp_path, 1920, 1080)
    rep = mediaprep.check(src, max_tokens=500)
    assert "tokens.request_too_many" in rep.codes()
    r = mediaprep.prepare(src, max_tokens=500)
    assert r.ok and r.tokens["estimate"] <= 500


def test_request_tokens_sum_and_finding(tmp_path: Path) -> None:
    a = mediaprep.prepare(_jpeg(tmp_path, 1024, 1024))
    b = mediaprep.prepare(_jpeg(tmp_path, 1920, 1080))
    total = request_tokens([a, "describe both", b])
    assert total == {"estimate": 1369 + 2691 + 2 * MEDIA_PROMPT_IMAGE, "model": "kimi-k2.5",
                     "items": 2, "unknown": 0}
    assert request_token_findings([a, b], Settings(max_tokens=5000)) == []
    found = request_token_findings([a, b], Settings(max_tokens=4000))
    assert [f.code for f in found] == ["tokens.request_too_many"]
    assert found[0].actual == 4068 and found[0].limit == 4000
    no_estimate = mediaprep.Prepared(path="x.jpg", kind="image", ok=False)
    assert request_tokens([a, no_estimate])["unknown"] == 1


# ------------------------------------------------------------------ videos and frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _video(tmp_path_factory.mktemp("clip"))  # 640x360, 3 s at 10 fps


def test_video_estimate_at_its_fps(clip: Path) -> None:
    rep = mediaprep.check(clip, fps=2)
    assert rep.tokens == {"estimate": _video_tokens(6, 640, 360), "model": "kimi-k2.5",
                          "counts": COUNTS}


def test_frames_fit_max_tokens_by_frame_size_first(clip: Path, tmp_path: Path) -> None:
    full = video_tokens(6, 640, 360)  # 2 chunks of 299
    r = mediaprep.prepare(clip, video_mode="frames", fps=2, max_tokens=400, out_dir=tmp_path)
    assert r.ok and full > 400
    assert len(r.part["video"]) == 6  # every frame kept
    size = Image.open(r.outputs[0]).size
    assert max(size) < 640 and _video_tokens(6, *size) <= 400
    assert r.tokens["estimate"] == _video_tokens(6, *size) <= 400
    assert any(c.kind == "sampled" and "--max-tokens 400" in c.why for c in r.changes)


def test_frames_fit_max_tokens_by_count_past_the_size_floor(clip: Path) -> None:
    r = mediaprep.prepare(clip, video_mode="frames", fps=2, max_tokens=200)
    assert r.ok
    n = len(r.part["video"])
    assert 4 <= n < 6
    assert r.tokens["estimate"] <= 200
    assert r.fps is not None and abs(r.fps - n / 3.0) < 0.5  # the real rate is reported


def test_auto_mode_sends_frames_to_fit_max_tokens(clip: Path) -> None:
    r = mediaprep.prepare(clip, fps=2, max_tokens=400)
    assert r.ok and r.part["type"] == "video"
    assert [c.why for c in r.changes if c.kind == "sent as frames"] == ["to fit --max-tokens"]
    assert r.tokens["estimate"] <= 400


def test_file_mode_lowers_fps_to_fit_max_tokens(clip: Path) -> None:
    # one 4-frame chunk of 640x360 is 299 vision tokens and 11 of media prompt
    r = mediaprep.prepare(clip, video_mode="file", fps=2, max_tokens=320)
    assert r.ok and r.part["type"] == "video_url"
    assert r.part["fps"] < 2 and r.fps == r.part["fps"]
    assert r.tokens["estimate"] <= 320
    assert any(c.kind == "sampled" and c.before == "fps 2" for c in r.changes)


def test_frames_list_fits_max_tokens(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(8):
        _noisy(640, 360, seed=i).save(folder / f"f{i:02d}.jpg", quality=80)
    est = mediaprep.check(folder)
    assert est.tokens["estimate"] == _video_tokens(8, 640, 360)
    r = mediaprep.prepare(folder, max_tokens=300)
    assert r.ok, r.findings
    assert r.tokens is not None and r.tokens["estimate"] <= 300
    assert any(c.kind == "sampled" and "--max-tokens 300" in c.why for c in r.changes)


def test_unfittable_token_budget_fails_with_the_finding(clip: Path) -> None:
    r = mediaprep.prepare(clip, video_mode="frames", fps=2, max_tokens=10)
    assert not r.ok or (r.tokens or {}).get("estimate", 0) <= 10
    assert "tokens.request_too_many" in [f.code for f in r.findings]


def test_resize_model_never_sends_more_bytes(generated: dict[str, Path]) -> None:
    src = generated["webp_3840x2160"]  # a flat 4K WEBP of a few dozen bytes, sendable as is
    r = mediaprep.prepare(src, resize_model=True)
    assert r.ok and r.data == src.read_bytes()
    rm = r.stats["resize_model"]
    assert rm["sent"] == "without" and rm["bytes_saved"] == 0
    assert rm["bytes_with"] > rm["bytes_without"] == src.stat().st_size
    assert not r.changes and r.fixes == ["passed through unchanged"]  # the input itself
