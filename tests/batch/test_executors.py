"""Executors: local (run_all) and dask (a real local Dask cluster started here), manifests.

The Dask tests start a LocalCluster of several worker processes on this machine and skip when
Dask distributed is not installed (``pip install 'mediaprep[dask]'``).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mediaprep.batch.executors import EXECUTORS, ExecutorUnavailable, LocalExecutor, get_executor
from mediaprep.batch.inputs import ManifestError, read_manifest
from mediaprep.batch.pool import Outcome
from mediaprep.batch.tasks import check_one, plan_check, plan_prep, prep_one
from mediaprep.settings import make_settings

# --- helpers run in workers (top-level so they pickle by reference) ----------------------------


def double(x: int) -> int:
    return 2 * x


def fails_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x


def hangs_on(x: int, bad: int) -> int:
    if x == bad:
        time.sleep(120)
    return x


def hangs_on_one(x: int) -> int:
    if x == 1:
        time.sleep(120)
    return x


def dies_on_two(x: int) -> int:
    if x == 2:
        # Let the other tasks finish first: a task that shares a worker with one that kills it
        # is counted as a suspect by Dask's scheduler too (see mediaprep.batch.executors).
        time.sleep(1.0)
        os._exit(7)
    return x


def with_task_key(x: int) -> tuple[int, str]:
    """``x`` and the key of the Dask task that ran it."""
    from distributed import get_worker

    return x, str(get_worker().get_current_task())


def dies_on(x: int, bad: int) -> int:
    if x == bad:
        time.sleep(1.0)  # as dies_on_two: the other tasks finish first
        os._exit(7)
    return x


def held_prep(task, *, log: str, hold: str, held: str):  # noqa: ANN001, ANN201
    """prep_one, after noting the start in ``log``. The first run of input ``hold`` writes its
    worker's pid to the file ``held`` and waits there to be killed: the kill lands mid-task
    whatever the machine's load (the retry finds ``held`` and goes on)."""
    with open(log, "a", encoding="utf-8") as fh:  # O_APPEND: one short write per line
        fh.write(task.source + "\n")
    if task.source == hold and _claim(held):
        time.sleep(KILL_WAIT_SECONDS)  # the test kills this worker long before this ends
    return prep_one(task)


def _claim(held: str) -> bool:
    """Write this process's pid to ``held`` unless it exists: linked whole and at once, so the
    test never reads a partial pid (and the retry, finding it, is not held)."""
    mine = f"{held}.{os.getpid()}"
    with open(mine, "w", encoding="utf-8") as fh:
        fh.write(str(os.getpid()))
    try:
        os.link(mine, held)
    except FileExistsError:
        return False
    finally:
        os.unlink(mine)
    return True


#: How long the test waits for the held task to start, and the held task for its kill: far
#: beyond either on a loaded machine (each wait ends as soon as the other side acts).
KILL_WAIT_SECONDS = 120.0


# --- inputs -----------------------------------------------------------------------------------


def make_inputs(root: Path) -> list[str]:
    """12 images: ordinary ones (same names in two folders), ones that need fixing, a broken one."""
    rng = np.random.default_rng(0)
    for sub in ("a", "b"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(8):
        arr = rng.integers(0, 255, (48 + 8 * i, 64 + 5 * i, 3), dtype=np.uint8)
        ext = "png" if i % 2 else "jpg"
        Image.fromarray(arr).save(root / ("a" if i < 4 else "b") / f"img{i % 4}.{ext}")
    Image.new("RGB", (8, 300), (10, 20, 30)).save(root / "a" / "thin.png")  # too small: padded
    Image.new("RGB", (3000, 12), (10, 20, 30)).save(root / "b" / "wide.png")  # aspect: fails
    Image.new("P", (40, 40), 3).save(root / "b" / "red.gif")
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0not a jpeg")  # unreadable
    paths = sorted(str(p) for p in root.rglob("*") if p.is_file())
    assert len(paths) == 12
    return paths


def strip_timing(value):  # noqa: ANN001, ANN201
    if isinstance(value, dict):
        return {k: strip_timing(v) for k, v in value.items()
                if k not in ("elapsed", "seconds", "duration_s", "wall")}
    if isinstance(value, list):
        return [strip_timing(v) for v in value]
    return value


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def write_parts(out: Path, outcomes: list[Outcome]) -> None:
    """What prep writes: one line per input, in input order."""
    lines = [json.dumps(o.value, ensure_ascii=False) for o in outcomes]
    (out / "parts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return make_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def local_run(inputs: list[str], tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    out = tmp_path_factory.mktemp("out-local")
    outcomes = LocalExecutor().run(plan_prep(inputs, out, make_settings(None)), prep_one,
                                   jobs=2, timeout=60)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    write_parts(out, outcomes)
    return out, outcomes


# --- no engine needed ---------------------------------------------------------------------------


def test_get_executor_names_and_unknown() -> None:
    assert EXECUTORS == ("local", "dask")
    assert isinstance(get_executor("local"), LocalExecutor)
    with pytest.raises(ValueError, match="unknown executor"):
        get_executor("spark")


def test_missing_engine_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "distributed" else real(name, *a))
    with pytest.raises(ExecutorUnavailable, match=r"pip install 'mediaprep\[dask\]'") as info:
        get_executor("dask")
    assert info.value.exit_code == 2


def test_local_executor_is_run_all() -> None:
    seen: list[int] = []
    outcomes = get_executor("local").run([1, 2, 3, 4], fails_on_three, jobs=2, timeout=30,
                                         on_result=lambda i, o: seen.append(i))
    assert [o.value for o in outcomes] == [1, 2, None, 4]
    assert outcomes[2].error is not None and outcomes[2].error.kind == "exception"
    assert sorted(seen) == [0, 1, 2, 3]


def test_manifest(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    m = tmp_path / "sub" / "list.txt"
    m.write_text(
        "\ufeff# inputs\n\n  photos/a.jpg  \n/abs/b.mp4\nhttps://example.com/c.png\n"
        "../up.png\nphotos/a.jpg\n# photos/skipped.jpg\nname#hash.png\n",
        encoding="utf-8",
    )
    assert read_manifest(m) == [
        str(tmp_path / "sub" / "photos" / "a.jpg"),
        "/abs/b.mp4",
        "https://example.com/c.png",
        str(tmp_path / "up.png"),
        str(tmp_path / "sub" / "name#hash.png"),
    ]
    with pytest.raises(ManifestError):
        read_manifest(tmp_path / "missing.txt")


def test_plan_prep_names_are_deterministic_and_distinct(inputs: list[str], tmp_path: Path,
                                                        ) -> None:
    s = make_settings(None)
    a = plan_prep(inputs, tmp_path, s)
    b = plan_prep(list(inputs), tmp_path, s)
    assert [t.stem for t in a] == [t.stem for t in b]
    assert len({t.stem.lower() for t in a}) == len(a)  # a/img0.jpg vs b/img0.jpg etc.
    assert all(not Path(t.stem).is_absolute() and ".." not in t.stem for t in a)
    urls = plan_prep(["https://example.com/x/y.png"], tmp_path, s)
    assert urls[0].stem == "example.com/x/y"


def test_manifest_feeds_plan_like_a_folder(inputs: list[str], tmp_path: Path) -> None:
    root = Path(os.path.commonpath(inputs))
    m = root / "inputs.txt"
    m.write_text("\n".join(os.path.relpath(p, root) for p in inputs) + "\n", encoding="utf-8")
    try:
        s = make_settings(None)
        assert plan_prep(read_manifest(m), tmp_path, s) == plan_prep(inputs, tmp_path, s)
    finally:
        m.unlink()


# --- on a real local Dask cluster -------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():  # noqa: ANN201
    pytest.importorskip("distributed")
    import dask
    from distributed import Client, LocalCluster

    # One retry: a task that kills its worker twice is a "crash" (keeps the test short).
    from mediaprep.batch.executors import SCHEDULER_CONFIG

    with dask.config.set({**SCHEDULER_CONFIG, "distributed.scheduler.allowed-failures": 1}):
        lc = LocalCluster(n_workers=3, threads_per_worker=1, processes=True,
                          memory_limit="600MB", dashboard_address=None, silence_logs=50)
        client = Client(lc, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
            lc.close()


@pytest.fixture
def dask_ex(cluster):  # noqa: ANN001, ANN201
    return get_executor("dask", client=cluster)


def test_dask_contract(dask_ex) -> None:  # noqa: ANN001
    seen: list[int] = []
    outcomes = dask_ex.run(list(range(10)), fails_on_three, jobs=2, timeout=30,
                           on_result=lambda i, o: seen.append(i))
    assert [o.value for o in outcomes] == [0, 1, 2, None, 4, 5, 6, 7, 8, 9]
    err = outcomes[3].error
    assert err is not None and err.kind == "exception" and err.type == "ValueError"
    assert "three is bad" in err.message
    assert sorted(seen) == list(range(10))
    assert dask_ex.run([], double) == []
    assert [o.value for o in dask_ex.run([1, 2], double, jobs=0)] == [2, 4]
    with pytest.raises(ValueError):
        dask_ex.run([1], double, timeout=0)


def test_dask_prep_matches_local(dask_ex, inputs, local_run, tmp_path: Path) -> None:  # noqa: ANN001
    local_out, local_outcomes = local_run
    out = tmp_path / "out"
    outcomes = dask_ex.run(plan_prep(inputs, out, make_settings(None)), prep_one, jobs=3,
                           timeout=60)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    write_parts(out, outcomes)
    assert strip_timing([o.value for o in outcomes]) == strip_timing(
        [o.value for o in local_outcomes])
    records = [o.value for o in outcomes]
    failed = {Path(r["path"]).name for r in records if not r["ok"]}
    assert {"broken.jpg", "wide.png"} <= failed
    assert {f["code"] for r in records for f in r["findings"]} >= {
        "file.unreadable", "image.aspect_ratio", "image.too_small"}
    assert tree(out) == tree(local_out)  # parts.jsonl and every output, byte for byte


def test_dask_check_matches_local(dask_ex, inputs) -> None:  # noqa: ANN001
    tasks = plan_check(inputs, make_settings(None))
    local = LocalExecutor().run(tasks, check_one, jobs=2, timeout=60)
    remote = dask_ex.run(tasks, check_one, jobs=3, timeout=60)
    assert [o.value for o in remote] == [o.value for o in local]
    assert [r.value["ok"] for r in remote].count(False) >= 2


def test_dask_timeout_kills_only_that_task(dask_ex) -> None:  # noqa: ANN001
    outcomes = dask_ex.run([0, 1, 2, 3], hangs_on_one, jobs=3, timeout=2)
    assert [o.value for o in outcomes] == [0, None, 2, 3]
    err = outcomes[1].error
    assert err is not None and err.kind == "timeout"


def test_dask_task_that_keeps_killing_workers_is_a_crash(dask_ex) -> None:  # noqa: ANN001
    outcomes = dask_ex.run([0, 1, 2, 3], dies_on_two, jobs=3, timeout=60)
    assert [o.value for o in outcomes] == [0, 1, None, 3]
    err = outcomes[2].error
    assert err is not None and err.kind == "crash" and err.type == "KilledWorker"


def test_dask_runs_many_inputs_per_task(dask_ex) -> None:  # noqa: ANN001
    """10^6 inputs must not be 10^6 Dask tasks (about 20 ms each to dispatch): inputs go in
    chunks, and the contract holds per input (order, one on_result each)."""
    seen: list[int] = []
    outcomes = dask_ex.run(list(range(400)), with_task_key, jobs=3, timeout=30,
                           on_result=lambda i, o: seen.append(i))
    assert [o.value[0] for o in outcomes] == list(range(400))
    assert sorted(seen) == list(range(400))
    keys = [o.value[1] for o in outcomes]
    assert len(set(keys)) <= 400 // 8  # several inputs a task (today: one task an input)
    assert len(set(keys)) >= 3  # ... and still spread over the workers
    # A chunk is consecutive inputs.
    assert all(keys[i] == keys[i - 1] or keys[i] not in keys[:i] for i in range(1, 400))


def test_dask_hung_input_times_out_alone_in_its_chunk(dask_ex) -> None:  # noqa: ANN001
    """24 inputs on 3 workers: chunks of 2; input 7 shares its chunk with input 6."""
    outcomes = dask_ex.run(list(range(24)), functools.partial(hangs_on, bad=7), jobs=3,
                           timeout=2)
    assert [o.value for o in outcomes] == [None if i == 7 else i for i in range(24)]
    err = outcomes[7].error
    assert err is not None and err.kind == "timeout"


def test_dask_input_that_kills_its_chunk_crashes_alone(dask_ex) -> None:  # noqa: ANN001
    """Input 23 shares its chunk with input 22 (24 inputs, 3 workers: chunks of 2): after the
    chunk's worker dies on every retry, 22 is run again alone and only 23 is a crash."""
    outcomes = dask_ex.run(list(range(24)), functools.partial(dies_on, bad=23), jobs=3,
                           timeout=60)
    assert [o.value for o in outcomes] == [None if i == 23 else i for i in range(24)]
    err = outcomes[23].error
    assert err is not None and err.kind == "crash" and err.type == "KilledWorker"


def test_dask_worker_killed_mid_run(cluster, inputs, local_run, tmp_path: Path) -> None:  # noqa: ANN001
    """SIGKILL a worker while it runs a task: the job completes, nothing lost or duplicated."""
    local_out, local_outcomes = local_run
    out = tmp_path / "out"
    log = tmp_path / "starts.log"
    held = tmp_path / "held.pid"  # the held task's worker, written when it starts
    hold = inputs[0]
    fn = functools.partial(held_prep, log=str(log), hold=hold, held=str(held))
    killed: list[int] = []
    reported: list[int] = []

    def kill_the_held_worker() -> None:
        # waits for the held task to start (it then waits for this), not for a guessed time
        end = time.monotonic() + KILL_WAIT_SECONDS
        while time.monotonic() < end:
            if held.is_file():
                killed.append(int(held.read_text(encoding="utf-8")))
                os.kill(killed[0], signal.SIGKILL)
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_the_held_worker, daemon=True)
    killer.start()
    ex = get_executor("dask", client=cluster)
    outcomes = ex.run(plan_prep(inputs, out, make_settings(None)), fn, jobs=3, timeout=60,
                      on_result=lambda i, o: reported.append(i))
    killer.join()
    assert killed, "the held task never started"
    (pid,) = killed
    # Every input once, in order, same records as the local executor; on_result once per task.
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    assert sorted(reported) == list(range(len(inputs)))
    assert [o.value["path"] for o in outcomes] == inputs
    assert strip_timing([o.value for o in outcomes]) == strip_timing(
        [o.value for o in local_outcomes])
    # The killed task really ran twice (started, killed, retried); every other task once.
    starts = log.read_text(encoding="utf-8").splitlines()
    assert sorted(set(starts)) == sorted(inputs)
    assert starts.count(hold) == 2
    # Same files as the local run: no output lost, none duplicated, no partial file left.
    write_parts(out, outcomes)
    assert tree(out) == tree(local_out)
    assert not [p for p in out.rglob("*") if ".part" in p.name]
    # The nanny replaced the killed worker.
    assert pid not in cluster.run(os.getpid).values()


# --- an executor of your own: the public seam for custom engines (and test doubles) ----------


class CountingExecutor(LocalExecutor):
    """The local executor that counts the tasks it was given (in this process, -j 0)."""

    given: list[int] = []

    def run(self, tasks, fn, **options):  # type: ignore[no-untyped-def]
        CountingExecutor.given.append(len(tasks))
        return super().run(tasks, fn, **options)


def test_an_importable_factory_is_an_executor(tmp_path: Path) -> None:
    assert isinstance(get_executor(f"{__name__}:CountingExecutor"), CountingExecutor)
    with pytest.raises(ExecutorUnavailable):
        get_executor("no_such_module_here:Executor")
    with pytest.raises(ExecutorUnavailable):
        get_executor(f"{__name__}:NoSuchName")
    with pytest.raises(ValueError):
        get_executor("nope")


def test_the_cli_runs_on_an_executor_of_your_own(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mediaprep.cli import main

    png = tmp_path / "a.png"
    Image.new("RGB", (64, 64), (10, 200, 30)).save(png)
    CountingExecutor.given.clear()
    r = CliRunner().invoke(main, ["check", str(png), "-j", "0", "--executor",
                                  f"{__name__}:CountingExecutor"])
    assert r.exit_code == 0, r.output
    assert CountingExecutor.given == [1]
    bad = CliRunner().invoke(main, ["check", str(png), "--executor", "nope"])
    assert bad.exit_code == 2 and "--executor nope" in bad.output
