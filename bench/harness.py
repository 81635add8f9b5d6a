"""Shared benchmark harness: time our path and a baseline in the same run, print the ratio.

Every benchmark in bench/ uses :func:`compare` so the numbers come out in one shape:

    name            ours  baseline   ratio   items/s (ours / baseline)

Timings are wall-clock, best of ``repeat`` runs, measured in this process. Peak memory, where a
benchmark needs it, comes from :func:`peak_rss_mb` run in a child process so one measurement
cannot inflate the next.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Timing:
    name: str
    seconds: float
    items: int
    extra: dict[str, Any]

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")


def time_it(name: str, fn: Callable[[], Any], items: int, repeat: int = 1) -> Timing:
    """Best wall time of ``repeat`` calls of ``fn``. ``fn`` may return a dict of extra numbers."""
    best = float("inf")
    extra: dict[str, Any] = {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        if dt < best:
            best = dt
            extra = out if isinstance(out, dict) else {}
    return Timing(name, best, items, extra)


def compare(
    title: str,
    ours: Callable[[], Any],
    baseline: Callable[[], Any],
    items: int,
    repeat: int = 1,
    unit: str = "items",
    target: float | None = None,
) -> float:
    """Run baseline and ours, print both and the speed ratio (baseline time / our time)."""
    b = time_it("baseline", baseline, items, repeat)
    o = time_it("mediaprep", ours, items, repeat)
    ratio = b.seconds / o.seconds if o.seconds > 0 else float("inf")
    print(f"\n== {title}")
    for t in (o, b):
        extras = " ".join(f"{k}={_fmt(v)}" for k, v in t.extra.items())
        print(f"  {t.name:<10} {t.seconds:8.3f} s  {t.per_second:10.1f} {unit}/s  {extras}")
    verdict = ""
    if target is not None:
        verdict = f"  (target >= {target:g}x: {'met' if ratio >= target else 'NOT met'})"
    print(f"  ratio      {ratio:8.2f}x faster than baseline{verdict}")
    return ratio


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _child(fn: Callable[[], Any], q: Any) -> None:
    out = fn()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    q.put((peak_kb / 1024.0, out))


def peak_rss_mb(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` (picklable, top-level) in a fresh process; return (peak RSS in MB, its result)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(fn, q))
    p.start()
    result = q.get()
    p.join()
    return result
