"""The ``mediaprep`` command: a thin layer over the library.

Exit codes (as ruff/black): 0 all passed, 1 some input failed, 2 usage or config error or a
run that could not go on (a full disk), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

# Only light modules here: PyAV, numpy and Pillow are imported by the commands that need them,
# after local workers' fork server has started importing them alongside (see prestart_workers);
# the batch side (journal, cache, executors) too, so that `frames` and `limits` never load it.
from . import limits as limits_mod
from .config import RUN_SWITCHES, Config, ConfigError, load_config
from .errors import blank_path_problem
from .limits import LimitError
from .report import FORMATS as REPORT_FORMATS
from .settings import VIDEO_MODES, Settings, SettingsError, make_settings

if TYPE_CHECKING:
    from .resource import Resource

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it (128 + SIGINT)


class UsageFailure(click.UsageError):
    exit_code = EXIT_USAGE


class PathParam(click.Path):
    """A path argument or option; an empty or blank one is a usage error (exit 2) before any
    work, never the current folder (an unset shell variable)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        why = blank_path_problem(value)
        if why is not None:
            self.fail(why, param, ctx)
        return super().convert(value, param, ctx)


CONFIG_HELP = ("Config file (default: mediaprep.toml or [tool.mediaprep] in pyproject.toml, "
               "searched upwards).")
TARGET_HELP = ("Where the media goes: DashScope, Moonshot, or your own vLLM/SGLang server "
               "(vllm) [default: dashscope].")
LIMIT_HELP = "Override a row of the limits table (see `mediaprep limits`)."


#: Options about how media is sent, which frames (a folder of JPEGs and frames.json) ignore:
#: the frames command does not take them rather than accept them and do nothing.
NOT_FOR_FRAMES = frozenset({"--dialect", "--transport", "--model", "--allowed-local-media-path",
                            "--max-tokens", "--max-image-tokens", "--video-mode",
                            "--animation"})


def shared_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options every command takes; ``None`` means "from config, else the default"."""
    return _with_options(fn, skip=frozenset())


def frame_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The shared options that mean something to ``frames`` (all but :data:`NOT_FOR_FRAMES`)."""
    return _with_options(fn, skip=NOT_FOR_FRAMES)


def _flag(option: Callable[..., Any]) -> str:
    """The first flag of a ``click.option`` decorator (``--target``)."""
    return option(lambda: None).__click_params__[0].opts[0]


def _with_options(fn: Callable[..., Any], skip: frozenset[str]) -> Callable[..., Any]:
    opts = [
        click.option("--target", type=click.Choice(limits_mod.TARGETS), default=None,
                     help=TARGET_HELP),
        click.option("--dialect", type=click.Choice(limits_mod.DIALECTS), default=None,
                     help="API dialect of the content parts [default: openai]."),
        click.option("--transport", type=click.Choice(limits_mod.TRANSPORTS), default=None,
                     help="How media travels: data URL, public URL, file:// path, or "
                          "uploaded to the provider's storage [default: base64]."),
        click.option("--model", default=None, help="Model the request is for [default: the "
                                                   "target's: kimi-k2.5; on vllm "
                                                   "moonshotai/Kimi-K2.5]."),
        click.option("--allowed-local-media-path", default=None, metavar="DIR",
                     help="vllm: the folder the server reads file:// parts from (its "
                          "--allowed-local-media-path); the path transport writes there."),
        click.option("--api-base", default=None, metavar="URL",
                     help="The provider's API endpoint for --transport upload [default: "
                          "$MEDIAPREP_API_BASE, else the target's: DashScope Beijing, "
                          "https://api.moonshot.ai/v1]."),
        click.option("--fps", type=float, default=None, help="Video frames per second "
                                                             "[default: 2]."),
        click.option("--max-frames", type=int, default=None,
                     help="Cap on frames per video [default: 2000]."),
        click.option("--limit", "limit_overrides", multiple=True, metavar="KEY=VALUE",
                     help=LIMIT_HELP),
        click.option("--max-tokens", type=int, default=None,
                     help="Limit on estimated tokens per request."),
        click.option("--max-image-tokens", type=int, default=None,
                     help="Limit on estimated tokens per image."),
        click.option("--video-mode", type=click.Choice(VIDEO_MODES), default=None,
                     help="Send videos as files, as frames, or decide per video."),
        click.option("--animation", type=click.Choice(["first", "frames"]), default=None,
                     help="Animated GIF/APNG/WebP: send the first frame, or all frames as a "
                          "video image list [default: first]."),
        click.option("--hdr", type=click.Choice(["convert", "keep"]), default=None,
                     help="HDR (PQ/HLG) stills and videos: tone-map them to SDR, or send them "
                          "as they are [default: convert]."),
        click.option("--background", default=None, metavar="COLOUR",
                     help="What transparent pixels are flattened onto (the model's processor "
                          "drops alpha): a name or #rrggbb [default: white]."),
        click.option("--config", "config_path", type=PathParam(dir_okay=False), default=None,
                     help=CONFIG_HELP),
    ]
    for opt in reversed(opts):
        if _flag(opt) not in skip:
            fn = opt(fn)
    return fn


def build_settings(ctx_opts: dict[str, Any]) -> tuple[Settings, Config]:
    """Config file first, then command-line options on top."""
    try:
        config = _config_with_switches(ctx_opts)
        settings, warnings = _settings_over(config, ctx_opts)
    except (ConfigError, SettingsError, LimitError, TypeError) as exc:
        raise UsageFailure(str(exc)) from exc
    _refuse_bad_params(settings)
    for warning in warnings:
        _say(f"mediaprep: warning: {warning}", err=True)
    return settings, config


def _config_with_switches(ctx_opts: dict[str, Any]) -> Config:
    """The config file (``--config``, else the one found), with each run switch given as a
    flag turned on."""
    path = ctx_opts.pop("config_path", None)
    config = load_config(Path(path) if path else None)
    for key in RUN_SWITCHES:
        if ctx_opts.pop(key, None):
            setattr(config, key, True)
    return config


def _settings_over(config: Config, ctx_opts: dict[str, Any]) -> tuple[Settings, list[str]]:
    """The config's options with the command line's on top, and the warnings of the config's
    limit rows the run's target lacks: those are left out (one config may serve several
    targets), while a ``--limit`` for such a row is refused (by Settings)."""
    given = _limit_overrides(ctx_opts.pop("limit_overrides", ()) or ())
    cli = {k: v for k, v in ctx_opts.items() if v is not None}
    configured, warnings = config.limits_for_target(
        cli.get("target") or config.options.get("target") or limits_mod.DEFAULT_TARGET)
    config.options.pop("limits", None)
    base = make_settings(None, **config.options)
    return make_settings(base, **cli, limits={**configured, **given} or None), warnings


def _limit_overrides(given: Iterable[str]) -> dict[str, Any]:
    """Each ``--limit KEY=VALUE`` as ``{KEY: VALUE}``."""
    overrides: dict[str, Any] = {}
    for raw in given:
        if "=" not in raw:
            raise UsageFailure(f"--limit takes KEY=VALUE, got {raw!r}")
        key, value = raw.split("=", 1)
        overrides[key.strip()] = value.strip()
    return overrides


def _refuse_bad_params(settings: Settings) -> None:
    """``--fps 20`` or ``--max-frames 0`` (or the same in the config) is a usage error before
    any input is read; the library reports the same as a ``param.*`` finding on each file."""
    from .kinds.common import check_params

    bad = [f for f in check_params(settings) if f.severity == "error"]
    if bad:
        raise UsageFailure("; ".join(f"{f.message} ({f.code}; see `mediaprep limits`)"
                                     for f in bad))


#: How a command ends on an error of the library's, by the error class's module and name: a
#: usage error (exit 2), a failure click reports (exit 1), or a stop (the machine, not an
#: input: exit 2 with what to do, as for an OSError). By name, so that the modules a command
#: never reached are not imported to be named here (a class never imported was never raised).
_ENDINGS: dict[tuple[str, str], str] = {
    ("mediaprep.settings", "SettingsError"): "usage",
    ("mediaprep.limits", "LimitError"): "usage",
    ("mediaprep.config", "ConfigError"): "usage",
    ("mediaprep.batch.folder", "BatchError"): "usage",
    ("mediaprep.batch.executors", "ExecutorUnavailable"): "usage",
    ("mediaprep.batch.pool", "WorkerStartError"): "failure",
    ("mediaprep.batch.requests", "BatchRequestError"): "failure",
    ("mediaprep.batch.folder", "RunStopped"): "stop",
}


def _ending(exc: BaseException) -> str | None:
    """How a command ends on ``exc`` (see :data:`_ENDINGS`), or None: not the library's."""
    for cls in type(exc).__mro__:
        ending = _ENDINGS.get((cls.__module__, cls.__qualname__))
        if ending is not None:
            return ending
    return "stop" if isinstance(exc, OSError) else None


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context(silent=True)
        name = (ctx.info_name if ctx is not None else None) or fn.__name__
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            # Not click's bare "Aborted!" with exit 1, which a script would read as "some
            # input failed": say what is kept, and exit as a shell does on Ctrl-C.
            click.echo(f"\nmediaprep {name}: interrupted{KEPT.get(name, '')}", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            _end_on(exc, name)
            raise

    return wrapper


def _end_on(exc: Exception, command: str) -> None:
    """End ``command`` as :data:`_ENDINGS` says for ``exc``; returns when it does not say."""
    ending = _ending(exc)
    if ending == "usage":
        raise UsageFailure(str(exc)) from exc
    if ending == "failure":
        raise click.ClickException(str(exc)) from exc
    if ending == "stop":
        if isinstance(exc, BrokenPipeError) and _output_pipe_closed():
            _quiet_exit_on_closed_pipe()
        # The machine, not an input: a full disk, an output folder that cannot be made.
        _say(f"mediaprep {command}: stopped: {exc}{_what_to_do(exc, command)}", err=True)
        sys.exit(EXIT_USAGE)


#: ``mediaprep limits | head -1``: the reader has what it wanted and closed the pipe. As other
#: Unix tools do (killed by SIGPIPE), stop without a word; the exit status is the shell's
#: 128 + SIGPIPE, so ``set -o pipefail`` still sees that the output was cut short.
EXIT_PIPE_CLOSED = 141


def _output_pipe_closed() -> bool:
    """Whether stdout or stderr is a pipe whose reader has gone (where poll() can tell)."""
    import select

    if not hasattr(select, "poll"):
        return True  # Windows: the error came from writing our output
    poller = select.poll()
    fds = []
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            fds.append(stream.fileno())  # type: ignore[union-attr]
        except (AttributeError, OSError, ValueError):
            continue
    for fd in fds:
        poller.register(fd, 0)  # POLLERR is always reported: a pipe with no reader
    try:
        events = poller.poll(0)
    except OSError:
        return True
    return any(ev & select.POLLERR for _, ev in events) or not fds


def _quiet_exit_on_closed_pipe() -> NoReturn:
    # what is still buffered for the closed pipe would fail again at exit ("Exception
    # ignored ... BrokenPipeError"): point stdout at /dev/null first
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    sys.exit(EXIT_PIPE_CLOSED)


KEPT = {"prep": "; finished inputs are kept: run the same command again to finish"}

# What to fix when the machine stops a run: running the same command again alone would stop
# the same way
_FIXES = {
    errno.ENOSPC: "free some space on that disk (or choose another output folder with -o)",
    errno.EDQUOT: "free some of your disk quota (or choose another output folder with -o)",
    errno.EROFS: "that file system is read-only: choose another output folder with -o",
    errno.EACCES: "make the output folder writable for you (or choose another with -o)",
    errno.EPERM: "make the output folder writable for you (or choose another with -o)",
}


def _what_to_do(exc: BaseException, command: str) -> str:
    fix = _FIXES.get(getattr(exc, "errno", None) or 0)
    if fix is None:
        return KEPT.get(command, "")
    if command == "prep":
        return f"; {fix}, then run the same command again: finished inputs are kept"
    return f"; {fix}"


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
                     help="No progress bar and no per-file lines: check prints only the "
                          "findings that fail a file (text format), prep no status lines; the "
                          "summary still prints."),
        click.option("--allow-url", is_flag=True, default=None,
                     help="Fetch http(s) inputs (otherwise they are not fetched)."),
        click.option("--allow-private-urls", is_flag=True, default=None,
                     help="With --allow-url: also fetch from private, link-local and loopback "
                          "addresses (refused by default)."),
        click.option("--allow-loopback-urls", is_flag=True, default=None,
                     help="With --allow-url: also fetch from loopback addresses (local "
                          "servers)."),
        click.option("--force-exclude", is_flag=True, default=None,
                     help="Choose files named on the command line as a folder walk does: the "
                          "config's include/exclude apply, and a file that is not media (a "
                          "TypeScript .ts) is skipped. For pre-commit and other tools that "
                          "name files [config: force_exclude]."),
        click.option("--fail-on-empty", is_flag=True, default=None,
                     help="Exit 1 when the paths hold no images or videos (a CI step that "
                          "checks nothing fails) [config: fail_on_empty]."),
        click.option("--manifest", "manifests", multiple=True, type=PathParam(dir_okay=False),
                     help="A file listing inputs, one path or URL per line (# comments); "
                          "relative paths are relative to the manifest's folder."),
        click.option("--executor", default="local", show_default=True,
                     metavar="local|dask|MODULE:FACTORY",
                     help="Where per-input work runs: local worker processes, a Dask "
                          "cluster (pip install 'mediaprep[dask]'), or an executor of your "
                          "own (an importable factory)."),
        click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="Dask scheduler address [default: $MEDIAPREP_DASK_SCHEDULER, else a "
                          "local cluster of --jobs workers]."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def pop_run_options(opts: dict[str, Any], paths: tuple[str, ...]) -> tuple[
        str, dict[str, Any], tuple[str, ...]]:
    """Take the executor options out of ``opts`` (the executor's name and its options); add
    the manifests' entries to ``paths``."""
    from .batch.executors import EXECUTORS
    from .batch.inputs import ManifestError, read_manifest

    executor = opts.pop("executor", None) or "local"
    if executor not in EXECUTORS and ":" not in executor:
        raise UsageFailure(f"--executor {executor}: choose local or dask, or give an executor "
                           "of your own as package.module:factory")
    scheduler = opts.pop("scheduler", None)
    entries: list[str] = []
    for manifest in opts.pop("manifests", ()) or ():
        try:
            entries += read_manifest(manifest)
        except (ManifestError, OSError) as exc:
            raise UsageFailure(f"manifest {manifest}: {exc}") from exc
    return executor, ({"address": scheduler} if scheduler else {}), tuple(paths) + tuple(entries)


def _timeout(value: float | None, command: str) -> float | None:
    if value is None:
        from .batch.folder import DEFAULT_TIMEOUT

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


def _say_if_nothing_found(count: int, command: str, config: Config) -> None:
    """As ruff does: a folder with no media (a mistyped path?) passes, but not silently; with
    ``fail_on_empty`` it fails (CI that checks nothing should not pass)."""
    if not count:
        level = "error" if config.fail_on_empty else "warning"
        click.echo(f"mediaprep {command}: {level}: no images or videos found in the paths "
                   "given (include/exclude from the config apply)", err=True)


def _say_run_findings(command: str, findings: list[Any], strict: bool = False) -> None:
    """Findings about the whole run (an unknown model), once on stderr, not on every file."""
    for f in findings:
        fails = f.severity == "error" or (strict and f.severity == "warning")
        _say(f"mediaprep {command}: {f.severity} {f.code}: {f.message}"
             + (" (--strict: the run fails)" if fails and f.severity == "warning" else ""),
             err=True)


def _fails_as_empty(count: int, config: Config) -> bool:
    return config.fail_on_empty and not count


def _write_report_file(dest: Path, text: str, data: Mapping[str, Any]) -> None:
    """``check -o FILE``: the report, written atomically; never over a file it checked."""
    from .output import atomic_write
    from .report import files_of, path_of

    for file in files_of(data):
        name = path_of(file)
        with contextlib.suppress(OSError, ValueError):
            if dest.exists() and os.path.exists(name) and os.path.samefile(dest, name):
                raise UsageFailure(f"-o {dest} is one of the files checked; choose another file")
    try:
        atomic_write(dest, text)
    except OSError as exc:
        raise click.FileError(str(dest), hint=exc.strerror or str(exc)) from exc


def _resource_for(item: Any) -> Resource:
    from .resource import to_resource

    return to_resource(item.path, name=item.display)


@main.command()
@click.argument("paths", nargs=-1, type=PathParam())
@shared_options
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS),
              default="text", show_default=True, help="Report format.")
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@click.option("--deep", is_flag=True, help="Decode pixels too (slower; catches more damage).")
@click.option("--frames-dir", "frames_dirs", multiple=True, type=PathParam(file_okay=False),
              help="A folder of frame images to check as one video (image list).")
@click.option("-v", "--verbose", is_flag=True, help="List passing files too.")
@click.option("-o", "--output", "report_file", type=PathParam(dir_okay=False), default=None,
              help="Write the report to this file instead of stdout (e.g. --format html).")
@batch_options
@handle_errors
def check(paths: tuple[str, ...], fmt: str, strict: bool, deep: bool,
          frames_dirs: tuple[str, ...], verbose: bool, report_file: str | None,
          jobs: int | None, timeout: float | None, quiet: bool, **opts: Any) -> None:
    """Validate files and folders (recursively); nothing is written."""
    from .batch import check_many
    from .batch.progress import Progress, human_duration
    from .batch.summary import plural
    from .report import input_failed, render

    executor, executor_options, paths = pop_run_options(opts, paths)
    if not paths and not frames_dirs:
        raise UsageFailure("give at least one file or folder")
    settings, config = build_settings(opts)
    settings = settings.replace(deep=deep) if deep else settings
    progress = Progress(0, label="check", enabled=False if quiet else None)

    def on_start(total: int) -> None:
        _say_if_nothing_found(total, "check", config)
        progress.total = total
        progress.__enter__()

    def on_result(_index: int, entry: dict[str, Any]) -> None:
        progress.advance(not input_failed(entry, strict=strict),
                         bytes_in=int((entry.get("info") or {}).get("bytes") or 0))

    try:
        result = check_many(paths, settings, config=config, frames_dirs=frames_dirs,
                            strict=strict, jobs=jobs, timeout=_timeout(timeout, "check"),
                            executor=executor, executor_options=executor_options,
                            on_start=on_start, on_result=on_result)
    finally:
        progress.close()
    data = result.report
    _print_check_report(result, render(data, fmt, strict=strict, verbose=verbose, quiet=quiet),
                        report_file, strict)
    if fmt != "text" or report_file is not None:  # stdout is the report's, or not used
        s = data["summary"]
        click.echo(f"mediaprep: {plural(s['files'], 'file')}, {s['passed']} passed, "
                   f"{s['failed']} failed"
                   f", {human_duration(result.elapsed)}", err=True)
    failed = (data["summary"]["failed"] or result.run_failed
              or _fails_as_empty(data["summary"]["files"], config))
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _print_check_report(result: Any, out: str, report_file: str | None, strict: bool) -> None:
    """The rendered report to its file or stdout, then what is said of the run itself."""
    if report_file is not None:
        _write_report_file(Path(report_file), out, result.report)
    elif out:
        click.echo(out, nl=False)
    _say_run_findings("check", result.run_findings, strict)
    if report_file is not None:
        _say(f"check: report: {report_file}", err=True)


@main.command()
@click.argument("paths", nargs=-1, type=PathParam(), required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, as a list.")
@click.option("--deep", is_flag=True, help="Decode pixels too.")
@click.option("--config", "config_path", type=PathParam(dir_okay=False), default=None,
              help=CONFIG_HELP)
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

    settings, config = build_settings({"config_path": config_path, **url_opts})
    config.force_exclude = False  # a file named to probe is probed, whatever the config says
    items = collect(paths, config)
    infos = [probe_api(i.url if i.url is not None else _resource_for(i), settings=settings,
                       deep=deep) for i in items]
    bad = any(i.error_code for i in infos)
    if as_json:
        click.echo(json.dumps([{"path": i.path, "kind": i.kind, "info": i.to_json(),
                                **_tokens_of(i, settings),
                                **({"error": {"code": i.error_code, "message": i.error}}
                                   if i.error_code else {})}
                               for i in infos], indent=2))
    else:
        for i in infos:
            for line in _describe(i):  # one _say per line: a newline is not a control character
                _say(line)
    sys.exit(EXIT_FAILED if bad else EXIT_OK)


def _tokens_of(info: Any, settings: Settings) -> dict[str, Any]:
    """``{"tokens": {...}}`` beside ``info`` where an estimate applies (docs/formats.md)."""
    from .kinds.common import estimate_for
    from .types import Report

    try:
        est = estimate_for(Report(path=info.path, kind=info.kind, info=info), settings)
    except (ValueError, TypeError):
        est = None
    return {} if est is None else {"tokens": settings.estimator.to_json(est)}


def _describe(info: Any) -> list[str]:
    """probe's text: one line of what the input is, then its error and notes."""
    parts = [f"{info.path}: {info.kind}"]
    if info.format:
        parts.append(info.format)
    if info.width:
        parts.append(f"{info.width}x{info.height}")
    parts.append(f"{info.bytes:,} bytes")
    describe_kind = _KIND_DETAILS.get(info.kind)
    if describe_kind is not None:
        parts += describe_kind(info)
    if not info.extension_matches:
        parts.append(f"(named .{info.extension})")
    lines = [", ".join(parts)]
    if info.error:
        lines.append(f"  {info.error_code}: {info.error}")
    lines += [f"  note: {note}" for note in info.notes]
    return lines


def _image_details(info: Any) -> list[str]:
    details = [f"mode {info.mode}"] if info.mode else []
    if info.bit_depth and info.bit_depth != 8:
        details.append(f"{info.bit_depth}-bit")
    if info.orientation and info.orientation != 1:
        # an AVIF's rotation is its irot/imir boxes, which the decoder reports as an orientation
        details.append(f"{info.orientation_source} orientation {info.orientation}")
    if info.frames:
        details.append(f"{info.frames} frames")
    return details


def _video_details(info: Any) -> list[str]:
    details = [info.codec] if info.codec else []
    if info.duration is not None:
        details.append(f"{info.duration:.3f} s")
    if info.fps:
        details.append(f"{info.fps:.3f} fps" + (" (variable)" if info.fps_varies else ""))
    if info.rotation:
        details.append(f"rotated {info.rotation}")
    if info.sample_aspect_ratio:
        details.append(f"SAR {info.sample_aspect_ratio:g}")
    details.append("audio" if info.has_audio else "no audio")
    return details


def _frames_details(info: Any) -> list[str]:
    return [f"{len(info.members)} frames"]


#: What probe's line says of each kind of input besides format, size and bytes.
_KIND_DETAILS: dict[str, Callable[[Any], list[str]]] = {
    "image": _image_details, "video": _video_details, "frames": _frames_details}


@main.command(name="limits")
@click.option("--target", type=click.Choice(limits_mod.TARGETS), default=None, help=TARGET_HELP)
@click.option("--limit", "limit_overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a row, as check and prep take it.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--config", "config_path", type=PathParam(dir_okay=False), default=None,
              help=CONFIG_HELP)
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


@main.command(short_help="Make inputs sendable: fixed outputs and DIR/parts.jsonl.")
@click.argument("paths", nargs=-1, type=PathParam())
@click.option("-o", "--out", "out_dir", type=PathParam(file_okay=False), required=True,
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
@click.option("--tiles", is_flag=True, default=None,
              help="Send a tall or wide image the model would shrink as overlapping tiles "
                   "(several images, reading order), each seen whole.")
@click.option("--resize", "resize", type=click.Choice(["none", "model"]), default=None,
              help="'model': resize images to exactly what the model keeps.")
@click.option("--frames-dir", "frames_dirs", multiple=True, type=PathParam(file_okay=False),
              help="A folder of frame images to send as one video (image list).")
@click.option("--deep", is_flag=True, default=None,
              help="Decode every input's pixels first, as check --deep does (slower): a video "
                   "damaged mid-stream fails as video.undecodable instead of going out as it "
                   "is.")
@click.option("--no-cache", is_flag=True, help="Neither read nor fill the prep cache.")
@click.option("--cache-dir", type=PathParam(file_okay=False), default=None,
              help="Cache folder [default: $MEDIAPREP_CACHE_DIR, else "
                   "$XDG_CACHE_HOME/mediaprep, else ~/.cache/mediaprep].")
@click.option("--batch-requests", "batch_requests", type=PathParam(dir_okay=False),
              default=None, help="Also write OpenAI Batch API requests (JSONL) to this file.")
@click.option("--prompt", default=None, help="Text sent after the media in each batch request.")
@click.option("--group", type=click.IntRange(min=1), default=1, show_default=True,
              help="Inputs per batch request (fewer when a request would exceed a limit).")
@click.option("--batch-url", default="/v1/chat/completions", show_default=True,
              help="The endpoint each batch request names.")
@click.option("--no-report", is_flag=True, expose_value=False,
              callback=lambda ctx, _p, v: ctx.meta.__setitem__("mediaprep.no_report", v),
              help="Do not write DIR/report.html.")
@click.option("--report", "report_path", type=PathParam(dir_okay=False), default=None,
              help="Write the HTML report here instead of DIR/report.html (its pictures stay "
                   "in DIR/report_files/ when too many to carry inline).")
@click.option("--clean", is_flag=True,
              help="Remove outputs that earlier runs made for inputs not named now.")
@click.option("--format", "prep_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="json: the summary and every input's result as one JSON "
                                      "object on stdout (the text summary stays on stderr).")
@batch_options
@handle_errors
def prep(paths: tuple[str, ...], out_dir: str, frames_dirs: tuple[str, ...], quiet: bool,
         resize: str | None, jobs: int | None, timeout: float | None, no_cache: bool,
         cache_dir: str | None, batch_requests: str | None, prompt: str | None, group: int,
         batch_url: str, report_path: str | None, clean: bool, prep_format: str,
         **opts: Any) -> None:
    """Make every input sendable: fix what can be fixed, write outputs and DIR/parts.jsonl.

    Without --deep, an input that needs no change is judged from its headers and container
    structure, as check judges it: damage inside a video stream (packets that do not decode)
    is not seen, and such a video is sent as it is. --deep decodes it first.

    Resumable: each finished input is recorded under DIR/.mediaprep/, so a rerun of a killed
    run (or of a finished one) only works on what is left. Unchanged inputs are taken from the
    cache (see --cache-dir, --no-cache) without media work.
    """
    from .batch import InputResult, PrepOptions, prep_many
    from .batch.progress import Progress

    executor, executor_options, paths = pop_run_options(opts, paths)
    if not paths and not frames_dirs:
        raise UsageFailure("give at least one file or folder")
    if resize is not None:
        opts["resize_model"] = resize == "model"
    settings, config = build_settings(opts)
    progress = Progress(0, label="prep", enabled=False if quiet else None)

    def on_start(total: int) -> None:
        _say_if_nothing_found(total, "prep", config)
        progress.total = total
        progress.__enter__()

    def on_result(r: InputResult) -> None:
        progress.advance(r.ok, fixed=r.fixed, bytes_in=r.bytes_in, bytes_out=r.bytes_out)
        if not quiet:
            _say_prep_status(r.status, progress, prep_format)

    try:
        options = PrepOptions(
            config=config, frames_dirs=frames_dirs, jobs=jobs,
            timeout=_timeout(timeout, "prep"), executor=executor,
            executor_options=executor_options,
            cache=False if no_cache else (cache_dir or True), batch_requests=batch_requests,
            prompt=prompt, group=group, batch_url=batch_url,
            html_report=not click.get_current_context().meta.get("mediaprep.no_report"),
            report_path=report_path, clean=clean, on_start=on_start, on_result=on_result)
        result = prep_many(paths, out_dir, settings, options)
    finally:
        progress.close()
    _say_prep_summary(result, out_dir, batch_requests)
    if prep_format == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    failed = result.failed or _fails_as_empty(result.total, config)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _say_prep_status(status: str, progress: Any, prep_format: str) -> None:
    """One input's status line, above the progress bar when there is one."""
    from .report import displayable

    line_out = displayable(status)  # a name that is not UTF-8 prints
    if progress.enabled:
        progress.write(line_out)
    else:  # stdout holds only the JSON object under --format json
        click.echo(line_out, err=prep_format == "json")


def _say_prep_summary(result: Any, out_dir: str, batch_requests: str | None) -> None:
    """The run's findings, its summary and the batch requests written (on stderr)."""
    from .batch.summary import plural

    _say_run_findings("prep", result.run_findings)
    first, *rest = result.summary().split("\n")
    _say(f"prep: {first} -> {Path(out_dir)}", err=True)
    for more in rest:
        _say(f"prep: {more}", err=True)
    if result.requests is not None:
        left = result.requests_left_out
        _say(f"prep: {plural(result.requests, 'batch request')} in {batch_requests}"
             + (f" ({plural(left, 'failed input')} left out)" if left else ""), err=True)


@main.command()
@click.argument("video", type=PathParam())
@click.option("-o", "--out", "out_dir", type=PathParam(file_okay=False), required=True,
              help="Output folder for the frames and frames.json.")
@frame_options
@click.option("--max-side", "frame_max_side", type=int, default=None,
              help="Scale frames down to this long side [default: 1280].")
@click.option("--timeout", type=click.FloatRange(min=0), default=None,
              help="Seconds the video may take (in a worker process) before it is given up as "
                   "file.unreadable; 0: no limit [default: 1200, as for prep].")
@handle_errors
def frames(video: str, out_dir: str, timeout: float | None, **opts: Any) -> None:
    """Frames at --fps capped by --max-frames, plus DIR/frames.json."""
    from .batch.extract import FramesOutputError, frames_to_folder
    from .batch.frames_dir import FramesDirRefused

    settings, _ = build_settings(opts)  # --fps 20: a usage error (exit 2) before any work
    try:  # only files an earlier frames run recorded writing may be replaced or removed
        outcome = frames_to_folder(video, out_dir, settings, timeout=_timeout(timeout, "prep"))
    except (FramesDirRefused, FramesOutputError) as exc:  # the output folder (README: exit 2)
        _say(f"mediaprep frames: stopped: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if outcome.error:
        code, _, message = outcome.error.partition(": ")
        # named once: a probe's message does not name the video, a failed worker's does
        _say(f"{video}: error {code}: {message.removeprefix(f'{video}: ')}", err=True)
        sys.exit(EXIT_FAILED)
    manifest = outcome.manifest or {"frames": [], "fps": 0.0}
    for note in outcome.notes:
        _say(f"{video}: {note}", err=True)
    _say(f"{video}: {len(manifest['frames'])} frames at {manifest['fps']:.4g} fps into "
         f"{out_dir}")
    sys.exit(EXIT_OK if outcome.ok else EXIT_FAILED)


@main.group(short_help="List or prune the files --transport upload put in storage.")
def uploads() -> None:
    """The files --transport upload put in the providers' storage (as mediaprep recorded them:
    $MEDIAPREP_UPLOADS_DIR, else ~/.local/state/mediaprep/uploads)."""


@uploads.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@handle_errors
def uploads_list(as_json: bool) -> None:
    """List the files mediaprep uploaded, oldest first."""
    from .upload.commands import listing
    from .upload.records import Records

    rows = listing(Records())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = " (expired)" if row["expired"] else ""
        click.echo(f"{row['target']}\t{row['ref']}\t{row['name']}\t{row['bytes']:,} bytes\t"
                   f"{row['age_seconds'] // 3600} h old{state}")
    _say(f"uploads: {len(rows)} recorded", err=True)


@uploads.command("prune")
@click.option("--older-than", default=None, metavar="DURATION",
              help="Only uploads older than this (30m, 12h, 7d, 2w) [default: all].")
@handle_errors
def uploads_prune(older_than: str | None) -> None:
    """Delete the files mediaprep recorded uploading (Moonshot keeps files until deleted;
    DashScope's expire by themselves, so only their records go). Nothing else is deleted."""
    from .upload.commands import parse_duration, prune
    from .upload.records import Records

    try:
        age = None if older_than is None else parse_duration(older_than)
    except ValueError as exc:
        raise UsageFailure(str(exc)) from exc
    done = prune(Records(), age)
    for rec in done.deleted:
        click.echo(f"deleted {rec.ref} ({rec.name})")
    for rec in done.forgotten:
        click.echo(f"forgot {rec.ref} ({rec.name}; it expires by itself)")
    for rec, why in done.failed:
        _say(f"kept {rec.ref} ({rec.name}): {why}", err=True)
    _say(f"uploads prune: {len(done.deleted)} deleted, {len(done.forgotten)} forgotten, "
         f"{len(done.failed)} kept", err=True)
    sys.exit(EXIT_FAILED if done.failed else EXIT_OK)
