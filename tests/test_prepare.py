"""prepare(): images and videos made sendable, parts in both dialects, bodies, the prep CLI."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import mediaprep
from mediaprep.api import prepare
from mediaprep.cli import main
from mediaprep.emit import check_request, request_body, user_message
from tests.conftest import REALMEDIA

REAL = REALMEDIA


def _decode_data_url(url: str) -> tuple[str, bytes]:
    head, payload = url.split(",", 1)
    assert head.startswith("data:") and head.endswith(";base64")
    return head[5:-7], base64.b64decode(payload)


def _image_url(part: dict) -> str:
    return part["image_url"]["url"] if "image_url" in part else part["image"]


def test_compliant_jpeg_passes_through_byte_identical(generated):
    src = generated["jpeg"]
    p = prepare(src)
    assert p.ok, p.findings
    mime, data = _decode_data_url(p.part["image_url"]["url"])
    assert mime == "image/jpeg"
    assert data == src.read_bytes()
    assert p.fixes == ["passed through unchanged"]


def test_exif_orientation_applied_and_tag_gone(generated):
    p = prepare(generated["jpeg_exif6"])
    assert p.ok
    _, data = _decode_data_url(_image_url(p.part))
    im = Image.open(io.BytesIO(data))
    assert im.size == (48, 64)  # stored 64x48, orientation 6 turns it upright
    assert im.getexif().get(0x0112) in (None, 1)
    assert any("orientation" in f for f in p.fixes)


def test_small_image_padded_to_pass(generated):
    p = prepare(generated["png_10x400"])
    assert p.ok
    _, data = _decode_data_url(_image_url(p.part))
    w, h = Image.open(io.BytesIO(data)).size
    assert min(w, h) > 10 and max(w, h) == 400
    assert any(f.code == "image.too_small" for f in p.findings)  # the input's finding is kept


def test_aspect_ratio_not_fixable_unless_asked(generated):
    p = prepare(generated["png_2211x11"])
    assert not p.ok and p.part is None
    assert "image.aspect_ratio" in [f.code for f in p.findings]
    p2 = prepare(generated["png_2211x11"], pad_aspect=True)
    assert p2.ok
    _, data = _decode_data_url(_image_url(p2.part))
    w, h = Image.open(io.BytesIO(data)).size
    assert max(w, h) / min(w, h) <= 200


@pytest.mark.parametrize("name", ["avif", "gif_animated", "heic"])
def test_formats_the_target_does_not_take_are_converted(generated, name):
    target = "moonshot" if name == "heic" else "dashscope"
    p = prepare(generated[name], target=target)
    assert p.ok, p.findings
    mime, data = _decode_data_url(_image_url(p.part))
    assert mime in ("image/jpeg", "image/png")
    assert Image.open(io.BytesIO(data)).format in ("JPEG", "PNG")


def test_webp_past_4k_becomes_jpeg_or_png(generated):
    p = prepare(generated["webp_3841x2160"])
    assert p.ok
    mime, _ = _decode_data_url(_image_url(p.part))
    assert mime in ("image/jpeg", "image/png")


def test_byte_budget_is_met_for_a_noisy_image(tmp_path):
    import numpy as np

    rng = np.random.default_rng(1)
    arr = rng.integers(0, 255, (1500, 2000, 3), dtype=np.uint8)
    src = tmp_path / "noise.png"
    Image.fromarray(arr).save(src)  # ~9 MB of incompressible PNG
    limit = 1_000_000
    p = prepare(src, limits={"image.max_data_url_bytes": limit})
    assert p.ok, p.findings
    url = p.part["image_url"]["url"]
    assert len(url) <= limit
    assert p.stats["encodes"] <= 6


def test_inputs_as_bytes_file_object_and_pil(generated):
    raw = generated["jpeg_exif6"].read_bytes()
    for src in (raw, io.BytesIO(raw), Image.open(io.BytesIO(raw))):
        p = prepare(src)
        assert p.ok, (type(src), p.findings)
        _, data = _decode_data_url(_image_url(p.part))
        assert Image.open(io.BytesIO(data)).size == (48, 64)


def test_text_only_model_refused(generated):
    p = prepare(generated["jpeg"], model="kimi-k2-thinking")
    assert not p.ok
    assert "model.no_vision" in [f.code for f in p.findings]


def test_unreadable_input_gives_finding_not_exception(generated):
    for name in ("empty", "jpeg_truncated", "random_jpg", "jpeg_bomb"):
        p = prepare(generated[name])
        assert not p.ok and p.part is None
        assert p.findings and all(f.code for f in p.findings)


def test_native_dialect_and_path_transport(generated, tmp_path):
    p = prepare(generated["jpeg_exif6"], dialect="dashscope", transport="path", out_dir=tmp_path)
    assert p.ok
    uri = p.part["image"]
    assert uri.startswith("file:///")
    assert Path(uri[7:]).is_file() and Path(uri[7:]).parent == tmp_path.resolve()


def test_url_transport_uses_prefix(generated, tmp_path):
    p = prepare(generated["jpeg"], transport="url", url_prefix="https://cdn.example/x",
                out_dir=tmp_path)
    assert p.ok
    assert p.part["image_url"]["url"] == "https://cdn.example/x/plain.jpg"


def test_body_builders_both_dialects(generated):
    img = prepare(generated["jpeg"])
    body = request_body([img, "what is this?"], mediaprep.Settings(model="kimi-k2.5"))
    assert body["model"] == "kimi-k2.5"
    content = body["messages"][0]["content"]
    assert content[0]["type"] == "image_url" and content[1] == {"type": "text",
                                                                 "text": "what is this?"}
    s = mediaprep.Settings(dialect="dashscope")
    native = prepare(generated["jpeg"], settings=s)
    nb = request_body([native, "hi"], s, result_format="message")
    assert nb["input"]["messages"][0]["content"] == [{"image": native.part["image"]},
                                                    {"text": "hi"}]
    assert nb["parameters"] == {"result_format": "message"}
    assert check_request(nb, s) == []


def test_request_level_data_url_count():
    s = mediaprep.Settings()
    parts = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}] * 251
    body = request_body([user_message(parts)["content"][0]] * 251, s)
    assert [f.code for f in check_request(body, s)] == ["request.too_many_data_urls"]


def test_video_compliant_passes_through(generated, tmp_path):
    p = prepare(generated["video_2s"], out_dir=tmp_path)
    assert p.ok, p.findings
    assert p.part["type"] == "video_url" and p.part["fps"] == 2.0
    assert p.outputs[0].read_bytes() == generated["video_2s"].read_bytes()
    assert p.outputs[0].stat().st_mode & 0o044  # an ordinary file, not mkstemp's 0600


def test_video_container_not_taken_is_remuxed(generated, tmp_path, ordinary_mode):
    p = prepare(generated["video_ts"], out_dir=tmp_path)
    assert p.ok, p.findings
    assert p.outputs[0].suffix == ".mp4"
    assert p.outputs[0].stat().st_mode & 0o777 == ordinary_mode  # not mkstemp's 0600
    assert mediaprep.probe(p.outputs[0]).format == "mp4"


def test_short_clip_goes_as_frames_with_raised_fps(generated, tmp_path):
    p = prepare(generated["video_1_9s"], out_dir=tmp_path)
    assert p.ok, p.findings
    assert p.part["type"] == "video"
    assert len(p.part["video"]) >= 4
    assert p.fps == pytest.approx(len(p.timestamps) / 1.9, rel=0.05) or p.fps == 2.0
    manifest = json.loads((tmp_path / "video_1_9s" / "frames.json").read_text())
    assert [f["timestamp"] for f in manifest["frames"]] == p.timestamps


def test_video_frames_mode_native_dialect_sets_fps(generated, tmp_path):
    p = prepare(generated["video_2s"], video_mode="frames", dialect="dashscope", fps=5,
                out_dir=tmp_path)
    assert p.ok
    assert p.part["fps"] == 5.0 and len(p.part["video"]) == 10
    p2 = prepare(generated["video_2s"], video_mode="file", dialect="dashscope", max_frames=100,
                 out_dir=tmp_path / "f")
    assert p2.part["max_frames"] == 100 and p2.part["fps"] == 2.0


def test_max_frames_caps_and_reports_real_fps(generated, tmp_path):
    p = prepare(generated["video_2s"], video_mode="frames", fps=10, max_frames=5,
                out_dir=tmp_path)
    assert p.ok
    assert len(p.part["video"]) == 5
    assert p.fps == pytest.approx(5 / 2.0)


def test_frames_folder_as_image_list(generated):
    p = prepare(generated["frames_4"])
    assert p.ok, p.findings
    assert p.kind == "frames" and len(p.part["video"]) == 4
    bad = prepare(generated["frames_3"])
    assert not bad.ok and "frames.too_few" in [f.code for f in bad.findings]


def test_audio_only_refused(generated):
    p = prepare(generated["audio_only"])
    assert not p.ok and "video.no_video_stream" in [f.code for f in p.findings]


def test_prep_cli_writes_outputs_and_parts(generated, tmp_path):
    out = tmp_path / "out"
    args = ["prep", str(generated["jpeg_exif6"]), str(generated["png_2211x11"]),
            str(generated["video_ts"]), "-o", str(out), "-q"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1, res.output  # the 201:1 image cannot be fixed without --pad-aspect
    lines = [json.loads(x) for x in (out / "parts.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    for x in lines:
        assert set(x) >= {"path", "ok", "kind", "part", "outputs", "findings"}
    ok = [x for x in lines if x["ok"]]
    assert len(ok) == 2
    for x in ok:
        for rel in x["outputs"]:
            assert (out / rel).is_file()
    failed = [x for x in lines if not x["ok"]][0]
    assert failed["part"] is None and failed["outputs"] == []
    # inputs are untouched and nothing half-written is left
    assert not list(out.rglob("*.part*"))


def test_prep_cli_refuses_output_inside_inputs(generated, tmp_path):
    res = CliRunner().invoke(main, ["prep", str(tmp_path), "-o", str(tmp_path / "o")])
    assert res.exit_code in (0, 2)
    res = CliRunner().invoke(main, ["prep", str(generated["jpeg"]), "-o",
                                    str(generated["jpeg"].parent)])
    assert res.exit_code == 2


def test_frames_cli(generated, tmp_path):
    res = CliRunner().invoke(main, ["frames", str(generated["video_2s"]), "-o", str(tmp_path),
                                    "--fps", "4"])
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "frames.json").read_text())
    assert m["fps"] == 4.0 and m["requested_fps"] == 4.0 and len(m["frames"]) == 8
    assert all((tmp_path / f["file"]).is_file() for f in m["frames"])
    bad = CliRunner().invoke(main, ["frames", str(generated["video_2s"]), "-o",
                                    str(tmp_path / "b"), "--fps", "10.1"])
    assert bad.exit_code == 2  # a usage error (issue 14)


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/realmedia is absent")
@pytest.mark.parametrize("name", ["pil_hopper_orientation_6.jpg", "pil_pil_sample_cmyk.jpg",
                                  "heif_pug.heic", "pil_exif.avif", "pil_iss634.gif",
                                  "png_rgb-alpha-16.png", "pil_p_trns_single.png"])
def test_real_images_prepare_and_recheck_clean(name):
    p = prepare(REAL / "images" / name)
    assert p.ok, p.findings
    recheck = mediaprep.check(p.data)
    assert recheck.ok, recheck.findings


def test_short_clip_fps_raise_is_reported_as_a_finding(generated, tmp_path):
    p = prepare(generated["video_1_9s"], video_mode="frames", fps=1, out_dir=tmp_path)
    assert p.ok
    assert len(p.part["video"]) == 4
    raised = [f for f in p.findings if f.code == "param.fps" and f.severity == "info"]
    assert raised and raised[0].actual == pytest.approx(4 / 1.9, rel=1e-3)


def test_over_an_hour_refused_as_file_and_as_frames_below_the_fps_range(generated, tmp_path):
    as_file = prepare(generated["video_3601s"], video_mode="file", out_dir=tmp_path / "f")
    assert not as_file.ok and "video.too_long" in [f.code for f in as_file.findings]
    # base64 allows 250 data URLs per request: 250 frames over 3601 s would be 0.069 fps,
    # below the table's 0.1 (issue 22 item 16): refused, saying what would fit
    auto = prepare(generated["video_3601s"], out_dir=tmp_path / "a", frame_max_side=64)
    assert not auto.ok and auto.part is None
    [sparse] = [f for f in auto.findings if f.code == "param.fps"]
    assert "2,500 s or less" in sparse.message
    # by URL, with a server that takes 2,000 media items: 2,000 frames (max_frames) at 0.55 fps
    as_url = prepare(generated["video_3601s"], video_mode="frames", transport="url",
                     url_prefix="https://x.example/m", out_dir=tmp_path / "u", frame_max_side=64,
                     limits={"request.max_media_urls": 2000})
    assert as_url.ok and len(as_url.part["video"]) == 2000
    assert as_url.fps == pytest.approx(2000 / 3601, rel=1e-3)
    ts = as_url.timestamps
    assert ts == sorted(ts) and ts[-1] < 3601


def test_library_transcode_without_out_dir_keeps_result_in_memory(generated):
    # an absolute input name must not nest folders in the temporary work area
    p = prepare(generated["video_audio"].resolve(), video_mode="file",
                limits={"video.max_data_url_bytes": 20_000})
    assert p.ok, p.findings
    mime, data = _decode_data_url(p.part["video_url"]["url"])
    assert mime == "video/mp4" and len(p.part["video_url"]["url"]) < 20_000
    assert p.outputs == []
    assert mediaprep.probe(data).has_audio is False


def test_images_made_in_memory_are_encoded(tmp_path):
    """Image.new / Image.fromarray (a chart, a screenshot, a video frame in numpy) have no
    file format: prep encodes them instead of refusing an "unknown" format."""
    import numpy as np

    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 255, (300, 400, 3), np.uint8))
    p = prepare(rgb)
    assert p.ok, p.findings
    assert p.part["image_url"]["url"].startswith("data:image/jpeg;base64,")
    alpha = prepare(Image.new("RGBA", (64, 64), (255, 0, 0, 128)))
    assert alpha.ok and alpha.part["image_url"]["url"].startswith("data:image/png;base64,")
    tiny = prepare(Image.new("RGB", (5, 5)), out_dir=tmp_path)
    assert tiny.ok and any("padded" in f for f in tiny.fixes)
    with Image.open(tiny.outputs[0]) as im:
        assert min(im.size) > 10
    report = mediaprep.check(rgb)  # as it is, it cannot be sent: it needs encoding (fixable)
    [f] = [f for f in report.findings if f.code == "file.unsupported_format"]
    assert f.fixable and "in memory" in f.message
    frames = prepare([Image.fromarray(np.full((240, 320, 3), i * 40, np.uint8))
                      for i in range(5)])
    assert frames.ok and len(frames.part["video"]) == 5
