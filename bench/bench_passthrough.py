"""A pass-through is nearly free: prepare() of a compliant image vs reading + base64 of it.

Issue 16 item 3: ``mediaprep.prepare()`` of an already compliant 12 MP JPEG costs at most 3x
reading and base64-encoding the file (median of 5, in one process). The same for PNG, WEBP and
HEIC (each generated once into a temporary folder, photo-like content, within the default
target's limits); the ratio of each is printed.

    PYTHONPATH=$PWD python bench/bench_passthrough.py
"""

from __future__ import annotations

import base64
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageFilter

import mediaprep

REPEAT = 5
TARGET = 3.0


def _photo(size: tuple[int, int], seed: int = 7) -> Image.Image:
    """Smooth shapes plus fine grain: compresses like a phone photo, not like flat colour."""
    small = Image.effect_noise((size[0] // 40, size[1] // 40), 90).convert("RGB")
    base = small.resize(size, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(size, 12).convert("RGB")
    img = Image.blend(base, grain, 0.25).filter(ImageFilter.SMOOTH)
    return img


def make_inputs(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    big = _photo((4000, 3000))
    out["jpeg 4000x3000 (12 MP)"] = folder / "photo.jpg"
    big.save(out["jpeg 4000x3000 (12 MP)"], "JPEG", quality=90)
    mid = big.resize((2048, 1536))
    out["png 2048x1536"] = folder / "photo.png"
    mid.save(out["png 2048x1536"], "PNG")
    tier = big.resize((3840, 2160))
    out["webp 3840x2160"] = folder / "photo.webp"
    tier.save(out["webp 3840x2160"], "WEBP", quality=85)
    try:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        out["heic 3840x2160"] = folder / "photo.heic"
        tier.save(out["heic 3840x2160"], "HEIF", quality=80)
    except ImportError:
        print("heic: pillow_heif not installed, row skipped")
    return out


def interleaved(fns: dict[str, Callable[[], object]], repeat: int = REPEAT) -> dict[str, float]:
    """Median seconds of each function, run A B C A B C ... so load hits them alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _decode_floor(path: Path) -> Callable[[], object]:
    """The verify's own decoder work, nothing else: a JPEG's 1/8 DCT-scaled decode (libjpeg
    still Huffman-decodes every byte), any other format's verify_decodes."""
    from mediaprep.backends.pillow import verify_decodes

    if path.suffix != ".jpg":
        return lambda: verify_decodes(path.read_bytes())

    def draft() -> object:
        with Image.open(io.BytesIO(path.read_bytes())) as im:
            im.draft(im.mode, (-(-im.width // 8), -(-im.height // 8)))
            im.load()
        return im

    return draft


def main() -> int:
    worst = 0.0
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench_passthrough_") as tmp:
        inputs = make_inputs(Path(tmp))
        print(f"{'input':26} {'bytes':>10} {'read+b64':>10} {'verify':>9} {'prepare':>10} "
              f"{'ratio':>7} {'floor':>6}")
        for name, path in inputs.items():
            p = mediaprep.prepare(path)  # warm-up, and proof it passes through
            if not p.ok or p.fixes != ["passed through unchanged"]:
                print(f"{name}: not a pass-through: {p.fixes} {[f.code for f in p.findings]}")
                return 2

            def baseline(path: Path = path) -> object:
                return base64.b64encode(path.read_bytes())

            def ours(path: Path = path) -> object:
                return mediaprep.prepare(path)

            t = interleaved({"base": baseline, "verify": _decode_floor(path), "ours": ours})
            ratio = t["ours"] / t["base"]
            floor = (t["verify"] + t["base"]) / t["base"]
            worst = max(worst, ratio)
            print(f"{name:26} {path.stat().st_size:>10,} {t['base'] * 1e3:>8.1f}ms "
                  f"{t['verify'] * 1e3:>7.1f}ms {t['ours'] * 1e3:>8.1f}ms {ratio:>6.2f}x "
                  f"{floor:>5.1f}x")
    print("verify: the decoder work alone (JPEG: the 1/8 draft decode); floor: (verify + "
          "read+b64) / read+b64, what any sound pass-through costs at least")
    print(f"target: prepare() <= {TARGET:g}x read+base64 (median of {REPEAT}, interleaved); "
          f"worst {worst:.2f}x; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
