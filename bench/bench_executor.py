"""Files/s of ``prep`` work on the Dask executor against the local executor (run_all).

Each input is a photo-like 2000x1500 PNG prepared with ``max_side=1000`` (decode, resize, encode
to JPEG under the byte budget, re-check, write atomically): the per-file work of ``prep``. For 1
and 2 workers it prints the local executor (the baseline) against Dask on a LocalCluster that is
already running (the steady state of a cluster job), then once more with the cluster's start-up
and shutdown counted in (what ``--executor dask`` costs on one machine with no scheduler).

    python bench/bench_executor.py [--files 60]

Needs the extra: pip install 'mediaprep[dask]'.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_jobs import make_jpeg  # noqa: E402
from harness import compare, time_it  # noqa: E402

from mediaprep.batch.executors import SCHEDULER_CONFIG, get_executor  # noqa: E402
from mediaprep.batch.pool import default_jobs  # noqa: E402
from mediaprep.batch.tasks import plan_prep, prep_one  # noqa: E402
from mediaprep.settings import make_settings  # noqa: E402


def make_inputs(root: Path, n: int) -> list[str]:
    from PIL import Image

    first = root / "seed.jpg"
    make_jpeg(first)
    with Image.open(first) as im:
        im.load()
        paths = []
        for i in range(n):
            p = root / f"img{i:04d}.png"
            im.rotate(i % 4 * 90, expand=True).save(p, "PNG", compress_level=1)
            paths.append(str(p))
    first.unlink()
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=60)
    args = ap.parse_args()
    import dask
    from distributed import Client, LocalCluster

    print(f"cpus available: {default_jobs()}; load average: "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    root = Path(tempfile.mkdtemp(prefix="bench-executor-"))
    try:
        (root / "in").mkdir()
        inputs = make_inputs(root / "in", args.files)
        settings = make_settings(None, max_side=1000)
        local = get_executor("local")

        def run(executor, jobs: int, tag: str):  # noqa: ANN001, ANN202
            def go() -> dict[str, float]:
                out = root / f"out-{tag}"
                shutil.rmtree(out, ignore_errors=True)
                outcomes = executor.run(plan_prep(inputs, out, settings), prep_one,
                                        jobs=jobs, timeout=300)
                bad = [o for o in outcomes if not (o.ok and o.value["ok"])]
                if bad:
                    raise SystemExit(f"{len(bad)} inputs failed: {bad[0]}")
                return {"workers": jobs}
            return go

        for workers in (1, 2):
            with dask.config.set(SCHEDULER_CONFIG):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                       dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster, set_as_default=False)
            try:
                dask_ex = get_executor("dask", client=client)
                run(dask_ex, workers, "warm")()  # workers import mediaprep once
                compare(f"prep {args.files} PNGs, {workers} worker(s): dask (running cluster) "
                        f"vs local", run(dask_ex, workers, "dask"),
                        run(local, workers, "local"), args.files, unit="files")
            finally:
                client.close()
                cluster.close()
            t = time_it("dask+start", run(get_executor("dask"), workers, "cold"), args.files)
            print(f"  with cluster start-up: {t.seconds:8.3f} s  {t.per_second:10.1f} files/s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
