"""Issue 24: the colours the model sees are the colours the user sees. check and prep through
the library and the CLI, against reference renders (LittleCMS for ICC, FFmpeg's zscale +
tonemap=hable for HDR), with the mean CIEDE2000 each case must stay under."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageCms

import mediaprep
from mediaprep.backends.colour import mean_delta_e, saturation, srgb_profile
from mediaprep.cli import main
from tests.conftest import REALMEDIA, REALMEDIA_PHONES
from tests.fixtures.colour import (
    ICC_CASES,
    colour_chart,
    ffmpeg_tone_mapped,
    have_ffmpeg,
    hdr_chart,
    icc_profile,
    write_hdr_avif,
)

ICC_MAX_DELTA_E = 3.0  # what prep sends against LittleCMS's own conversion
TONE_MAP_MAX_DELTA_E = 6.0  # against FFmpeg's zscale + tonemap=hable


def _tagged_jpeg(path: Path, case: str, *, pad_to: int = 0) -> Path:
    prim, curve, name = ICC_CASES[case]
    Image.fromarray(colour_chart()).save(path, quality=95,
                                         icc_profile=icc_profile(prim, curve, name,
                                                                 pad_to=pad_to))
    return path


def _lcms_reference(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        src = ImageCms.ImageCmsProfile(io.BytesIO(im.info["icc_profile"]))
        return np.asarray(ImageCms.profileToProfile(im, src, srgb_profile(), outputMode="RGB"))


def _sent(prepared: mediaprep.Prepared) -> Image.Image:
    assert prepared.ok, prepared.findings
    return Image.open(io.BytesIO(prepared.data))


WIDE = ["samsung_p3", "apple_p3", "adobe_rgb", "prophoto", "rec2020"]


@pytest.mark.parametrize("case", WIDE)
def test_a_wide_gamut_jpeg_is_flagged_and_converted_like_littlecms(tmp_path, case):
    path = _tagged_jpeg(tmp_path / f"{case}.jpg", case)
    report = mediaprep.check(path)
    (f,) = [f for f in report.findings if f.code == "image.colour_profile"]
    assert f.severity == "warning" and f.fixable and path.name in f.message
    prepared = mediaprep.prepare(path)
    sent = _sent(prepared)
    assert "icc_profile" not in sent.info  # untagged sRGB
    ref = _lcms_reference(path)
    ignored = np.asarray(Image.open(path).convert("RGB"))  # what the processor would see
    assert mean_delta_e(np.asarray(sent.convert("RGB")), ref) <= ICC_MAX_DELTA_E
    assert saturation(np.asarray(sent)) > saturation(ignored) + 10
    (change,) = [c for c in prepared.changes if c.kind == "re-encoded"]
    assert "colours converted from" in change.why and ICC_CASES[case][2] in change.why


def test_samsung_and_apple_p3_come_out_the_same(tmp_path):
    """The name "DCI-P3 D65 Gamut with sRGB Transfer" no longer passes as sRGB."""
    a = _sent(mediaprep.prepare(_tagged_jpeg(tmp_path / "s.jpg", "samsung_p3")))
    b = _sent(mediaprep.prepare(_tagged_jpeg(tmp_path / "a.jpg", "apple_p3")))
    assert mean_delta_e(np.asarray(a), np.asarray(b)) < 0.5


def test_srgb_under_another_name_passes_as_it_is(tmp_path):
    path = _tagged_jpeg(tmp_path / "cam.jpg", "srgb_named_oddly")
    assert "image.colour_profile" not in mediaprep.check(path).codes()
    prepared = mediaprep.prepare(path)
    assert prepared.ok and prepared.data == path.read_bytes()


def test_a_large_embedded_profile_is_dropped_from_the_output(tmp_path):
    path = _tagged_jpeg(tmp_path / "big.jpg", "apple_p3", pad_to=565_000)
    prepared = mediaprep.prepare(path)
    assert len(prepared.data) < 20_000 < path.stat().st_size
    assert "icc_profile" not in _sent(prepared).info


def test_a_cmyk_tiff_becomes_srgb(tmp_path):
    rgb = Image.fromarray(colour_chart())
    cmyk = rgb.convert("CMYK")
    path = tmp_path / "print.tif"
    cmyk.save(path)
    assert "image.colour_profile" in mediaprep.check(path).codes()
    sent = _sent(mediaprep.prepare(path))
    assert sent.mode == "RGB"
    assert mean_delta_e(np.asarray(sent), np.asarray(cmyk.convert("RGB"))) <= ICC_MAX_DELTA_E


def test_a_16_bit_grey_tiff_is_scaled_not_clipped_to_white(tmp_path):
    ramp = np.linspace(0, 65535, 100 * 200).reshape(100, 200).astype(np.uint16)
    path = tmp_path / "deep.tif"
    Image.fromarray(ramp).save(path)
    assert np.asarray(Image.open(path).convert("RGB")).mean() > 250  # the processor's view
    report = mediaprep.check(path)
    assert "image.high_bit_depth" in report.codes()
    sent = _sent(mediaprep.prepare(path))
    assert abs(np.asarray(sent.convert("L"), np.float64).mean() - 127.5) < 2


def test_a_float_tiff_is_scaled_not_left_black(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.linspace(0, 1, 100 * 200).reshape(100, 200).astype(np.float32),
                    "F").save(path)
    assert "image.high_bit_depth" in mediaprep.check(path).codes()
    sent = _sent(mediaprep.prepare(path))
    assert abs(np.asarray(sent.convert("L"), np.float64).mean() - 127.5) < 2


# ------------------------------------------------------------------------------- transparency


def _sticker(path: Path, fmt: str = "PNG") -> Path:
    """A yellow square on transparency whose hidden colour is black (as WhatsApp's are)."""
    a = np.zeros((200, 200, 4), np.uint8)
    a[50:150, 50:150] = (255, 200, 0, 255)
    Image.fromarray(a, "RGBA").save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return path


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_a_sticker_is_flattened_onto_white_by_default(tmp_path, fmt):
    path = _sticker(tmp_path / f"sticker.{fmt.lower()}", fmt)
    assert np.asarray(Image.open(path).convert("RGB"))[0, 0].tolist() == [0, 0, 0]
    report = mediaprep.check(path)
    assert "image.transparency" in report.codes()
    prepared = mediaprep.prepare(path)
    sent = _sent(prepared)
    assert sent.mode == "RGB"
    assert np.asarray(sent)[5, 5].tolist() == [255, 255, 255]
    assert np.abs(np.asarray(sent, int)[100, 100] - (255, 200, 0)).max() <= 6
    assert [c.kind for c in prepared.changes].count("flattened") == 1


def test_background_chooses_the_colour(tmp_path):
    path = _sticker(tmp_path / "sticker.png")
    sent = _sent(mediaprep.prepare(path, background="#204080"))
    assert np.asarray(sent)[5, 5].tolist() == [32, 64, 128]


def test_an_opaque_alpha_channel_passes_as_it_is(tmp_path):
    path = tmp_path / "opaque.png"
    Image.fromarray(colour_chart()).convert("RGBA").save(path)
    prepared = mediaprep.prepare(path)
    assert prepared.ok and prepared.data == path.read_bytes()


def test_the_cli_takes_background_and_refuses_a_non_colour(tmp_path):
    path = _sticker(tmp_path / "sticker.png")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["prep", str(path), "-o", str(out), "--background", "black",
                                    "--no-cache", "-q"])
    assert res.exit_code == 0, res.output
    part = json.loads((out / "parts.jsonl").read_text().splitlines()[0])
    assert part["ok"]
    sent = Image.open(next(p for p in out.rglob("sticker.png")))
    assert np.asarray(sent.convert("RGB"))[5, 5].tolist() == [0, 0, 0]
    res = CliRunner().invoke(main, ["check", str(path), "--background", "nocolour"])
    assert res.exit_code == 2 and "nocolour" in res.output


def test_the_config_file_takes_background(tmp_path, monkeypatch):
    path = _sticker(tmp_path / "sticker.png")
    (tmp_path / "mediaprep.toml").write_text('background = "red"\n')
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["check", str(path), "--format", "json"])
    assert "flattens them onto red" in res.output


# ------------------------------------------------------------------------------------- HDR

needs_ffmpeg = pytest.mark.skipif(
    not have_ffmpeg(filters=("zscale", "tonemap"), encoders=("libaom-av1",)),
    reason="the FFmpeg CLI with zscale, tonemap and libaom-av1 makes the HDR cases")


@needs_ffmpeg
@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_an_hdr_avif_is_tone_mapped_like_ffmpeg(tmp_path, transfer):
    path = write_hdr_avif(tmp_path / f"{transfer}.avif", transfer)
    report = mediaprep.check(path)
    (f,) = [f for f in report.findings if f.code == "image.hdr"]
    assert f.severity == "info" and f.fixable
    sent = np.asarray(_sent(mediaprep.prepare(path)).convert("RGB"))
    ref = ffmpeg_tone_mapped(path).reshape(sent.shape)
    naive = np.asarray(Image.open(path).convert("RGB"))
    assert mean_delta_e(sent, ref) <= TONE_MAP_MAX_DELTA_E
    assert saturation(sent) > saturation(naive) + 30  # not flat and grey


def _hdr_heic(path: Path) -> Path:
    import pillow_heif

    chart = hdr_chart("pq")
    h = pillow_heif.from_bytes(mode="RGB;16", size=(chart.shape[1], chart.shape[0]),
                               data=chart.tobytes())
    h.info["nclx_profile"] = {"color_primaries": 9, "transfer_characteristics": 16,
                              "matrix_coefficients": 9, "full_range_flag": 1}
    h.save(path, quality=-1)
    return path


def test_hdr_keep_passes_an_hdr_heic_as_it_is(tmp_path):
    path = _hdr_heic(tmp_path / "pq.heic")
    assert "image.hdr" in mediaprep.check(path).codes()
    converted = mediaprep.prepare(path)
    assert converted.ok and converted.mime == "image/jpeg"
    assert saturation(np.asarray(_sent(converted))) > 80
    assert "image.hdr" not in mediaprep.check(path, hdr="keep").codes()
    kept = mediaprep.prepare(path, hdr="keep")
    assert kept.ok and kept.data == path.read_bytes()


def test_the_report_thumbnail_of_an_hdr_input_is_tone_mapped(tmp_path):
    from mediaprep.report.html import image_thumb

    path = _hdr_heic(tmp_path / "pq.heic")
    data, _w, _h = image_thumb(path)
    thumb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    naive = np.asarray(Image.open(path).convert("RGB"))
    assert saturation(thumb) > saturation(naive) + 30


# ------------------------------------------------------------------------------ real files


def _phone(name: str) -> Path:
    path = REALMEDIA_PHONES / "images" / name
    if not path.is_file():
        pytest.skip(f"{path} absent")
    return path


def test_a_real_p3_photo_is_converted_like_littlecms():
    path = _phone("pp_Iceland-P3.jpg")
    assert "image.colour_profile" in mediaprep.check(path).codes()
    sent = np.asarray(_sent(mediaprep.prepare(path)).convert("RGB"))
    assert mean_delta_e(sent, _lcms_reference(path)) <= ICC_MAX_DELTA_E


def test_a_real_cmyk_jpeg_becomes_rgb():
    path = _phone("tm_cmyk-sample-no-icc.jpg")
    assert "image.colour_profile" in mediaprep.check(path).codes()
    assert _sent(mediaprep.prepare(path)).mode == "RGB"


def test_a_real_16_bit_png_keeps_its_picture():
    path = REALMEDIA / "images" / "heif_L_16__29x100.png"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    with Image.open(path) as im:
        expected = np.asarray(im, np.float64) * 255 / 65535
    sent = np.asarray(_sent(mediaprep.prepare(path)).convert("L"), np.float64)
    assert np.abs(sent - expected).mean() < 1.0


@needs_ffmpeg
def test_hdr_keep_still_tone_maps_a_file_that_must_be_converted(tmp_path):
    """An AVIF is not a format DashScope takes: converted to JPEG it cannot stay HDR, so its
    pixels are tone-mapped even under --hdr keep."""
    path = write_hdr_avif(tmp_path / "pq.avif", "pq")
    sent = np.asarray(_sent(mediaprep.prepare(path, hdr="keep")).convert("RGB"))
    ref = ffmpeg_tone_mapped(path).reshape(sent.shape)
    assert mean_delta_e(sent, ref) <= TONE_MAP_MAX_DELTA_E


def test_the_change_says_deep_samples_were_scaled(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((20, 20), 40000, np.uint16)).save(path)
    prepared = mediaprep.prepare(path)
    (change,) = [c for c in prepared.changes if c.kind == "re-encoded"]
    assert "scaled to 8 bits" in change.why
