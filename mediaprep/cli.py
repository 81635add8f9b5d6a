"""The ``mediaprep`` command: a thin layer over the library.

Exit codes (as ruff/black): 0 all passed, 1 some input failed, 2 usage or config error or a
run that could not go on (a full disk), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

# Only light modules here: PyAV, numpy and Pillow are imported by the commands that need them,
# after local workers' fork server has started importing them alongside (see prestart_workers).
from . import limits as limits_mod
from .config import Config, ConfigError, load_config
from .limits import LimitError
from .settings import VIDEO_MODES, Settings, SettingsError, make_settings

if TYPE_CHECKING:
    from .resource import Source

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it (128 + SIGINT)


class UsageFailure(click.UsageError):
    exit_code = EXIT_USAGE


def shared_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command takes; ``None`` means "from config, else the default"."""
    opts = [
        click.option("--target", type=click.Choice(limits_mod.TARGETS), default=None,
                     help="Provider whose limits apply [default: dashscope]."),
        click.option("--dialect", type=click.Choice(limits_mod.DIALECTS), default=None,
                     help="API dialect of the content parts [default: openai]."),
        click.option("--transport", type=click.Choice(limits_mod.TRANSPORTS), default=None,
                     help="How media travels: data URL, public URL, or file:// path "
                          "[default: base64]."),
        click.option("--model", default=None, help="Model the request is for "
                                                   "[default: kimi-k2.5]."),
        click.option("--fps", type=float, default=None, help="Video frames per second "
                                                             "[default: 2]."),
        click.option("--max-frames", type=int, default=None,
                     help="Cap on frames per video [default: 2000]."),
        click.option("--limit", "limit_overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a row of the limits table (see `mediaprep limits`)."),
        click.option("--max-tokens", type=int, default=None,
                     help="Limit on estimated tokens per request."),
        click.option("--max-image-tokens", type=int, default=None,
                     help="Limit on estimated tokens per image."),
        click.option("--video-mode", type=click.Choice(VIDEO_MODES), default=None,
                     help="Send videos as files, as frames, or decide per video."),
        click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                     help="Config file (default: mediaprep.toml or [tool.mediaprep] in "
                          "pyproject.toml, searched upwards)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def build_settings(ctx_opts: dict[str, Any]) -> tuple[Settings, Config]:
    """Config file first, then command-line options on top."""
    try:
        path = ctx_opts.pop("config_path", None)
        config = load_config(Path(path) if path else None)
        overrides: dict[str, Any] = dict(config.options.pop("limits", {}) or {})
        for raw in ctx_opts.pop("limit_overrides", ()) or ():
            if "=" not in raw:
                raise UsageFailure(f"--limit takes KEY=VALUE, got {raw!r}")
            key, value = raw.split("=", 1)
            overrides[key.strip()] = value.strip()
        base = make_settings(None, **config.options)
        cli = {k: v for k, v in ctx_opts.items() if v is not None}
        settings = make_settings(base, **cli, limits=overrides or None)
        return settings, config
    except (ConfigError, SettingsError, LimitError, TypeError) as exc:
        raise UsageFailure(str(exc)) from exc


def _pop(opts: dict[str, Any], *names: str) -> list[Any]:
    return [opts.pop(n, None) for n in names]


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (SettingsError, LimitError, ConfigError) as exc:
            raise UsageFailure(str(exc)) from exc
        except KeyboardInterrupt:
            # Not click's bare "Aborted!" with exit 1, which a script would read as "some
            # input failed": say what is kept, and exit as a shell does on Ctrl-C.
            click.echo(f"\nmediaprep {fn.__name__}: interrupted{KEPT.get(fn.__name__, '')}",
                       err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (OSError, RunStopped) as exc:
            # The machine, not an input: a full disk, an output folder that cannot be made.
            _say(f"mediaprep {fn.__name__}: stopped: {exc}{KEPT.get(fn.__name__, '')}",
                 err=True)
            sys.exit(EXIT_USAGE)

    return wrapper


KEPT = {"prep": "; finished inputs are kept: run the same command again to finish"}


class RunStopped(Exception):
    """A worker hit an error that every later input would hit too (see RUN_STOPPING_ERRNOS)."""


# Seconds one input may take before its worker is killed and the input gets file.unreadable.
# check reads headers (a healthy file takes milliseconds); prep may transcode an hour of video.
DEFAULT_TIMEOUT = {"check": 120.0, "prep": 1200.0}


def batch_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options of the commands that run over many inputs (check, prep)."""
    opts = [
        click.option("-j", "--jobs", type=click.IntRange(min=0), default=None,
                     help="Worker processes [default: the CPUs available]; 0 runs in this "
                          "process (no isolation, no timeout; for debugging)."),
        click.option("--timeout", type=click.FloatRange(min=0), default=None,
                     help="Seconds one input may take before it is given up as "
                          "file.unreadable; 0: no limit [default: 120 for check, 1200 for "
                          "prep]."),
        click.option("-q", "--quiet", is_flag=True,
                     help="No progress bar and no per-file lines; the summary still prints."),
        click.option("--allow-url", is_flag=True, default=None,
                     help="Fetch http(s) inputs (otherwise they are not fetched)."),
        click.option("--allow-private-urls", is_flag=True, default=None,
                     help="With --allow-url: also fetch from private, link-local and loopback "
                          "addresses (refused by default)."),
        click.option("--allow-loopback-urls", is_flag=True, default=None,
                     help="With --allow-url: also fetch from loopback addresses (local "
                          "servers)."),
        click.option("--manifest", "manifests", multiple=True, type=click.Path(dir_okay=False),
                     help="A file listing inputs, one path or URL per line (# comments); "
                          "relative paths are relative to the manifest's folder."),
        click.option("--executor", type=click.Choice(["local", "dask"]), default="local",
                     show_default=True,
                     help="Where per-input work runs: local worker processes, or a Dask "
                          "cluster (pip install 'mediaprep[dask]')."),
        click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="Dask scheduler address [default: $MEDIAPREP_DASK_SCHEDULER, else a "
                          "local cluster of --jobs workers]."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


@dataclass(frozen=True)
class RunPlace:
    """Where per-input work runs (--executor, --scheduler)."""

    executor: str = "local"
    scheduler: str | None = None


def pop_run_options(opts: dict[str, Any], paths: tuple[str, ...]) -> tuple[RunPlace,
                                                                            tuple[str, ...]]:
    """Take the executor options out of ``opts``; add the manifests' entries to ``paths``."""
    from .batch.inputs import ManifestError, read_manifest

    place = RunPlace(opts.pop("executor", None) or "local", opts.pop("scheduler", None))
    entries: list[str] = []
    for manifest in opts.pop("manifests", ()) or ():
        try:
            entries += read_manifest(manifest)
        except (ManifestError, OSError) as exc:
            raise UsageFailure(f"manifest {manifest}: {exc}") from exc
    return place, tuple(paths) + tuple(entries)


def run_tasks(tasks: list[Any], fn: Callable[[Any], Any], *, jobs: int | None,
              timeout: float | None,
              on_result: Callable[[int, Any], None] | None = None,
              place: RunPlace | None = None) -> list[Any]:
    """Run ``fn`` over ``tasks``: the one place that decides where per-input work runs.

    Returns one :class:`~mediaprep.batch.runner.Outcome` per task, in input order; a task that
    hangs, crashes its worker or raises gets an error outcome and the run goes on.
    """
    import multiprocessing

    from .batch.runner import WorkerStartError, run_all

    if place is not None and place.executor != "local":
        from .batch.executors import ExecutorUnavailable, get_executor

        try:
            ex = get_executor(place.executor,
                              **({"address": place.scheduler} if place.scheduler else {}))
        except ExecutorUnavailable as exc:
            raise UsageFailure(str(exc)) from exc
        return ex.run(tasks, fn, jobs=jobs, timeout=timeout, on_result=on_result)
    if jobs != 0 and multiprocessing.current_process().daemon:
        jobs = 0  # a daemonic process may not start workers; whoever runs us isolates us
    try:
        return run_all(tasks, fn, jobs=jobs, timeout=timeout, on_result=on_result)
    except WorkerStartError as exc:
        raise click.ClickException(str(exc)) from exc


def prestart_workers(fn: Callable[[Any], Any], *, jobs: int | None,
                     place: RunPlace) -> None:
    """Let local workers' start-up (the fork server importing mediaprep) overlap with the
    command's own walking and planning; :func:`run_tasks` would otherwise wait for it."""
    import multiprocessing

    from .batch.runner import prestart

    if place.executor == "local" and jobs != 0 and not multiprocessing.current_process().daemon:
        prestart(fn)


def _timeout(value: float | None, command: str) -> float | None:
    if value is None:
        return DEFAULT_TIMEOUT[command]
    return value or None  # 0: no limit


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mediaprep")
def main() -> None:
    """Check, fix and package images and videos for Kimi vision models."""


def _say(text: str, *, err: bool = False) -> None:
    """Print a line that may hold a file name: one that is not UTF-8 prints escaped."""
    from .report import displayable

    click.echo(displayable(text), err=err)


def _say_if_nothing_found(items: list[Any], command: str) -> None:
    """As ruff does: a folder with no media (a mistyped path?) passes, but not silently."""
    if not items:
        click.echo(f"mediaprep {command}: warning: no images or videos found in the paths "
                   "given (include/exclude from the config apply)", err=True)


def _source_for(item: Any) -> Source:
    from .resource import to_source

    return to_source(item.path, name=item.display)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@shared_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "junit", "sarif",
                                                   "html"]),
              default="text", show_default=True, help="Report format.")
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@click.option("--deep", is_flag=True, help="Decode pixels too (slower; catches more damage).")
@click.option("--frames-dir", "frames_dirs", multiple=True, type=click.Path(file_okay=False),
              help="A folder of frame images to check as one video (image list).")
@click.option("-v", "--verbose", is_flag=True, help="List passing files too.")
@batch_options
@handle_errors
def check(paths: tuple[str, ...], fmt: str, strict: bool, deep: bool,
          frames_dirs: tuple[str, ...], verbose: bool, jobs: int | None,
          timeout: float | None, quiet: bool, **opts: Any) -> None:
    """Validate files and folders (recursively); nothing is written."""
    from .batch.progress import Progress, human_duration
    from .batch.tasks import check_one, plan_check
    from .report import render

    place, paths = pop_run_options(opts, paths)
    if not paths and not frames_dirs:
        raise UsageFailure("give at least one file or folder")
    settings, config = build_settings(opts)
    settings = settings.replace(deep=deep) if deep else settings
    prestart_workers(check_one, jobs=jobs, place=place)
    from .batch.inputs import collect
    from .batch.summary import failed_check_entry, failed_json, report_from_files

    items = collect(paths, config, frames_dirs=frames_dirs)
    _say_if_nothing_found(items, "check")
    tasks = plan_check([i.source for i in items], settings, config=config,
                       displays=[i.display for i in items])
    files: list[dict[str, Any] | None] = [None] * len(tasks)

    with Progress(len(tasks), label="check", enabled=False if quiet else None) as progress:
        def on_result(index: int, outcome: Any) -> None:
            t = tasks[index]
            entry = (outcome.value if outcome.ok
                     else failed_check_entry(t.display, t.source, outcome.error))
            files[index] = entry
            progress.advance(not failed_json(entry, strict=strict),
                             bytes_in=int((entry.get("info") or {}).get("bytes") or 0))

        run_tasks(tasks, check_one, jobs=jobs, timeout=_timeout(timeout, "check"),
                  on_result=on_result, place=place)
    data = report_from_files([f for f in files if f is not None], settings, strict=strict)
    out = render(data, fmt, strict=strict, verbose=verbose)
    if out:
        click.echo(out, nl=False)
    if fmt in ("github", "junit", "sarif", "json", "html"):
        s = data["summary"]
        click.echo(f"mediaprep: {s['files']} files, {s['passed']} passed, {s['failed']} failed"
                   f", {human_duration(progress.elapsed)}", err=True)
    sys.exit(EXIT_FAILED if data["summary"]["failed"] else EXIT_OK)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(), required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, as a list.")
@click.option("--deep", is_flag=True, help="Decode pixels too.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
@click.option("--allow-url", is_flag=True, default=None, help="Fetch http(s) inputs.")
@click.option("--allow-loopback-urls", is_flag=True, default=None,
              help="With --allow-url: also fetch from loopback addresses.")
@click.option("--allow-private-urls", is_flag=True, default=None,
              help="With --allow-url: also fetch from private addresses.")
@handle_errors
def probe(paths: tuple[str, ...], as_json: bool, deep: bool, config_path: str | None,
          **url_opts: Any) -> None:
    """Print what each file is."""
    from .api import probe as probe_api
    from .batch.inputs import collect
    from .kinds import probe_source

    settings, config = build_settings({"config_path": config_path, **url_opts})
    items = collect(paths, config)
    infos = [probe_api(i.url, settings=settings, deep=deep) if i.url is not None
             else probe_source(_source_for(i), limits=settings.limits, deep=deep)
             for i in items]
    bad = any(i.error_code for i in infos)
    if as_json:
        click.echo(json.dumps([{"path": i.path, "kind": i.kind, "info": i.to_json(),
                                **_tokens_of(i, settings),
                                **({"error": {"code": i.error_code, "message": i.error}}
                                   if i.error_code else {})}
                               for i in infos], indent=2))
    else:
        for i in infos:
            _say(_describe(i))
    sys.exit(EXIT_FAILED if bad else EXIT_OK)


def _tokens_of(info: Any, settings: Settings) -> dict[str, Any]:
    """``{"tokens": {...}}`` beside ``info`` where an estimate applies (SPEC section 4)."""
    from .kinds.common import estimate_for
    from .model import Report

    try:
        est = estimate_for(Report(path=info.path, kind=info.kind, info=info), settings)
    except (ValueError, TypeError):
        est = None
    return {} if est is None else {"tokens": {"estimate": est, "model": settings.model}}


def _describe(info: Any) -> str:
    parts = [f"{info.path}: {info.kind}"]
    if info.format:
        parts.append(info.format)
    if info.width:
        parts.append(f"{info.width}x{info.height}")
    parts.append(f"{info.bytes:,} bytes")
    if info.kind == "image":
        if info.mode:
            parts.append(f"mode {info.mode}")
        if info.bit_depth and info.bit_depth != 8:
            parts.append(f"{info.bit_depth}-bit")
        if info.orientation and info.orientation != 1:
            parts.append(f"EXIF orientation {info.orientation}")
        if info.frames:
            parts.append(f"{info.frames} frames")
    if info.kind == "video":
        if info.codec:
            parts.append(info.codec)
        if info.duration is not None:
            parts.append(f"{info.duration:.3f} s")
        if info.fps:
            parts.append(f"{info.fps:.3f} fps" + (" (variable)" if info.fps_varies else ""))
        if info.rotation:
            parts.append(f"rotated {info.rotation}")
        if info.sample_aspect_ratio:
            parts.append(f"SAR {info.sample_aspect_ratio:g}")
        parts.append("audio" if info.has_audio else "no audio")
    if info.kind == "frames":
        parts.append(f"{len(info.members)} frames")
    if not info.extension_matches:
        parts.append(f"(named .{info.extension})")
    line = ", ".join(parts)
    if info.error:
        line += f"\n  {info.error_code}: {info.error}"
    for note in info.notes:
        line += f"\n  note: {note}"
    return line


@main.command(name="limits")
@click.option("--target", type=click.Choice(limits_mod.TARGETS), default=None)
@click.option("--limit", "limit_overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
@handle_errors
def limits_cmd(target: str | None, limit_overrides: tuple[str, ...], as_json: bool,
               config_path: str | None) -> None:
    """Print the limits in force for a target, with their sources."""
    settings, _ = build_settings({"target": target, "limit_overrides": limit_overrides,
                                  "config_path": config_path})
    table = settings.limits
    if as_json:
        click.echo(json.dumps({"target": table.target, "version": limits_mod.TABLE_VERSION,
                               "limits": table.to_json()}, indent=2))
        return
    click.echo(f"Limits for target {table.target} (table {limits_mod.TABLE_VERSION})")
    for key, row in table.items():
        value = row.value
        if isinstance(value, frozenset):
            value = ", ".join(sorted(value))
        elif isinstance(value, tuple):
            value = "x".join(str(v) for v in value)
        elif isinstance(value, int) and value >= 10_000:
            value = f"{value:,}"
        strict = " (exclusive)" if row.strict else ""
        src = limits_mod.SOURCES[row.source]
        click.echo(f"  {key:<28} {value}{strict}  [{row.severity} {row.code}]")
        click.echo(f"  {'':<28} {row.note}; source: {src.title} ({src.as_of})")


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output folder (created; inputs are never written).")
@shared_options
@click.option("--url-prefix", default=None, help="Where the outputs will be hosted "
                                                 "(url transport).")
@click.option("--max-side", type=int, default=None, help="Scale images down to this long side.")
@click.option("--max-pixels", type=int, default=None, help="Scale images down to this area.")
@click.option("--small", "small_image_fix", type=click.Choice(["pad", "upscale"]), default=None,
              help="How images of 10 px or less on a side are fixed [default: pad].")
@click.option("--pad-aspect", is_flag=True, default=None,
              help="Pad images beyond the aspect-ratio limit instead of failing them.")
@click.option("--resize", "resize", type=click.Choice(["none", "model"]), default=None,
              help="'model': resize images to exactly what the model keeps.")
@click.option("--frames-dir", "frames_dirs", multiple=True, type=click.Path(file_okay=False),
              help="A folder of frame images to send as one video (image list).")
@click.option("--no-cache", is_flag=True, help="Neither read nor fill the prep cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Cache folder [default: $MEDIAPREP_CACHE_DIR, else "
                   "$XDG_CACHE_HOME/mediaprep, else ~/.cache/mediaprep].")
@click.option("--batch-requests", "batch_requests", type=click.Path(dir_okay=False),
              default=None, help="Also write OpenAI Batch API requests (JSONL) to this file.")
@click.option("--prompt", default=None, help="Text sent after the media in each batch request.")
@click.option("--group", type=click.IntRange(min=1), default=1, show_default=True,
              help="Inputs per batch request (fewer when a request would exceed a limit).")
@click.option("--batch-url", default="/v1/chat/completions", show_default=True,
              help="The endpoint each batch request names.")
@click.option("--no-report", is_flag=True, expose_value=False,
              callback=lambda ctx, _p, v: ctx.meta.__setitem__("mediaprep.no_report", v),
              help="Do not write DIR/report.html.")
@batch_options
@handle_errors
def prep(paths: tuple[str, ...], out_dir: str, frames_dirs: tuple[str, ...], quiet: bool,
         resize: str | None, jobs: int | None, timeout: float | None, no_cache: bool,
         cache_dir: str | None, batch_requests: str | None, prompt: str | None, group: int,
         batch_url: str, **opts: Any) -> None:
    """Make every input sendable: fix what can be fixed, write outputs and DIR/parts.jsonl.

    Resumable: each finished input is recorded under DIR/.mediaprep/, so a rerun of a killed
    run (or of a finished one) only works on what is left. Unchanged inputs are taken from the
    cache (see --cache-dir, --no-cache) without media work.
    """
    from .batch.cache import default_cache_dir
    from .batch.inputs import collect
    from .batch.journal import (
        JOURNAL_FOLDER,
        PrepJob,
        journal_hit,
        journal_line_file,
        journal_path,
        prep_job,
        prune_journal,
        record_runs,
        recorded_runs,
        run_lock,
        state_dir,
        state_problem,
        sweep_temporaries,
        write_folders,
    )
    from .batch.parts_file import PartsFile
    from .batch.progress import Progress
    from .batch.runner import Outcome
    from .batch.summary import failed_prep_line
    from .batch.tasks import plan_prep
    from .output import RUN_STOPPING_ERRNOS, new_run_id, writing_for_run
    from .report import displayable

    place, paths = pop_run_options(opts, paths)
    if not paths and not frames_dirs:
        raise UsageFailure("give at least one file or folder")
    if resize is not None:
        opts["resize_model"] = resize == "model"
    settings, config = build_settings(opts)
    if settings.transport == "url" and not settings.url_prefix:
        raise UsageFailure("--transport url needs --url-prefix (where DIR will be hosted)")
    if batch_requests is not None:
        _check_batch_options(settings, prompt)
    out = Path(out_dir)
    problem = state_problem(out)
    if problem is not None:
        raise UsageFailure(problem)
    out.mkdir(parents=True, exist_ok=True)
    prestart_workers(prep_job, jobs=jobs, place=place)
    items = collect(paths, config, frames_dirs=frames_dirs, skip=out)
    _say_if_nothing_found(items, "prep")
    _refuse_inputs_inside(items, out)
    requests_path = None if batch_requests is None else Path(batch_requests)
    if requests_path is not None:
        _refuse_batch_requests_path(requests_path, items, out)
    tasks = plan_prep([i.source for i in items], out, settings, config=config,
                      displays=[i.display for i in items])
    journal = state_dir(out) / JOURNAL_FOLDER
    cache = None if no_cache else str(Path(cache_dir) if cache_dir else default_cache_dir())
    run_id = new_run_id()  # the marker of this run's temporaries (output.temp_path_for)
    jobs_list = [PrepJob(t, str(journal), cache, run_id) for t in tasks]
    records = [journal_path(journal, t.stem) for t in tasks]
    # where this run writes, and so where a killed run's temporaries can be
    folders = write_folders(out, [t.stem for t in tasks],
                            *([] if requests_path is None else [requests_path.parent]))

    with run_lock(out) as locked, writing_for_run(run_id):
        if not locked:
            raise UsageFailure(f"another mediaprep prep run is writing to {out}")
        earlier = recorded_runs(out)
        record_runs(out, [*earlier, run_id])  # before anything is written: a kill finds it
        sweep_temporaries(out, folders, earlier)  # what killed runs left half-written
        # Inputs a previous run finished (journal records still valid) need no worker.
        hits = {i: done for i, job in enumerate(jobs_list)
                if (done := journal_hit(job)) is not None}
        todo = [i for i in range(len(tasks)) if i not in hits]
        parts = PartsFile(out / "parts.jsonl", records, journal_line_file,
                          lambda i: failed_prep_line(tasks[i].display,
                                                     "its result record is missing"))
        try:
            with parts, Progress(len(tasks), label="prep",
                                 enabled=False if quiet else None) as progress:
                keep_parts = not todo and parts.unchanged()  # a rerun that changed nothing

                def report(index: int, outcome: Any) -> None:
                    t = tasks[index]
                    if outcome.ok:
                        d = outcome.value
                        progress.advance(d.ok, fixed=d.fixed, bytes_in=d.bytes_in,
                                         bytes_out=d.bytes_out)
                        status = d.status
                        if not keep_parts:
                            parts.done(index)
                    else:
                        if getattr(outcome.error, "errno", None) in RUN_STOPPING_ERRNOS:
                            raise RunStopped(f"{t.display}: {outcome.error.message}")
                        line = failed_prep_line(t.display, outcome.error)
                        progress.advance(False)
                        status = _status_of(line)
                        parts.failed(index, line)
                    if not quiet:
                        line_out = displayable(status)  # a name that is not UTF-8 prints
                        progress.write(line_out) if progress.enabled else click.echo(line_out)

                for i, done in hits.items():
                    report(i, Outcome(value=done))
                run_tasks([jobs_list[i] for i in todo], prep_job, jobs=jobs,
                          timeout=_timeout(timeout, "prep"),
                          on_result=lambda k, outcome: report(todo[k], outcome), place=place)
                if not keep_parts:
                    parts.close()
        except BaseException:
            # Ctrl-C, a full disk: the workers are dead by now, and what they were writing is
            # half-written; a rerun would sweep it too, but nothing half-written may stay.
            sweep_temporaries(out, folders, [*earlier, run_id])
            raise
        # workers killed by the timeout leave temporary files too
        sweep_temporaries(out, folders, [*earlier, run_id])
        failed = progress.failed + parts.missing
        prune_journal(journal, records)
        if requests_path is not None:
            n_req, skipped = _write_batch_requests(out / "parts.jsonl", requests_path,
                                                   settings, prompt or "", group, batch_url)
        record_runs(out, [])  # every temporary of the runs so far is gone
    _say(f"prep: {progress.summary()} -> {out}", err=True)
    if requests_path is not None:
        _say(f"prep: {n_req} batch requests in {batch_requests}"
             + (f" ({skipped} failed inputs left out)" if skipped else ""), err=True)
    if not click.get_current_context().meta.get("mediaprep.no_report"):
        from .report.html import write_prep_report_safely
        write_prep_report_safely(out, [t.source for t in tasks], settings)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _status_of(line: dict[str, Any]) -> str:
    detail = "; ".join(f"{f['code']}: {f['message']}" for f in line.get("findings") or [])
    return f"{line['path']}: FAILED ({detail})"


def _check_batch_options(settings: Settings, prompt: str | None) -> None:
    if prompt is None:
        raise UsageFailure("--batch-requests needs --prompt (the text sent with the media)")
    if settings.dialect != "openai":
        raise UsageFailure("batch requests are OpenAI Batch API lines: use --dialect openai")
    if settings.transport == "path":
        raise UsageFailure("batch requests cannot carry file:// paths: use --transport base64 "
                           "or url")


def _write_batch_requests(parts: Path, dest: Path, settings: Settings, prompt: str,
                          group: int, url: str) -> tuple[int, int]:
    """OpenAI Batch API JSONL from ``parts.jsonl``: ``group`` inputs per request at most, fewer
    when one more would break a request limit (data URLs per request, whole-body bytes).
    Returns (requests written, failed inputs left out)."""
    from .emit.parts import urls_in
    from .emit.request import check_request, request_body
    from .output import atomic_writer, json_line
    from .report import displayable

    limits = settings.limits

    def cap(key: str) -> float:
        row = limits.get(key)
        return float("inf") if row is None or row.value is None else row.value

    max_data, max_urls, max_bytes = (cap("request.max_data_urls"),
                                     cap("request.max_media_urls"),
                                     cap("request.max_body_bytes"))
    base = len(json.dumps(request_body([prompt], settings), separators=(",", ":")).encode())
    skipped = written = 0

    batch: list[tuple[str, dict[str, Any]]] = []
    size = base
    n_data = n_urls = 0

    def flush(fh: Any) -> None:
        nonlocal batch, size, n_data, n_urls, written
        if not batch:
            return
        body = request_body([p for _, p in batch] + [prompt], settings)
        problems = [f for f in check_request(body, settings) if f.severity == "error"]
        if problems:  # one input alone too big for a request: prep keeps parts within limits
            raise click.ClickException(displayable(f"{batch[0][0]}: {problems[0].message}"))
        cid = batch[0][0] if len(batch) == 1 else f"{batch[0][0]}+{len(batch) - 1}"
        fh.write(json_line({"custom_id": cid, "method": "POST", "url": url, "body": body},
                           separators=(",", ":")) + "\n")
        written += 1
        batch, size, n_data, n_urls = [], base, 0, 0

    with atomic_writer(dest) as fh, open(parts, encoding="utf-8") as src:
        for text in src:
            line = json.loads(text)
            part = line.get("part")
            if not line.get("ok") or not part:
                skipped += 1
                continue
            urls = urls_in(part)
            d = sum(1 for u in urls if u.startswith("data:"))
            psize = len(json.dumps(part, separators=(",", ":")).encode()) + 1
            if batch and (len(batch) >= group or n_data + d > max_data
                          or n_urls + len(urls) - d > max_urls
                          or size + psize > max_bytes):
                flush(fh)
            batch.append((line["path"], part))
            size += psize
            n_data += d
            n_urls += len(urls) - d
        flush(fh)
    return written, skipped


def _refuse_batch_requests_path(dest: Path, items: list[Any], out: Path) -> None:
    """--batch-requests never overwrites an input or a file of DIR's own: parts.jsonl,
    anything in DIR/.mediaprep, the HTML report."""
    from .resource import frame_files

    def real(p: Path) -> Path:
        try:
            return Path(os.path.realpath(p))
        except (OSError, ValueError):
            return Path(os.path.abspath(p))

    target = real(dest)
    out_r = real(out)
    state = out_r / ".mediaprep"
    reserved = {out_r / "parts.jsonl": "the parts file", out_r / "report.html": "the report"}
    try:
        st = os.stat(dest)
        same = {(st.st_dev, st.st_ino)}
    except OSError:
        same = set()

    def is_dest(p: Path) -> bool:  # also by identity: another spelling, a case-blind disk
        if p == target:
            return True
        try:
            s = os.stat(p)
        except OSError:
            return False
        return (s.st_dev, s.st_ino) in same

    why = next((what for p, what in reserved.items() if is_dest(p)), None)
    if target == state or state in target.parents or is_dest(state):
        why = "mediaprep's state folder"
    if why is not None:
        raise UsageFailure(f"--batch-requests {dest} would overwrite {why} of {out}; "
                           "choose another file")
    for item in items:
        if item.real is None:
            continue
        members = [item.real]
        if item.real.is_dir():
            with contextlib.suppress(OSError, ValueError):
                members = [real(m) for m in frame_files(item.real)]
        for m in members:
            if is_dest(m):
                raise UsageFailure(f"--batch-requests {dest} is an input ({item.display}); "
                                   "choose another file")


def _refuse_inputs_inside(items: list[Any], out: Path) -> None:
    """Outputs never land over inputs: an input inside DIR would be read and written at once."""
    root = str(out.resolve())
    inside = root.rstrip(os.sep) + os.sep
    for item in items:
        p = item.real  # None: a URL, a missing file or a link loop: no place, inside or out
        if p is None:
            continue
        if str(p) == root or str(p).startswith(inside):
            raise UsageFailure(f"input {item.display} is inside the output folder {out}")


@main.command()
@click.argument("video", type=click.Path())
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output folder for the frames and frames.json.")
@shared_options
@click.option("--max-side", "frame_max_side", type=int, default=None,
              help="Scale frames down to this long side [default: 1280].")
@click.option("--timeout", type=click.FloatRange(min=0), default=None,
              help="Seconds the video may take (in a worker process) before it is given up as "
                   "file.unreadable; 0: no limit [default: 1200, as for prep].")
@handle_errors
def frames(video: str, out_dir: str, timeout: float | None, **opts: Any) -> None:
    """Frames at --fps capped by --max-frames, plus DIR/frames.json."""
    from .batch.journal import sweep_temporaries
    from .batch.summary import task_failure_message
    from .kinds.common import check_params
    from .output import atomic_write, new_run_id

    settings, _ = build_settings(opts)
    params = [f for f in check_params(settings) if f.severity == "error"]
    if params:
        for f in params:
            _say(f"{video}: error {f.code}: {f.message}", err=True)
        sys.exit(EXIT_FAILED)
    out = Path(out_dir)  # made by the worker once the input is known to be a video
    # the probe and the decode run in a worker, killed after --timeout (a hostile file hangs
    # or grows there, not here)
    run_id = new_run_id()  # the marker of this run's temporaries, for the sweep below
    outcome = run_tasks([(video, str(out), settings, run_id)], frames_job, jobs=1,
                        timeout=_timeout(timeout, "prep"))[0]
    if not outcome.ok:
        sweep_temporaries(out, [out], [run_id])  # a killed worker may leave a half-written frame
        _say(f"error file.unreadable: {task_failure_message(video, outcome.error)}", err=True)
        sys.exit(EXIT_FAILED)
    done = outcome.value
    if done.get("error"):
        _say(f"{video}: error {done['error']}", err=True)
        sys.exit(EXIT_FAILED)
    manifest = done["manifest"]
    atomic_write(out / "frames.json", (json.dumps(manifest, indent=2) + "\n").encode())
    _remove_stale_frames(out, {f["file"] for f in manifest["frames"]})
    for note in done["notes"]:
        _say(f"{video}: {note}", err=True)
    _say(f"{video}: {len(manifest['frames'])} frames at {manifest['fps']:.4g} fps into {out}")
    sys.exit(EXIT_OK if manifest["frames"] else EXIT_FAILED)


_FRAME_NAME = re.compile(r"frame_\d{6}\.jpg")


def _remove_stale_frames(out: Path, keep: set[str]) -> None:
    """Remove an earlier run's frames that frames.json no longer lists: only regular files
    named as ``frames`` names them (frame_NNNNNN.jpg), directly in ``out``."""
    with os.scandir(out) as entries:
        for entry in entries:
            if (_FRAME_NAME.fullmatch(entry.name) and entry.name not in keep
                    and entry.is_file(follow_symlinks=False)):
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass


def frames_job(task: tuple[str, str, Settings, str]) -> dict[str, Any]:
    """The ``frames`` command's work (in a worker): probe, take the frames, write them."""
    from .output import writing_for_run

    video, out_dir, settings, run_id = task
    with writing_for_run(run_id):
        return _frames_work(video, out_dir, settings)


def _frames_work(video: str, out_dir: str, settings: Settings) -> dict[str, Any]:
    from .backends.av_frames import FrameExtractionError
    from .kinds import probe_source
    from .kinds.video import frames_for_command, frames_manifest
    from .resource import to_source

    src = to_source(video)
    info = probe_source(src, limits=settings.limits)
    if info.kind != "video" or info.error_code:
        return {"error": f"{info.error_code or 'file.unsupported_format'}: "
                         f"{info.error or 'not a video'}"}
    try:
        fs, refused = frames_for_command(src, info, settings, Path(out_dir))
    except (FrameExtractionError, OSError, ValueError) as exc:
        return {"error": f"file.unreadable: cannot take frames: {exc}"}
    if fs is None:  # prep's rules: too few frames (see frames_for_command)
        return {"error": f"{refused.code}: {refused.message}"}
    return {"manifest": frames_manifest(video, fs), "notes": list(fs.notes)}
