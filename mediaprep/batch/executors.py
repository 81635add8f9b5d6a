"""Where per-file work runs: this machine (``local``) or a Dask cluster (``dask``).

    executor = get_executor("dask", address="tcp://scheduler:8786")   # or get_executor("local")
    outcomes = executor.run(tasks, prep_one, jobs=4, timeout=300, on_result=write_line)

Every executor has the contract of :func:`mediaprep.batch.pool.run_all`: one
:class:`~mediaprep.batch.pool.Outcome` per task, in input order, ``on_result(index, outcome)``
called in this process as each task ends; an error is ``"exception"`` (``fn`` raised),
``"timeout"`` or ``"crash"``; one bad file never ends the run.

Why Dask (``pip install 'mediaprep[dask]'``) and not Ray: on this project's 2-core CI machine
Dask installs in 70 MB (Ray 284 MB), starts a 2-worker local cluster in about 2 s (Ray about
10 s) using about 160 MB in all (Ray about 700 MB in 9 processes), is pure Python with no
platform wheels to wait for, and both retry the tasks of a worker that dies. mediaprep needs
only "run this function over these tasks, retry on lost workers": Dask's futures API is that.

How the ``dask`` executor keeps the ``run_all`` contract:

* A Dask task costs about 20 ms to dispatch (``bench/bench_scale.py --executors``), so one task
  runs a chunk of consecutive inputs, one after another: up to
  :data:`mediaprep.tuning.DASK_INPUTS_PER_TASK`, fewer when that would leave a worker fewer than
  ``DASK_TASKS_PER_WORKER`` tasks (a run of a few inputs is one input a task). A chunk's
  outcomes come back (and ``on_result`` is called for each) when the chunk ends.
* ``fn`` runs in a Dask worker (give workers one thread each: ``dask worker --nthreads 1``);
  an exception is caught there and comes back as an ``"exception"`` outcome, never retried.
* A worker that dies (killed, out of memory, segfault) loses its tasks; the scheduler runs
  them again on other workers. A task that has killed ``distributed.scheduler.allowed-failures``
  workers (default 3) ends as a ``"crash"`` outcome. Retrying is safe because a task's output
  names are fixed before dispatch (:func:`mediaprep.batch.tasks.plan_prep`) and every output is
  written atomically (temporary file, then rename): a rerun replaces a file with the same bytes.
  Dask counts every task that was on a dying worker as a suspect; with single-threaded workers
  and ``SCHEDULER_CONFIG`` that is the task that ran there, but a retry can still be placed
  beside a running task, so keep ``allowed-failures`` at its default (3) or more.
* A task past ``timeout`` is reported by a watchdog thread in its worker (an event on the
  scheduler), gets a ``"timeout"`` outcome here and is cancelled; the watchdog then kills its
  worker process (a Python thread cannot be stopped) and the worker's nanny starts a new one.
  The chunk's other unfinished inputs are submitted again, one input a task.
* A chunk the cluster gives up on (its worker died on every retry) is submitted again one
  input a task, so only the input that kills workers ends as a ``"crash"``. Inputs a lost
  chunk had already finished run again (safe, as above).
* ``jobs`` is the number of worker processes of the local cluster started when no scheduler
  address is given; with an address the cluster's own workers run the tasks.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import queue
import signal
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from .. import tuning
from ..errors import MediaprepError
from .pool import Outcome, TaskError, _task_error, default_jobs, run_all

__all__ = ["EXECUTORS", "DaskExecutor", "Executor", "ExecutorUnavailable", "LocalExecutor",
           "get_executor"]

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "dask")
INSTALL_HINT = "pip install 'mediaprep[dask]'"
# Environment variable naming the scheduler (else Dask's own DASK_SCHEDULER_ADDRESS is used).
SCHEDULER_ENV = "MEDIAPREP_DASK_SCHEDULER"
TIMEOUT_TOPIC = "mediaprep-timeout"
# After reporting a timeout the watchdog waits this long (so the event reaches the scheduler)
# before it kills its worker.
TIMEOUT_GRACE = 1.0
# Scheduler settings for clusters mediaprep starts (set the same on your own scheduler, e.g.
# DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0): a worker holds only the tasks it runs,
# so when a task kills its worker no innocent task queued there is counted as a suspect.
SCHEDULER_CONFIG = {"distributed.scheduler.worker-saturation": 1.0}


class ExecutorUnavailable(MediaprepError, RuntimeError):
    """The executor asked for cannot run here (its engine is not installed). CLI: exit 2."""

    exit_code = 2


class Executor(Protocol):
    name: str

    def run(
        self,
        tasks: Sequence[T],
        fn: Callable[[T], R],
        *,
        jobs: int | None = None,
        timeout: float | None = 120.0,
        on_result: Callable[[int, Outcome[R]], None] | None = None,
    ) -> list[Outcome[R]]: ...


def get_executor(name: str, **options: Any) -> Executor:
    """The executor called ``name`` (see :data:`EXECUTORS`); ``options`` go to its constructor.

    ``name`` may also be ``"package.module:factory"``: an executor of your own (anything with
    the :class:`Executor` contract, e.g. a :class:`LocalExecutor` subclass that wraps ``fn``),
    which is how ``--executor`` plugs one into the CLI; tests use it to inject failing work.

    Raises :class:`ExecutorUnavailable` (with the install command) when the engine is missing
    or the factory cannot be imported, and ``ValueError`` for an unknown name.
    """
    if name == "local":
        return LocalExecutor(**options)
    if name == "dask":
        if importlib.util.find_spec("distributed") is None:
            raise ExecutorUnavailable(
                f"the dask executor needs Dask distributed, which is not installed: {INSTALL_HINT}"
            )
        return DaskExecutor(**options)
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ExecutorUnavailable(f"cannot load the executor {name!r}: {exc}") from exc
        return factory(**options)
    raise ValueError(f"unknown executor {name!r} (choose from {', '.join(EXECUTORS)}, or "
                     "give package.module:factory)")


def _validate(jobs: int | None, timeout: float | None) -> None:
    if jobs is not None and jobs < 0:
        raise ValueError(f"jobs must be >= 0, got {jobs}")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be > 0 or None, got {timeout}")


class LocalExecutor:
    """Worker processes on this machine: :func:`mediaprep.batch.pool.run_all` itself."""

    name = "local"

    def __init__(self, *, memory_limit_mb: int | None = None,
                 start_method: str | None = None) -> None:
        self.memory_limit_mb = memory_limit_mb
        self.start_method = start_method

    def run(
        self,
        tasks: Sequence[T],
        fn: Callable[[T], R],
        *,
        jobs: int | None = None,
        timeout: float | None = 120.0,
        on_result: Callable[[int, Outcome[R]], None] | None = None,
    ) -> list[Outcome[R]]:
        return run_all(tasks, fn, jobs=jobs, timeout=timeout, on_result=on_result,
                       memory_limit_mb=self.memory_limit_mb, start_method=self.start_method)


class DaskExecutor:
    """Tasks as Dask futures on a scheduler at ``address``, else on a local cluster.

    ``address``: a scheduler address (``tcp://host:8786``); default ``$MEDIAPREP_DASK_SCHEDULER``,
    else Dask's own ``scheduler-address`` setting (``$DASK_SCHEDULER_ADDRESS``), else a local
    cluster of ``jobs`` single-threaded worker processes is started for the run and closed after.
    ``client``: an already connected ``distributed.Client`` to use (not closed here).
    ``worker_memory``: memory limit per local worker (Dask syntax, e.g. ``"2GB"``).
    """

    name = "dask"

    def __init__(self, address: str | None = None, *, client: Any = None,
                 worker_memory: str | int | None = None) -> None:
        self.address = address
        self.client = client
        self.worker_memory = worker_memory

    def run(
        self,
        tasks: Sequence[T],
        fn: Callable[[T], R],
        *,
        jobs: int | None = None,
        timeout: float | None = 120.0,
        on_result: Callable[[int, Outcome[R]], None] | None = None,
    ) -> list[Outcome[R]]:
        _validate(jobs, timeout)
        if not tasks:
            return []
        if jobs == 0:  # the contract's in-process mode, for debugging
            return run_all(tasks, fn, jobs=0, timeout=timeout, on_result=on_result)
        client, close = self._connect(min(jobs or default_jobs(), len(tasks)))
        try:
            return _run_on(client, tasks, fn, timeout, on_result)
        finally:
            close()

    def _connect(self, workers: int) -> tuple[Any, Callable[[], None]]:
        if self.client is not None:
            return self.client, lambda: None
        import dask
        from distributed import Client, LocalCluster

        address = (self.address or os.environ.get(SCHEDULER_ENV)
                   or dask.config.get("scheduler-address", None))
        if address:
            client = Client(address, set_as_default=False)
            return client, client.close
        with dask.config.set(SCHEDULER_CONFIG):  # the scheduler runs in this process
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                memory_limit=self.worker_memory if self.worker_memory is not None else "auto",
                silence_logs=logging.ERROR,
            )
        try:
            client = Client(cluster, set_as_default=False)
        except BaseException:
            cluster.close()
            raise

        def close() -> None:
            try:
                client.close()
            finally:
                cluster.close()

        return client, close


def _chunk_size(n: int, workers: int) -> int:
    """How many inputs go in one Dask task: enough to spread a Dask task's dispatch cost (about
    20 ms) over many inputs, few enough that every worker gets several tasks (a slow input does
    not leave the others idle) and a chunk's results are not held back long."""
    per_worker = n // (max(1, workers) * tuning.DASK_TASKS_PER_WORKER)
    return max(1, min(tuning.DASK_INPUTS_PER_TASK, per_worker))


def _worker_count(client: Any) -> int:
    try:
        return len(client.scheduler_info().get("workers", {}))
    except Exception:
        return 1


def _run_on(
    client: Any,
    tasks: Sequence[T],
    fn: Callable[[T], R],
    timeout: float | None,
    on_result: Callable[[int, Outcome[R]], None] | None,
) -> list[Outcome[R]]:
    run_id = uuid.uuid4().hex
    events: queue.Queue[tuple[str, Any, float]] = queue.Queue()

    def on_timeout(event: Any) -> None:  # runs in the client's event-loop thread
        _ts, msg = event
        if isinstance(msg, dict) and msg.get("run") == run_id:
            events.put(("timeout", int(msg["index"]), float(msg.get("elapsed", 0.0))))

    if timeout is not None:
        client.subscribe_topic(TIMEOUT_TOPIC, on_timeout)
    run = _DaskRun(client, tasks, fn, timeout, run_id, events)
    try:
        size = _chunk_size(len(tasks), _worker_count(client))
        run.submit([list(range(i, min(i + size, len(tasks))))
                    for i in range(0, len(tasks), size)])
        return run.collect(on_result)
    except BaseException:
        run.cancel_all()
        raise
    finally:
        if timeout is not None:
            with contextlib.suppress(Exception):
                client.unsubscribe_topic(TIMEOUT_TOPIC)


class _DaskRun:
    """The futures of one run: each a chunk of input indices, each saying on ``events`` when it
    is done. A chunk that fails as a whole (a timed-out input killed its worker, or the cluster
    gave up on it) has its unfinished inputs submitted again one per task, so only the input to
    blame gets the ``"timeout"`` or ``"crash"``."""

    def __init__(self, client: Any, tasks: Sequence[Any], fn: Callable[[Any], Any],
                 timeout: float | None, run_id: str,
                 events: queue.Queue[tuple[str, Any, float]]) -> None:
        self.client, self.tasks, self.fn, self.timeout = client, tasks, fn, timeout
        self.run_id, self.events = run_id, events
        self.pending: dict[str, tuple[Any, list[int]]] = {}  # key -> (future, indices)
        self.chunk_of: dict[int, str] = {}  # input index -> key of the task running it
        self.results: list[Outcome[Any] | None] = [None] * len(tasks)
        self.t0 = time.monotonic()

    def submit(self, chunks: list[list[int]], retry: bool = False) -> None:
        prefix = f"mediaprep-{self.run_id}-{'r' if retry else 'c'}"
        keys = [f"{prefix}{c[0]}-{len(c)}" for c in chunks]
        futures = self.client.map(
            _dask_chunk,
            chunks,
            [[self.tasks[i] for i in c] for c in chunks],
            key=keys,
            pure=False,
            fn=self.fn,
            timeout=self.timeout,
            run_id=self.run_id,
        )
        for key, fut, chunk in zip(keys, futures, chunks, strict=True):
            self.pending[key] = (fut, chunk)
            for i in chunk:
                self.chunk_of[i] = key
            fut.add_done_callback(lambda _f, key=key: self.events.put(("done", key, 0.0)))

    def cancel_all(self) -> None:
        futures = [fut for fut, _ in self.pending.values()]
        if futures:
            with contextlib.suppress(Exception):
                self.client.cancel(futures)

    def collect(self, on_result: Callable[[int, Outcome[Any]], None] | None
                ) -> list[Outcome[Any]]:
        """Each input's outcome as its chunk ends or its watchdog reports a timeout."""
        remaining = len(self.tasks)
        while remaining:
            kind, ref, elapsed = _next_event(self.client, self.events)
            if kind == "timeout":
                found = self._timed_out(ref, elapsed)
            else:
                found = self._chunk_done(ref)
            for i, outcome in found:
                self.results[i] = outcome
                remaining -= 1
                if on_result is not None:
                    on_result(i, outcome)
        return self.results  # type: ignore[return-value]  # every slot is filled

    def _timed_out(self, index: int, elapsed: float) -> list[tuple[int, Outcome[Any]]]:
        if self.results[index] is not None:
            return []  # a late report for an input already done
        outcome: Outcome[Any] = Outcome(
            error=TaskError("timeout", f"timed out after {self.timeout:g} s (worker killed)"),
            elapsed=elapsed,
        )
        key = self.chunk_of[index]
        if key in self.pending:
            fut, chunk = self.pending.pop(key)
            self.client.cancel(fut)
            self._resubmit_singly(chunk, but=index)
        return [(index, outcome)]

    def _chunk_done(self, key: str) -> list[tuple[int, Outcome[Any]]]:
        if key not in self.pending:
            return []  # a chunk cancelled after a timeout
        fut, chunk = self.pending.pop(key)
        if fut.status == "finished":
            found = zip(chunk, fut.result(), strict=True)  # _dask_chunk always returns Outcomes
        elif len(chunk) > 1:
            self._resubmit_singly(chunk)
            return []
        else:
            found = zip(chunk, [_failure_of(fut, time.monotonic() - self.t0)], strict=True)
        return [(i, o) for i, o in found if self.results[i] is None]

    def _resubmit_singly(self, chunk: list[int], but: int | None = None) -> None:
        again = [[i] for i in chunk if i != but and self.results[i] is None]
        if again:
            self.submit(again, retry=True)


def _next_event(client: Any,
                events: queue.Queue[tuple[str, Any, float]]) -> tuple[str, Any, float]:
    """The next event; raises when the scheduler is gone (no event would ever come)."""
    while True:
        try:
            return events.get(timeout=5.0)
        except queue.Empty:
            if client.status not in ("running", "connecting", "newly-created"):
                raise RuntimeError(f"lost the Dask scheduler (client {client.status})") from None


def _failure_of(fut: Any, waited: float) -> Outcome[Any]:
    """The "crash" of a task the cluster gave up on (or could not run)."""
    try:
        exc = fut.exception()
    except BaseException as err:  # cancelled (the cluster shut down under us)
        exc = err
    name = type(exc).__name__
    if name == "KilledWorker":
        msg = f"worker died running this task, on every retry ({exc})"
    else:
        msg = f"the cluster could not run this task: {name}: {exc}"
    return Outcome(error=TaskError("crash", msg, name), elapsed=waited)


# --- worker side ----------------------------------------------------------------------------


def _dask_chunk(indices: list[int], tasks: list[Any], *, fn: Callable[[Any], Any],
                timeout: float | None, run_id: str) -> list[Outcome[Any]]:
    """Run ``fn`` over a chunk's inputs in a Dask worker, one after another, each with its own
    timeout; one Outcome per input."""
    worker = None
    if timeout is not None:
        try:
            from distributed import get_worker

            worker = get_worker()  # only works in the task's own thread
        except Exception:
            worker = None
    return [_dask_task(i, task, worker, fn=fn, timeout=timeout, run_id=run_id)
            for i, task in zip(indices, tasks, strict=True)]


def _dask_task(index: int, task: Any, worker: Any, *, fn: Callable[[Any], Any],
               timeout: float | None, run_id: str) -> Outcome[Any]:
    """Run ``fn(task)`` in a Dask worker; exceptions become outcomes (so they are not retried)."""
    t0 = time.perf_counter()
    finished = threading.Event()
    if timeout is not None:
        threading.Thread(target=_watchdog, args=(worker, finished, timeout, run_id, index, t0),
                         name="mediaprep-watchdog", daemon=True).start()
    try:
        return Outcome(value=fn(task), elapsed=time.perf_counter() - t0)
    except (Exception, SystemExit) as exc:
        return Outcome(error=_task_error(exc), elapsed=time.perf_counter() - t0)
    finally:
        finished.set()


def _watchdog(worker: Any, finished: threading.Event, timeout: float, run_id: str, index: int,
              t0: float) -> None:
    if finished.wait(timeout):
        return
    msg = {"run": run_id, "index": index, "elapsed": time.perf_counter() - t0}
    try:  # on the worker's event loop: its streams are not thread-safe
        worker.loop.add_callback(worker.log_event, TIMEOUT_TOPIC, msg)
    except Exception:
        pass  # no worker: the kill below still ends the task (retried, then "crash")
    if finished.wait(TIMEOUT_GRACE):
        return  # it finished after all; the parent has already reported the timeout
    os.kill(os.getpid(), signal.SIGKILL)
