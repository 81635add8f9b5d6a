"""What DIR/report.html costs: a cold `mediaprep prep` of ../shared/realmedia with and without
the report (--no-report), and the report alone.

Each round runs both commands (the real command line, a subprocess, start-up included) into a
new output folder with --no-cache, alternating which goes first (A B, B A, ...); the medians of
--rounds are compared (on a shared machine the same run varies by 20%), with the load average
printed beside them. Target (issue 15): with / without <= 1.10.
CPU seconds of the command and of its worker processes are printed too: the
difference is what the report costs in CPU, which a loaded machine does not blur as it blurs
wall time. "report alone" times write_prep_report on the same DIR twice: with the thumbnails
the workers made (what the run's end costs) and with none (a resume whose thumbnails are gone).

    python bench/bench_report.py [--realmedia PATH] [--rounds 3] [-j JOBS]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MEDIA = Path(os.environ.get("MEDIAPREP_REALMEDIA",
                                    ROOT.parent / "shared" / "realmedia"))


def prep(media: Path, out: Path, jobs: int | None, *extra: str) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "mediaprep", "prep", str(media), "-o", str(out), "--no-cache",
           "-q", *extra] + (["-j", str(jobs)] if jobs is not None else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The workers are the forkserver's children, not the command's: their CPU is read from
    # /proc while they run (sampled every 20 ms; the last few ms of each are missed).
    seen: dict[int, float] = {}
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    t = child.cpu_times()
                    seen[child.pid] = t.user + t.system
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    main = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, main + sum(seen.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--realmedia", type=Path, default=DEFAULT_MEDIA)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-j", "--jobs", type=int, default=None)
    args = ap.parse_args()
    media = args.realmedia
    if not media.is_dir():
        sys.exit(f"no real media at {media} (set MEDIAPREP_REALMEDIA)")
    walls: dict[str, list[float]] = {"with": [], "without": []}
    cpus: dict[str, list[float]] = {"with": [], "without": []}
    warm: list[float] = []
    cold: list[float] = []
    load0 = os.getloadavg()
    size = thumbs = 0
    with tempfile.TemporaryDirectory(prefix="mediaprep-bench-report-") as tmp:
        for r in range(args.rounds):
            order = ["with", "without"] if r % 2 == 0 else ["without", "with"]
            for which in order:
                out = Path(tmp) / f"{which}-{r}"
                extra = () if which == "with" else ("--no-report",)
                wall, used = prep(media, out, args.jobs, *extra)
                walls[which].append(wall)
                cpus[which].append(used)
                if which == "with":
                    page = out / "report.html"
                    size = page.stat().st_size if page.exists() else 0
                    folder = out / ".mediaprep" / "thumbs"
                    thumbs = sum(p.stat().st_size for p in folder.iterdir()) if folder.is_dir() \
                        else 0
                    sys.path.insert(0, str(ROOT))
                    from mediaprep.report.html import write_prep_report

                    t0 = time.perf_counter()  # the report alone, thumbnails as the run left them
                    write_prep_report(out)
                    warm.append(time.perf_counter() - t0)
                    shutil.rmtree(folder, ignore_errors=True)  # and with none left
                    t0 = time.perf_counter()
                    write_prep_report(out)
                    cold.append(time.perf_counter() - t0)
                shutil.rmtree(out, ignore_errors=True)
    n = sum(1 for _ in media.rglob("*") if _.is_file() and _.name != "MANIFEST.tsv")
    med = {k: statistics.median(v) for k, v in walls.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    ratio = med["with"] / med["without"]
    load1 = os.getloadavg()
    print(f"cold prep of {media} ({n} files), -j {args.jobs or 'default'}, median of "
          f"{args.rounds} rounds; load average {load0[0]:.2f} before, {load1[0]:.2f} after:")
    print(f"  without report  {med['without']:7.2f} s wall  {cpu['without']:7.2f} s CPU"
          f"   walls {' '.join(f'{w:.2f}' for w in walls['without'])}")
    print(f"  with report     {med['with']:7.2f} s wall  {cpu['with']:7.2f} s CPU"
          f"   walls {' '.join(f'{w:.2f}' for w in walls['with'])}")
    print(f"  ratio {ratio:.3f} wall (target <= 1.10), {cpu['with'] - cpu['without']:+.2f} s CPU")
    print(f"  report alone    {statistics.median(warm):7.2f} s with the run's thumbnails, "
          f"{statistics.median(cold):.2f} s making them all (in-process)")
    print(f"  report.html {size / 1024:.0f} KiB, thumbnails {thumbs / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
