"""Benchmark: ``mediaprep.check`` over a folder of 1,000 images vs decoding each with Pillow.

    python bench/bench_check.py [--files 1000] [--regen]

The folder holds JPEG, PNG, WEBP, TIFF, HEIC, BMP and GIF files from 320x240 up to 8K, mostly
1-4K, with photo-like content (smooth colour fields, shapes, grain). Encoding that many big
images is slow (HEIC above all), so the folder is built once and cached in the temp dir, keyed
by :data:`VERSION`: about 80 distinct encodings (a format, a size, one of 30 base pictures)
are written once and the 1,000 files are hard links to them. Decoding cost is per file either
way (Pillow keeps no cache across files), so the links do not flatter either side.

Ours: ``mediaprep.check(path)`` per file (probe from headers, every limit checked).
Baseline: what a pipeline without mediaprep does to learn the same facts:
``Image.open(path).load()`` with pillow-heif registered. Both run warm (files in the page cache).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import compare  # noqa: E402

VERSION = "1"
N_BASES = 30
VARIANTS = 2  # distinct pictures per (format, size)

# format -> (extension, file share, sizes). Shares sum to 1; sizes are mostly 1-4K.
PLAN: dict[str, tuple[str, float, list[tuple[int, int]]]] = {
    "JPEG": (
        "jpg",
        0.40,
        [
            (640, 480),
            (1024, 768),
            (1280, 720),
            (1920, 1080),
            (2048, 1536),
            (2560, 1440),
            (3024, 4032),
            (3840, 2160),
            (4032, 3024),
            (5472, 3648),
            (7680, 4320),
        ],
    ),
    "PNG": (
        "png",
        0.20,
        [
            (512, 512),
            (1024, 768),
            (1280, 720),
            (1920, 1080),
            (2560, 1440),
            (3840, 2160),
            (7680, 4320),
        ],
    ),
    "WEBP": ("webp", 0.13, [(800, 600), (1280, 720), (1920, 1080), (2560, 1440), (3840, 2160)]),
    "TIFF": ("tif", 0.07, [(1024, 768), (1920, 1080), (2560, 1440), (3000, 2000)]),
    "HEIF": ("heic", 0.09, [(1280, 960), (1920, 1440), (3024, 4032), (4032, 3024)]),
    "BMP": ("bmp", 0.05, [(640, 480), (1024, 768), (1600, 1200), (1920, 1080)]),
    "GIF": ("gif", 0.06, [(320, 240), (640, 480), (800, 600), (1280, 720)]),
}


def cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"mediaprep-bench-check-v{VERSION}"


# --- content -----------------------------------------------------------------------------------


def picture(seed: int, size: tuple[int, int]):
    """A photo-like picture: a smooth random colour field, a few shapes, film grain."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    rng = random.Random(seed)
    w, h = size
    field = Image.frombytes("RGB", (8, 6), rng.randbytes(8 * 6 * 3))
    img = field.resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randrange(w // 8, w // 2), y0 + rng.randrange(h // 8, h // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    img = img.filter(ImageFilter.BoxBlur(2))
    grain = Image.effect_noise((w, h), 6)
    return ImageChops.add(img, Image.merge("RGB", (grain, grain, grain)), offset=-128)


def _encode(job: tuple[str, tuple[int, int], int, str]) -> str:
    fmt, size, seed, out = job
    import pillow_heif

    pillow_heif.register_heif_opener()
    img = picture(seed, size)
    if fmt == "JPEG":
        img.save(out, "JPEG", quality=88)
    elif fmt == "PNG":
        img.save(out, "PNG", compress_level=1)
    elif fmt == "WEBP":
        img.save(out, "WEBP", quality=80, method=0)
    elif fmt == "TIFF":
        img.save(out, "TIFF", compression="tiff_adobe_deflate")
    elif fmt == "HEIF":
        img.save(out, "HEIF", quality=70, enc_params={"preset": "ultrafast"})
    elif fmt == "BMP":
        img.save(out, "BMP")
    elif fmt == "GIF":
        img.quantize(256, method=2).save(out, "GIF")  # 2 = fast octree
    return out


def build(n_files: int, regen: bool = False, jobs: int = 2) -> tuple[Path, list[Path]]:
    root = cache_dir()
    folder = root / f"images-{n_files}"
    stamp = folder / ".done"
    if stamp.is_file() and not regen:
        return folder, sorted(p for p in folder.iterdir() if p.is_file() and p.name != ".done")
    if folder.exists():
        shutil.rmtree(folder)
    uniq = root / "unique"
    uniq.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True)

    rng = random.Random(42)
    todo, sources = [], {}
    for fmt, (ext, _share, sizes) in PLAN.items():
        for w, h in sizes:
            for v in range(VARIANTS):
                seed = rng.randrange(N_BASES)
                out = uniq / f"{fmt.lower()}_{w}x{h}_{v}.{ext}"
                sources[(fmt, (w, h), v)] = out
                if not out.exists() or regen:
                    todo.append((fmt, (w, h), seed, str(out)))
    t0 = time.perf_counter()
    # the slow encodes (big HEIC/PNG) first, so the pool ends together
    todo.sort(key=lambda j: -(j[1][0] * j[1][1] * (8 if j[0] in ("HEIF", "PNG") else 1)))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for i, _out in enumerate(pool.map(_encode, todo), 1):
            if i % 10 == 0 or i == len(todo):
                print(f"  encoded {i}/{len(todo)} ({time.perf_counter() - t0:.0f} s)", flush=True)

    formats = list(PLAN)
    weights = [PLAN[f][1] for f in formats]
    files = []
    for i in range(n_files):
        fmt = rng.choices(formats, weights)[0]
        ext, _share, sizes = PLAN[fmt]
        size = rng.choice(sizes)
        src = sources[(fmt, size, rng.randrange(VARIANTS))]
        dst = folder / f"img_{i:04d}_{size[0]}x{size[1]}.{ext}"
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
        files.append(dst)
    stamp.write_text(VERSION)
    return folder, files


# --- the two sides -----------------------------------------------------------------------------


def vs_verify(files: list[Path], by_fmt: dict[str, list[Path]], rounds: int) -> None:
    """CPU seconds (this process) of ``mediaprep.check`` and of ``Image.open().verify()`` per
    file, the two interleaved round by round; the median round per format is printed.

    verify reads a JPEG's headers only; check also walks every scan's entropy-coded data (a
    stray marker there, or thousands of scans, is refused before any decode): for JPEG, the
    floor of that walk (every byte looked at once) is printed too."""
    import statistics

    from PIL import Image

    import mediaprep

    def ours(p: Path) -> None:
        mediaprep.check(p)

    def verify(p: Path) -> None:
        with Image.open(p) as im:
            im.verify()

    cpu: dict[str, dict[str, list[float]]] = {"check": defaultdict(list),
                                              "verify": defaultdict(list)}
    for r in range(rounds):
        sides = [("check", ours), ("verify", verify)]
        for name, fn in sides if r % 2 == 0 else sides[::-1]:
            for ext, group in by_fmt.items():
                t = time.process_time()
                for p in group:
                    fn(p)
                cpu[name][ext].append(time.process_time() - t)
    print(f"\n  CPU, median of {rounds} interleaved rounds (ratio: verify / check; >= 1: check "
          "is as cheap as verify)")
    print("  format      files   check ms/file   verify ms/file   ratio")
    tot_c = tot_v = 0.0
    for ext, group in sorted(by_fmt.items(), key=lambda kv: -len(kv[1])):
        c = statistics.median(cpu["check"][ext])
        v = statistics.median(cpu["verify"][ext])
        tot_c, tot_v = tot_c + c, tot_v + v
        print(f"  {ext:<10} {len(group):>6} {c / len(group) * 1e3:>15.3f} "
              f"{v / len(group) * 1e3:>16.3f} {v / c:>7.2f}")
    print(f"  {'all':<10} {len(files):>6} {tot_c / len(files) * 1e3:>15.3f} "
          f"{tot_v / len(files) * 1e3:>16.3f} {tot_v / tot_c:>7.2f}")
    jpegs = by_fmt.get("jpg", [])
    if jpegs:
        floor = statistics.median(_read_floor(jpegs) for _ in range(rounds)) / len(jpegs)
        c = statistics.median(cpu["check"]["jpg"]) / len(jpegs)
        print(f"  JPEG floor: every byte looked at once (mmap, one numpy pass) "
              f"{floor * 1e3:.3f} ms/file; check {c * 1e3:.3f} ms/file = {c / floor:.2f}x it. "
              "verify reads the headers only; check also walks the entropy-coded data to the "
              "next marker (a stray one is what libjpeg fails on, and scans are counted)")


def _read_floor(files: list[Path]) -> float:
    """CPU seconds to look at every byte of ``files`` once: the least any walk of a JPEG's
    entropy-coded data costs."""
    import mmap

    import numpy as np

    t = time.process_time()
    for p in files:
        with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            buf = np.frombuffer(m, np.uint8)
            buf.max()
            del buf
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--regen", action="store_true", help="rebuild the cached folder")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="processes for the one-time encode")
    ap.add_argument("--vs-verify", action="store_true",
                    help="CPU of mediaprep.check against PIL.Image.open().verify() (issue 28: "
                         "check CPU <= verify's), rounds interleaved, medians per format")
    args = ap.parse_args()

    folder, files = build(args.files, args.regen, args.jobs)
    total = sum(p.stat().st_size for p in files)
    by_fmt: dict[str, list[Path]] = defaultdict(list)
    for p in files:
        by_fmt[p.suffix[1:]].append(p)
    mix = ", ".join(f"{k} {len(v)}" for k, v in sorted(by_fmt.items(), key=lambda kv: -len(kv[1])))
    print(f"{len(files)} files, {total / 1e6:,.0f} MB (hard links) in {folder}\n  {mix}")

    import pillow_heif
    from PIL import Image

    import mediaprep

    pillow_heif.register_heif_opener()
    for p in files:  # warm the page cache for both sides
        p.read_bytes()

    if args.vs_verify:
        vs_verify(files, by_fmt, max(args.repeat, 5))
        return

    per_file: dict[str, dict[str, float]] = {"ours": {}, "baseline": {}}

    def ours() -> dict:
        failed = 0
        for p in files:
            t = time.perf_counter()
            report = mediaprep.check(p)
            per_file["ours"][p.name] = time.perf_counter() - t
            failed += not report.ok
        return {"not_ok": failed}

    def baseline() -> dict:
        for p in files:
            t = time.perf_counter()
            with Image.open(p) as im:
                im.load()
            per_file["baseline"][p.name] = time.perf_counter() - t
        return {}

    compare(
        f"check {len(files)} images: mediaprep.check vs Pillow open+load",
        ours,
        baseline,
        items=len(files),
        repeat=args.repeat,
        unit="files",
        target=20,
    )

    print("\n  per format    files   ours ms/file   decode ms/file   ratio")
    for ext, group in sorted(by_fmt.items(), key=lambda kv: -len(kv[1])):
        o = sum(per_file["ours"][p.name] for p in group) / len(group) * 1000
        b = sum(per_file["baseline"][p.name] for p in group) / len(group) * 1000
        print(f"  {ext:<12} {len(group):>6} {o:>14.2f} {b:>16.2f} {b / o:>7.1f}x")

    exe = shutil.which("mediaprep")
    if exe:
        t = time.perf_counter()
        proc = subprocess.run(
            [exe, "check", "--format", "json", str(folder)], capture_output=True, text=True
        )
        dt = time.perf_counter() - t
        print(
            f"\n  CLI `mediaprep check {folder.name}` (one process, startup included): "
            f"{dt:.2f} s, {len(files) / dt:.0f} files/s, exit {proc.returncode}"
        )


if __name__ == "__main__":
    main()
