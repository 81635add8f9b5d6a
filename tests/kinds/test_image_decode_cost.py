"""Issue 22 item 12: images inside the pixel guard that still cost 1.3-2.5 GB to prepare are
judged by what decoding and preparing them really costs (the decoded pixels, the decoder's own
buffer at the file's true bit depth, prep's full-size working copy) and refused before
decoding; what is accepted is prepared under 1 GB (measured in a child process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mediaprep
from tests.fixtures.hostile import ico_holding_png, png_zeros, tiff_one_strip, webp_flat

ROOT = Path(__file__).resolve().parents[2]

CASES = {
    "png_1bit_32000.png": lambda: png_zeros(32000, 32000, depth=1, colour=0, pad=1_100_000),
    "png_rgba_13000.png": lambda: png_zeros(13000, 13000),
    "tiff_rgba16_13000.tif": lambda: tiff_one_strip(13000, 13000, "rgba16"),
    "tiff_cmyk_13000.tif": lambda: tiff_one_strip(13000, 13000, "cmyk"),
    "tiff_float_13000.tif": lambda: tiff_one_strip(13000, 13000, "float32"),
    "tiff_rgb_13000.tif": lambda: tiff_one_strip(13000, 13000, "rgb"),
    "ico_rgba_13000.ico": lambda: ico_holding_png(png_zeros(13000, 13000)),
    "webp_16000x9000.webp": lambda: webp_flat(16000, 9000, pad=256_000),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_issue_s_costly_images_are_refused_before_decoding(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(CASES[name]())
    # each is inside the pixel guard and claims under 1,000 pixels a byte: only its cost
    # refuses it
    assert p.stat().st_size * 1000 > mediaprep.probe(p).declared_pixels
    report = mediaprep.check(p)
    [bomb] = [f for f in report.findings if f.severity == "error"]
    assert bomb.code == "image.decompression_bomb"
    assert "image.max_decode_bytes" in bomb.message and "decode and prepare" in bomb.message


def test_a_tiff_s_strip_is_counted_at_its_true_bit_depth(tmp_path):
    """A 16-bit RGBA strip is 8 B/px beside Pillow's 4 B/px image; an 8-bit one 4 B/px."""
    p16 = tmp_path / "a16.tif"
    p16.write_bytes(tiff_one_strip(5000, 5000, "rgba16"))
    p8 = tmp_path / "cmyk.tif"
    p8.write_bytes(tiff_one_strip(5000, 5000, "cmyk"))
    limits = {"image.max_decode_bytes": 500_000_000}  # 25 Mpx: 16 B/px 400 MB; 12 B/px 300 MB
    assert not bombed(mediaprep.check(p8, limits=limits))
    assert bombed(mediaprep.check(p8, limits={"image.max_decode_bytes": 250_000_000}))
    assert bombed(mediaprep.check(p16, limits={"image.max_decode_bytes": 350_000_000}))
    assert not bombed(mediaprep.check(p16, limits=limits))


def bombed(report) -> bool:
    return "image.decompression_bomb" in [f.code for f in report.findings]


def test_the_ico_is_judged_before_pillow_opens_it(tmp_path):
    """Pillow's ICO reader decodes the icon on open: a headers-only check took 800 MB."""
    p = tmp_path / "big.ico"
    p.write_bytes(ico_holding_png(png_zeros(13000, 13000)))
    peak = _child_peak(["check", str(p)])
    assert peak["exit"] == 1 and peak["rss"] < 400 * 2**20, peak


def test_the_largest_rgba_png_accepted_is_prepared_under_1_gb(tmp_path):
    p = tmp_path / "rgba.png"
    p.write_bytes(png_zeros(7600, 7600))  # 57.8 Mpx: 8 B/px = 441 MiB, just inside the limit
    assert not bombed(mediaprep.check(p))
    peak = _child_peak(["prep", str(p), "-o", str(tmp_path / "out"), "--no-cache", "-q"])
    assert peak["exit"] == 0 and peak["rss"] < 2**30, peak


def _child_peak(args: list[str]) -> dict:
    """Run ``mediaprep ARGS`` in a fresh child; its exit code and its own peak RSS (VmHWM)."""
    code = ("import json, runpy, sys\n"
            "sys.argv = ['mediaprep', *json.loads(sys.argv[1])]\n"
            "try:\n    runpy.run_module('mediaprep', run_name='__main__')\n"
            "except SystemExit as e:\n    rc = e.code or 0\nelse:\n    rc = 0\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print(json.dumps({'exit': rc, 'rss': int(hwm.split()[1]) * 1024}))\n")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    return json.loads(proc.stdout.strip().splitlines()[-1])
