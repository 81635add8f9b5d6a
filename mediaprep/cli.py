"""The ``mediaprep`` command: a thin layer over the library.

Exit codes (as ruff/black): 0 all passed, 1 some input failed, 2 usage or config error.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import limits as limits_mod
from .batch import collect, report_json
from .check import check_info
from .config import Config, ConfigError, load_config
from .limits import LimitError
from .probe import probe_source
from .settings import VIDEO_MODES, Settings, SettingsError, make_settings
from .sources import Source, to_source

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mediaprep")
def main() -> None:
    """Check, fix and package images and videos for Kimi vision models."""


def _source_for(item: Any) -> Source:
    return to_source(item.path, name=item.display)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@shared_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "junit", "sarif"]),
              default="text", show_default=True, help="Report format.")
@click.option("--strict", is_flag=True, help="Warnings fail the run too.")
@click.option("--deep", is_flag=True, help="Decode pixels too (slower; catches more damage).")
@click.option("--frames-dir", "frames_dirs", multiple=True, type=click.Path(file_okay=False),
              help="A folder of frame images to check as one video (image list).")
@click.option("-v", "--verbose", is_flag=True, help="List passing files too.")
@handle_errors
def check(paths: tuple[str, ...], fmt: str, strict: bool, deep: bool,
          frames_dirs: tuple[str, ...], verbose: bool, **opts: Any) -> None:
    """Validate files and folders (recursively); nothing is written."""
    from .report import render

    if not paths and not frames_dirs:
        raise UsageFailure("give at least one file or folder")
    settings, config = build_settings(opts)
    settings = settings.replace(deep=deep) if deep else settings
    items = collect(paths, config, frames_dirs=frames_dirs)
    reports = []
    for item in items:
        s = config.settings_for(item.path, settings)
        info = probe_source(_source_for(item), limits=s.limits, deep=s.deep)
        reports.append(check_info(info, s))
    data = report_json(reports, settings, strict=strict)
    out = render(data, fmt, strict=strict, verbose=verbose)
    if out:
        click.echo(out, nl=False)
    if fmt in ("github", "junit", "sarif", "json"):
        s = data["summary"]
        click.echo(f"mediaprep: {s['files']} files, {s['passed']} passed, {s['failed']} failed",
                   err=True)
    sys.exit(EXIT_FAILED if data["summary"]["failed"] else EXIT_OK)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(), required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, as a list.")
@click.option("--deep", is_flag=True, help="Decode pixels too.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None)
@handle_errors
def probe(paths: tuple[str, ...], as_json: bool, deep: bool, config_path: str | None) -> None:
    """Print what each file is."""
    settings, config = build_settings({"config_path": config_path})
    items = collect(paths, config)
    infos = [probe_source(_source_for(i), limits=settings.limits, deep=deep) for i in items]
    bad = any(i.error_code for i in infos)
    if as_json:
        click.echo(json.dumps([{"path": i.path, "kind": i.kind, "info": i.to_json(),
                                **({"error": {"code": i.error_code, "message": i.error}}
                                   if i.error_code else {})}
                               for i in infos], indent=2))
    else:
        for i in infos:
            click.echo(_describe(i))
    sys.exit(EXIT_FAILED if bad else EXIT_OK)


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
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary.")
@handle_errors
def prep(paths: tuple[str, ...], out_dir: str, frames_dirs: tuple[str, ...], quiet: bool,
         resize: str | None, **opts: Any) -> None:
    """Make every input sendable: fix what can be fixed, write outputs and DIR/parts.jsonl."""
    from .output import atomic_write, output_stems
    from .prepare import prepare

    if not paths and not frames_dirs:
        raise UsageFailure("give at least one file or folder")
    if resize is not None:
        opts["resize_model"] = resize == "model"
    settings, config = build_settings(opts)
    if settings.transport == "url" and not settings.url_prefix:
        raise UsageFailure("--transport url needs --url-prefix (where DIR will be hosted)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    items = collect(paths, config, frames_dirs=frames_dirs)
    _refuse_inputs_inside(items, out)
    names = dict(zip(items, _relative_names(items), strict=True))
    stems = output_stems(names.values())
    lines = []
    failed = 0
    for item in items:
        s = config.settings_for(item.path, settings)
        stem = stems[names[item]]
        result = prepare(_source_for(item), settings=s, out_dir=out, stem=stem)
        lines.append(json.dumps(result.to_json(root=out), ensure_ascii=False))
        if not result.ok:
            failed += 1
        if not quiet:
            status = "ok" if result.ok else "FAILED"
            detail = "; ".join(result.fixes) if result.ok else "; ".join(
                f"{f.code}: {f.message}" for f in result.findings if f.severity == "error")
            click.echo(f"{item.display}: {status}" + (f" ({detail})" if detail else ""))
    atomic_write(out / "parts.jsonl", ("\n".join(lines) + "\n" if lines else "").encode())
    click.echo(f"prepared {len(items) - failed} of {len(items)} inputs into {out}"
               f" ({failed} failed)", err=quiet)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _relative_names(items: list[Any]) -> list[str]:
    """Output names mirror the inputs below their common folder (so a/x.jpg, b/x.jpg differ)."""
    import os

    if not items:
        return []
    paths = [str(i.path.resolve()) for i in items]
    common = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])
    if len(paths) > 1 and common in paths:  # a single frames folder among its own files
        common = os.path.dirname(common)
    return [os.path.relpath(p, common) for p in paths]


def _refuse_inputs_inside(items: list[Any], out: Path) -> None:
    """Outputs never land over inputs: an input inside DIR would be read and written at once."""
    root = out.resolve()
    for item in items:
        p = item.path.resolve()
        if p == root or root in p.parents:
            raise UsageFailure(f"input {item.display} is inside the output folder {out}")


@main.command()
@click.argument("video", type=click.Path())
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output folder for the frames and frames.json.")
@shared_options
@click.option("--max-side", "frame_max_side", type=int, default=None,
              help="Scale frames down to this long side [default: 1280].")
@handle_errors
def frames(video: str, out_dir: str, **opts: Any) -> None:
    """Frames at --fps capped by --max-frames, plus DIR/frames.json."""
    from .check.common import check_params
    from .output import atomic_write
    from .prepare.video import extract_frame_set, frames_manifest
    from .transform.video_frames import FrameExtractionError

    settings, _ = build_settings(opts)
    params = [f for f in check_params(settings) if f.severity == "error"]
    if params:
        for f in params:
            click.echo(f"{video}: error {f.code}: {f.message}", err=True)
        sys.exit(EXIT_FAILED)
    src = to_source(video)
    info = probe_source(src, limits=settings.limits)
    if info.kind != "video" or info.error_code:
        click.echo(f"{video}: error {info.error_code or 'file.unsupported_format'}: "
                   f"{info.error or 'not a video'}", err=True)
        sys.exit(EXIT_FAILED)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        fs = extract_frame_set(src, info, settings, out, None, for_request=False)
    except (FrameExtractionError, OSError, ValueError) as exc:
        click.echo(f"{video}: error file.unreadable: cannot take frames: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    manifest = frames_manifest(video, fs)
    atomic_write(out / "frames.json", (json.dumps(manifest, indent=2) + "\n").encode())
    for note in fs.notes:
        click.echo(f"{video}: {note}", err=True)
    click.echo(f"{video}: {len(fs.frames)} frames at {fs.fps:.4g} fps into {out}")
    sys.exit(EXIT_OK if fs.frames else EXIT_FAILED)
