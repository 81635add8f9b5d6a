"""A cold ``prep`` run's per-input overhead beyond the media work (issue 28 item 4: <= 2 ms).

One folder of N small generated inputs (distinct bytes, so a cold run has no cache hit):
JPEGs sent as they are, PNGs that ``--max-side 64`` resizes, and a few short H.264 clips.
Three ways over the same inputs, interleaved round by round:

* **media**: the media work alone, in one process: the library call that probes, checks and
  prepares each input into an output folder (``prep_one`` of the run's own plan, the same
  settings), timed over the loop after a warm-up (no start-up, no journal, cache or report);
* **media + pictures**: the same, and each input's report thumbnails as a prep worker makes
  them (``thumbnail_line``: a video's strip is a decode of its own), so what is left of the
  full run's overhead is bookkeeping: journal, cache, row records, the page;
* **full**: ``mediaprep prep DIR -o OUT -j 1`` cold, a new cache folder, the report on (the
  default run);
* **bare**: the same with ``--no-cache --no-report``;
* **page**: the report's page alone as the parent writes it at the end (``write_prep_report``
  over a folder one full run prepared, timed in the process after a first write): the part of
  the full run's overhead that is the page.

A command's CPU is the whole process tree's (it runs under a child subreaper that adopts and
reaps every descendant), and its per-input figure is the slope between the N-input run and a
run over the first ``--small`` inputs (the same mix), so start-up and other fixed costs drop
out. The overhead is full - media and bare - media, per input, and beyond media + pictures.

``--paired`` adds the worker's share measured input by input in one process: each input
prepared as the media work alone, with its pictures, and as ``prep``'s worker step (journal,
cache, pictures), one after another in a rotating order, so that load coming and going falls
on all three alike (``--paired only``: just that). On a busy machine the command figures,
taken seconds apart, differ round to round by more than the overhead; these do not. The
parent's share (planning, the page, the index) is not in it: the page is measured alone.

``--baseline PATH`` runs the two commands with another checkout's code too (each round: ours,
then the baseline), for a before/after in one run. ``--strace`` counts system calls per
input (the slope between the two sizes, ``strace -f -c``) and files made per input in the
cache and the output folder.

    python bench/bench_overhead.py [--inputs 2000] [--small 200] [--rounds 3]
                                   [--baseline /path/to/other/checkout] [--strace]
                                   [--paired [only]]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER_VERSION = "1"
ARGS = ["--target", "dashscope", "--max-side", "64", "-j", "1", "-q"]
SYSCALLS = ("openat", "mkdir", "rename", "unlink", "write", "fsync", "getdents64",
            "newfstatat", "statx", "chmod")

# A child subreaper (Linux): adopts and reaps every descendant of the command, so the CPU of
# mediaprep's workers and fork server is counted; started small, so its peak RSS is its own.
_LAUNCHER = r"""
import ctypes, json, os, resource, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
rc = None
while True:
    try:
        got, status = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    if got == pid:
        rc = os.waitstatus_to_exitcode(status)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "cpu": ru.ru_utime + ru.ru_stime, "rss": ru.ru_maxrss / 1024}))
"""

# The media work alone: the run's own plan and settings, prep_one per input, CPU of the loop;
# with "thumbs", also each input's report pictures, as a prep worker makes them.
_MEDIA = r"""
import json, sys, time
from pathlib import Path
from mediaprep.batch.tasks import plan_prep, prep_one
from mediaprep.report.html import thumbnail_line
from mediaprep.settings import make_settings
folder, out, warm, warm_out, thumbs = sys.argv[1:6]
settings = make_settings(target="dashscope", max_side=64)

def one(task):
    line = prep_one(task, preview=thumbs == "thumbs")
    if thumbs == "thumbs":
        thumbnail_line(task.out_dir, line, task.source, previews=line.previews)
    return bool(line.get("ok"))

def inputs(where):
    return sorted(str(p) for p in Path(where).iterdir() if not p.name.startswith("."))

for task in plan_prep(inputs(warm), warm_out, settings):
    one(task)  # imports and first-call costs, not counted
tasks = plan_prep(inputs(folder), out, settings)
kinds = {}  # file suffix -> [inputs, CPU seconds]
ok = 0
for task in tasks:
    t0 = time.process_time()
    ok += one(task)
    kind = kinds.setdefault(Path(task.source).suffix, [0, 0.0])
    kind[0] += 1
    kind[1] += time.process_time() - t0
print(json.dumps({"cpu": sum(c for _, c in kinds.values()), "ok": ok,
                  "kinds": {k: c / n for k, (n, c) in kinds.items()}}))
"""

# The worker's share of the overhead, paired input by input in one process: each input is
# prepared three ways one after another (the media work alone; with its report pictures; the
# whole worker step with journal, cache and pictures, as ``prep`` runs it), in a rotating order,
# so load that comes and goes falls on all three alike (the command figures take seconds apart
# and on a busy machine differ by more than the overhead). The three outputs go to three folders.
_PAIRED = r"""
import json, os, sys, time
from pathlib import Path
from mediaprep.batch.journal import PrepJob, prep_job
from mediaprep.batch.tasks import plan_prep, prep_one
from mediaprep.output import new_run_id
from mediaprep.report.html import thumbnail_line
from mediaprep.settings import make_settings
folder, work, warm = sys.argv[1:4]
settings = make_settings(target="dashscope", max_side=64)

def inputs(where):
    return sorted(str(p) for p in Path(where).iterdir() if not p.name.startswith("."))

def ways(where, items):
    run_id = new_run_id()
    journal = Path(where) / "journal"
    journal.mkdir(parents=True)
    cache = str(Path(where) / "cache")

    def media(task):
        prep_one(task)

    def pictures(task):
        line = prep_one(task, preview=True)
        thumbnail_line(task.out_dir, line, task.source, previews=line.previews)

    def full(task):
        prep_job(PrepJob(task, str(journal), cache, run_id, thumbs=True))

    plans = [plan_prep(items, Path(where) / name, settings)
             for name in ("media", "pictures", "full")]
    return list(zip(*plans, strict=True)), (media, pictures, full)

pairs, fns = ways(Path(work) / "warm", inputs(warm))
for tasks in pairs:  # imports and first-call costs, not counted
    for fn, task in zip(fns, tasks):
        fn(task)
pairs, fns = ways(Path(work) / "run", inputs(folder))
got = []  # per input: suffix, CPU of each way
for i, tasks in enumerate(pairs):
    cpu = [0.0, 0.0, 0.0]
    for k in range(3):
        way = (i + k) % 3  # rotating: no way always runs first, on cold caches
        t0 = time.process_time()
        fns[way](tasks[way])
        cpu[way] = time.process_time() - t0
    got.append((Path(tasks[0].source).suffix, *cpu))
print(json.dumps({"rows": got}))
"""


# The report's page alone, as the parent writes it at a run's end (rows from the workers'
# thumbnails and records, the HTML, the chunk files): over a folder a full run prepared, timed
# after a first write (imports and first-call costs, not counted).
_PAGE = r"""
import json, sys, time
from mediaprep.report.html import write_prep_report
from mediaprep.settings import make_settings
out = sys.argv[1]
settings = make_settings(target="dashscope", max_side=64)
write_prep_report(out, settings=settings)
t0 = time.process_time()
write_prep_report(out, settings=settings)
print(json.dumps({"cpu": time.process_time() - t0}))
"""


def generate(folder: Path, n: int) -> Path:
    """N inputs, 45% JPEG 64x48 (sent as is), 45% PNG 128x96 (resized), 10% 3 s clips."""
    stamp = folder / ".complete"
    if stamp.exists() and stamp.read_text() == f"{FOLDER_VERSION} {n}":
        return folder
    import numpy as np
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from tests.videogen import make_video

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(28)
    for i in range(n):
        if i % 10 == 9:
            seed = int(rng.integers(1 << 30))
            make_video(folder / f"v{i:06d}.mp4", n_frames=30, fps=10,
                       frame_fn=lambda j, s=seed: _noise(s + j, 64, 48))
            continue
        big = i % 2 == 1
        pixels = _noise(int(rng.integers(1 << 30)), 128 if big else 64, 96 if big else 48)
        if big:
            Image.fromarray(pixels).save(folder / f"p{i:06d}.png")
        else:
            Image.fromarray(pixels).save(folder / f"j{i:06d}.jpg", quality=85)
    stamp.write_text(f"{FOLDER_VERSION} {n}")
    return folder


def _noise(seed: int, w: int, h: int):  # noqa: ANN202 - numpy only imported when generating
    import numpy as np

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (1, 1, 3))
    return np.clip(base + rng.integers(-40, 40, (h, w, 3)), 0, 255).astype("uint8")


def subset(folder: Path, k: int, dest: Path) -> Path:
    """The first ``k`` inputs in generation order (the same mix of kinds as the whole folder),
    hard-linked into ``dest`` (same bytes, no copy)."""
    stamp = dest / ".complete"
    if stamp.exists() and stamp.read_text() == f"{FOLDER_VERSION} {k}":
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    inputs = sorted((q for q in folder.iterdir() if not q.name.startswith(".")),
                    key=lambda q: q.name[1:])  # j000000.jpg, p000001.png, ..., v000009.mp4
    for p in inputs[:k]:
        os.link(p, dest / p.name)
    stamp.write_text(f"{FOLDER_VERSION} {k}")
    return dest


def launch(cmd: list[str], root: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True,
                          text=True, env=env, cwd=root)  # fmt: skip
    *said, last = proc.stdout.strip().splitlines()
    got = json.loads(last)  # the launcher's figures, for the whole process tree
    if got["rc"] not in (0, 1):  # 1: some inputs failed, which this mix has none of
        raise RuntimeError(f"{cmd[:4]} exit {got['rc']}: {proc.stderr[-800:]}")
    if said and said[-1].startswith("{"):  # the command's own figures (the media loop's)
        got["own"] = json.loads(said[-1])
    return got


def prep_cmd(folder: Path, out: Path, cache: Path | None) -> list[str]:
    shutil.rmtree(out, ignore_errors=True)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
    extra = ["--cache-dir", str(cache)] if cache is not None else ["--no-cache", "--no-report"]
    return [sys.executable, "-m", "mediaprep", "prep", str(folder), "-o", str(out), *ARGS,
            *extra]


def media_cpu(root: Path, folder: Path, warm: Path, work: Path, thumbs: bool = False
              ) -> tuple[float, dict[str, float]]:
    """CPU seconds an input of the media work alone (``thumbs``: and the report's pictures),
    and by kind (file suffix: seconds an input of that kind)."""
    out, warm_out = work / "media-out", work / "media-warm"
    for d in (out, warm_out):
        shutil.rmtree(d, ignore_errors=True)
    got = launch([sys.executable, "-c", _MEDIA, str(folder), str(out), str(warm),
                  str(warm_out), "thumbs" if thumbs else "-"], root)
    n = len([p for p in folder.iterdir() if not p.name.startswith(".")])
    # the loop's CPU as the script measured it: the process's (what launch returns) also holds
    # its start-up, imports and warm-up, 0.3 ms an input at 2,000, which made the media work
    # look larger and the overhead smaller by as much
    return got["own"]["cpu"] / n, got["own"]["kinds"]


def paired_cpu(root: Path, folder: Path, warm: Path, work: Path) -> dict[str, float]:
    """The worker's overhead an input, paired (:data:`_PAIRED`): the mean over inputs of the
    whole worker step less the media work ("worker"), and less the media work and pictures
    ("worker beyond pictures"), in seconds; and the pictures' share ("pictures")."""
    shutil.rmtree(work / "paired", ignore_errors=True)
    got = launch([sys.executable, "-c", _PAIRED, str(folder), str(work / "paired"), str(warm)],
                  root)["own"]["rows"]
    shutil.rmtree(work / "paired", ignore_errors=True)
    media, pictures, full = ([row[k] for row in got] for k in (1, 2, 3))
    n = len(got)
    return {"worker": (sum(full) - sum(media)) / n,
            "worker beyond pictures": (sum(full) - sum(pictures)) / n,
            "pictures": (sum(pictures) - sum(media)) / n}


def page_cpu(root: Path, prepared: Path, n: int) -> float:
    """CPU seconds an input of the report's page alone (:data:`_PAGE`) over ``prepared``."""
    return launch([sys.executable, "-c", _PAGE, str(prepared)], root)["own"]["cpu"] / n


def command_slope(root: Path, mode: str, big: Path, small: Path, work: Path
                  ) -> tuple[float, float]:
    """(CPU seconds an input, peak RSS MB of the N run) of a cold prep in ``mode``."""
    runs = {}
    for folder in (small, big):
        cache = work / "cache" if mode == "full" else None
        runs[folder] = launch(prep_cmd(folder, work / "out", cache), root)
    n_big, n_small = (len([p for p in f.iterdir() if not p.name.startswith(".")])
                      for f in (big, small))
    slope = (runs[big]["cpu"] - runs[small]["cpu"]) / (n_big - n_small)
    return slope, runs[big]["rss"]


def strace_counts(root: Path, mode: str, folder: Path, work: Path) -> dict[str, int]:
    """System calls of a cold prep in ``mode`` (whole tree), by name."""
    cache = work / "cache" if mode == "full" else None
    log = work / "strace.txt"
    cmd = ["strace", "-f", "-c", "-o", str(log), *prep_cmd(folder, work / "out", cache)]
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run(cmd, capture_output=True, env=env, cwd=root, check=False)
    counts: dict[str, int] = {}
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit():
            counts[parts[-1]] = int(parts[3])
    return counts


def files_made(work: Path) -> dict[str, int]:
    """Files and folders the last full run left in its cache and its output folder."""
    out: dict[str, int] = {}
    for name, top in (("cache", work / "cache"), ("report_files", work / "out" / "report_files"),
                      ("state", work / "out" / ".mediaprep")):
        files = dirs = 0
        for _, ds, fs in os.walk(top):
            files += len(fs)
            dirs += len(ds)
        out[f"{name} files"], out[f"{name} dirs"] = files, dirs
    return out


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def per_syscall(root: Path, mode: str, big: Path, small: Path, work: Path) -> dict[str, float]:
    counts = {f: strace_counts(root, mode, f, work) for f in (small, big)}
    n = [len([p for p in f.iterdir() if not p.name.startswith(".")]) for f in (small, big)]
    return {s: (counts[big].get(s, 0) - counts[small].get(s, 0)) / (n[1] - n[0])
            for s in SYSCALLS}


Figures = dict[str, dict[str, list[float]]]  # checkout -> what -> one value a round


def run_rounds(roots: dict[str, Path], rounds: int, big: Path, small: Path, warm: Path,
               work: Path, paired: bool | str = False) -> Figures:
    """Every measure for every checkout, the checkouts in turn within each round."""
    got: Figures = {c: {} for c in roots}
    # one folder prepared (by our code) whose page every checkout writes again, in each round
    prepared = work / "page-out"
    if paired != "only":
        launch(prep_cmd(big, prepared, work / "page-cache"), ROOT)
    for r in range(rounds):
        for code, root in roots.items():
            mine = got[code]
            if paired != "only":
                _measure_commands(mine, root, big, small, warm, work, prepared)
            if paired:
                _measure_paired(mine, root, big, warm, work)
            print(f"round {r + 1} {code}: {_round_words(mine)} ms CPU an input "
                  f"(load {load()})", flush=True)
    return got


def _measure_commands(mine: dict[str, list[float]], root: Path, big: Path, small: Path,
                      warm: Path, work: Path, prepared: Path) -> None:
    """One round of the media work, the two commands and the page, for the code at ``root``."""
    for what, thumbs in (("media", False), ("pictures", True)):
        cpu, kinds = media_cpu(root, big, warm, work, thumbs=thumbs)
        mine.setdefault(what, []).append(cpu)
        for kind, k_cpu in kinds.items():
            mine.setdefault(f"{what} {kind}", []).append(k_cpu)
    for mode in ("full", "bare"):
        cpu, rss = command_slope(root, mode, big, small, work)
        mine.setdefault(mode, []).append(cpu)
        mine.setdefault(f"{mode} rss", []).append(rss)
    n = len([p for p in big.iterdir() if not p.name.startswith(".")])
    mine.setdefault("page", []).append(page_cpu(root, prepared, n))


def _measure_paired(mine: dict[str, list[float]], root: Path, big: Path, warm: Path,
                    work: Path) -> None:
    for what, cpu in paired_cpu(root, big, warm, work).items():
        mine.setdefault(f"paired {what}", []).append(cpu)


_ROUND_WORDS = (("media", "media"), ("pictures", "+pictures"), ("full", "full"),
                ("bare", "bare"), ("page", "page"), ("paired worker", "paired worker"),
                ("paired worker beyond pictures", "beyond pictures"))


def _round_words(mine: dict[str, list[float]]) -> str:
    """This round's figures, in ms an input: ``media 1.66, +pictures 2.77, ...``."""
    return ", ".join(f"{label} {mine[what][-1] * 1e3:.2f}" for what, label in _ROUND_WORDS
                     if what in mine)


def print_figures(got: Figures) -> None:
    for code, mine in got.items():
        print(f"{code}:")
        if "media" not in mine:  # --paired only
            _print_paired(mine)
            continue
        media, pictures = mine["media"], mine["pictures"]
        print(f"  {'media work alone':<30}{_mm(media)}")
        print(f"  {'media + report pictures':<30}{_mm(pictures)}")
        for kind in sorted(k[len("media "):] for k in mine if k.startswith("media .")):
            extra = [p - m for p, m in zip(mine[f"pictures {kind}"], mine[f"media {kind}"],
                                           strict=True)]
            print(f"    {'pictures of a ' + kind:<28}{_mm(extra)}   (an input of that kind)")
        for mode, label in (("full", "prep cold, cache+report"),
                            ("bare", "prep --no-cache --no-report")):
            over = _mm([m - x for m, x in zip(mine[mode], media, strict=True)])
            beyond = _mm([m - x for m, x in zip(mine[mode], pictures, strict=True)])
            print(f"  {label:<30}{_mm(mine[mode])}   overhead {over}   (beyond media + "
                  f"pictures {beyond})   peak RSS {max(mine[f'{mode} rss']):.0f} MB")
        print(f"  {'report page alone (parent)':<30}{_mm(mine['page'])}   (part of full's "
              "overhead beyond media + pictures)")
        _print_paired(mine)


def _print_paired(mine: dict[str, list[float]]) -> None:
    for what in ("worker", "worker beyond pictures", "pictures"):
        if f"paired {what}" in mine:
            print(f"  {'paired: ' + what:<30}{_mm(mine[f'paired {what}'])}   (in one "
                  "process, input by input: the worker's share)")


def print_counts(roots: dict[str, Path], big: Path, small: Path, work: Path, n: int) -> None:
    """System calls an input (both modes) and files the full run left an input."""
    for code, root in roots.items():
        for mode in ("full", "bare"):
            calls = per_syscall(root, mode, big, small, work)  # the N-input run comes last
            print(f"{code} {mode}: syscalls an input: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in calls.items() if v))
            if mode == "full":
                print(f"{code} full: left an input: "
                      + ", ".join(f"{k} {v / n:.2f}" for k, v in files_made(work).items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=2000)
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="another checkout whose code runs as 'baseline' in the same rounds")
    ap.add_argument("--strace", action="store_true", help="also count system calls and files")
    ap.add_argument("--paired", nargs="?", const=True, default=False, choices=[True, "only"],
                    help="also the worker's share paired input by input in one process (steady "
                         "on a busy machine, where the command figures are not); 'only': just "
                         "that")
    ap.add_argument("--folder", type=Path,
                    default=Path(tempfile.gettempdir()) / "mediaprep-bench-overhead")
    a = ap.parse_args()
    big = generate(a.folder / "inputs", a.inputs)
    small = subset(big, a.small, a.folder / f"first{a.small}")
    warm = subset(big, 10, a.folder / "first10")
    work = a.folder / "work"
    roots = {"ours": ROOT, **({"baseline": a.baseline.resolve()} if a.baseline else {})}
    got = run_rounds(roots, a.rounds, big, small, warm, work, a.paired)
    print(f"\n{a.inputs} inputs (slope against {a.small}), {a.rounds} rounds, CPU of the whole "
          "process tree; min / median, ms an input")
    print_figures(got)
    print(f"load after: {load()}")
    if a.strace:
        print_counts(roots, big, small, work, a.inputs)


def _mm(values: list[float]) -> str:
    return f"{min(values) * 1e3:6.2f} / {statistics.median(values) * 1e3:6.2f}"


if __name__ == "__main__":
    main()
