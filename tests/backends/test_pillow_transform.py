"""Pixel transforms: orientation, modes, colour, resize, padding, draft decoding.

All inputs are generated in memory or tmp_path; the real-media section skips when
../shared/realmedia (or $MEDIAPREP_REALMEDIA) is absent.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from mediaprep.backends.pillow import (
    apply_orientation,
    fit_and_pad_to_aspect,
    load_image,
    normalise_mode,
    orientation_of,
    pad_to_aspect,
    pad_to_min_side,
    resize_within,
)
from tests.conftest import REALMEDIA

# ------------------------------------------------------------------------ helpers


def _marked(w: int = 60, h: int = 40) -> Image.Image:
    """Asymmetric upright image: red block top-left, blue block bottom-right, grey elsewhere."""
    a = np.full((h, w, 3), 128, np.uint8)
    a[: h // 3, : w // 3] = (255, 0, 0)
    a[-h // 3 :, -w // 3 :] = (0, 0, 255)
    return Image.fromarray(a, "RGB")


# What a camera stores for an upright scene under each orientation value: the inverse of what
# the viewer applies. Viewer transforms per EXIF spec.
_VIEWER = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_INVERSE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def _corner_colours(img: Image.Image) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rgb = img.convert("RGB")
    w, h = rgb.size
    return rgb.getpixel((2, 2)), rgb.getpixel((w - 3, h - 3))  # type: ignore[return-value]


def _is_red(c: tuple[int, ...]) -> bool:
    return c[0] > 200 and c[1] < 60 and c[2] < 60


def _is_blue(c: tuple[int, ...]) -> bool:
    return c[2] > 200 and c[0] < 60 and c[1] < 60


# ---------------------------------------------------------------------- orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_all_eight(orientation: int, tmp_path: Path) -> None:
    upright = _marked()
    inv = _INVERSE[orientation]
    stored = upright.transpose(inv) if inv is not None else upright  # FLIP_LEFT_RIGHT == 0
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    stored.save(path, "JPEG", quality=95, exif=exif.tobytes())

    img = load_image(path)
    assert orientation_of(img) == orientation
    fixed, rotated = apply_orientation(img)
    assert rotated == (orientation != 1)
    assert fixed.size == upright.size
    tl, br = _corner_colours(fixed)
    assert _is_red(tl) and _is_blue(br), (orientation, tl, br)
    if orientation != 1:
        assert 0x0112 not in fixed.getexif()
        # and it survives a save/reload round trip without the tag
        buf = io.BytesIO()
        fixed.save(buf, "JPEG", exif=fixed.info.get("exif", b""))
        assert Image.open(io.BytesIO(buf.getvalue())).getexif().get(0x0112) is None


def test_orientation_inverse_table_matches_viewer() -> None:
    # Sanity of the test itself: applying the viewer transform to the stored image is upright.
    up = _marked()
    for o in range(2, 9):
        stored = up.transpose(_INVERSE[o])
        back = stored.transpose(_VIEWER[o])
        assert np.array_equal(np.asarray(back), np.asarray(up)), o


def test_xmp_orientation_removed() -> None:
    img = _marked()
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
        'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="3"/></rdf:RDF></x:xmpmeta>'
    )
    stored = img.transpose(Image.Transpose.ROTATE_180)
    buf = io.BytesIO()
    stored.save(buf, "PNG", pnginfo=_pnginfo_xmp(xmp))
    loaded = load_image(buf.getvalue())
    assert orientation_of(loaded) == 3
    fixed, rotated = apply_orientation(loaded)
    assert rotated
    tl, br = _corner_colours(fixed)
    assert _is_red(tl) and _is_blue(br)
    assert orientation_of(fixed) == 1
    assert 'tiff:Orientation="3"' not in str(fixed.info.get("xmp", ""))


def _pnginfo_xmp(xmp: str):  # type: ignore[no-untyped-def]
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    return info


def test_no_orientation_is_noop() -> None:
    img = _marked()
    out, rotated = apply_orientation(img)
    assert out is img and not rotated


# ---------------------------------------------------------------------- modes


def test_cmyk_to_rgb_via_jpeg_roundtrip() -> None:
    cmyk = Image.new("CMYK", (32, 32), (0, 0, 0, 0))  # white
    cmyk.paste((0, 255, 255, 0), (0, 0, 16, 32))  # red half
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=95)  # Pillow writes Adobe (inverted) CMYK
    img = load_image(buf.getvalue())
    assert img.mode == "CMYK"
    out, note = normalise_mode(img, "jpeg")
    assert out.mode == "RGB" and note
    left, right = out.getpixel((4, 16)), out.getpixel((28, 16))
    assert _is_red(left), left
    assert min(right) > 230, right  # white stays white: the Adobe inversion is handled


def test_cmyk_with_icc_profile_converted() -> None:
    # No CMYK ICC profile ships with Pillow; an RGB profile on CMYK data is a mismatch and is
    # dropped rather than applied.
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = Image.new("CMYK", (16, 16), (0, 0, 0, 0))
    img.info["icc_profile"] = srgb
    out, _ = normalise_mode(img, "png")
    assert out.mode == "RGB" and "icc_profile" not in out.info
    assert out.getpixel((1, 1)) == (255, 255, 255)


def test_rgb_icc_converted_to_srgb() -> None:
    # A non-sRGB RGB profile (LAB-ish via a different white point) must change pixels and drop
    # the profile; an sRGB profile is just dropped.
    srgb_bytes = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = _marked()
    img.info["icc_profile"] = srgb_bytes
    out, _ = normalise_mode(img, "jpeg")
    assert "icc_profile" not in out.info
    assert np.array_equal(np.asarray(out), np.asarray(img))


def test_palette_with_trns() -> None:
    p = Image.new("P", (20, 20), 0)
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    p.paste(1, (0, 0, 10, 20))
    p.info["transparency"] = 1  # index 1 (left half) transparent
    for fmt, mode in (("png", "RGBA"), ("webp", "RGBA"), ("jpeg", "RGB")):
        out, note = normalise_mode(p, fmt)
        assert out.mode == mode, fmt
        assert "transparency" not in out.info
        if mode == "RGBA":
            assert out.getpixel((2, 2))[3] == 0 and out.getpixel((15, 2))[3] == 255
        else:
            assert out.getpixel((2, 2)) == (255, 255, 255)  # transparent -> white
            assert out.getpixel((15, 2)) == (255, 0, 0)


def test_la_kept_for_png_flattened_for_jpeg_rgba_for_webp() -> None:
    la = Image.merge("LA", (Image.new("L", (10, 10), 0), Image.new("L", (10, 10), 0)))
    la.paste((0, 255), (5, 0, 10, 10))
    out, _ = normalise_mode(la, "png")
    assert out.mode == "LA"
    out, _ = normalise_mode(la, "jpeg")
    assert out.mode == "L" and out.getpixel((1, 1)) == 255 and out.getpixel((8, 1)) == 0
    out, _ = normalise_mode(la, "webp")
    assert out.mode == "RGBA"


def test_rgba_alpha_kept_png_webp_flattened_jpeg() -> None:
    rgba = Image.new("RGBA", (10, 10), (0, 0, 255, 0))
    rgba.paste((0, 0, 255, 128), (5, 0, 10, 10))
    for fmt in ("png", "webp"):
        out, _ = normalise_mode(rgba, fmt)
        assert out.mode == "RGBA" and out.getpixel((1, 1))[3] == 0
    out, note = normalise_mode(rgba, "jpeg")
    assert out.mode == "RGB" and out.getpixel((1, 1)) == (255, 255, 255)
    r, g, b = out.getpixel((8, 1))  # half-transparent blue over white
    assert 120 <= r <= 135 and 120 <= g <= 135 and b == 255
    assert note and "flattened" in note


def test_opaque_alpha_dropped() -> None:
    out, note = normalise_mode(Image.new("RGBA", (4, 4), (1, 2, 3, 255)), "png")
    assert out.mode == "RGB" and note


def test_i16_scaled_not_clipped() -> None:
    a = np.array([[0, 257, 32768, 65535]], dtype="<u2")
    img = Image.frombytes("I;16", (4, 1), a.tobytes())
    out, note = normalise_mode(img, "png")
    assert out.mode == "L" and note
    assert list(np.asarray(out)[0]) == [0, 1, 128, 255]


def test_i_mode_16bit_range_and_f() -> None:
    img = Image.fromarray(np.array([[0, 1000, 65535]], dtype=np.int32), "I")
    out, _ = normalise_mode(img, "jpeg")
    assert list(np.asarray(out)[0]) == [0, 4, 255]
    f = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    out, _ = normalise_mode(f, "png")
    assert out.mode == "L" and list(np.asarray(out)[0]) == [0, 128, 255]
    f2 = Image.fromarray(np.array([[-10.0, 0.0, 10.0]], dtype=np.float32), "F")
    out, _ = normalise_mode(f2, "png")
    assert list(np.asarray(out)[0]) == [0, 128, 255]


def test_i16_with_trns_becomes_alpha() -> None:
    a = np.array([[0, 1000, 65535]], dtype="<u2")
    img = Image.frombytes("I;16", (3, 1), a.tobytes())
    img.info["transparency"] = 1000
    out, _ = normalise_mode(img, "png")
    assert out.mode == "LA"
    assert [out.getpixel((x, 0))[1] for x in range(3)] == [255, 0, 255]


def test_one_bit() -> None:
    img = Image.new("1", (8, 8), 0)
    img.paste(1, (0, 0, 4, 8))
    for fmt, mode in (("jpeg", "L"), ("png", "L"), ("webp", "RGB")):
        out, _ = normalise_mode(img, fmt)
        assert out.mode == mode
        assert out.convert("L").getpixel((1, 1)) == 255 and out.convert("L").getpixel((6, 1)) == 0


def test_lab_and_unknown_format() -> None:
    lab = _marked().convert("LAB")
    out, _ = normalise_mode(lab, "jpeg")
    assert out.mode == "RGB"
    assert _is_red(out.getpixel((2, 2)))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        normalise_mode(lab, "gif")


def test_already_normal_is_noop() -> None:
    img = _marked()
    out, note = normalise_mode(img, "jpeg")
    assert out is img and note is None


# ---------------------------------------------------------------------- geometry


@pytest.mark.parametrize(
    "size,box,expect",
    [
        ((8000, 6000), (7680, 4320), (5760, 4320)),
        ((6000, 8000), (7680, 4320), (4320, 5760)),  # box is orientation-agnostic
        ((6000, 8000), (4320, 7680), (4320, 5760)),
        ((7680, 4320), (7680, 4320), (7680, 4320)),
        ((100, 50), (7680, 4320), (100, 50)),  # never upscale
        ((10000, 100), (7680, 4320), (7680, 76)),
    ],
)
def test_resize_box(size: tuple[int, int], box: tuple[int, int], expect: tuple[int, int]) -> None:
    img = Image.new("RGB", size)
    out, changed = resize_within(img, box=box)
    assert out.size == expect
    assert changed == (expect != size)


def test_resize_max_side_and_pixels() -> None:
    img = Image.new("RGB", (3000, 2000))
    out, _ = resize_within(img, max_side=1000)
    assert out.size == (1000, 666)
    out, _ = resize_within(img, max_pixels=1_000_000)
    assert out.width * out.height <= 1_000_000 and abs(out.width / out.height - 1.5) < 0.01
    out, changed = resize_within(img, max_pixels=10**9, max_side=5000)
    assert out is img and not changed


def test_resize_palette_filters() -> None:
    p = Image.new("P", (400, 400), 0)
    p.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    out, changed = resize_within(p, max_side=100)
    assert changed and out.mode == "RGB" and out.size == (100, 100)


def test_pad_to_min_side() -> None:
    img = Image.new("RGB", (10, 400), (0, 0, 0))
    out, changed = pad_to_min_side(img, 10)
    assert changed and out.size == (11, 400)
    assert out.getpixel((10, 200)) == (255, 255, 255) or out.getpixel((0, 200)) == (255, 255, 255)
    out, changed = pad_to_min_side(Image.new("RGB", (11, 11)), 10)
    assert not changed
    up, changed = pad_to_min_side(Image.new("L", (3, 7), 9), 10, upscale=True)
    assert changed and up.size == (12, 28) and up.getpixel((5, 5)) == 9
    rgba, _ = pad_to_min_side(Image.new("RGBA", (4, 4), (0, 0, 0, 255)), 10)
    assert rgba.size == (11, 11) and rgba.getpixel((0, 0))[3] == 0
    pal = Image.new("P", (5, 5), 0)
    out, _ = pad_to_min_side(pal, 10)
    assert out.size == (11, 11)


def test_pad_to_aspect() -> None:
    img = Image.new("RGB", (4000, 10), (0, 0, 0))
    out, changed = pad_to_aspect(img, 200)
    assert changed and out.size == (4000, 20)
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((0, 10)) == (0, 0, 0)
    tall, _ = pad_to_aspect(Image.new("RGB", (7, 3000)), 200)
    assert tall.size == (15, 3000) and 3000 / 15 <= 200
    same, changed = pad_to_aspect(Image.new("RGB", (200, 1)), 200)
    assert not changed and same.size == (200, 1)


def test_fit_and_pad_to_aspect_shrinks_before_padding() -> None:
    def fit(size: tuple[int, int]) -> tuple[int, int]:  # an 8192 px box, as the limits give
        k = min(1.0, 8192 / max(size))
        return max(1, int(size[0] * k)), max(1, int(size[1] * k))

    out, padded, shrunk = fit_and_pad_to_aspect(Image.new("L", (2, 200_000), 0), 200, fit)
    assert padded and shrunk
    assert max(out.size) <= 8192 and max(out.size) / min(out.size) <= 200  # not 202:1
    same, padded, shrunk = fit_and_pad_to_aspect(Image.new("L", (300, 2), 0), 200, fit)
    assert not padded and not shrunk and same.size == (300, 2)


def test_pad_aspect_of_a_hostile_strip_stays_in_bounded_memory(tmp_path: Path) -> None:
    """1 x 20,000,000 px (a 39 KB PNG, below the decompression-bomb limit) with --pad-aspect:
    padding first meant a 100,000 x 20,000,000 canvas and a worker killed for memory."""
    strip = tmp_path / "strip.png"
    Image.new("L", (1, 20_000_000), 128).save(strip)
    code = (
        "import resource, sys, mediaprep\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
        "p = mediaprep.prepare(sys.argv[1], pad_aspect=True)\n"
        "w, h = p.stats['size']\n"
        "print(p.ok, w, h)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(strip)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ok, w, h = proc.stdout.split()
    assert ok == "True" and max(int(w), int(h)) / min(int(w), int(h)) <= 200


# ---------------------------------------------------------------------- loading


def test_draft_decode_for_big_jpeg(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    big = Image.fromarray(rng.integers(0, 255, (1600, 2400, 3), dtype=np.uint8))
    path = tmp_path / "big.jpg"
    big.save(path, quality=80)
    box = (500, 300)
    img = load_image(path, target_box=box)
    fit = (450, 300)  # 2400x1600 in the 500x300 box: the short side binds (1600 -> 300)
    assert img.size[0] < 2400 and img.size[1] < 1600  # DCT-scaled: decoded smaller
    assert img.size[0] >= fit[0] and img.size[1] >= fit[1]  # but never below the target
    assert img.size == (600, 400)  # 1/4 scale
    out, _ = resize_within(img, box=box)
    assert out.size == fit
    # no target: full decode; target close to full size: no draft
    assert load_image(path).size == (2400, 1600)
    assert load_image(path, target_box=(2000, 1500)).size == (2400, 1600)


def test_load_sources_and_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    data = buf.getvalue()
    path = tmp_path / "a.gif"
    path.write_bytes(data)
    for src in (data, path, str(path), io.BytesIO(data), Image.open(io.BytesIO(data))):
        img = load_image(src)  # type: ignore[arg-type]
        assert img.convert("RGB").getpixel((5, 5)) == (255, 0, 0)
    lazy = load_image(data, first_frame=False)
    assert getattr(lazy, "n_frames", 1) == 3
    webp = io.BytesIO()
    frames[0].save(webp, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert load_image(webp.getvalue()).convert("RGB").getpixel((5, 5)) == (255, 0, 0)
    apng = io.BytesIO()
    frames[0].save(apng, "PNG", save_all=True, append_images=frames[1:])
    assert load_image(apng.getvalue()).convert("RGB").getpixel((5, 5)) == (255, 0, 0)


def test_heic_roundtrip() -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    buf = io.BytesIO()
    pillow_heif.from_pillow(_marked(64, 48)).save(buf, quality=90)
    img = load_image(buf.getvalue())
    assert img.size == (64, 48)
    tl, br = _corner_colours(img)
    assert tl[0] > 180 and br[2] > 180


# ---------------------------------------------------------------------- real media

REAL = REALMEDIA / "images"
real = pytest.mark.skipif(not REAL.is_dir(), reason="real media folder absent")


def _real(name: str) -> Path:
    p = REAL / name
    if not p.exists():
        pytest.skip(f"{name} missing")
    return p


@real
@pytest.mark.parametrize(
    "name,upright_size",
    [
        ("pil_hopper_orientation_2.jpg", (128, 128)),
        ("pil_hopper_orientation_6.jpg", (128, 128)),
        ("pil_hopper_orientation_8.jpg", (128, 128)),
        ("pil_hopper_orientation_6.webp", (128, 128)),
        ("pil_hopper_orientation_8.webp", (128, 128)),
        ("eor_Landscape_6.jpg", (1800, 1200)),
        ("eor_Portrait_8.jpg", (1200, 1800)),
        ("pil_exif_imagemagick_orientation.png", (512, 512)),
        ("pil_xmp_tags_orientation.png", (326, 268)),
        ("pil_rot1mir0.avif", (640, 427)),
    ],
)
def test_real_orientation(name: str, upright_size: tuple[int, int]) -> None:
    img = load_image(_real(name))
    assert orientation_of(img) != 1
    fixed, rotated = apply_orientation(img)
    assert rotated and fixed.size == upright_size
    assert orientation_of(fixed) == 1
    if name.startswith("pil_hopper_orientation"):
        ref = np.asarray(load_image(_real("pil_hopper.jpg")).convert("RGB"), float)
        diff = np.abs(np.asarray(fixed.convert("RGB"), float) - ref).mean()
        assert diff < 12, diff  # same picture, upright (lossy re-encodes differ slightly)


@real
def test_real_eor_landscape_matches_portrait_orientation() -> None:
    # Both files show the same upright scene family: the fixed landscape must be wider than tall.
    fixed, _ = apply_orientation(load_image(_real("eor_Landscape_6.jpg")))
    assert fixed.width > fixed.height


@real
@pytest.mark.parametrize("name", ["pil_pil_sample_cmyk.jpg", "pil_tiff_strip_cmyk_jpeg.tif"])
def test_real_cmyk(name: str) -> None:
    out, note = normalise_mode(load_image(_real(name)), "jpeg")
    assert out.mode == "RGB" and note
    # Pillow's own test: top-left is red (c=0, m,y high), bottom-right black.
    r, g, b = out.getpixel((2, 2))  # type: ignore[misc]
    assert r > 150 and g < 80 and b < 80
    assert max(out.getpixel((97, 97))) < 60  # type: ignore[arg-type]


@real
def test_real_16bit() -> None:
    g16 = load_image(_real("heif_L_16__29x100.png"))
    assert g16.mode.startswith("I")
    out, _ = normalise_mode(g16, "png")
    a16 = np.asarray(g16).astype(np.int64)
    expect = (a16 * 255 + 32767) // 65535
    assert out.mode == "L" and np.array_equal(np.asarray(out).astype(np.int64), expect)
    assert np.asarray(out).max() > 200 or a16.max() < 52000  # not clipped to 255 everywhere
    trns = load_image(_real("pil_i_trns.png"))
    out, _ = normalise_mode(trns, "png")
    assert out.mode in ("LA", "L")
    out, _ = normalise_mode(load_image(_real("png_rgb-alpha-16.png")), "webp")
    assert out.mode == "RGBA"


@real
@pytest.mark.parametrize(
    "name", ["pil_p_trns_single.png", "pil_l_trns.png", "pil_rgb_trns.png", "pil_transparent.gif"]
)
def test_real_trns(name: str) -> None:
    img = load_image(_real(name))
    png, _ = normalise_mode(img, "png")
    assert png.mode in ("RGBA", "LA") and png.getchannel("A").getextrema()[0] == 0
    jpg, _ = normalise_mode(img, "jpeg")
    assert jpg.mode in ("RGB", "L")


@real
@pytest.mark.parametrize(
    "name,size",
    [
        ("heif_pug.heic", (4032, 3024)),
        ("heif_arrow.heic", (3024, 4032)),
        ("heif_zPug_3.heic", (64, 64)),
        ("pil_exif.avif", (512, 512)),
        ("pil_iss634.gif", (245, 245)),
        ("pil_iss634.webp", (245, 245)),
        ("mpy_pigs_in_a_polka.gif", (314, 273)),
        ("ft_fixture-sequence.avif", (800, 450)),
    ],
)
def test_real_formats_first_frame(name: str, size: tuple[int, int]) -> None:
    img = load_image(_real(name))
    assert img.size == size
    fixed, _ = apply_orientation(img)
    out, _ = normalise_mode(fixed, "jpeg")
    assert out.mode in ("RGB", "L")
    assert out.getextrema() != ((0, 0),) * len(out.getbands())  # decoded something


@real
def test_real_heic_display_p3_converted() -> None:
    img = load_image(_real("heif_pug.heic"), target_box=(800, 600))
    assert img.info.get("icc_profile")
    small, _ = resize_within(img, box=(800, 600))
    out, note = normalise_mode(small, "jpeg")
    assert "icc_profile" not in out.info and note and "sRGB" in note


@real
def test_real_draft_on_phone_photo() -> None:
    img = load_image(_real("irs_test.jpg"), target_box=(1000, 750))
    assert img.size == (1008, 756)  # 4032x3024 / 4
