"""Fit large photos into a byte budget: mediaprep (draft decode + encode_to_budget) vs plain Pillow.

Inputs are generated into a temp dir: photo-like content (smooth gradients + shapes with hard
edges + sensor-like noise) so encoded sizes are realistic:

    8000x6000 JPEG (q95), 6000x4000 PNG, 4032x3024 HEIC

Budgets, both counted as the base64 data URL (what DashScope counts): 10 MB (10,485,760) and
1 MB (1,048,576), with the same 2% margin on both sides of the comparison.

Baseline: full decode, Lanczos resize to fit the 8K box (7680x4320), save JPEG at
95, 90, 85, ... 40 until it fits, halve the size and repeat if nothing fits.
Ours: ``load_image(target_box=...)`` (JPEG DCT-scaled decode when it helps), orientation,
``resize_within``, ``normalise_mode``, ``encode_to_budget``.

Run: python bench/bench_fit_images.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import compare  # noqa: E402

from mediaprep.encode.image import data_url_size, encode_to_budget  # noqa: E402
from mediaprep.transform.image import (  # noqa: E402
    apply_orientation,
    load_image,
    normalise_mode,
    register_heif,
    resize_within,
)

BOX = (7680, 4320)  # DashScope's 8K recommendation; the limits table owns the real value
MARGIN = 0.02
BUDGETS = {"10MB": 10_485_760, "1MB": 1_048_576}


def photo_like(w: int, h: int, seed: int = 0, noise: float = 6.0) -> Image.Image:
    """Smooth gradients + mid-frequency texture + hard-edged shapes + per-pixel noise."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    base = Image.fromarray(low).resize((w, h), Image.Resampling.BICUBIC)
    mid_arr = rng.integers(0, 256, (max(h // 64, 2), max(w // 64, 2), 3), dtype=np.uint8)
    mid = Image.fromarray(mid_arr).resize((w, h), Image.Resampling.BILINEAR)
    img = Image.blend(base, mid, 0.25)
    d = ImageDraw.Draw(img)
    for _ in range(60):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1 = x0 + int(rng.integers(w // 40, w // 4))
        y1 = y0 + int(rng.integers(h // 40, h // 4))
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            d.ellipse((x0, y0, x1, y1), fill=c)
        else:
            d.rectangle((x0, y0, x1, y1), outline=c, width=max(w // 500, 1))
    # Noise from a tile (509x1021, not a multiple of 8) added in strips: bounded memory.
    tile = rng.normal(0, noise, (509, 1021, 3)).astype(np.int16)
    arr = np.asarray(img).copy()
    for y in range(0, h, 509):
        hh = min(509, h - y)
        for x in range(0, w, 1021):
            ww = min(1021, w - x)
            block = arr[y : y + hh, x : x + ww].astype(np.int16) + tile[:hh, :ww]
            arr[y : y + hh, x : x + ww] = np.clip(block, 0, 255)
    return Image.fromarray(arr)


def make_inputs(folder: Path, quick: bool) -> list[Path]:
    k = 2 if quick else 1
    out = []
    p = folder / "photo_8000x6000.jpg"
    photo_like(8000 // k, 6000 // k, seed=1).save(p, "JPEG", quality=95)
    out.append(p)
    p = folder / "photo_6000x4000.png"
    photo_like(6000 // k, 4000 // k, seed=2).save(p, "PNG", compress_level=1)
    out.append(p)
    p = folder / "photo_4032x3024.heic"
    register_heif()
    import pillow_heif

    pillow_heif.from_pillow(photo_like(4032 // k, 3024 // k, seed=3)).save(p, quality=90)
    out.append(p)
    return out


def ours(path: Path, max_bytes: int) -> dict[str, object]:
    img = load_image(path, target_box=BOX)
    img, _ = apply_orientation(img)
    img, _ = resize_within(img, box=BOX)
    img, _ = normalise_mode(img, "jpeg")
    r = encode_to_budget(
        img, format="jpeg", max_bytes=max_bytes, size_of=data_url_size, margin=MARGIN
    )
    return {
        "bytes": len(r.data),
        "url": data_url_size(len(r.data), r.mime),
        "encodes": r.encodes,
        "size": f"{r.width}x{r.height}",
        "q": r.quality,
    }


def baseline(path: Path, max_bytes: int) -> dict[str, object]:
    img = Image.open(path)
    register_heif()
    img = img.convert("RGB")  # full decode
    w, h = img.size
    s = min(1.0, max(BOX) / max(w, h), min(BOX) / min(w, h))
    if s < 1.0:
        img = img.resize((int(w * s), int(h * s)), Image.Resampling.LANCZOS)
    budget = max_bytes * (1 - MARGIN)
    encodes = 0
    while True:
        for q in range(95, 39, -5):
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=q)
            encodes += 1
            n = buf.tell()
            if data_url_size(n, "image/jpeg") <= budget:
                return {
                    "bytes": n,
                    "url": data_url_size(n, "image/jpeg"),
                    "encodes": encodes,
                    "size": f"{img.width}x{img.height}",
                    "q": q,
                }
        img = img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="half-size inputs")
    args = ap.parse_args()
    register_heif()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        paths = make_inputs(Path(tmp), args.quick)
        print(f"generated {len(paths)} inputs in {time.perf_counter() - t0:.1f}s:")
        for p in paths:
            with Image.open(p) as im:
                print(f"  {p.name:<24} {im.size[0]}x{im.size[1]}  {p.stat().st_size:>11,} B")

        ratios = {}
        per_image: list[tuple[str, str, dict[str, object], dict[str, object]]] = []
        for label, max_bytes in BUDGETS.items():

            def run(fn, label=label, max_bytes=max_bytes):  # type: ignore[no-untyped-def]
                def go() -> dict[str, object]:
                    results = [fn(p, max_bytes) for p in paths]
                    go.results = results  # type: ignore[attr-defined]
                    enc = sum(int(r["encodes"]) for r in results)  # type: ignore[call-overload]
                    return {
                        "encodes/img": enc / len(results),
                        "out_MB": sum(int(r["bytes"]) for r in results) / 1e6,  # type: ignore[call-overload]
                    }

                return go

            o, b = run(ours), run(baseline)
            ratios[label] = compare(
                f"fit {len(paths)} photos into a {label} data URL (JPEG out)",
                o,
                b,
                items=len(paths),
                unit="img",
                target=3.0,
            )
            for p, ro, rb in zip(paths, o.results, b.results, strict=True):  # type: ignore[attr-defined]
                per_image.append((label, p.name, ro, rb))
        print("\nper image (ours | baseline):")
        for label, name, ro, rb in per_image:
            print(
                f"  {label:<5} {name:<24} ours {ro['size']:>10} q={ro['q']!s:<3} "
                f"{ro['bytes']:>10,} B enc={ro['encodes']}  |  base {rb['size']:>10} "
                f"q={rb['q']!s:<3} {rb['bytes']:>10,} B enc={rb['encodes']}"
            )
        enc = [int(ro["encodes"]) for _, _, ro, _ in per_image]  # type: ignore[call-overload]
        print(f"\nmediaprep encodes per image: {sum(enc) / len(enc):.2f} (target <= 3)")
        print("speed ratio per budget: " + ", ".join(f"{k}: {v:.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
