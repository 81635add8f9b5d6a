"""Folder runs as one library call each: :func:`prep_many` and :func:`check_many`.

    from mediaprep.batch import prep_many, check_many
    result = prep_many(["photos/"], "out", settings)      # DIR/parts.jsonl, outputs, report
    result.failed, result.from_cache, result.summary()
    report = check_many(["photos/"], settings).report      # as ``check --format json``

``prep_many`` owns everything a ``prep`` run does around the per-input work: the lock on DIR,
the journal (a rerun resumes), the cache, ``parts.jsonl``, the sweeps of killed runs'
temporaries and the run markers, the OpenAI Batch requests and DIR/report.html. The ``mediaprep``
command only parses options, calls these and prints what they return.

Only light modules are imported here (``import mediaprep.batch`` stays cheap): PyAV, numpy and
Pillow come with the functions that need them, while the workers' fork server starts.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MediaprepError, blank_path_problem
from ..output import PARTS_FILE
from ..settings import Settings
from .requests import DEFAULT_BATCH_URL
from .summary import plural, run_summary

log = logging.getLogger("mediaprep")

if TYPE_CHECKING:
    from ..config import Config
    from ..types import Finding
    from .executors import Executor
    from .journal import JournalIndex

__all__ = ["DEFAULT_TIMEOUT", "BatchError", "BatchResult", "CheckResult", "InputResult",
           "PrepOptions",
           "RunStopped", "check_many", "prep_many", "run_tasks"]

# Seconds one input may take before its worker is killed and the input gets file.unreadable.
# check reads headers (a healthy file takes milliseconds); prep may transcode an hour of video.
DEFAULT_TIMEOUT = {"check": 120.0, "prep": 1200.0}


class BatchError(MediaprepError, ValueError):
    """A run that cannot start as asked: bad options, an output folder it must not write to,
    another run holding DIR (CLI: exit 2, before any input is touched)."""


class RunStopped(MediaprepError):
    """A worker hit an error that every later input would hit too (a full disk: see
    ``output.RUN_STOPPING_ERRNOS``). Finished inputs are kept; a rerun finishes the rest.
    ``errno``: the error's number, so that a message can say what to fix."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


@dataclass(frozen=True)
class InputResult:
    """How one input of a ``prep`` run ended (given to ``on_result`` as it ends)."""

    index: int  # in input order
    path: str  # as reports show it
    ok: bool
    fixed: bool  # ok after a fix
    status: str  # one line for humans: "a.jpg: ok (converted ...)", "b.mp4: FAILED (...)"
    origin: str  # "prepared", "cache", "journal", or "failed" (its task did not return)
    bytes_in: int = 0
    bytes_out: int = 0
    changes: tuple[str, ...] = ()  # kinds of change (mediaprep.report.changes.KINDS)
    warnings: tuple[str, ...] = ()  # codes of the warnings that hold for what is sent
    codes: tuple[str, ...] = ()  # every finding's code (errors fixed, warnings, infos)
    outputs: tuple[str, ...] = ()  # the files written, relative to the output folder

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "fixed": self.fixed, "status": self.status,
                "origin": self.origin, "changes": list(self.changes),
                "warnings": list(self.warnings), "codes": list(self.codes),
                "outputs": list(self.outputs),
                "bytes_in": self.bytes_in, "bytes_out": self.bytes_out}


@dataclass
class BatchResult:
    """What a :func:`prep_many` run did. The lines themselves are in ``parts.jsonl`` (read
    with :meth:`lines`; with data URLs they can be hundreds of megabytes)."""

    out_dir: Path
    results: list[InputResult] = field(default_factory=list)  # input order
    missing: int = 0  # inputs whose journal record was lost before parts.jsonl got its line
    elapsed: float = 0.0
    requests: int | None = None  # batch requests written (None: none asked for)
    requests_left_out: int = 0  # failed inputs not in the batch requests
    stale: list[str] = field(default_factory=list)  # outputs of earlier runs' inputs, left
    cleaned: list[str] = field(default_factory=list)  # those removed (clean=True)
    report_path: Path | None = None  # DIR/report.html, when written
    run_findings: list[Finding] = field(default_factory=list)  # about the run (see run_findings)
    #: --transport upload: files uploaded by this run, their bytes, and references reused
    #: (a recorded upload of the same bytes) by the inputs prepared now; None: not uploading
    uploads: dict[str, int] | None = None

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.ok and not r.fixed)

    @property
    def fixed(self) -> int:
        return sum(1 for r in self.results if r.ok and r.fixed)

    @property
    def warned(self) -> int:
        """Prepared inputs with a warning that holds for what is sent (``image.animated``)."""
        return sum(1 for r in self.results if r.ok and r.warnings)

    @property
    def prepared(self) -> int:
        """Inputs that are sendable now (passed or fixed)."""
        return sum(1 for r in self.results if r.ok)

    @property
    def failed(self) -> int:
        """Inputs that failed, counting those whose line was lost (see ``missing``)."""
        return sum(1 for r in self.results if not r.ok) + self.missing

    @property
    def from_journal(self) -> int:
        return sum(1 for r in self.results if r.origin == "journal")

    @property
    def from_cache(self) -> int:
        return sum(1 for r in self.results if r.origin == "cache")

    @property
    def parts_path(self) -> Path:
        return self.out_dir / PARTS_FILE

    def lines(self) -> list[dict[str, Any]]:
        """The ``parts.jsonl`` records, in input order."""
        import json

        with open(self.parts_path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh]

    @property
    def prepared_now(self) -> int:
        """Inputs worked on by this run (prepared or failed now, neither journal nor cache)."""
        return sum(1 for r in self.results if r.origin in ("prepared", "failed"))

    def change_counts(self) -> dict[str, int]:
        """How many inputs had each kind of change (``{"rotated": 3, ...}``, KINDS order)."""
        from ..report.changes import KINDS

        counts = {k: sum(1 for r in self.results if r.ok and k in r.changes) for k in KINDS}
        return {k: n for k, n in counts.items() if n}

    def summary(self) -> str:
        """What the run did, in a few lines::

            9 files, 7 passed, 1 fixed, 1 failed, 1.2 MiB in → 800 KiB out, 3.1 s
            changes: 1 rotated, 1 converted
            5 prepared now, 3 already done (journal), 1 from the cache
            report: out/report.html
        """
        from ..report.changes import describe_counts

        lines = [run_summary(self.total, self.passed, self.fixed,
                             sum(1 for r in self.results if not r.ok),
                             sum(r.bytes_in for r in self.results),
                             sum(r.bytes_out for r in self.results), self.elapsed,
                             self.warned)]
        if self.prepared:
            lines.append("changes: " + (describe_counts(self.change_counts()) or "none"))
        lines.append(", ".join(self._origins()))
        lines += self._afterwords()
        return "\n".join(lines)

    def _origins(self) -> list[str]:
        """Where the inputs' results came from: ``5 prepared now, 3 already done (journal)``."""
        counts = [(self.from_journal, "already done (journal)"),
                  (self.from_cache, "from the cache")]
        return [f"{self.prepared_now} prepared now",
                *(f"{n} {what}" for n, what in counts if n)]

    def _afterwords(self) -> list[str]:
        """The summary's lines about earlier runs' outputs, uploads and the report, when any."""
        lines = []
        if self.cleaned:
            lines.append(f"removed {plural(len(self.cleaned), 'output')} from earlier runs "
                         "(--clean)")
        if self.stale:
            n = len(self.stale)
            lines.append(f"{plural(n, 'output')} from earlier runs {'is' if n == 1 else 'are'} "
                         "not in parts.jsonl (--clean removes them)")
        if self.uploads is not None:
            u = self.uploads
            lines.append(f"uploads: {u['uploaded']} ({u['bytes']:,} bytes), "
                         f"{u['reused']} reused")
        if self.report_path is not None:
            lines.append(f"report: {self.report_path}")
        return lines

    def to_json(self) -> dict[str, Any]:
        """The run as one JSON object (``prep --format json``): the summary and the inputs."""
        return {
            "out_dir": str(self.out_dir),
            "parts": str(self.parts_path),
            "report": None if self.report_path is None else str(self.report_path),
            "summary": {
                "files": self.total, "passed": self.passed, "fixed": self.fixed,
                "failed": self.failed, "warned": self.warned,
                "prepared_now": self.prepared_now,
                "from_journal": self.from_journal, "from_cache": self.from_cache,
                "changes": self.change_counts(),
                "bytes_in": sum(r.bytes_in for r in self.results),
                "bytes_out": sum(r.bytes_out for r in self.results),
                "seconds": round(self.elapsed, 3),
                "requests": self.requests, "requests_left_out": self.requests_left_out,
                "stale_outputs": list(self.stale), "removed_outputs": list(self.cleaned),
            },
            "results": [r.to_json() for r in self.results],
        }


@dataclass
class CheckResult:
    """What a :func:`check_many` run found: ``report`` is the ``check --format json`` object."""

    report: dict[str, Any]
    elapsed: float = 0.0
    strict: bool = False
    run_findings: list[Finding] = field(default_factory=list)  # about the run (see run_findings)

    @property
    def run_failed(self) -> bool:
        """Whether a finding about the run fails it (a warning fails it under ``strict``)."""
        return any(f.severity == "error" or (self.strict and f.severity == "warning")
                   for f in self.run_findings)

    @property
    def files(self) -> list[dict[str, Any]]:
        return list(self.report["files"])

    @property
    def summary(self) -> dict[str, int]:
        return dict(self.report["summary"])

    @property
    def failed(self) -> int:
        return int(self.report["summary"]["failed"])

    @property
    def passed(self) -> int:
        return int(self.report["summary"]["passed"])


def _is_local(executor: Any) -> bool:
    return executor is None or executor == "local"


def _prestart(fn: Callable[[Any], Any], jobs: int | None, executor: Any,
              worker_imports: Sequence[str] = ()) -> None:
    """Let local workers' start-up (the fork server importing mediaprep) overlap with the
    walking and planning; the run would otherwise wait for it."""
    from .pool import prestart

    if _is_local(executor) and jobs != 0 and not multiprocessing.current_process().daemon:
        prestart(fn, worker_imports=worker_imports)


def run_tasks(tasks: Sequence[Any], fn: Callable[[Any], Any], *, jobs: int | None,
         timeout: float | None, on_result: Callable[[int, Any], None] | None,
         executor: Any, executor_options: Mapping[str, Any] | None,
         start_method: str | None = None, worker_imports: Sequence[str] = ()) -> list[Any]:
    """Run ``fn`` over ``tasks``: the one place that decides where per-input work runs.
    Returns one :class:`mediaprep.batch.pool.Outcome` per task, in input order; a task that
    hangs, crashes its worker or raises gets an error outcome and the run goes on.

    ``executor``: None or "local" (worker processes here), another name of
    :func:`mediaprep.batch.executors.get_executor` (with ``executor_options``), or an
    executor object. Raises ``ExecutorUnavailable`` and ``WorkerStartError`` as those do.
    ``start_method``: how local workers start, ``worker_imports``: what they import before
    their first task (:func:`mediaprep.batch.pool.run_all`).
    """
    from .pool import run_all

    if not _is_local(executor):
        if isinstance(executor, str):
            from .executors import get_executor

            executor = get_executor(executor, **dict(executor_options or {}))
        return list(executor.run(tasks, fn, jobs=jobs, timeout=timeout, on_result=on_result))
    if jobs != 0 and multiprocessing.current_process().daemon:
        jobs = 0  # a daemonic process may not start workers; whoever runs us isolates us
    return run_all(tasks, fn, jobs=jobs, timeout=timeout, on_result=on_result,
                   start_method=start_method, worker_imports=worker_imports)


def _config(config: Config | None) -> Config:
    from ..config import Config

    return config if config is not None else Config()


def _settings(settings: Settings | None) -> Settings:
    from ..settings import make_settings

    return settings if settings is not None else make_settings(None)


def run_findings(settings: Settings) -> tuple[list[Finding], Settings]:
    """Findings about a run rather than any one input, said once by the run (``model.unknown``:
    a model the limits table does not know), and the settings its inputs are judged with: they
    take that model as known, so that no input repeats the finding (or fails on it under
    ``strict``). A per-path override naming another unknown model is still said per input."""
    from ..kinds.common import check_model

    said = [f for f in check_model(settings) if f.code == "model.unknown"]
    if not said:
        return [], settings
    vision = [*sorted(settings.limits.value("models.vision")), settings.model]
    overrides = {**settings.limit_overrides, "models.vision": ",".join(vision)}
    return said, settings.replace(limit_overrides=overrides)


def check_many(paths: Iterable[str | os.PathLike[str]], settings: Settings | None = None, *,
               config: Config | None = None,
               frames_dirs: Iterable[str | os.PathLike[str]] = (), strict: bool = False,
               jobs: int | None = None, timeout: float | None = DEFAULT_TIMEOUT["check"],
               executor: str | Executor | None = None,
               executor_options: Mapping[str, Any] | None = None,
               on_start: Callable[[int], None] | None = None,
               on_result: Callable[[int, dict[str, Any]], None] | None = None) -> CheckResult:
    """Check files, folders (recursively, media files only), URLs and frame folders; nothing
    is written. Returns the ``check --format json`` object (docs/formats.md) as a
    :class:`CheckResult`.

    ``config``: include/exclude and per-path overrides. ``jobs``: worker processes (default:
    the CPUs; 0: in this process, no isolation). ``timeout``: seconds one input may take
    (None: no limit). ``on_start(n)`` is called once the inputs are known,
    ``on_result(index, entry)`` as each input ends (any order).

    Args:
        paths: files, folders, URLs to check.
        settings: the :class:`mediaprep.settings.Settings` (default: the defaults).
        frames_dirs: folders each taken as one video sent as its frames.
        strict: warnings fail an input too.
        executor: ``"local"``, ``"dask"`` or an executor object; ``executor_options`` are
            passed to a named one.

    Returns:
        A :class:`CheckResult` whose ``report`` is the ``check --format json`` object, and
        whose ``run_findings`` are about the run, said once instead of on every file (an
        unknown model: see :func:`run_findings`).

    Raises:
        BatchError: the run cannot start as asked (e.g. an executor that is not installed,
            an empty path).
    """
    from .inputs import collect
    from .summary import failed_check_entry, report_from_files
    from .tasks import check_one, plan_check

    paths, frames_dirs = list(paths), list(frames_dirs)
    _refuse_blank_paths([*paths, *frames_dirs])
    said, settings = run_findings(_settings(settings))
    config = _config(config)
    _prestart(check_one, jobs, executor)
    items = collect(paths, config, frames_dirs=frames_dirs)
    if on_start is not None:
        on_start(len(items))
    tasks = plan_check([i.source for i in items], settings, config=config,
                       displays=[i.display for i in items])
    files: list[dict[str, Any] | None] = [None] * len(tasks)
    start = time.monotonic()

    def ended(index: int, outcome: Any) -> None:
        t = tasks[index]
        entry = (outcome.value if outcome.ok
                 else failed_check_entry(t.display, t.source, outcome.error))
        files[index] = entry
        if on_result is not None:
            on_result(index, entry)

    run_tasks(tasks, check_one, jobs=jobs, timeout=timeout, on_result=ended, executor=executor,
         executor_options=executor_options)
    report = report_from_files([f for f in files if f is not None], settings, strict=strict)
    return CheckResult(report, time.monotonic() - start, strict, said)


@dataclass(frozen=True)
class PrepOptions:
    """How a :func:`prep_many` run goes: everything but what to prepare, where to, and the
    :class:`mediaprep.settings.Settings` of the media.

    ``config``: include/exclude patterns and per-path overrides (``[tool.mediaprep]``).
    ``frames_dirs``: folders each taken as one video sent as its frames. ``jobs``: worker
    processes (default: the CPUs; 0: in this process, no isolation). ``timeout``: seconds one
    input may take before its worker is killed (None: no limit). ``executor``: ``"local"``,
    ``"dask"`` or an executor object; ``executor_options`` are passed to a named one
    (``address=...`` for Dask). ``cache``: True for the default cache folder, a folder, or
    False/None for none. ``batch_requests``: also write OpenAI Batch API requests there
    (``group`` inputs per request at most, ``prompt`` after the media, ``batch_url`` the
    ``url`` of each line). ``html_report``: write ``out_dir/report.html``, or the page
    ``report_path`` names (never an input or a file the run makes). ``clean``: remove
    outputs of earlier runs no longer named. ``on_start(n)`` is called once the inputs are
    known, ``on_result`` as each input ends.
    """

    config: Config | None = None
    frames_dirs: Sequence[str | os.PathLike[str]] = ()
    jobs: int | None = None
    timeout: float | None = DEFAULT_TIMEOUT["prep"]
    executor: str | Executor | None = None
    executor_options: Mapping[str, Any] | None = None
    cache: bool | str | os.PathLike[str] | None = True
    batch_requests: str | os.PathLike[str] | None = None
    prompt: str | None = None
    group: int = 1
    batch_url: str = DEFAULT_BATCH_URL
    html_report: bool = True
    report_path: str | os.PathLike[str] | None = None
    clean: bool = False
    on_start: Callable[[int], None] | None = None
    on_result: Callable[[InputResult], None] | None = None


def prep_many(paths: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
              settings: Settings | None = None, options: PrepOptions | None = None,
              **changes: Any) -> BatchResult:
    """Make every input sendable into ``out_dir``: outputs, ``parts.jsonl`` (one line per
    input, in input order), and ``report.html``. Inputs are never written.

    Resumable: each finished input is recorded under ``out_dir/.mediaprep/``, so a rerun of a
    killed run (or of a finished one) only works on what is left. ``cache``: True for the
    default cache folder (``$MEDIAPREP_CACHE_DIR``, else ``$XDG_CACHE_HOME/mediaprep``), a
    folder, or False/None for no cache. The cache folder must be mediaprep's (its
    ``CACHEDIR.TAG``), new or empty: a folder named here that is not is a ``BatchError``; a
    default one that is not is logged (``mediaprep`` logger) and the run goes on without it.
    ``batch_requests``: also write OpenAI Batch API
    requests there (``group`` inputs per request at most, ``prompt`` after the media).
    ``on_start(n)`` is called once the inputs are known, ``on_result`` as each input ends.
    Outputs an earlier run made for inputs not named now are listed in ``result.stale``;
    ``clean`` removes them (only files mediaprep wrote and that are unchanged since).

    Args:
        paths: files, folders (walked recursively, media files only), URLs.
        out_dir: the output folder (made if missing; never an input's folder).
        settings: the :class:`mediaprep.settings.Settings` (default: the defaults).
        options: how the run goes (:class:`PrepOptions`: jobs, timeout, cache, batch requests,
            callbacks...).
        **changes: fields of :class:`PrepOptions` on top of ``options``
            (``prep_many(paths, out, jobs=4, cache=False)``); an unknown name is a TypeError.

    Returns:
        A :class:`BatchResult`: counts (passed, fixed, failed, from the journal, from the
        cache), ``summary()``, ``lines()`` (the ``parts.jsonl`` lines), and
        ``run_findings`` (about the run, said once: see :func:`run_findings`).

    Raises:
        BatchError: the run cannot start as asked (an input inside ``out_dir``, a link where
            ``.mediaprep`` should be, a requests path that is an input or one of the run's
            own files, an empty path...).
        RunStopped: it cannot go on (a full disk); ``OSError`` likewise. Finished inputs are
            kept either way.
    """
    o = dataclasses.replace(options or PrepOptions(), **changes)
    paths = list(paths)
    _refuse_blank_paths([*paths, *o.frames_dirs, out_dir,
                         *([] if o.batch_requests is None else [o.batch_requests])])
    said, settings = run_findings(_settings(settings))
    o = dataclasses.replace(o, config=_config(o.config), frames_dirs=list(o.frames_dirs))
    out = Path(out_dir)
    _refuse_prep_options(settings, o, out)
    cache_dir = _cache_dir(o.cache)
    out.mkdir(parents=True, exist_ok=True)
    plan = _plan_prep_run(paths, out, settings, o, cache_dir)
    result = BatchResult(out, run_findings=said)
    _run_prep(plan, o, result)
    if o.html_report:
        from ..report.html import write_prep_report_safely

        result.report_path = write_prep_report_safely(out, [t.source for t in plan.tasks],
                                                      settings, o.report_path)
    return result


def _refuse_prep_options(settings: Settings, o: PrepOptions, out: Path) -> None:
    """A run that cannot start as asked: a BatchError before anything is written."""
    from .journal import state_problem
    from .ownership import foreign_run_files
    from .requests import check_batch_options

    if settings.transport == "url" and not settings.url_prefix:
        raise BatchError("--transport url needs --url-prefix (where DIR will be hosted)")
    if settings.transport == "upload":
        from ..upload import require_upload

        require_upload(settings)  # no API key, no httpx: a usage error before any work
    if o.batch_requests is not None:
        why = check_batch_options(settings, o.prompt)
        if why is not None:
            raise BatchError(why)
    problem = state_problem(out) or foreign_run_files(
        out, report=o.html_report and o.report_path is None, thumbs=o.html_report)
    if problem is not None:
        raise BatchError(problem)


def _cache_dir(cache: bool | str | os.PathLike[str] | None) -> str | None:
    """The cache folder this run uses (None: none). A folder named here that is not
    mediaprep's is a BatchError; a default one is logged and the run goes on without it."""
    from .cache import Cache, default_cache_dir

    cache_dir = (None if cache is None or cache is False
                 else str(default_cache_dir() if cache is True else Path(cache)))
    if cache_dir is not None and (refused := Cache(cache_dir).claim()) is not None:
        if cache is not True:  # the user named it: a mistake to fix now, not a silent miss
            raise BatchError(f"cache folder refused: {refused} (name a new or empty folder, "
                             "or run without the cache)")
        # an ambient setting (MEDIAPREP_CACHE_DIR, XDG_CACHE_HOME): the run itself is fine
        log.warning("mediaprep cache: %s; this run goes on without the cache", refused)
        cache_dir = None
    return cache_dir


class _Jobs(Sequence[Any]):
    """The :class:`~mediaprep.batch.journal.PrepJob` of each input ``at`` (default: every
    task), made when asked for: a job is its task and what every job of the run shares (held
    for every input at once, jobs took 120 MB at 10^6 inputs)."""

    def __init__(self, tasks: Sequence[Any], journal: str, cache_dir: str | None, run_id: str,
                 thumbs: bool, at: Sequence[int] | None = None) -> None:
        self.tasks, self.at = tasks, at
        self.shared = (journal, cache_dir, run_id, thumbs)

    def __len__(self) -> int:
        return len(self.tasks if self.at is None else self.at)

    def __getitem__(self, k: Any) -> Any:
        from .journal import PrepJob

        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        return PrepJob(self.tasks[k if self.at is None else self.at[k]], *self.shared)

    def of(self, at: Sequence[int]) -> _Jobs:
        """The jobs of the inputs ``at`` (indices of tasks), in that order."""
        return _Jobs(self.tasks, *self.shared, at=at)


@dataclass
class _PrepPlan:
    """What a prep run will do, decided before the lock: its tasks, jobs and where it writes."""

    out: Path
    settings: Settings
    tasks: list[Any]
    jobs: _Jobs
    names: list[str]  # each input's journal record (journal.record_name)
    journal: Path
    run_id: str
    requests_path: Path | None
    worker_imports: tuple[str, ...] = ()  # tasks.media_imports of the inputs

    def folders(self) -> Iterator[Path]:
        """Where this run writes, and so where a killed run's temporaries can be."""
        from .journal import write_folders

        extra = [] if self.requests_path is None else [self.requests_path.parent]
        return write_folders(self.out, (t.stem for t in self.tasks), *extra)


def _plan_prep_run(paths: list[Any], out: Path, settings: Settings, o: PrepOptions,
                   cache_dir: str | None) -> _PrepPlan:
    from ..output import new_run_id
    from .inputs import collect
    from .journal import prep_job, record_name, state_dir
    from .journal_index import JOURNAL_INDEX_FILE, paused_gc
    from .journal_log import JOURNAL_FOLDER
    from .tasks import media_imports, plan_prep

    with paused_gc():  # objects by the million, no cycles among them
        items = collect(paths, o.config, frames_dirs=o.frames_dirs, skip=out)
    imports = media_imports(i.source for i in items)  # what the fork server imports: inputs
    if not (state_dir(out) / JOURNAL_INDEX_FILE).exists():
        # a first run: the workers will be needed (a rerun finds most inputs done, and its
        # fork server, a second process importing all of mediaprep, would cost for nothing)
        _prestart(prep_job, o.jobs, o.executor, imports)
    if o.on_start is not None:
        o.on_start(len(items))
    _refuse_inputs_inside(items, out)
    with paused_gc():
        tasks = plan_prep([i.source for i in items], out, settings, config=o.config,
                          displays=[i.display for i in items])
    requests_path = None if o.batch_requests is None else Path(o.batch_requests)
    _refuse_run_paths(items, out, [t.stem for t in tasks], o, requests_path)
    journal = state_dir(out) / JOURNAL_FOLDER
    run_id = new_run_id()  # the marker of this run's temporaries (output.temp_path_for)
    with paused_gc():
        names = [record_name(t.stem) for t in tasks]
    jobs = _Jobs(tasks, str(journal), cache_dir, run_id, o.html_report)
    return _PrepPlan(out, settings, tasks, jobs, names, journal, run_id, requests_path,
                     imports)


def _refuse_run_paths(items: Sequence[Any], out: Path, stems: list[str], o: PrepOptions,
                      requests_path: Path | None) -> None:
    """A batch requests file or report page the run must not write: a BatchError."""
    from .requests import refuse_batch_requests_path, refuse_report_path

    why = None
    if requests_path is not None:
        why = refuse_batch_requests_path(requests_path, items, out, stems)
    if why is None and o.html_report and o.report_path is not None:
        why = refuse_report_path(Path(o.report_path), items, out, stems, requests_path)
    if why is not None:
        raise BatchError(why)


def _run_prep(plan: _PrepPlan, o: PrepOptions, result: BatchResult) -> None:
    """The run itself, under the folder's lock: journal hits, the workers, parts.jsonl, the
    sweep of temporaries, stale outputs and batch requests."""
    from ..output import writing_for_run
    from .journal import (
        JournalIndex,
        clean_journal,
        record_runs,
        recorded_runs,
        run_lock,
        stale_outputs,
        state_dir,
        sweep_temporaries,
    )
    from .journal_log import close_log
    from .ownership import drop_claims
    from .requests import write_batch_requests

    out = plan.out
    with run_lock(out) as locked, writing_for_run(plan.run_id):
        if not locked:
            raise BatchError(f"another mediaprep prep run is writing to {out}")
        earlier = recorded_runs(out)
        record_runs(out, [*earlier, plan.run_id])  # before anything is written: a kill finds it
        if earlier:
            sweep_temporaries(out, plan.folders(), earlier)  # what killed runs left half-written
        index = JournalIndex(state_dir(out))  # one file standing for the records (a rerun)
        try:
            killed = _run_prep_tasks(plan, o, result, index, earlier)
        except BaseException:
            # Ctrl-C, a full disk: the workers are dead by now, and what they were writing is
            # half-written; a rerun would sweep it too, but nothing half-written may stay.
            sweep_temporaries(out, plan.folders(), [*earlier, plan.run_id])
            raise
        finally:
            close_log()  # the records this process appended itself (jobs=0)
        if killed:  # a killed worker leaves what it was writing; the others clean up their own
            sweep_temporaries(out, plan.folders(), [plan.run_id])
        result.stale, result.cleaned = stale_outputs(out, index, plan.names, clean=o.clean)
        index.write(plan.names)
        clean_journal(plan.journal)  # the logs: the index and parts.jsonl hold them now
        if plan.requests_path is not None:
            result.requests, result.requests_left_out = write_batch_requests(
                out / PARTS_FILE, plan.requests_path, plan.settings, o.prompt or "", o.group,
                o.batch_url)
        record_runs(out, [])  # every temporary of the runs so far is gone
        drop_claims(state_dir(out))  # and their records say what is ours


class _Ends:
    """What the parent does as each input ends: index its record, put its line in
    parts.jsonl (unless ``keep_parts``: the file holds every line already), tell on_result."""

    def __init__(self, plan: _PrepPlan, o: PrepOptions, index: JournalIndex, parts: Any,
                 ) -> None:
        self.tasks = plan.tasks
        self.on_result = o.on_result
        self.index = index
        self.parts = parts
        self.keep_parts = False
        self.killed = False  # a worker was killed or died: it may have left temporaries
        self.results: list[InputResult | None] = [None] * len(plan.tasks)

    def __call__(self, index: int, done: Any, error: Any) -> None:
        r = self._ok(index, done) if error is None else self._failed(index, error)
        self.results[index] = r
        if self.on_result is not None:
            self.on_result(r)

    def done(self) -> list[InputResult]:
        """The results, in input order (every input ended)."""
        return [r for r in self.results if r is not None]

    def _ok(self, index: int, done: Any) -> InputResult:
        record, at = done.take_record()
        if record is not None:
            self.index.add(record, at)
        if not self.keep_parts:
            self.parts.done(index)
        result = InputResult(index, self.tasks[index].display, done.ok, done.ok and done.fixed,
                             done.status, sys.intern(done.origin), done.bytes_in,
                             done.bytes_out, _interned(done.changes), _interned(done.warnings),
                             _interned(done.codes), tuple(done.outputs))
        done.clear()  # the executor keeps every outcome to the end: only the result holds it
        return result

    def refuse(self, refused: dict[int, str], out: Path) -> None:
        """Inputs not prepared: a name their outputs need (relative to ``out``) is not ours."""
        from .summary import not_ours_line

        for index, name in sorted(refused.items()):
            line = not_ours_line(self.tasks[index].display, str(out / name))
            self.parts.failed(index, line)
            r = InputResult(index, self.tasks[index].display, False, False, _status_of(line),
                            "failed", codes=tuple(f["code"] for f in line["findings"]))
            self.results[index] = r
            if self.on_result is not None:
                self.on_result(r)

    def _failed(self, index: int, error: Any) -> InputResult:
        from ..output import RUN_STOPPING_ERRNOS
        from .summary import failed_prep_line

        t = self.tasks[index]
        if getattr(error, "errno", None) in RUN_STOPPING_ERRNOS:
            raise RunStopped(f"{t.display}: {error.message}", error.errno)
        self.killed = self.killed or error.kind in ("timeout", "crash")
        line = failed_prep_line(t.display, error)
        self.parts.failed(index, line)
        return InputResult(index, t.display, False, False, _status_of(line), "failed",
                           codes=tuple(f["code"] for f in line.get("findings") or []))


def _interned(codes: Iterable[str]) -> tuple[str, ...]:
    """Codes and kinds of change, one string each however many inputs name them (each arrives
    from a worker as a copy of its own: 10^5 results held 10^5 copies of "image.resized")."""
    return tuple(sys.intern(c) for c in codes)


def _run_prep_tasks(plan: _PrepPlan, o: PrepOptions, result: BatchResult,
                    index: JournalIndex, earlier: list[str]) -> bool:
    """Inputs a previous run finished come from the journal; those whose output names hold
    something not ours are refused; the rest go to the workers; parts.jsonl gets every line
    in input order. True when a worker may have been killed mid-write (its temporaries need
    a sweep)."""
    from .journal import prep_job

    hits, todo = _journal_hits(plan, index)
    refused = _not_ours(plan, index, todo, earlier)
    if refused:
        todo = [i for i in todo if i not in refused]
    start = time.monotonic()
    with _parts_file(plan, index) as parts:
        ends = _Ends(plan, o, index, parts)
        ends.keep_parts = not todo and not refused and parts.unchanged()  # nothing changed
        for i, done in hits.items():
            ends(i, done, None)
        ends.refuse(refused, plan.out)
        todo = _largest_first(plan, todo)
        run_tasks(plan.jobs.of(todo), prep_job, jobs=o.jobs, timeout=o.timeout,
                  on_result=lambda k, out: ends(todo[k], out.value, out.error),
                  executor=o.executor, executor_options=o.executor_options,
                  worker_imports=plan.worker_imports)
        if not ends.keep_parts:
            parts.close()
        result.elapsed = time.monotonic() - start
    result.results = ends.done()
    result.missing = parts.missing
    if plan.settings.transport == "upload":
        result.uploads = _upload_counts(result)
    # another executor may retry a task whose worker died, and not say so
    return ends.killed or not _is_local(o.executor)


def _not_ours(plan: _PrepPlan, index: JournalIndex, todo: list[int],
              earlier: list[str]) -> dict[int, str]:
    """The inputs to prepare whose output names hold something no run of ours made (with
    that name), and, before any worker writes, the claim of the others' stems."""
    from .journal import state_dir
    from .ownership import Owned, foreign_outputs, write_claims

    state = state_dir(plan.out)
    owned = Owned(state, plan.names, lambda name: index.get(name) is not None, earlier)
    tasks = plan.tasks
    refused = foreign_outputs(plan.out, todo, lambda i: tasks[i].stem, owned)
    write_claims(state, plan.run_id, [plan.names[i] for i in todo if i not in refused])
    return refused


def _parts_file(plan: _PrepPlan, index: JournalIndex) -> Any:
    """DIR/parts.jsonl of the run, its lines copied from the journal's records."""
    from .journal import state_dir
    from .parts_file import PartsFile
    from .summary import failed_prep_line

    names, tasks = plan.names, plan.tasks
    return PartsFile(plan.out / PARTS_FILE, names, lambda i: index.line_at(names[i]),
                     lambda i: failed_prep_line(tasks[i].display, "its result record is missing"),
                     state_dir(plan.out))


def _largest_first(plan: _PrepPlan, todo: list[int]) -> list[int]:
    """The inputs to prepare, the largest files first (then URLs and what cannot be looked at,
    in input order): with two or more workers a long input then starts early instead of
    keeping one worker busy while the other has nothing left (longest first). The lines and
    results still come in input order. One stat an input (a cold run's parent makes none
    otherwise): about 2 s at 10^6."""
    def size(i: int) -> int:
        try:
            return os.stat(plan.tasks[i].source).st_size
        except (OSError, ValueError):
            return -1  # a URL, or gone: the worker says what it is

    if len(todo) < 2:
        return todo
    sizes = array("q", (size(i) for i in todo))  # 8 bytes an input, not a dict's 100
    order = sorted(range(len(todo)), key=lambda k: -sizes[k])  # stable: ties in input order
    return [todo[k] for k in order]


def _journal_hits(plan: _PrepPlan, index: JournalIndex) -> tuple[dict[int, Any], list[int]]:
    """Inputs a previous run finished (journal records still valid), which need no worker,
    and the others (their indices)."""
    from .journal import journal_hit
    from .journal_index import paused_gc

    with paused_gc():
        hits = {i: done for i, (job, name) in enumerate(zip(plan.jobs, plan.names, strict=True))
                if (done := journal_hit(job, index, name)) is not None}
    return hits, [i for i in range(len(plan.jobs)) if i not in hits]


def _upload_counts(result: BatchResult) -> dict[str, int]:
    """What the inputs prepared by this run uploaded (journal and cache hits upload nothing)."""
    now = {r.index for r in result.results if r.origin == "prepared"}
    counts = {"uploaded": 0, "bytes": 0, "reused": 0}
    for index, line in enumerate(result.lines()):
        if index not in now:
            continue
        for u in line.get("uploads") or []:
            if u.get("uploaded"):
                counts["uploaded"] += 1
                counts["bytes"] += int(u.get("bytes") or 0)
            else:
                counts["reused"] += 1
    return counts


def _status_of(line: dict[str, Any]) -> str:
    detail = "; ".join(f"{f['code']}: {f['message']}" for f in line.get("findings") or [])
    return f"{line['path']}: FAILED ({detail})"


def _refuse_blank_paths(paths: Iterable[Any]) -> None:
    """An empty path is not the current folder (an unset variable): the run does not start."""
    for p in paths:
        why = blank_path_problem(p)
        if why is not None:
            raise BatchError(why)


def _refuse_inputs_inside(items: Sequence[Any], out: Path) -> None:
    """Outputs never land over inputs: an input inside DIR would be read and written at once."""
    root = str(out.resolve())
    inside = root.rstrip(os.sep) + os.sep
    for item in items:
        p = item.real  # None: a URL, a missing file or a link loop: no place, inside or out
        if p is None:
            continue
        if str(p) == root or str(p).startswith(inside):
            raise BatchError(f"input {item.display} is inside the output folder {out}")
