"""Run one function over many tasks in worker processes, each task isolated.

    outcomes = run_all(paths, check_one, jobs=4, timeout=120, on_result=write_line)

Every task ends as an :class:`Outcome`: a value, or an error of kind ``"timeout"`` (the task ran
past ``timeout``; its worker was killed with SIGKILL and replaced), ``"crash"`` (the worker died:
segfault, ``os._exit``, out of memory) or ``"exception"`` (``fn`` raised). One bad file never ends
the run. Outcomes come back in input order; ``on_result`` sees each as soon as it is known.

Design (why not ``concurrent.futures``): a ``ProcessPoolExecutor`` cannot kill one hung task,
and a dead worker breaks the whole pool. So this is a small pool of long-lived workers over
``multiprocessing``: one duplex pipe per worker, and the parent sleeps in ``connection.wait`` on
the busy workers' pipes and process sentinels with the nearest deadline as its timeout. A worker
answers each task as soon as it ends, so the parent always knows which task a worker is running
(the oldest unanswered one) and a timeout or crash costs that task alone: tasks queued behind it
go back to the queue. Short tasks (a header read: a millisecond) are sent several to a message,
so a worker never idles waiting for the parent between them and the parent pickles what tasks
share (their settings) once per message instead of once per task; tasks of
``BATCH_WINDOW`` or more go one at a time, so none waits behind a slow one another worker
could have taken. Workers are started with
the ``forkserver`` method: fork is unsafe once the parent has threads (PyAV/FFmpeg decoder
threads, progress-bar monitors, BLAS pools), spawn pays the interpreter and import start-up for
every replacement worker; the fork server is a clean single-threaded process, started once with
``mediaprep`` imported, so a replacement worker costs one fork.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import shutil
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import connection
from typing import Any, Generic, Literal, TypeVar

from ..errors import MediaprepError

__all__ = ["ErrorKind", "Outcome", "TaskError", "WorkerStartError", "default_jobs", "prestart",
           "run_all"]

T = TypeVar("T")
R = TypeVar("R")

ErrorKind = Literal["timeout", "crash", "exception"]

# A worker gets this long to import fn's module and say it is ready before it counts as a failed
# start; the task timeout only starts once it is ready (slow imports are not the task's fault).
STARTUP_TIMEOUT = 60.0
# This many workers in a row dying before they are ready means they cannot start at all (fn's
# module does not import in a child, say): raise instead of failing every task one by one.
MAX_START_FAILURES = 3
# Modules the fork server imports once, so every worker forked from it has them already; a task
# function adds its own module and those it names in a ``worker_imports`` attribute (the
# ``mediaprep`` package itself imports its parts on first use).
PRELOAD = ("mediaprep",)
# Seconds of work queued per worker when tasks are short (measured as the run goes). Enough to
# hide the parent's round trip; small enough that the last tasks still spread over all workers.
BATCH_WINDOW = 0.02
# At most this many tasks per message (a task is a path and settings: a message stays far below
# a pipe's buffer, so the parent's send never waits on a worker that is sending a big result).
MAX_BATCH = 64
# Weight of the newest task's time in the running mean that sizes batches.
MEAN_WEIGHT = 0.1


@dataclass(frozen=True)
class TaskError:
    """Why a task has no value."""

    kind: ErrorKind
    message: str
    type: str | None = None  # exception class name, for kind "exception" (and MemoryError)
    traceback: str | None = None  # formatted in the worker, for debugging
    errno: int | None = None  # an OSError's, so a caller can tell a full disk from bad input


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """The end of one task: ``value`` when ``error`` is None, else the error."""

    value: R | None = None
    error: TaskError | None = None
    elapsed: float = 0.0  # seconds the task ran (for timeouts and crashes: until it was noticed)

    @property
    def ok(self) -> bool:
        return self.error is None


class WorkerStartError(MediaprepError, RuntimeError):
    """Worker processes die before they can take a task (so no task can run)."""


def default_jobs() -> int:
    """CPUs this process may run on (``os.cpu_count()`` narrowed by affinity/cpusets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def run_all(
    tasks: Sequence[T],
    fn: Callable[[T], R],
    *,
    jobs: int | None = None,
    timeout: float | None = 120.0,
    on_result: Callable[[int, Outcome[R]], None] | None = None,
    memory_limit_mb: int | None = None,
    start_method: str | None = None,
    worker_imports: Sequence[str] = (),
) -> list[Outcome[R]]:
    """Run ``fn(task)`` for every task; return one :class:`Outcome` per task, in input order.

    ``fn`` must be a picklable top-level function and tasks and results picklable (keep tasks
    small, e.g. paths: a task is sent whole to a worker that may still be starting).
    ``jobs``: worker processes (default :func:`default_jobs`); ``0`` runs in this process, in
    order, with no timeout, no memory limit and no crash isolation (for debugging and library
    use). ``timeout``: seconds one task may run before its worker is killed (``None``: no limit).
    ``on_result(index, outcome)`` is called in the parent as each task ends (completion order);
    if it raises, the workers are killed and the exception propagates, as does
    ``KeyboardInterrupt``. ``memory_limit_mb``: address space each worker may add beyond what it
    has mapped once started (``RLIMIT_AS``; Linux). A task that exceeds it gets a "crash" outcome
    and its worker is replaced. ``start_method``: multiprocessing start method (default
    ``forkserver`` where available, else ``spawn``). ``worker_imports``: mediaprep modules
    these tasks need beyond ``fn``'s own (:func:`preload_modules`).

    Raises :class:`WorkerStartError` when workers keep dying before taking any task.
    """
    if jobs is None:
        jobs = default_jobs()
    if jobs < 0:
        raise ValueError(f"jobs must be >= 0, got {jobs}")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be > 0 or None, got {timeout}")
    if memory_limit_mb is not None and memory_limit_mb <= 0:
        raise ValueError(f"memory_limit_mb must be > 0 or None, got {memory_limit_mb}")
    if not tasks:
        return []
    if jobs == 0:
        return _run_inline(tasks, fn, on_result)
    pool = _Pool(
        tasks,
        fn,
        min(jobs, len(tasks)),
        timeout,
        on_result,
        memory_limit_mb,
        _context(start_method, fn, worker_imports),
    )
    return pool.run()


def prestart(fn: Callable[..., Any], start_method: str | None = None,
             worker_imports: Sequence[str] = ()) -> None:
    """Start the fork server for ``fn``'s workers now, in the background.

    The fork server imports mediaprep (a quarter of a second) before it can fork a worker; a
    command that calls this first overlaps that with its own work (walking folders, planning)
    instead of waiting for it in :func:`run_all`. Harmless when ``run_all`` never runs.
    """
    ctx = _context(start_method, fn, worker_imports)
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


# --- in-process -----------------------------------------------------------------------------


def _run_inline(
    tasks: Sequence[T],
    fn: Callable[[T], R],
    on_result: Callable[[int, Outcome[R]], None] | None,
) -> list[Outcome[R]]:
    out: list[Outcome[R]] = []
    for i, task in enumerate(tasks):
        t0 = time.perf_counter()
        try:
            outcome: Outcome[R] = Outcome(value=fn(task), elapsed=time.perf_counter() - t0)
        except (Exception, SystemExit) as exc:  # KeyboardInterrupt propagates
            outcome = Outcome(error=_task_error(exc), elapsed=time.perf_counter() - t0)
        out.append(outcome)
        if on_result is not None:
            on_result(i, outcome)
    return out


def _task_error(exc: BaseException) -> TaskError:
    # Out of memory is a crash, not the task's own exception: the process may be in a bad state.
    kind: ErrorKind = "crash" if isinstance(exc, MemoryError) else "exception"
    text = str(exc)
    name = type(exc).__name__
    message = f"{name}: {text}" if text else name
    if kind == "crash":
        message = f"out of memory ({message})"
    tb = "".join(traceback.format_exception(exc))
    return TaskError(kind, message, name, tb,
                     errno=exc.errno if isinstance(exc, OSError) else None)


# --- worker side ----------------------------------------------------------------------------


def _context(start_method: str | None, fn: Callable[..., Any],
             worker_imports: Sequence[str] = ()) -> Any:
    method = start_method or (
        "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    )
    ctx = mp.get_context(method)
    if method == "forkserver":
        # Only honoured when the fork server starts (once per process); harmless afterwards.
        ctx.set_forkserver_preload(preload_modules(fn, worker_imports))
    return ctx


def preload_modules(fn: Callable[..., Any], worker_imports: Sequence[str] = ()) -> list[str]:
    """What the fork server imports for ``fn``'s workers: ``fn``'s module, those it names in
    its ``worker_imports`` and those the run names (``worker_imports``: the video kind when a
    prep run has videos, see :func:`mediaprep.batch.tasks.media_imports`). mediaprep modules
    only: a user's function may live in a script that must not run again in the fork server.
    A module left out is imported by each worker that needs it (PyAV: 60 MB a worker that an
    image-only run never needs)."""
    mods = [getattr(fn, "__module__", "") or "", *getattr(fn, "worker_imports", ()),
            *worker_imports]
    return [*PRELOAD, *(m for m in mods if m.startswith("mediaprep."))]


def _worker_main(conn: Any, fn: Callable[[Any], Any], memory_limit_mb: int | None,
                 scratch: str | None = None, parents_end: Any = None) -> None:
    """Loop: receive ``(index, task)``, send back the result; exit on EOF. ``scratch``: this
    worker's temporary folder (downloads, spooled inputs), removed by the parent whatever ends
    the worker: a killed worker cannot remove its own. ``parents_end``: the parent's end of
    the pipe, inherited by a forked worker, closed here."""
    if parents_end is not None:
        parents_end.close()
    if scratch is not None:
        import tempfile

        tempfile.tempdir = scratch
        os.environ["TMPDIR"] = scratch  # for libraries that read it themselves
    # Ctrl-C goes to the whole process group: the parent handles it and kills us; a worker
    # must not turn it into an "exception" outcome of the task it happens to run.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(conn)
    if memory_limit_mb is not None:
        _limit_memory(memory_limit_mb)
    try:
        conn.send(("ready", -1, None, 0.0, False))
    except OSError:
        return  # the run ended while this worker started
    while True:
        try:
            batch = conn.recv()  # [(index, task), ...]
        except (EOFError, OSError):
            return
        for index, task in batch:
            if not _run_one(conn, fn, index, task):
                os._exit(0)  # retire (the parent puts the rest of the batch back) or orphaned


def _run_one(conn: Any, fn: Callable[[Any], Any], index: int, task: Any) -> bool:
    """Run one task and send its reply; False when this worker must stop now."""
    t0 = time.perf_counter()
    retire = False
    try:
        reply: tuple[Any, ...] = ("ok", index, fn(task), time.perf_counter() - t0, False)
    except (Exception, SystemExit) as exc:
        err = _task_error(exc)
        # After MemoryError the heap may be fragmented or half-freed: report, then retire.
        retire = err.kind == "crash"
        reply = ("err", index, err, time.perf_counter() - t0, retire)
    try:
        conn.send(reply)
    except (EOFError, BrokenPipeError):
        return False
    except Exception as exc:  # the value does not pickle; the pipe is untouched
        err = TaskError(
            "exception",
            f"result could not be sent to the parent: {type(exc).__name__}: {exc}",
            type(exc).__name__,
        )
        conn.send(("err", index, err, reply[3], retire))
    return not retire


def _exit_with_parent(conn: Any) -> None:
    """Exit this worker as soon as the parent's end of the pipe closes (the parent died).

    Without this a hung task outlives a killed run: under forkserver the worker's parent is the
    fork server, which itself waits for its children, so PR_SET_PDEATHSIG never fires. A thread
    blocked in poll() on the pipe costs nothing; a hang-up there means nobody wants our result.
    """
    import select
    import threading

    if not hasattr(select, "poll"):
        return
    fd = conn.fileno()

    def watch() -> None:
        poller = select.poll()
        poller.register(fd, 0)  # POLLHUP, POLLERR and POLLNVAL are reported regardless
        while True:
            if poller.poll():
                os._exit(0)

    threading.Thread(target=watch, name="mediaprep-parent-watch", daemon=True).start()


def _limit_memory(extra_mb: int) -> None:
    import resource

    try:
        with open("/proc/self/statm") as fh:
            mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        mapped = 0  # not Linux: the limit is absolute
    limit = mapped + extra_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


# --- parent side ----------------------------------------------------------------------------


class _Worker:
    __slots__ = ("proc", "conn", "scratch", "ready", "started", "queue", "task_start",
                 "deadline")

    def __init__(self, proc: Any, conn: Any, scratch: str | None = None) -> None:
        self.proc = proc
        self.conn = conn
        self.scratch = scratch  # its temporary folder, removed once it has ended
        self.ready = False
        self.started = time.monotonic()
        # Indices sent and not yet answered, oldest first: the worker runs queue[0].
        self.queue: deque[int] = deque()
        self.task_start = 0.0  # when queue[0] started (as near as the parent can tell)
        self.deadline: float | None = self.started + STARTUP_TIMEOUT

    @property
    def task(self) -> int | None:
        return self.queue[0] if self.queue else None


class _Pool(Generic[T, R]):
    def __init__(
        self,
        tasks: Sequence[T],
        fn: Callable[[T], R],
        jobs: int,
        timeout: float | None,
        on_result: Callable[[int, Outcome[R]], None] | None,
        memory_limit_mb: int | None,
        ctx: Any,
    ) -> None:
        self.tasks = tasks
        self.fn = fn
        self.jobs = jobs
        self.timeout = timeout
        self.on_result = on_result
        self.memory_limit_mb = memory_limit_mb
        self.ctx = ctx
        self.results: list[Outcome[R] | None] = [None] * len(tasks)
        self.pending: deque[int] = deque(range(len(tasks)))
        self.done = 0
        self.workers: list[_Worker] = []
        self.start_failures = 0
        self.mean_task: float | None = None  # running mean of task seconds, sizes batches
        self.batching = True  # off once a batch fails to pickle: then find the bad task alone
        self.scratch: str | None = None  # the run's temporary folder, one subfolder a worker

    def run(self) -> list[Outcome[R]]:
        import tempfile

        self.scratch = tempfile.mkdtemp(prefix="mediaprep-run-")
        try:
            try:
                for _ in range(self.jobs):
                    self.workers.append(self._start())
                while self.done < len(self.tasks):
                    if not self.workers:  # cannot happen by the bookkeeping; never spin idle
                        self.workers.append(self._start())
                    self._dispatch()
                    self._wait()
            except BaseException:
                self._kill_all()  # KeyboardInterrupt, on_result raising, WorkerStartError
                raise
            self._close_all()
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
        return self.results  # type: ignore[return-value]  # every slot is filled

    # -- workers

    def _start(self) -> _Worker:
        import tempfile

        scratch = tempfile.mkdtemp(prefix="w", dir=self.scratch) if self.scratch else None
        parent_end, child_end = self.ctx.Pipe(duplex=True)
        # a forked worker inherits our end too: it closes it, or our close is no EOF there
        ours = parent_end if self.ctx.get_start_method() == "fork" else None
        proc = self.ctx.Process(
            target=_worker_main,
            args=(child_end, self.fn, self.memory_limit_mb, scratch, ours),
            name="mediaprep-worker",
            daemon=True,
        )
        proc.start()
        child_end.close()  # so the worker's death reads as EOF here
        return _Worker(proc, parent_end, scratch)

    @staticmethod
    def _remove_scratch(w: _Worker) -> None:
        """What an ended worker left in its temporary folder (a killed one's download)."""
        if w.scratch is not None:
            shutil.rmtree(w.scratch, ignore_errors=True)

    def _replace(self, w: _Worker, kill: bool) -> None:
        if kill:
            w.proc.kill()
        w.proc.join()
        w.conn.close()
        w.proc.close()
        self._remove_scratch(w)
        self._requeue(w)
        i = self.workers.index(w)
        if self.pending:
            self.workers[i] = self._start()
        else:
            del self.workers[i]  # nothing left to give a new worker

    def _requeue(self, w: _Worker) -> None:
        """Put the tasks ``w`` was sent and never started back at the front of the queue."""
        self.pending.extendleft(reversed(w.queue))
        w.queue.clear()

    def _kill_all(self) -> None:
        for w in self.workers:
            try:
                w.proc.kill()
            except (ValueError, OSError):
                pass
        for w in self.workers:
            try:
                w.proc.join(5)
                w.conn.close()
            except (ValueError, OSError):
                pass
        self.workers = []

    def _close_all(self) -> None:
        for w in self.workers:
            if not w.ready:
                w.proc.kill()  # a late replacement, still importing: no use waiting for it
            w.conn.close()  # EOF ends the worker's loop
        for w in self.workers:
            w.proc.join(5)
            if w.proc.exitcode is None:
                w.proc.kill()
                w.proc.join()
        self.workers = []

    # -- the loop

    def _batch_size(self) -> int:
        """Tasks to keep in flight per worker: 1 until tasks are known to be short."""
        mean = self.mean_task
        if not self.batching or mean is None or mean >= BATCH_WINDOW:
            return 1
        size = min(MAX_BATCH, math.ceil(BATCH_WINDOW / max(mean, 1e-6)))
        return max(1, min(size, len(self.pending) // self.jobs))  # the tail stays spread out

    def _dispatch(self) -> None:
        # Send while the worker may still be starting (the pipe holds the tasks) so start-up
        # overlaps; top a worker up when half its batch is done, so it never runs dry; loop
        # again when a dead worker was replaced, so its successor gets work.
        again = True
        while again and self.pending:
            again = False
            size = self._batch_size()
            for w in list(self.workers):
                if not self.pending or w not in self.workers or len(w.queue) > size // 2:
                    continue
                n = min(size - len(w.queue), len(self.pending))
                if not self._send(w, [self.pending.popleft() for _ in range(n)]):
                    again = True

    def _send(self, w: _Worker, indices: list[int]) -> bool:
        """Send tasks to ``w``; False when they went back to the queue or failed instead."""
        try:
            w.conn.send([(i, self.tasks[i]) for i in indices])
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self.pending.extendleft(reversed(indices))  # the worker had died: not the tasks'
            self._worker_died(w)
            return False
        except Exception as exc:  # a task does not pickle (the pipe is untouched)
            if len(indices) > 1:
                self.pending.extendleft(reversed(indices))
                self.batching = False
            else:
                self._finish(indices[0], _failed("task could not be sent to a worker", exc, 0.0))
            return False
        if not w.queue:
            w.task_start = time.monotonic()
            if w.ready:
                w.deadline = None if self.timeout is None else w.task_start + self.timeout
        w.queue.extend(indices)
        return True

    def _wait(self) -> None:
        """Sleep until a busy worker answers or dies, or the nearest deadline; then handle it."""
        busy = [w for w in self.workers if w.queue or not w.ready]
        if not busy:
            return
        handles: list[Any] = [h for w in busy for h in (w.conn, w.proc.sentinel)]
        self._answered(busy, set(connection.wait(handles, timeout=_time_left(busy))))
        self._expire_overdue(busy)

    def _answered(self, busy: list[_Worker], ready: set[Any]) -> None:
        """Read what the workers in ``ready`` sent; then see to those that exited."""
        for w in busy:
            if w.conn in ready:
                self._drain(w)
        for w in busy:
            if w in self.workers and w.proc.sentinel in ready:  # not one replaced above
                self._exited(w)

    def _expire_overdue(self, busy: list[_Worker]) -> None:
        now = time.monotonic()
        for w in busy:
            if w in self.workers and w.deadline is not None and w.deadline <= now:
                self._expired(w, now)

    def _exited(self, w: _Worker) -> None:
        self._drain(w)  # a result may have been sent just before the exit
        if w in self.workers:
            self._worker_died(w)

    def _drain(self, w: _Worker) -> None:
        while w in self.workers:
            try:
                if not w.conn.poll():
                    return
                msg = w.conn.recv()
            except (EOFError, OSError):
                return  # the worker is gone; its sentinel says so
            except Exception as exc:  # a result that does not unpickle here (all bytes read)
                if w.queue:
                    index = w.queue.popleft()
                    elapsed = time.monotonic() - w.task_start
                    self._next_task(w)
                    self._finish(index, _failed("result could not be read", exc, elapsed))
                continue
            # Outside the try: what on_result raises is the caller's, not the task's (it ends
            # the run, as in-process); it must not pass for a result that failed to unpickle.
            self._message(w, msg)

    def _next_task(self, w: _Worker) -> None:
        """The worker answered its oldest task: the next one in its queue starts now."""
        w.task_start = time.monotonic()
        w.deadline = (None if not w.queue or self.timeout is None
                      else w.task_start + self.timeout)

    def _message(self, w: _Worker, msg: tuple[Any, ...]) -> None:
        tag, index, payload, elapsed, retire = msg
        if tag == "ready":
            w.ready = True
            self.start_failures = 0
            self._next_task(w)  # tasks sent while the worker started: the clock starts now
            return
        if w.queue and w.queue[0] == index:
            w.queue.popleft()
        else:  # cannot happen: a worker answers its tasks in the order it was sent them
            with contextlib.suppress(ValueError):
                w.queue.remove(index)
        self._next_task(w)
        self.mean_task = (elapsed if self.mean_task is None
                          else self.mean_task + MEAN_WEIGHT * (elapsed - self.mean_task))
        self._finish(
            index,
            Outcome(value=payload, elapsed=elapsed)
            if tag == "ok"
            else Outcome(error=payload, elapsed=elapsed),
        )
        if retire:
            self._replace(w, kill=True)

    def _worker_died(self, w: _Worker) -> None:
        w.proc.join()
        code = w.proc.exitcode
        if not w.ready:
            self._requeue(w)  # none of its tasks ran
            self.start_failures += 1
            if self.start_failures >= MAX_START_FAILURES:
                raise WorkerStartError(
                    f"worker processes exit before taking a task "
                    f"({_describe_exit(code)}); can {self.fn!r} be "
                    f"imported in a fresh process?"
                )
        elif w.queue:
            self._finish(
                w.queue.popleft(),
                Outcome(
                    error=TaskError("crash", f"worker died: {_describe_exit(code)}"),
                    elapsed=time.monotonic() - w.task_start,
                ),
            )
        self._replace(w, kill=False)

    def _expired(self, w: _Worker, now: float) -> None:
        if not w.ready:  # hung while starting: kill it; its tasks go back in the queue
            w.proc.kill()
            self._worker_died(w)
            return
        index = w.queue.popleft()
        assert self.timeout is not None
        self._replace(w, kill=True)  # the tasks queued behind the hung one go back
        self.mean_task = None  # hangs are about: one task at a time until tasks prove short
        self._finish(
            index,
            Outcome(
                error=TaskError("timeout", f"timed out after {self.timeout:g} s (worker killed)"),
                elapsed=now - w.task_start,
            ),
        )

    def _finish(self, index: int, outcome: Outcome[R]) -> None:
        self.results[index] = outcome
        self.done += 1
        if self.on_result is not None:
            self.on_result(index, outcome)


def _time_left(busy: Sequence[_Worker]) -> float | None:
    """Seconds until the nearest deadline of ``busy`` (None: none has one)."""
    deadlines = [w.deadline for w in busy if w.deadline is not None]
    return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None


def _failed(what: str, exc: BaseException, elapsed: float) -> Outcome[Any]:
    name = type(exc).__name__
    return Outcome(error=TaskError("exception", f"{what}: {name}: {exc}", name), elapsed=elapsed)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "unknown exit"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
