"""Tests for mediaprep.batch.pool (isolated worker pool) and mediaprep.batch.progress.

Task functions are top-level in this module so worker processes can import them by name.
Timing bounds are deliberately loose (shared, slow CI machines): they only tell "the hung task
was cut off" from "the run waited for it".
"""

from __future__ import annotations

import errno
import os
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from mediaprep.batch.pool import Outcome, WorkerStartError, default_jobs, run_all
from mediaprep.batch.progress import Progress, human_bytes, human_duration

if TYPE_CHECKING or "pytest" in sys.modules:
    # The test process has pytest loaded already. A worker imports this module only for the
    # task functions below: importing pytest there would add ~0.5 s to every worker start.
    import pytest

# --- task functions (run in workers) --------------------------------------------------------


def square(x: int) -> int:
    time.sleep(random.random() * 0.01)  # finish out of order
    return x * x


def sleep_for(arg: tuple[float, str | None]) -> float:
    seconds, pid_file = arg
    if pid_file:  # written whole or not at all: the test reads it as soon as it exists
        tmp = Path(pid_file + ".tmp")
        tmp.write_text(str(os.getpid()))
        tmp.replace(pid_file)
    time.sleep(seconds)
    return seconds


def exit_if(x: int) -> int:
    if x == 3:
        os._exit(3)
    return x


def segfault_if(x: int) -> int:
    if x == 1:
        import ctypes

        ctypes.string_at(0)  # reads address 0: SIGSEGV
    return x


def raise_if(x: int) -> int:
    if x == 2:
        raise ValueError(f"bad input {x}")
    return x


def allocate_mb(mb: int) -> int:
    return len(bytearray(mb * 1024 * 1024))


def return_unpicklable(x: int) -> object:
    if x == 0:
        return lambda: None  # cannot be pickled back to the parent
    return x


def abs_or_fail(x: int) -> int:
    return abs(x)


def my_pid(_: int) -> int:
    return os.getpid()


def quick(x: int) -> int:
    """A task of microseconds: batched. Index 150 hangs, 300 kills its worker, 450 raises."""
    if x == 150:
        time.sleep(60)
    if x == 300:
        os._exit(7)
    if x == 450:
        raise ValueError("bad 450")
    return -x


def slow(x: int) -> int:
    time.sleep(0.05)
    return x


class _Unloadable:
    """Pickles fine, but unpickling it (in a worker, at start-up) raises."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_fail_to_load, ())

    def __call__(self, x: int) -> int:
        return x


def _fail_to_load() -> None:
    raise ImportError("cannot load this function here")


# --- runner ---------------------------------------------------------------------------------


def test_results_in_input_order_and_on_result_once_each() -> None:
    seen: list[int] = []
    outcomes = run_all(list(range(20)), square, jobs=2, on_result=lambda i, o: seen.append(i))
    assert [o.value for o in outcomes] == [i * i for i in range(20)]
    assert all(o.ok and o.error is None and o.elapsed >= 0 for o in outcomes)
    assert sorted(seen) == list(range(20))


def test_empty_and_fewer_tasks_than_jobs() -> None:
    assert run_all([], square, jobs=4) == []
    assert [o.value for o in run_all([3], square, jobs=4)] == [9]


def test_timeout_kills_only_that_task(tmp_path: Path) -> None:
    pid_file = tmp_path / "hung.pid"
    tasks: list[tuple[float, str | None]] = [(30.0, str(pid_file))] + [(0.05, None)] * 6
    t0 = time.monotonic()
    outcomes = run_all(tasks, sleep_for, jobs=2, timeout=0.5)
    took = time.monotonic() - t0
    assert took < 15, "the run waited for the hung task"
    first = outcomes[0]
    assert first.error is not None and first.error.kind == "timeout"
    assert "0.5" in first.error.message
    assert first.elapsed >= 0.5
    assert [o.value for o in outcomes[1:]] == [0.05] * 6
    hung = int(pid_file.read_text())
    assert not psutil.pid_exists(hung), "the hung worker was not killed"


def test_worker_exit_is_a_crash_and_the_run_goes_on() -> None:
    outcomes = run_all(list(range(8)), exit_if, jobs=2, timeout=30)
    err = outcomes[3].error
    assert err is not None and err.kind == "crash" and "exit code 3" in err.message
    assert [o.value for i, o in enumerate(outcomes) if i != 3] == [0, 1, 2, 4, 5, 6, 7]


def test_segfault_is_a_crash() -> None:
    outcomes = run_all([0, 1, 2], segfault_if, jobs=1)
    err = outcomes[1].error
    assert err is not None and err.kind == "crash" and "SIGSEGV" in err.message
    assert [outcomes[0].value, outcomes[2].value] == [0, 2]


def test_exception_carries_its_message() -> None:
    outcomes = run_all(list(range(4)), raise_if, jobs=2)
    err = outcomes[2].error
    assert err is not None and err.kind == "exception"
    assert err.message == "ValueError: bad input 2" and err.type == "ValueError"
    assert err.traceback and "raise_if" in err.traceback
    assert [o.value for i, o in enumerate(outcomes) if i != 2] == [0, 1, 3]


def test_memory_hog_under_a_limit_fails_alone() -> None:
    outcomes = run_all([1, 4096, 1, 1], allocate_mb, jobs=2, memory_limit_mb=256)
    err = outcomes[1].error
    assert err is not None and err.kind in ("crash", "exception")
    assert [outcomes[i].value for i in (0, 2, 3)] == [1024 * 1024] * 3


def test_unpicklable_result_is_an_exception_not_a_dead_worker() -> None:
    outcomes = run_all([0, 1, 2], return_unpicklable, jobs=1)
    err = outcomes[0].error
    assert err is not None and err.kind == "exception" and "sent to the parent" in err.message
    assert [outcomes[1].value, outcomes[2].value] == [1, 2]


def test_workers_are_reused_not_started_per_task() -> None:
    pids = {o.value for o in run_all(list(range(30)), my_pid, jobs=2)}
    assert len(pids) <= 2 and os.getpid() not in pids


def _record_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the task messages the parent sends (the pool runs in this process)."""
    from mediaprep.batch import pool as runner

    sizes: list[int] = []
    real = runner._Pool._send

    def spy(self: object, w: object, indices: list[int]) -> bool:
        sizes.append(len(indices))
        return real(self, w, indices)  # type: ignore[arg-type]

    monkeypatch.setattr(runner._Pool, "_send", spy)
    return sizes


def test_short_tasks_go_in_batches_and_a_bad_one_costs_only_itself(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _record_sends(monkeypatch)
    n = 600
    outcomes = run_all(list(range(n)), quick, jobs=2, timeout=2.0)
    assert max(sizes) > 1, "short tasks were sent one at a time"
    assert sum(sizes) >= n  # tasks queued behind a hang or crash are sent again
    hang, crash, exc = outcomes[150].error, outcomes[300].error, outcomes[450].error
    assert hang is not None and hang.kind == "timeout"
    assert crash is not None and crash.kind == "crash" and "exit code 7" in crash.message
    assert exc is not None and exc.kind == "exception" and "bad 450" in exc.message
    bad = {150, 300, 450}
    assert all(o.ok and o.value == -i for i, o in enumerate(outcomes) if i not in bad)


def test_slow_tasks_go_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _record_sends(monkeypatch)
    outcomes = run_all(list(range(12)), slow, jobs=2)
    assert [o.value for o in outcomes] == list(range(12))
    assert set(sizes) == {1}


def test_an_unpicklable_task_in_a_batch_fails_alone() -> None:
    tasks: list[object] = list(range(400))
    tasks[300] = lambda: None  # cannot be sent to a worker
    outcomes = run_all(tasks, abs_or_fail, jobs=2)
    err = outcomes[300].error
    assert err is not None and "could not be sent" in err.message
    assert all(o.value == i for i, o in enumerate(outcomes) if i != 300)


def test_in_process_when_jobs_is_zero() -> None:
    outcomes = run_all([1, 2, 3], lambda x: (x, os.getpid()), jobs=0)  # no pickling needed
    assert [o.value for o in outcomes] == [(1, os.getpid()), (2, os.getpid()), (3, os.getpid())]
    outcomes = run_all([1, 2], raise_if, jobs=0)
    assert outcomes[1].error is not None and outcomes[1].error.kind == "exception"


def test_interrupt_kills_workers_and_propagates(tmp_path: Path) -> None:
    pid_file = tmp_path / "hung.pid"

    interrupted_at: list[float] = []

    def interrupt(i: int, o: Outcome[float]) -> None:
        # Ctrl-C once the hung task's worker is known to run it (on a loaded machine its worker
        # may start after the short task is done): then it must be killed
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        interrupted_at.append(time.monotonic())
        raise KeyboardInterrupt

    tasks: list[tuple[float, str | None]] = [(30.0, str(pid_file)), (0.3, None)]
    with pytest.raises(KeyboardInterrupt):
        run_all(tasks, sleep_for, jobs=2, timeout=None, on_result=interrupt)
    assert interrupted_at and time.monotonic() - interrupted_at[0] < 15  # not the 30 s sleep
    assert not psutil.pid_exists(int(pid_file.read_text()))


def test_workers_that_cannot_start_raise() -> None:
    with pytest.raises(WorkerStartError):
        run_all(list(range(5)), _Unloadable(), jobs=1)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        run_all([1], square, jobs=-1)
    with pytest.raises(ValueError):
        run_all([1], square, timeout=0)
    assert default_jobs() >= 1


# --- progress -------------------------------------------------------------------------------


def test_progress_hidden_when_stderr_is_not_a_tty(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(3, label="check") as p:
        assert not p.enabled
        p.advance(True)
        p.advance(True, fixed=True, bytes_in=3 * 1024 * 1024, bytes_out=1024 * 1024)
        p.advance(False, fixed=True)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    assert (p.passed, p.fixed, p.failed, p.done) == (1, 1, 1, 3)
    text = p.summary()
    assert text.startswith("3 files, 1 passed, 1 fixed, 1 failed, 3.0 MiB in → 1.0 MiB out, ")
    assert text.endswith(" s")


def test_progress_summary_shapes() -> None:
    p = Progress(5, enabled=False)
    p.advance(True)
    p.close()
    assert p.summary().startswith("1 of 5 files, 1 passed, 0 fixed, 0 failed, 0.")  # no bytes
    assert human_bytes(0) == "0 B" and human_bytes(1536) == "1.5 KiB"
    assert human_bytes(340 * 1024 * 1024) == "340 MiB"
    assert human_duration(0.84) == "0.8 s" and human_duration(125) == "2 min 05 s"
    assert human_duration(3725) == "1 h 02 min"


def test_progress_forced_on_draws_a_bar(tmp_path: Path) -> None:
    pytest.importorskip("tqdm")
    with open(tmp_path / "err.txt", "w") as stream, Progress(2, enabled=True, stream=stream) as p:
        p.advance(True)
        p.write("a note")
        p.advance(False)
    text = (tmp_path / "err.txt").read_text()
    assert "a note" in text and "/2 [" in text


def test_an_exception_from_on_result_ends_the_run_as_itself() -> None:
    """What the caller's callback raises (a full disk while writing a result, say) is the
    caller's: it ends the run and reaches the caller, and is never mistaken for a result that
    could not be read (a task failure) while the run goes on."""
    seen: list[int] = []

    def write(i: int, o: Outcome[int]) -> None:
        seen.append(i)
        if len(seen) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        run_all(list(range(400)), square, jobs=2, on_result=write)
    assert info.value.errno == errno.ENOSPC
    assert len(seen) == 5  # nothing was reported after the callback failed
