"""`mediaprep prep -j 2` against a naive script over the same generated mixed folder.

    python bench/bench_prep_naive.py [--images 48] [--rounds 3]

The naive script (2 processes): Pillow open, EXIF transpose, fit in 7680x4320, JPEG q90,
base64, one JSON line per image. mediaprep runs with everything on: verification, journal,
cache (a fresh empty one per round), report. The folder: JPEG, PNG and WebP from 1 to 40 MP,
photo-like (smooth fields and grain), a few noisy 4K photos as PNG over the data-URL budget (a
lossless re-encode gives 0.92x their bytes: it cannot fit, but the 0.6x floor rule lets it be
tried), and small compliant files passed through.

Both sides run as whole processes (start-up included), interleaved round by round (A B, B A,
...), each round with the load average beside it; then the min and the median of each side,
wall and CPU (the process tree's, sampled), and the ratios naive / mediaprep (>= 1: mediaprep
is no slower). The machine is shared: quote CPU, min and median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

CLI = [sys.executable, "-c", "from mediaprep.cli import main; main()"]
FOLDER_VERSION = "3"
NAIVE = r"""
import base64, io, json, os, sys
from multiprocessing import Pool
from PIL import Image, ImageOps
Image.MAX_IMAGE_PIXELS = None

def one(path):
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im.thumbnail((7680, 4320))
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=90)
    return json.dumps({"path": path, "url": "data:image/jpeg;base64,"
                       + base64.b64encode(buf.getvalue()).decode()})

if __name__ == "__main__":
    src, out = sys.argv[1], sys.argv[2]
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs
                   if not f.startswith("."))
    with Pool(2) as pool, open(out, "w") as fh:
        for line in pool.imap(one, files, chunksize=1):
            fh.write(line + "\n")
"""


def _photo(rng: np.random.Generator, w: int, h: int, grain: float) -> Image.Image:
    low = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize(
        (w, h), Image.Resampling.BICUBIC)
    arr = np.asarray(low, dtype=np.int16)
    arr = arr + rng.normal(0, grain, (h, w, 1)).astype(np.int16)  # grey grain: cheap to make
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def generate(folder: Path, images: int) -> None:
    rng = np.random.default_rng(28)
    sizes = [(1280, 960), (2000, 1500), (4000, 3000), (5472, 3648), (8000, 5000)]  # 1-40 MP
    for i in range(images):
        kind = i % 8
        if kind == 7:  # a noisy 4K photo as a fast-compressed PNG (10 MB): over the budget
            # (7.9 MB before base64), its lossless re-encode (zlib 6) is 0.92x its bytes, so
            # the 0.6x floor rule lets it through: only the sampled estimate tells that the
            # full re-encode (seconds) cannot fit
            _photo(rng, 3840, 2160, 3).save(folder / f"noisy_{i:03d}.png", compress_level=1)
            continue
        if kind == 6:  # small and compliant: passed through
            _photo(rng, 800, 600, 4).save(folder / f"ok_{i:03d}.jpg", quality=85)
            continue
        w, h = sizes[i % len(sizes)]
        img = _photo(rng, w, h, 6)
        fmt = ("jpg", "png", "webp")[i % 3]
        if fmt == "jpg":
            exif = Image.Exif()
            exif[0x0112] = 6 if i % 2 else 1
            img.save(folder / f"img_{i:03d}.jpg", quality=92, exif=exif)
        elif fmt == "png":
            img.save(folder / f"img_{i:03d}.png", compress_level=6)
        else:
            img.save(folder / f"img_{i:03d}.webp", quality=85, method=2)


def timed(cmd: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """(wall s, CPU s of the process tree) of a command: each process's own CPU time, sampled
    every 50 ms while it lives (not its children's totals as well: a pool's workers, reaped by
    their parent, would be counted twice; mediaprep's workers are not its children)."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cpu: dict[int, float] = {}
    while proc.poll() is None:
        try:
            procs = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            procs = [proc]
        for p in procs:
            try:
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system
            except psutil.Error:
                pass
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if proc.returncode not in ok:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{cmd[:4]} failed ({proc.returncode}): {err[-2000:]}")
    return wall, sum(cpu.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    folder = Path(tempfile.gettempdir()) / f"mediaprep-bench-naive-v{FOLDER_VERSION}-{args.images}"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        generate(folder, args.images)
        (folder / ".complete").write_text("")
    files = [p for p in folder.iterdir() if not p.name.startswith(".")]
    print(f"{len(files)} images, {sum(p.stat().st_size for p in files) / 1e6:.0f} MB in {folder}")
    script = str(folder.parent / f"{folder.name}-naive.py")  # a file: its Pool re-imports it
    Path(script).write_text(NAIVE)
    runs = run_rounds(folder, script, args.rounds)
    for how, pick in (("min", min), ("median", statistics.median)):
        mw, mc = (pick(x[i] for x in runs["mediaprep"]) for i in (0, 1))
        nw, nc = (pick(x[i] for x in runs["naive"]) for i in (0, 1))
        print(f"{how}: mediaprep wall {mw:.1f} s cpu {mc:.1f} s; naive wall {nw:.1f} s "
              f"cpu {nc:.1f} s; ratio (naive / mediaprep) wall {nw / mw:.2f} cpu {nc / mc:.2f}")


def run_rounds(folder: Path, script: str, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) of each side in each round, the sides' order swapped every round."""
    runs: dict[str, list[tuple[float, float]]] = {"mediaprep": [], "naive": []}
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            sides = {
                "mediaprep": [*CLI, "prep", str(folder), "-o", f"{tmp}/out", "-j", "2",
                              "--cache-dir", f"{tmp}/cache", "-q"],
                "naive": [sys.executable, script, str(folder), f"{tmp}/naive.jsonl"],
            }
            order = list(sides) if r % 2 == 0 else list(sides)[::-1]
            for name in order:
                runs[name].append(timed(sides[name]))
                print(f"  round {r + 1} {name:9} wall {runs[name][-1][0]:6.1f} s  "
                      f"cpu {runs[name][-1][1]:6.1f} s  load {_load()}", flush=True)
    return runs

def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
