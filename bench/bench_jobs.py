"""Does ``-j`` scale?  run_all over CPU-bound per-file work, 2 workers against 1.

Each task decodes a 2000x1500 JPEG with Pillow, resizes it to 1000x750 and encodes it again:
the shape of ``prep`` on photos. Target: 2 jobs give >= 1.7x the files/s of 1 job on a 2-core
machine. Two more lines show the pool's own cost: 1 worker against running in-process, and
tiny tasks per second (pure per-task overhead: pipe round trip and the parent's loop).

    python bench/bench_jobs.py [--files 200] [--jobs 2]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import compare  # noqa: E402

from mediaprep.batch.pool import default_jobs, run_all  # noqa: E402


def make_jpeg(path: Path, width: int = 2000, height: int = 1500) -> None:
    """A photo-like JPEG: smooth gradients plus noise (so it neither compresses to nothing nor
    decodes unrealistically fast)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [(x * 255 // width), (y * 255 // height), ((x + y) * 255 // (width + height))], axis=-1
    )
    noise = rng.integers(-24, 24, size=(height, width, 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    Image.fromarray(pixels, "RGB").save(path, "JPEG", quality=90)


def shrink(path: str) -> tuple[int, float]:
    """The per-file work: decode, resize to half, encode; returns output size and CPU seconds."""
    t0 = time.process_time()
    with Image.open(path) as im:
        im.load()
        small = im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=85)
    return buf.tell(), time.process_time() - t0


def noop(x: int) -> int:
    return x


def _run(paths: list[str], jobs: int) -> dict[str, float]:
    t0 = time.perf_counter()
    outcomes = run_all(paths, shrink, jobs=jobs, timeout=120)
    wall = time.perf_counter() - t0
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(f"{len(failed)} tasks failed: {failed[0].error}")
    cpu = sum(o.value[1] for o in outcomes if o.value)
    # cores_busy: task CPU seconds per wall second. On an idle machine it approaches ``jobs``;
    # when it falls short, other processes took the CPUs (see the load average above).
    return {"jobs": jobs, "task_cpu_s": cpu, "cores_busy": cpu / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    print(
        f"cpus available: {default_jobs()} (os.cpu_count()={os.cpu_count()}); "
        f"load average: {', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )

    tmp = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    try:
        first = tmp / "0000.jpg"
        make_jpeg(first)
        paths = [str(first)]
        for i in range(1, args.files):  # same bytes, separate files (page cache keeps them hot)
            p = tmp / f"{i:04d}.jpg"
            shutil.copyfile(first, p)
            paths.append(str(p))
        print(f"{args.files} files of {first.stat().st_size:,} bytes (2000x1500 JPEG)")
        run_all(paths[:2], shrink, jobs=2)  # start the fork server outside the timings

        compare(
            f"decode+resize+encode, run_all jobs={args.jobs} vs jobs=1",
            ours=lambda: _run(paths, args.jobs),
            baseline=lambda: _run(paths, 1),
            items=args.files,
            unit="files",
            target=1.7,
        )
        compare(
            "same work, jobs=1 (worker process) vs jobs=0 (in-process): pool overhead",
            ours=lambda: _run(paths, 1),
            baseline=lambda: _run(paths, 0),
            items=args.files,
            unit="files",
        )
        tiny = list(range(5000))
        compare(
            "5000 no-op tasks, jobs=2 vs in-process: per-task overhead",
            ours=lambda: run_all(tiny, noop, jobs=2),
            baseline=lambda: run_all(tiny, noop, jobs=0),
            items=len(tiny),
            unit="tasks",
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
