"""`mediaprep check` and `mediaprep prep` over a folder of 2,000 mixed images and 20 short videos.

Runs the real command line (a subprocess, start-up included) and prints files/s for:

* check with 1 and 2 jobs, headers only and --deep (target: 2 jobs >= 1.7x the files/s of
  1 job on 2 cores). A headers-only check of this folder is under a second of CPU in all, less
  than the start-up of a Python process that imports PyAV, Pillow and numpy and forks workers:
  with F seconds of start-up and W of work, 2 jobs can give at most (F + W) / (F + W/2), which
  is below 1.5x for F = 0.5 s and W = 0.9 s. Its in-run ratio (in brackets) shows the workers.
  So it is also run over --copies hard-linked copies of the folder (10: 20,200 inputs), where
  the work outweighs the start-up and the parent's serial walk and report remain.
* prep with 1 and 2 jobs, cold (an empty cache, an empty output folder);
* prep rerun with a warm cache into a new output folder (cache hits: no media work), and rerun
  into the same folder (the journal: not even a cache lookup). Target: >= 10x the cold run.

The folder is generated once and kept (``--folder``, default in the system temp folder):

    python bench/bench_batch.py [--images 2000] [--videos 20] [--rounds 3] [--skip-j1-prep]

Each cold command runs --rounds times, the jobs order alternating between rounds, and the best
time is kept: on a shared virtual machine the same run varies by 20%.

The mix: JPEG photos (some with EXIF rotation), PNG, WEBP, GIF, BMP, images 8 px high (padded
by prep), a few 4K+ BMPs (converted), and H.264 MP4 clips of 2 to 4 s (some with audio, some in
MKV/MOV so they are remuxed or passed through).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.videogen import make_video  # noqa: E402

CLI = [sys.executable, "-c", "from mediaprep.cli import main; main()"]
FOLDER_VERSION = "1"


def _photo(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w, 1)), (y * 255 // max(h, 1)),
                     ((x + y) * 255 // max(w + h, 1))], axis=-1)
    noise = rng.integers(-20, 20, size=(h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def generate(folder: Path, images: int, videos: int) -> None:
    stamp = folder / ".generated"
    want = f"{FOLDER_VERSION} {images} {videos}"
    if stamp.exists() and stamp.read_text() == want:
        return
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "images").mkdir(parents=True)
    (folder / "videos").mkdir(parents=True)
    rng = np.random.default_rng(2026)
    t0 = time.perf_counter()
    for i in range(images):
        sub = folder / "images" / f"{i // 250:02d}"
        sub.mkdir(exist_ok=True)
        r = i % 40
        w, h = int(rng.integers(320, 1600)), int(rng.integers(240, 1200))
        if r == 0:  # too thin: padded
            _photo(rng, w, 8).save(sub / f"thin_{i:05d}.png")
        elif r == 1:  # 4K+ BMP: not allowed above 4K, converted
            _photo(rng, 4000, 2300).save(sub / f"big_{i:05d}.bmp") if i % 400 == 1 else \
                _photo(rng, w, h).save(sub / f"plain_{i:05d}.bmp")
        elif r < 5:  # sideways phone photo
            im = _photo(rng, w, h)
            exif = Image.Exif()
            exif[0x0112] = 6
            im.save(sub / f"rot_{i:05d}.jpg", quality=88, exif=exif)
        elif r < 8:
            _photo(rng, w // 2, h // 2).quantize(64).save(sub / f"anim_{i:05d}.gif")
        elif r < 14:
            _photo(rng, w // 2, h // 2).save(sub / f"shot_{i:05d}.png")
        elif r < 18:
            _photo(rng, w, h).save(sub / f"pic_{i:05d}.webp", quality=80)
        else:
            _photo(rng, w, h).save(sub / f"photo_{i:05d}.jpg", quality=88)
    for v in range(videos):
        ext = ("mp4", "mkv", "mov")[v % 3]
        make_video(folder / "videos" / f"clip_{v:02d}.{ext}", n_frames=int(25 + v % 3 * 10),
                   fps=10, width=320, height=240, audio=v % 2 == 0)
    stamp.write_text(want)
    print(f"generated {images} images and {videos} videos in {time.perf_counter() - t0:.0f} s")


def timed(cmd: list[str]) -> tuple[float, float | None, str]:
    """Wall seconds of the command, the run time it reports itself, its summary line.

    Dirty pages are flushed first, untimed: a prep run leaves about 2 GB for the kernel to write
    back (outputs, journal lines, parts.jsonl), and the next run must not pay for it.
    """
    os.sync()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[3:])} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    summary = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    return dt, _reported_seconds(summary), summary


def _reported_seconds(summary: str) -> float | None:
    """The run time in a summary line ("..., 12.3 s" or "1 min 05 s"), start-up excluded."""
    m = re.search(r"(?:(\d+) min )?(\d+(?:\.\d+)?) s(?: ->|$)", summary)
    if not m:
        return None
    return int(m.group(1) or 0) * 60 + float(m.group(2))


def _linked_copies(src: Path, dest: Path, copies: int) -> Path:
    """``copies`` hard-linked copies of ``src`` under ``dest`` (no bytes copied)."""
    for k in range(copies):
        for folder, _dirs, files in os.walk(src):
            out = dest / f"copy{k}" / Path(folder).relative_to(src)
            out.mkdir(parents=True, exist_ok=True)
            for name in files:
                if not name.startswith("."):
                    os.link(Path(folder) / name, out / name)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3,
                    help="Runs of each cold command, in alternating order (1,2 jobs then 2,1: "
                         "a machine that slows down or speeds up mid-benchmark favours "
                         "neither); the best is kept.")
    ap.add_argument("--folder", type=Path,
                    default=Path(tempfile.gettempdir()) / "mediaprep-bench-batch")
    ap.add_argument("--copies", type=int, default=10,
                    help="Hard-linked copies of the folder for the large headers-only check "
                         "(0: skip it).")
    ap.add_argument("--skip-j1-prep", action="store_true",
                    help="Skip the slowest run (prep with 1 job); no prep scaling ratio then.")
    args = ap.parse_args()
    src = args.folder / "media"
    generate(src, args.images, args.videos)
    n = args.images + args.videos
    print(f"cpus: {os.cpu_count()}; load average: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}; {n} inputs; "
          f"best of {args.rounds} rounds, jobs order alternating")
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    wall: dict[str, float] = {}
    inner: dict[str, float] = {}

    every: dict[str, list[float]] = {}  # all times of a command, in run order

    def row(name: str, seconds: float, reported: float | None, summary: str,
            inputs: int = n) -> None:
        every.setdefault(name, []).append(seconds)
        if seconds < wall.get(name, float("inf")):
            wall[name] = seconds
            if reported:
                inner[name] = reported
        print(f"  {name:<34} {seconds:8.2f} s {inputs / seconds:9.1f} files/s   {summary}")

    def orders(jobs: tuple[int, ...]) -> list[int]:
        return [j for r in range(args.rounds) for j in (jobs if r % 2 == 0 else jobs[::-1])]

    try:
        print("\ncheck (headers only)")
        timed([*CLI, "check", str(src), "-q", "-j", "2"])  # warm the page cache
        for jobs in orders((1, 2)):
            dt, rep, summary = timed([*CLI, "check", str(src), "-q", "-j", str(jobs),
                                      "--format", "json"])
            row(f"check -j {jobs}", dt, rep, summary)
        if args.copies:
            big = _linked_copies(src, work / "copies", args.copies)
            print(f"check (headers only) over {args.copies} hard-linked copies "
                  f"({args.copies * n} inputs)")
            timed([*CLI, "check", str(big), "-q", "-j", "2"])  # warm the dentry cache
            for jobs in orders((1, 2)):
                dt, rep, summary = timed([*CLI, "check", str(big), "-q", "-j", str(jobs),
                                          "--format", "json"])
                row(f"check x{args.copies} -j {jobs}", dt, rep, summary, args.copies * n)
            shutil.rmtree(work / "copies")
        print("check --deep (pixels decoded too)")
        for jobs in orders((1, 2)):
            dt, rep, summary = timed([*CLI, "check", str(src), "-q", "-j", str(jobs), "--deep",
                                      "--format", "json"])
            row(f"check --deep -j {jobs}", dt, rep, summary)

        print("\nprep (base64 transport; outputs and parts.jsonl written)")
        cache2 = out2 = work / "none"
        for k, jobs in enumerate(orders((2,) if args.skip_j1_prep else (1, 2))):
            cache, out = work / f"cache-{k}", work / f"out-{k}"
            dt, rep, summary = timed([*CLI, "prep", str(src), "-o", str(out), "-q", "-j",
                                      str(jobs), "--cache-dir", str(cache)])
            row(f"prep -j {jobs} cold", dt, rep, summary)
            if jobs == 2:  # the newest 2-job run's cache and output feed the reruns
                cache, out, cache2, out2 = cache2, out2, cache, out
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
        dt, rep, summary = timed([*CLI, "prep", str(src), "-o", str(work / "out-cached"), "-q",
                                  "-j", "2", "--cache-dir", str(cache2)])
        row("prep -j 2 cached (new folder)", dt, rep, summary)
        dt, rep, summary = timed([*CLI, "prep", str(src), "-o", str(out2), "-q", "-j", "2",
                                  "--cache-dir", str(cache2)])
        row("prep -j 2 rerun (same folder)", dt, rep, summary)
        same = (work / "out-cached" / "parts.jsonl").read_bytes() == \
            (out2 / "parts.jsonl").read_bytes()
        lines = sum(1 for _ in open(out2 / "parts.jsonl", encoding="utf-8"))
        ok = sum(1 for x in open(out2 / "parts.jsonl", encoding="utf-8") if json.loads(x)["ok"])
        print(f"  parts.jsonl: {lines} lines ({ok} ok); cached run's parts.jsonl identical: "
              f"{same}")

        print("\nratios (whole command, start-up included; in brackets: the run time each "
              "command reports, start-up excluded)")
        for what in ("check", f"check x{args.copies}", "check --deep", "prep"):
            one, two = f"{what} -j 1", f"{what} -j 2"
            if what == "prep":
                one, two = "prep -j 1 cold", "prep -j 2 cold"
            if one not in wall:
                continue
            r = wall[one] / wall[two]
            ri = (f"[{inner[one] / inner[two]:.2f}x]" if one in inner and two in inner
                  else "")
            # Runs of one round are neighbours in time: their ratio cancels a machine that
            # drifts between rounds, which best-of-rounds does not.
            med = statistics.median(a / b for a, b in zip(every[one], every[two],
                                                            strict=False))
            print(f"  {what + ' 2 jobs / 1 job:':<32} {r:6.2f}x {ri:<9} median of rounds "
                  f"{med:.2f}x  (target >= 1.7x: {'met' if r >= 1.7 else 'NOT met'})")
        r = wall["prep -j 2 cold"] / wall["prep -j 2 cached (new folder)"]
        print(f"  {'cold / cached (new folder)':<32} {r:6.1f}x  (no target: every output and "
              "parts.jsonl line is written anew)")
        r = wall["prep -j 2 cold"] / wall["prep -j 2 rerun (same folder)"]
        print(f"  {'cold / rerun (same folder)':<32} {r:6.1f}x  (the same command again; target "
              f">= 10x: {'met' if r >= 10 else 'NOT met'})")
        print(f"  load average now: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
              "(2 jobs cannot scale when other processes hold the cores)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
