"""Fit large photos into a byte budget: ``mediaprep.prepare`` (the product path) vs plain Pillow.

Inputs are generated into a temp dir: photo-like content (smooth gradients + shapes with hard
edges + sensor-like noise) so encoded sizes are realistic:

    8000x6000 JPEG (q95), 6000x4000 PNG, 4032x3024 HEIC

Budgets, both counted as the base64 data URL (what DashScope counts): 10 MB (10,485,760) and
1 MB (1,048,576), with the same 2% margin on both sides of the comparison.

Baseline: full decode, Lanczos resize to fit the 8K box (7680x4320), save JPEG at
95, 90, 85, ... 40 until it fits, halve the size and repeat if nothing fits.
Ours: ``mediaprep.prepare(path, limits={"image.max_data_url_bytes": budget})``, exactly what
``mediaprep prep`` runs per image (probe, check, plan from the header and the budget, JPEG DCT
draft decode when the plan allows, resize, strip-sampled quality prediction, encode, re-check,
data URL). Output is JPEG for all three (PNG/HEIC cannot fit or are not allowed above 4K).

Besides time it prints, outside the timed runs:
* quality as the model sees it: PSNR of each output against the original, both resized to the
  model's own input size (mediaprep.tokens.model_resize of the 8K-box size), and at the
  baseline's output size (ours upsampled when smaller);
* the decode floor: the time just to decode the inputs (full decode; and with the draft scale
  the product used), i.e. the best ratio any path that decodes could reach.

Run: python bench/bench_fit_images.py [--quick] [--inputs DIR] [--repeat N]
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

import mediaprep  # noqa: E402
from mediaprep.backends.pillow import register_heif  # noqa: E402
from mediaprep.backends.sniff import data_url_size  # noqa: E402
from mediaprep.tokens import model_resize  # noqa: E402

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
    names = [
        f"photo_{8000 // k}x{6000 // k}.jpg",
        f"photo_{6000 // k}x{4000 // k}.png",
        f"photo_{4032 // k}x{3024 // k}.heic",
    ]
    out = [folder / n for n in names]
    if all(p.exists() for p in out):
        return out
    photo_like(8000 // k, 6000 // k, seed=1).save(out[0], "JPEG", quality=95)
    photo_like(6000 // k, 4000 // k, seed=2).save(out[1], "PNG", compress_level=1)
    register_heif()
    import pillow_heif

    pillow_heif.from_pillow(photo_like(4032 // k, 3024 // k, seed=3)).save(out[2], quality=90)
    return out


def ours(path: Path, max_bytes: int) -> dict[str, object]:
    r = mediaprep.prepare(
        path, limits={"image.max_data_url_bytes": max_bytes}, safety_margin=MARGIN
    )
    assert r.ok and r.data is not None, r.findings
    w, h = r.stats["size"]
    return {
        "bytes": len(r.data),
        "url": data_url_size(len(r.data), r.mime or "image/jpeg"),
        "encodes": r.stats["encodes"],
        "samples": r.stats.get("sample_encodes", 0),
        "size": f"{w}x{h}",
        "q": r.stats.get("quality"),
        "data": r.data,
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
                    "data": buf.getvalue(),
                }
        img = img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    d = np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)
    mse = float((d * d).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def quality(path: Path, ro: dict[str, object], rb: dict[str, object]) -> tuple[float, ...]:
    """(ours, baseline) PSNR at the model's input size, then at the baseline's output size."""
    src = Image.open(path).convert("RGB")
    w, h = src.size
    s = min(1.0, max(BOX) / max(w, h), min(BOX) / min(w, h))
    bw, bh = int(w * s), int(h * s)
    mw, mh = model_resize(bw, bh)
    lz = Image.Resampling.LANCZOS
    ref_m = src.resize((mw, mh), lz)
    ref_b = src.resize((bw, bh), lz) if s < 1 else src
    out = []
    for r in (ro, rb):
        im = Image.open(io.BytesIO(r["data"])).convert("RGB")  # type: ignore[arg-type]
        out.append(_psnr(im.resize((mw, mh), lz), ref_m))
    for r in (ro, rb):
        im = Image.open(io.BytesIO(r["data"])).convert("RGB")  # type: ignore[arg-type]
        out.append(_psnr(im.resize((bw, bh), lz) if im.size != (bw, bh) else im, ref_b))
    return tuple(out)


def decode_floor(paths: list[Path], sizes: list[str]) -> tuple[float, float]:
    """Seconds to only decode the inputs: in full, and at the sizes ours decoded to (JPEG
    draft; the other formats have no reduced decode)."""
    full = draft = 0.0
    for p, size in zip(paths, sizes, strict=True):
        for want, acc in ((None, "full"), (tuple(int(v) for v in size.split("x")), "draft")):
            best = float("inf")
            for _ in range(2):
                t0 = time.perf_counter()
                im = Image.open(p)
                if want is not None and im.format == "JPEG":
                    im.draft("RGB", want)
                im.load()
                best = min(best, time.perf_counter() - t0)
            if acc == "full":
                full += best
            else:
                draft += best
    return full, draft


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="half-size inputs")
    ap.add_argument(
        "--inputs",
        type=Path,
        default=None,
        help="folder to keep the generated inputs in (reused when present)",
    )
    ap.add_argument("--repeat", type=int, default=2, help="best of N timed runs")
    args = ap.parse_args()
    register_heif()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.inputs or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        paths = make_inputs(folder, args.quick)
        print(f"inputs ready in {time.perf_counter() - t0:.1f}s:")
        for p in paths:
            with Image.open(p) as im:
                print(f"  {p.name:<24} {im.size[0]}x{im.size[1]}  {p.stat().st_size:>11,} B")

        ratios = {}
        per_image: list[tuple[str, Path, dict[str, object], dict[str, object]]] = []
        times: dict[str, tuple[float, float]] = {}
        for label, max_bytes in BUDGETS.items():

            def run(fn, label=label, max_bytes=max_bytes):  # type: ignore[no-untyped-def]
                def go() -> dict[str, object]:
                    t = []
                    results = []
                    for p in paths:
                        t1 = time.perf_counter()
                        results.append(fn(p, max_bytes))
                        t.append(time.perf_counter() - t1)
                    go.results = results  # type: ignore[attr-defined]
                    go.times = t  # type: ignore[attr-defined]
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
                repeat=args.repeat,
            )
            full, draft = decode_floor(paths, [str(r["size"]) for r in o.results])  # type: ignore[attr-defined]
            base_total = sum(b.times)  # type: ignore[attr-defined]
            print(
                f"  decode only: full {full:.3f} s, at ours' draft sizes {draft:.3f} s -> "
                f"best possible ratio for any decoding path ~{base_total / draft:.2f}x "
                f"(last baseline run {base_total:.3f} s)"
            )
            for i, (p, ro, rb) in enumerate(zip(paths, o.results, b.results, strict=True)):  # type: ignore[attr-defined]
                times[f"{label}/{p.name}"] = (o.times[i], b.times[i])  # type: ignore[attr-defined]
                per_image.append((label, p, ro, rb))
        print(
            "\nper image (ours | baseline), time of the last run, PSNR dB at the model's input "
            "size / at the baseline's output size:"
        )
        for label, p, ro, rb in per_image:
            qm_o, qm_b, qb_o, qb_b = quality(p, ro, rb)
            to, tb = times[f"{label}/{p.name}"]
            print(
                f"  {label:<5} {p.name:<22} ours {ro['size']:>10} q={ro['q']!s:<3} "
                f"{ro['bytes']:>10,} B enc={ro['encodes']}+{ro['samples']}s {to:6.2f}s "
                f"PSNR {qm_o:5.2f}/{qb_o:5.2f}  |  base {rb['size']:>10} q={rb['q']!s:<3} "
                f"{rb['bytes']:>10,} B enc={rb['encodes']} {tb:6.2f}s "
                f"PSNR {qm_b:5.2f}/{qb_b:5.2f}  ({tb / to:.2f}x)"
            )
        enc = [int(ro["encodes"]) for _, _, ro, _ in per_image]  # type: ignore[call-overload]
        smp = [int(ro["samples"]) for _, _, ro, _ in per_image]  # type: ignore[call-overload]
        print(
            f"\nmediaprep full encodes per image: {sum(enc) / len(enc):.2f} (target <= 3); "
            f"plus {sum(smp) / len(smp):.1f} strip-sample encodes (~3-6% of a full one each)"
        )
        print("speed ratio per budget: " + ", ".join(f"{k}: {v:.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
