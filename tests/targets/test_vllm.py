"""The third target, Kimi K2.5 on your own vLLM or SGLang server: its rules, its tokens as the
open processor counts them, and what prep sends it."""

from __future__ import annotations

import json
import math
import pickle
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import mediaprep
from mediaprep.cli import main
from mediaprep.settings import Settings, SettingsError, make_settings
from mediaprep.targets import NAMES, get_target
from tests.videogen import make_video

# --- the open processor's arithmetic, written out from vLLM's kimi_k25_vision_fused.py
# (navit_resize_image / navit_resize_video) and the chat template's media prompt, as the
# reference mediaprep's rule is checked against ------------------------------------------

def reference_navit_tokens(width: int, height: int, patch_limit: int) -> int:
    patch, merge, side = 14, 2, 512
    s1 = math.sqrt(patch_limit / (max(1.0, width // patch) * max(1.0, height // patch)))
    scale = min(1.0, s1, side * patch / width, side * patch / height)
    new_w = min(max(1, int(width * scale)), side * patch)
    new_h = min(max(1, int(height * scale)), side * patch)
    factor = merge * patch
    pad_w, pad_h = (factor - new_w % factor) % factor, (factor - new_h % factor) % factor
    return ((new_h + pad_h) // factor) * ((new_w + pad_w) // factor)


# "<|media_begin|>image<|media_content|><|media_pad|><|media_end|>": 4 text tokens around
# the pads; a video chunk adds its "HH:MM:SS.fff" timestamp (7 tokens) before the same wrapper
IMAGE_PROMPT, CHUNK_PROMPT = 4, 7 + 4


def reference_sampled_frames(n_source_frames: int, video_fps: float,
                             sample_fps: float = 2.0) -> int:
    sample_fps = min(sample_fps, video_fps)
    return max(round(n_source_frames * sample_fps / video_fps), 1)


def _sizes(n: int) -> list[tuple[int, int]]:
    rng = random.Random(20261207)
    fixed = [(1, 1), (14, 14), (27, 29), (28, 28), (1920, 1080), (3840, 2160), (4981, 1761),
             (40000, 200), (200, 40000), (7168, 7168), (7169, 100), (1920, 8503), (13, 9000)]
    rnd = [(rng.randint(1, 9000), rng.randint(1, 9000)) for _ in range(n - len(fixed))]
    return fixed + rnd


SIZES = _sizes(240)


def test_vllm_image_tokens_match_the_open_processor_on_240_sizes():
    est = Settings(target="vllm").estimator
    for w, h in SIZES:
        assert est.image(w, h) == reference_navit_tokens(w, h, 16384) + IMAGE_PROMPT, (w, h)


def test_vllm_video_chunks_match_the_open_processor():
    est = Settings(target="vllm").estimator
    for w, h in SIZES[:120]:
        for n in (1, 3, 4, 5, 17):
            chunks = math.ceil(n / 4)
            want = chunks * (reference_navit_tokens(w, h, 4096) + CHUNK_PROMPT)
            assert est.video(n, w, h) == want, (w, h, n)


@pytest.mark.parametrize("seconds,fps", [(1.5, 10), (60, 1), (60, 30), (10, 2), (3, 0.5)])
def test_vllm_samples_a_video_file_as_the_processor_does(seconds, fps):
    """The server samples at min(2, the video's fps), not at the part's fps."""
    est = Settings(target="vllm", fps=5).estimator
    want = reference_sampled_frames(round(seconds * fps), fps)
    assert est.file_frames(seconds, 5.0, 2000, fps) == want


def test_hosted_targets_count_the_media_prompt_too():
    """The hosted APIs serve the same models with the same chat template."""
    for name in ("dashscope", "moonshot"):
        est = Settings(target=name).estimator
        for w, h in SIZES[:50]:
            assert est.image(w, h) == reference_navit_tokens(w, h, 16384) + IMAGE_PROMPT
        assert est.video(6, 640, 360) == 2 * (reference_navit_tokens(640, 360, 4096)
                                              + CHUNK_PROMPT)
        assert est.to_json(1)["counts"] == ["vision", "media_prompt"]


def test_targets_are_objects_asked_through_settings():
    s = Settings(target="vllm")
    assert "vllm" in NAMES and s.target is get_target("vllm")
    assert s.target == "vllm" and str(s.target) == "vllm"
    assert s.model == "moonshotai/Kimi-K2.5"  # the model vLLM serves by default
    assert s.to_json()["target"] == "vllm"
    again = pickle.loads(pickle.dumps(s))
    assert again.target is s.target and again == s
    # a new target without a model named brings its own; a model chosen by hand stays
    assert make_settings(Settings(), target="vllm").model == "moonshotai/Kimi-K2.5"
    assert make_settings(Settings(model="kimi-k2.6"), target="vllm").model == "kimi-k2.6"
    assert make_settings(s, target="moonshot").model == "kimi-k2.5"


@pytest.mark.parametrize("kwargs,why", [
    ({"dialect": "dashscope"}, "dialect"),
    ({"video_mode": "frames"}, "files only"),
    ({"animation": "frames"}, "files only"),
    ({"transport": "path"}, "--allowed-local-media-path"),
])
def test_vllm_refuses_what_its_server_cannot_take(kwargs, why):
    with pytest.raises(SettingsError, match=why):
        Settings(target="vllm", **kwargs)


def _photo(path: Path, size=(1600, 900)) -> Path:
    Image.new("RGB", size, (30, 120, 200)).save(path, quality=90)
    return path


def test_vllm_prepare_sends_images_with_its_token_count(tmp_path):
    src = _photo(tmp_path / "p.jpg", (5000, 3000))
    p = mediaprep.prepare(src, target="vllm")
    assert p.ok and p.part["type"] == "image_url"
    assert p.part["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert p.tokens == {"estimate": reference_navit_tokens(5000, 3000, 16384) + IMAGE_PROMPT,
                        "model": "moonshotai/Kimi-K2.5", "counts": ["vision", "media_prompt"]}
    # no 8K box, no 10 MB data-URL cap: the photo passes as it is
    assert p.fixes == ["passed through unchanged"]


def test_vllm_sends_a_short_clip_as_a_file_where_dashscope_sends_frames(tmp_path):
    clip = make_video(tmp_path / "short.mp4", n_frames=15, fps=10)  # 1.5 s
    ds = mediaprep.prepare(clip, target="dashscope")
    assert ds.ok and isinstance(ds.part.get("video"), list)  # DashScope: at least 2 s a file
    vl = mediaprep.prepare(clip, target="vllm")
    assert vl.ok and vl.part["type"] == "video_url"
    frames = reference_sampled_frames(15, 10)  # 3 frames: one chunk
    assert vl.tokens["estimate"] == reference_navit_tokens(64, 48, 4096) + CHUNK_PROMPT
    assert frames == 3


def test_vllm_refuses_a_frame_list_with_a_finding(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        _photo(folder / f"f{i}.jpg", (64, 48))
    report = mediaprep.check(folder, target="vllm")
    assert not report.ok
    assert [f.code for f in report.findings if f.severity == "error"] == [
        "transport.unsupported"]
    assert mediaprep.check(folder, target="dashscope").ok


def test_vllm_request_body_cap_is_a_setting(tmp_path):
    src = tmp_path / "noise.png"
    import numpy as np

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (600, 600, 3), dtype=np.uint8)).save(src)
    assert mediaprep.check(src, target="vllm").ok  # off by default
    capped = mediaprep.check(src, target="vllm", limits={"request.max_body_bytes": 200_000})
    assert [f.code for f in capped.findings] == ["request.too_large"]
    prepared = mediaprep.prepare(src, target="vllm", limits={"request.max_body_bytes": 200_000})
    assert prepared.ok and len(prepared.part["image_url"]["url"]) < 200_000


def test_vllm_path_transport_only_under_the_servers_media_folder(tmp_path):
    src = _photo(tmp_path / "p.jpg")
    media = tmp_path / "media"
    ok = mediaprep.prepare(src, target="vllm", transport="path",
                           allowed_local_media_path=str(media), out_dir=media / "out")
    assert ok.ok and ok.part["image_url"]["url"].startswith((media / "out").as_uri())
    with pytest.raises(SettingsError, match="not under --allowed-local-media-path"):
        mediaprep.prepare(src, target="vllm", transport="path",
                          allowed_local_media_path=str(media), out_dir=tmp_path / "elsewhere")


def test_cli_knows_the_vllm_target(tmp_path):
    run = CliRunner().invoke(main, ["limits", "--target", "vllm", "--json"])
    assert run.exit_code == 0, run.output
    table = json.loads(run.output)
    assert table["target"] == "vllm"
    assert table["limits"]["request.max_media_urls"]["value"] == 999
    assert "limit-mm-per-prompt" in table["limits"]["request.max_media_urls"]["source"]["title"]
    assert table["limits"]["tokens.context"]["value"] == {"moonshotai/Kimi-K2.5": 262144}
    src = _photo(tmp_path / "p.jpg")
    run = CliRunner().invoke(main, ["prep", str(src), "-o", str(tmp_path / "out"),
                                    "--target", "vllm", "-j", "0", "-q"])
    assert run.exit_code == 0, run.output
    line = json.loads((tmp_path / "out" / "parts.jsonl").read_text().splitlines()[0])
    assert line["part"]["type"] == "image_url"
    assert line["tokens"]["model"] == "moonshotai/Kimi-K2.5"
    run = CliRunner().invoke(main, ["check", str(src), "--target", "vllm",
                                    "--transport", "path"])
    assert run.exit_code == 2 and "--allowed-local-media-path" in run.output
