"""`mediaprep prep` over 1,000 / 10,000 / 100,000 tiny generated images: time and peak RSS per
input, cold and rerun, against the floor of the same work done by hand in the same run.

    python bench/bench_scale.py [--sizes 1000,10000] [--jobs 2] [--report] [--plan 1000000]
                                [--executors 20000]

* cold: an empty output folder, no cache, no report.html (``--report``: with it; its paging is
  measured with the report). The baseline is a naive script over the same files (read,
  base64, one JSON line each; one process): what any tool must do per file.
* rerun: the same command again, every input finished. The baseline is a stat of every input
  in one Python process (the least a rerun can do to learn that nothing changed).
* --plan N: the parent's planning and journal work alone (walk-free: N names, no media) for a
  10^6-input figure without 10^6 files: plan_prep, journal lookups, the records the workers
  append, parts.jsonl, journal.idx, and a rerun's read of it; wall, CPU and peak RSS per stage.
* --executors N: N trivial tasks through the local pool and a Dask LocalCluster (2 workers):
  what dispatch alone costs an input. The baseline for Dask is plain ``client.map`` (one Dask
  task an input) on the same cluster; the ratio is its time / the dask executor's (which puts
  several inputs in a task, see mediaprep.tuning.DASK_INPUTS_PER_TASK).

Memory of the command's process tree (parent, fork server, workers), sampled every 20 ms: the
largest sum of RSS, the largest sum of PSS (shared pages shared out: what the tree takes), and
the parent's peak RSS. Ratios are baseline time / mediaprep time (below 1: mediaprep slower);
per input figures should stay flat as N grows (no step worse than N log N). The files are
generated once under the system temp folder and kept.
"""

from __future__ import annotations

import argparse
import contextlib
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from mediaprep.cli import main; main()"]
BASELINE_COLD = """
import base64, json, os, sys
out = open(sys.argv[2], "w")
for d, _, files in os.walk(sys.argv[1]):
    for f in sorted(files):
        p = os.path.join(d, f)
        with open(p, "rb") as fh:
            data = fh.read()
        out.write(json.dumps({"path": p, "url": "data:image/png;base64,"
                              + base64.b64encode(data).decode()}) + "\\n")
"""
BASELINE_RERUN = """
import os, sys
n = 0
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        os.stat(os.path.join(d, f)); n += 1
"""


def _png(i: int) -> bytes:
    """A distinct 16x16 grey+alpha PNG (no two inputs share bytes: no cache or dedup help)."""
    raw = b"".join(b"\0" + bytes([(i + y) & 255, (i >> 8) & 255] * 16) for y in range(16))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 4, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def folder(n: int) -> Path:
    src = Path(tempfile.gettempdir()) / f"mediaprep-bench-scale-{n}"
    done = src / ".complete"
    if not done.exists():
        src.mkdir(exist_ok=True)
        for i in range(n):
            d = src / f"d{i // 1000:04d}"
            d.mkdir(exist_ok=True)
            (d / f"f{i:07d}.png").write_bytes(_png(i))
        done.write_text("")
    return src


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, float,
                                                                     float]:
    """(wall s, CPU s of the tree, peak RSS MB summed over the tree, peak PSS MB of the tree,
    peak RSS MB of the parent). The RSS sum counts the pages the fork server shares with its
    workers once per process; PSS shares each page out among the processes that map it (what
    the tree takes from the machine). PSS is read every 10th sample (it walks the page tables)."""
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak = pss_peak = parent = 0.0
    cpu: dict[int, float] = {}
    sample = 0
    while proc.poll() is None:
        procs = _tree(proc)
        rss, pss = _memory(procs, with_pss=sample % 10 == 0)
        parent = max(parent, rss.get(proc.pid, 0) / 2**20)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                cpu[p.pid] = t.user + t.system + t.children_user + t.children_system
        peak = max(peak, sum(rss.values()) / 2**20)
        pss_peak = max(pss_peak, pss / 2**20)
        sample += 1
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {err[-2000:]}")
    return wall, sum(cpu.values()), peak, pss_peak, parent


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def _memory(procs: list[psutil.Process], with_pss: bool) -> tuple[dict[int, int], int]:
    """RSS of each process, and the sum of their PSS (0 when not read this time)."""
    rss: dict[int, int] = {}
    pss = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            rss[p.pid] = p.memory_info().rss
            if with_pss:
                pss += p.memory_full_info().pss
    return rss, pss


PLAN = r"""
import json, os, resource, shutil, sys, tempfile, time
from pathlib import Path
from mediaprep.batch.journal import (PrepJob, clean_journal, journal_hit, record_name,
                                     write_folders)
from mediaprep.batch.journal_index import JournalIndex, paused_gc
from mediaprep.batch.journal_log import JOURNAL_FOLDER, append_record, close_log
from mediaprep.batch.parts_file import PartsFile
from mediaprep.batch.tasks import plan_prep
from mediaprep.settings import make_settings

n = int(sys.argv[1])
rows = []


cpu = [time.process_time()]


def rss_now():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def stage(name, t0):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    now = time.process_time()
    rows.append((name, time.perf_counter() - t0, now - cpu[0], rss, rss_now()))
    cpu[0] = now


srcs = [f"/photos/{i // 1000:04d}/img_{i:07d}.jpg" for i in range(n)]
out = Path(tempfile.mkdtemp(prefix="mediaprep-plan-"))
state = out / ".mediaprep"
journal = state / JOURNAL_FOLDER
t = time.perf_counter()
with paused_gc():  # as prep_many plans
    tasks = plan_prep(srcs, out, make_settings(None))
stage("plan_prep (names, stems, tasks)", t)
t = time.perf_counter()
with paused_gc():  # a job is made when asked for (as prep's are), not held for every input
    names = [record_name(task.stem) for task in tasks]
stage("record names", t)
t = time.perf_counter()
index = JournalIndex(state)
misses = sum(journal_hit(PrepJob(task, str(journal), None, "0123456789ab", True), index, nm)
             is None for task, nm in zip(tasks, names))
stage("journal lookups (cold: all misses)", t)
t = time.perf_counter()
folders = sum(1 for _ in write_folders(out, (task.stem for task in tasks)))
stage("folders a sweep after a kill visits", t)
t = time.perf_counter()
for task, nm in zip(tasks, names):  # what the workers append (here in one process)
    stem = task.stem
    meta = {"name": nm, "jkey": "ab" * 32, "stem": stem, "display": task.display,
            "out_dir": task.out_dir,
            "outputs": [{"name": stem + ".jpg", "size": 70000, "mtime_ns": 1796635094188402430}],
            "thumbs": [{"name": f"report_files/{nm[:32]}.jpg", "size": 631}],
            "done": {"ok": True, "fixed": True, "status": task.display + ": fixed: rotated "
                     "(as its EXIF orientation says); re-encoded to JPEG 3000x4000, quality 92, "
                     "1.2 MiB", "changes": ["rotated", "re-encoded"], "warnings": [],
                     "codes": ["image.orientation"], "outputs": [stem + ".jpg"],
                     "bytes_in": 90000, "bytes_out": 70000}}
    line = (json.dumps({"path": task.display, "ok": True, "part": {"type": "image_url",
            "image_url": {"url": "file://" + task.out_dir + "/" + stem + ".jpg"}}}) + "\n")
    index.add(meta, append_record(journal, "0123456789ab", meta, line.encode()))
close_log()
stage("journal: append each record, index it", t)
t = time.perf_counter()
parts = PartsFile(out / "parts.jsonl", names, lambda i: index.line_at(names[i]),
                  lambda i: {"path": "missing"}, state)
with parts:
    for i in range(n):
        parts.done(i)
    parts.close()
stage("parts.jsonl: every line copied in order", t)
t = time.perf_counter()
index.write(names)
clean_journal(journal)  # as prep does: the index and parts.jsonl hold the logs' records now
stage("journal.idx written, logs removed", t)
size = (state / "journal.idx").stat().st_size + (state / "parts.idx").stat().st_size
del index, parts
t = time.perf_counter()
again = JournalIndex(state)
stage("rerun: journal.idx read", t)
t = time.perf_counter()
found = sum(again.line_at(nm) is not None for nm in names)
stage("rerun: each record and its line found", t)
assert found == n and misses == n, (found, misses)
shutil.rmtree(out)
print(f"planning and journal of {n:,} inputs (no media; journal.idx + parts.idx "
      f"{size / 2**20:.0f} MiB):")
print(f"  {'stage':42} {'wall s':>7} {'cpu s':>7} {'cpu us/input':>12} {'peak RSS MB':>11} "
      f"{'RSS after':>9}")
for name, sec, used, rss, now in rows:
    print(f"  {name:42} {sec:7.2f} {used:7.2f} {used / n * 1e6:12.1f} {rss:11.0f} {now:9.0f}")
"""


def plan_figure(n: int) -> None:
    """The parent's planning and journal work for n inputs, without media: names, stems,
    journal lookups, the records the workers append, parts.jsonl, the index, a rerun's read."""
    subprocess.run([sys.executable, "-c", PLAN, str(n)], check=True, cwd=ROOT)


EXECUTORS = r"""
import logging, resource, sys, time
from mediaprep.batch.folder import run_tasks

n, which = int(sys.argv[1]), sys.argv[2]
tasks = list(range(n))
options = {}
if which == "dask":
    import dask
    from distributed import Client, LocalCluster
    from mediaprep.batch.executors import SCHEDULER_CONFIG, get_executor

    with dask.config.set(SCHEDULER_CONFIG):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                               silence_logs=logging.ERROR)
    client = Client(cluster, set_as_default=False)
    executor = get_executor("dask", client=client)
    run_tasks(tasks[:20], abs, jobs=2, timeout=None, on_result=None, executor=executor,
              executor_options=None)  # warm: workers up
else:
    executor = "local"
    run_tasks(tasks[:20], abs, jobs=2, timeout=None, on_result=None, executor=executor,
              executor_options=None)
t0, c0 = time.perf_counter(), time.process_time()
out = run_tasks(tasks, abs, jobs=2, timeout=None, on_result=lambda i, o: None,
                executor=executor, executor_options=None)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
assert all(o.ok for o in out)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"  {which:6} {n:>9,} tasks {wall:8.2f} s {wall / n * 1e6:8.1f} us/task wall "
      f"{cpu / n * 1e6:8.1f} us/task parent CPU   parent peak RSS {rss:5.0f} MB")
if which == "dask":  # baseline: one Dask task an input, on the same cluster
    t0 = time.perf_counter()
    futures = client.map(abs, tasks, pure=False)
    for fut in futures:
        fut.add_done_callback(lambda f: None)
    client.gather(futures)
    base = time.perf_counter() - t0
    print(f"  dask, one task an input (client.map) {base:8.2f} s {base / n * 1e6:8.1f} us/task "
          f"wall   ratio {base / wall:6.1f}")
"""


def executors_figure(n: int) -> None:
    """What the executor itself costs per input: n trivial tasks (abs of an int) through the
    local pool and a Dask LocalCluster, both with 2 worker processes."""
    print(f"executors, {n:,} trivial tasks, 2 workers (the per-input cost of dispatch alone):")
    for which in ("local", "dask"):
        subprocess.run([sys.executable, "-c", EXECUTORS, str(n), which], check=True, cwd=ROOT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--report", action="store_true", help="write report.html (default: not)")
    ap.add_argument("--plan", type=int, default=0, help="also time planning of N inputs")
    ap.add_argument("--executors", type=int, default=0,
                    help="also time N trivial tasks through the local and Dask executors")
    args = ap.parse_args()
    if args.sizes:
        print(f"{'N':>7} {'run':6} {'wall s':>8} {'ms/in':>6} {'cpu s':>7} {'cpu ms/in':>9} "
              f"{'RSS sum':>7} {'PSS':>5} {'parent':>7} {'base s':>7} {'ratio':>6}")
    for n in [int(s) for s in args.sizes.split(",") if s]:
        scale_rows(n, args.jobs, args.report)
    if args.plan:
        plan_figure(args.plan)
    if args.executors:
        executors_figure(args.executors)


def scale_rows(n: int, jobs: int, report: bool) -> None:
    src = folder(n)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        cmd = [*CLI, "prep", str(src), "-o", str(out), "-j", str(jobs), "--no-cache", "-q",
               *([] if report else ["--no-report"])]
        rows = {}
        # interleaved: baseline, ours, baseline, ours (the machine's speed drifts)
        b_cold = timed([sys.executable, "-c", BASELINE_COLD, str(src), str(Path(tmp) / "b")])
        rows["cold"] = (timed(cmd), b_cold)
        b_rerun = timed([sys.executable, "-c", BASELINE_RERUN, str(src)])
        rows["rerun"] = (timed(cmd), b_rerun)
        for name, ((wall, cpu, rss, pss, parent), (bwall, *_)) in rows.items():
            print(f"{n:>7} {name:6} {wall:8.2f} {wall / n * 1000:6.2f} {cpu:7.2f} "
                  f"{cpu / n * 1000:9.3f} {rss:7.0f} {pss:5.0f} {parent:7.0f} {bwall:7.2f} "
                  f"{bwall / wall:6.2f}", flush=True)
        wall = rows["rerun"][0][0]
        print(f"{n:>7} rerun: {wall / n * 1000:.3f} ms an input "
              f"({'within' if wall / n <= 0.0005 else 'ABOVE'} the 0.5 ms target)", flush=True)


if __name__ == "__main__":
    main()
