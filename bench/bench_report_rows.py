"""The prep report at 10^3 .. 10^6 inputs (issue 28 item 5): the page's size, the time and peak
memory to write it, and headless Chromium's time to open it.

For each size a DIR/parts.jsonl of N inputs sent as URLs is made up (no media work: the cards
have placeholders, 1 in 50 failed). write_prep_report runs in a fresh process twice: the first
run also writes each input's row record (what the prep workers do during a real run), the
second only reads them (what a real run's end costs). Chromium's time is the wall time of
``chromium --headless --dump-dom`` on the page minus the same on an empty page, the median of
--loads, capped at --browser-timeout. With ``--baseline TREE`` (a checkout of an earlier
mediaprep, e.g. main before paging) the same is measured with that code in the same run and the
ratios printed.

    python bench/bench_report_rows.py [--sizes 1000,100000,1000000] [--baseline /work/main]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WRITE = """
import resource, sys, time
from mediaprep.report.html import write_prep_report
t = time.perf_counter()
write_prep_report(sys.argv[1])
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_parts(out: Path, n: int) -> None:
    out.mkdir(parents=True)
    with open(out / "parts.jsonl", "w") as fh:
        for i in range(n):
            name = f"in/photo-{i:07d}.jpg"
            line: dict[str, object] = {"path": name, "kind": "image", "ok": True,
                                       "outputs": [], "findings": []}
            if i % 50 == 49:
                line.update(ok=False, findings=[{
                    "code": "file.unreadable", "severity": "error",
                    "message": f"{name}: truncated: the JPEG has no end-of-image marker"}])
            fh.write(json.dumps(line) + "\n")


def write(tree: Path, out: Path, timeout: float) -> tuple[float, float] | None:
    """(seconds, peak RSS MiB) of write_prep_report with ``tree``'s code; None: timed out."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    try:
        got = subprocess.run([sys.executable, "-c", WRITE, str(out)], env=env, cwd=tree,
                             capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    seconds, rss_kib = got.stdout.split()
    return float(seconds), int(rss_kib) / 1024


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


def open_page(page: Path, timeout: float) -> float | None:
    exe = chromium()
    if exe is None:
        return None
    with tempfile.TemporaryDirectory(prefix="mediaprep-bench-chromium-") as profile:
        t = time.perf_counter()
        try:
            subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                            "--no-first-run", "--disable-background-networking",
                            f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
                           capture_output=True, timeout=timeout, check=True)
        except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
            return None
        return time.perf_counter() - t


def load_time(page: Path, empty: float, loads: int, timeout: float) -> float | None:
    times = []
    for _ in range(loads):
        t = open_page(page, timeout)
        if t is None:
            return None
        times.append(t)
    return max(0.0, statistics.median(times) - empty)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("rows-*.js"))


def measure(tree: Path, work: Path, n: int, args: argparse.Namespace, empty: float) -> dict:
    out = work / "out"
    make_parts(out, n)
    first = write(tree, out, args.write_timeout)
    again = write(tree, out, args.write_timeout) if first else None
    page = out / "report.html"
    row: dict[str, object] = {"first": first, "again": again}
    if page.exists() and again:
        row["page"] = page.stat().st_size
        row["chunks"] = folder_bytes(out / "report_files")
        row["open"] = load_time(page, empty, args.loads, args.browser_timeout)
    shutil.rmtree(out, ignore_errors=True)
    return row


def fmt(v: object, unit: str = "") -> str:
    if v is None:
        return "timeout"
    if isinstance(v, float):
        return f"{v:.2f}{unit}"
    return f"{v}{unit}"


def show(label: str, n: int, r: dict) -> None:
    first, again = r.get("first"), r.get("again")
    page = r.get("page")
    print(f"  {label:8s} {n:>9,}  write {fmt(first and first[0], ' s'):>9} "
          f"({fmt(first and round(first[1]), ' MiB')}) again {fmt(again and again[0], ' s'):>9} "
          f"({fmt(again and round(again[1]), ' MiB')})  page "
          f"{fmt(page and round(page / 2**20, 2), ' MiB'):>11} chunks "
          f"{fmt(r.get('chunks') is not None and round(r['chunks'] / 2**20, 1), ' MiB'):>9}"
          f"  chromium {fmt(r.get('open'), ' s')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--baseline", type=Path, default=None, help="an earlier mediaprep checkout")
    ap.add_argument("--loads", type=int, default=3, help="Chromium loads per page (median)")
    ap.add_argument("--browser-timeout", type=float, default=300.0)
    ap.add_argument("--write-timeout", type=float, default=3600.0)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    trees = [("paged", ROOT)] + ([("baseline", args.baseline)] if args.baseline else [])
    with tempfile.TemporaryDirectory(prefix="mediaprep-bench-rows-") as tmp:
        blank = Path(tmp) / "empty.html"
        blank.write_text("<!DOCTYPE html><title>empty</title>")
        empty = statistics.median(t for _ in range(args.loads)
                                  if (t := open_page(blank, 60)) is not None) \
            if chromium() else 0.0
        print(f"write_prep_report at N inputs (first: also writes the row records; again: "
              f"reads them); Chromium open time net of an empty page ({empty:.2f} s); "
              f"load average {os.getloadavg()[0]:.2f}")
        for n in sizes:
            results = {}
            for label, tree in trees:
                work = Path(tmp) / f"{label}-{n}"
                results[label] = measure(tree, work, n, args, empty)
                show(label, n, results[label])
            if args.baseline:
                a, b = results["paged"], results["baseline"]
                if a.get("open") and b.get("open"):
                    print(f"  {'':8s} {'':>9}  Chromium open: baseline / paged = "
                          f"{b['open'] / a['open']:.1f}x")
    print(f"peak RSS of this script's children: "
          f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
