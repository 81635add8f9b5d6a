"""The library's front door: probe, check and prepare one input.

Every input becomes one :class:`~mediaprep.resource.Resource`; a URL is fetched (when allowed)
into a local file first, so every kind and backend reads a local file or bytes. The kind of
the input (mediaprep.kinds) then probes, checks and prepares it.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from .backends.sniff import extension_matches
from .emit.parts import image_part, video_file_part
from .emit.sink import Sink
from .kinds import KINDS, check_info, probe_resource
from .model import Finding, MediaInfo, Prepared, Report
from .net.fetch import FetchError, head_probe
from .output import safe_relative
from .resource import (
    HEAD_RANGE,
    Resource,
    ResourceLike,
    fetch_error_finding,
    fetch_policy,
    fetch_resource,
    kind_from_extension,
    not_verified_finding,
    release,
    to_resource,
    url_extension,
    url_off_finding,
)
from .settings import Settings, make_settings

__all__ = ["check", "prepare", "probe"]


def probe(source: ResourceLike, *, settings: Settings | None = None, deep: bool = False,
          **options: Any) -> MediaInfo:
    """What ``source`` is: kind, format, size, dimensions, timing.

    Args:
        source: a path, bytes, a binary file object (read from its current position), a PIL
            image, a list of frames, a folder of frames, or an http(s) URL (fetched only with
            ``allow_url=True``).
        settings: a :class:`~mediaprep.settings.Settings`; or pass its fields as keywords.
        deep: decode the whole input to be sure it decodes.

    Returns:
        A :class:`~mediaprep.model.MediaInfo`. Bad media never raises: ``info.error`` and
        ``info.error_code`` say what is wrong.

    Raises:
        SettingsError: an option is invalid. ResourceError: an input of a type it cannot take.
    """
    s = make_settings(settings, **options)
    src = to_resource(source)
    if src.url is not None and s.allow_url:
        try:
            fetched = fetch_resource(src, s)
        except FetchError as exc:
            return MediaInfo(path=src.name, kind="other", error=f"cannot fetch: {exc.message}",
                             error_code="file.too_large" if exc.code == "url.too_large"
                             else "file.unreadable")
        try:
            return probe_resource(fetched, limits=s.limits, deep=deep)
        finally:
            release(fetched)
    return probe_resource(src, limits=s.limits, deep=deep)


def check(source: ResourceLike, *, settings: Settings | None = None, **options: Any) -> Report:
    """Check ``source`` against every applicable limit; nothing is written.

    Args:
        source: any input :func:`probe` takes.
        settings: a :class:`~mediaprep.settings.Settings`; or pass its fields as keywords
            (``target``, ``dialect``, ``transport``, ``model``, ``fps``, ``max_frames``, ...,
            and ``limits={key: value}`` to override rows of the limits table).

    Returns:
        A :class:`~mediaprep.model.Report`: ``report.ok``, ``report.findings``,
        ``report.tokens``.

    Raises:
        SettingsError: an option is invalid. ResourceError: an input of a type it cannot take.
    """
    s = make_settings(settings, **options)
    src = to_resource(source)
    if src.url is not None:
        return _check_url(src, s)
    return check_info(probe_resource(src, limits=s.limits, deep=s.deep), s)


def prepare(source: ResourceLike, *, settings: Settings | None = None,
            out_dir: str | Path | None = None, stem: PurePath | None = None,
            **options: Any) -> Prepared:
    """Make ``source`` sendable and return its content part (SPEC section 2).

    Args:
        source: any input :func:`probe` takes.
        settings: a :class:`~mediaprep.settings.Settings`; or pass its fields as keywords.
        out_dir: where outputs are written (atomically; never over the input). Without it,
            images stay in memory (base64 transport only).
        stem: the outputs' name below ``out_dir`` (default: the input's own name).

    Returns:
        A :class:`~mediaprep.model.Prepared`: ``prepared.ok``, ``prepared.part`` (the content
        part), ``prepared.findings``, ``prepared.fixes``. Bad media never raises: ``ok`` is
        False and the findings say why.

    Raises:
        SettingsError: an option is invalid, or asks for outputs with nowhere to write them.
        ResourceError: an input of a type it cannot take.
    """
    s = make_settings(settings, **options)
    src = to_resource(source)
    if src.url is not None:
        return _prepare_url(src, s, out_dir, stem)
    return _prepare_local(src, s, out_dir, stem)


def _prepare_local(src: Resource, s: Settings, out_dir: str | Path | None,
                   stem: PurePath | None) -> Prepared:
    if stem is None:  # the input's own name, never its folders (an absolute path would nest)
        stem = safe_relative(Path(src.name).name).with_suffix("")
    sink = Sink(Path(out_dir) if out_dir is not None else None, stem)
    info = probe_resource(src, limits=s.limits)
    report = check_info(info, s)
    blocking = [f for f in report.findings if f.severity == "error" and not f.fixable]
    if blocking or info.error_code:
        return Prepared(path=src.name, kind=info.kind, ok=False, info=info,
                        findings=report.findings, bytes_in=info.bytes, tokens=report.tokens)
    kind = KINDS.get(info.kind)
    if kind is not None:
        return kind.prepare(src, report, s, sink)
    return Prepared(path=src.name, kind=info.kind, ok=False, info=info,
                    findings=report.findings + [Finding(
                        "file.unsupported_format", "error",
                        f"{src.name}: not an image or a video")])


# ------------------------------------------------------------------------------ URL inputs
#
# A URL input is fetched only when the settings allow it (``Settings.allow_url``); then it is
# handled like a local file (mediaprep.resource.fetch_resource). Under the url transport, a URL
# that needs no change passes through untouched: it is validated from a HEAD and a bounded
# Range read when allowed, and passed with a ``url.not_verified`` info finding when not.

def _head_info(src: Resource, settings: Any) -> Any:
    """What a URL is, from a HEAD and its first :data:`HEAD_RANGE` bytes (raises FetchError).

    Returns (MediaInfo, complete): ``complete`` is False when the first bytes could not say
    enough (a video whose index is at the end, an image whose header is past the range).
    """

    hp = head_probe(src.url, fetch_policy(settings), max_range=HEAD_RANGE)
    partial = hp.size is None or len(hp.head) < hp.size
    name = src.name
    if not hp.head:
        return MediaInfo(path=name, kind="other", bytes=hp.size or 0,
                         error="the URL serves no bytes", error_code="file.unreadable"), True
    info = probe_resource(Resource(name=name, data=hp.head), limits=settings.limits)
    info.path = name
    info.bytes = hp.size if hp.size is not None else len(hp.head)
    info.extension = url_extension(src.url)
    info.extension_matches = extension_matches(info.extension, info.format)
    if not partial:
        return info, True
    if info.kind == "image" and info.error_code == "file.unreadable" and info.width:
        # the structure walk saw the end of the range, not of the file
        info.error = info.error_code = None
        return info, True
    if info.kind == "image" and info.error_code is None:
        return info, True
    if info.error_code == "image.decompression_bomb":
        return info, True
    return info, False  # videos: duration and frames need the whole index


def _check_url(src: Resource, settings: Any) -> Any:
    """check for a URL input (see the section comment)."""

    name = src.name
    if settings.transport == "url" and not settings.allow_url:
        info = MediaInfo(path=name, kind=kind_from_extension(src.url))
        return Report(path=name, kind=info.kind, info=info,
                      findings=[not_verified_finding(name, "URL fetching is off; --allow-url "
                                                           "checks it from its first bytes")])
    if not settings.allow_url:
        info = MediaInfo(path=name, kind="other", error="URL fetching is off",
                         error_code="file.unreadable")
        return Report(path=name, kind="other", info=info, findings=[url_off_finding(name)])
    try:
        if settings.transport == "url":
            info, complete = _head_info(src, settings)
            if complete:
                return check_info(info, settings)
        fetched = fetch_resource(src, settings)
    except FetchError as exc:
        info = MediaInfo(path=name, kind="other", error=exc.message,
                         error_code="file.too_large" if exc.code == "url.too_large"
                         else "file.unreadable")
        return Report(path=name, kind="other", info=info,
                      findings=[fetch_error_finding(name, exc)])
    try:
        from .kinds import probe_resource

        return check_info(probe_resource(fetched, limits=settings.limits, deep=settings.deep),
                          settings)
    finally:
        release(fetched)


def _prepare_url(src: Resource, settings: Any, out_dir: Any, stem: Any) -> Any:
    """prepare for a URL input (see the section comment)."""

    name = src.name

    def passthrough(kind: str, findings: list, info: Any = None) -> Prepared:
        if kind == "image":
            part = image_part(src.url, settings.dialect)
        else:
            max_frames = settings.max_frames if settings.max_frames_set else None
            part = video_file_part(src.url, settings.fps, settings.dialect, max_frames)
        return Prepared(path=name, kind=kind, ok=True, part=part, findings=findings, info=info,
                        fixes=["passed through as the original URL"],
                        fps=settings.fps if kind == "video" else None,
                        bytes_in=info.bytes if info is not None else 0)

    if settings.transport == "url" and not settings.allow_url:
        kind = kind_from_extension(src.url)
        if kind == "other":
            return Prepared(path=name, kind="other", ok=False, findings=[Finding(
                "file.unsupported_format", "error",
                f"{name}: cannot tell from the URL whether it is an image or a video; pass "
                "--allow-url to let mediaprep look at it")])
        return passthrough(kind, [not_verified_finding(
            name, "URL fetching is off; --allow-url checks it from its first bytes")])
    if not settings.allow_url:
        return Prepared(path=name, kind="other", ok=False, findings=[url_off_finding(name)])
    try:
        if settings.transport == "url":
            from .kinds import check_info

            info, complete = _head_info(src, settings)
            if complete:
                report = check_info(info, settings)
                worth_fixing = [f for f in report.findings if f.severity in ("error", "warning")]
                if not worth_fixing and info.kind in ("image", "video"):
                    return passthrough(info.kind, report.findings, info)
                if any(f.severity == "error" and not f.fixable for f in report.findings):
                    return Prepared(path=name, kind=info.kind, ok=False, info=info,
                                    findings=report.findings, bytes_in=info.bytes)
        fetched = fetch_resource(src, settings)
    except FetchError as exc:
        return Prepared(path=name, kind="other", ok=False,
                        findings=[fetch_error_finding(name, exc)])
    try:
        result = _prepare_local(fetched, settings, out_dir, stem)
        result.path = name
        if (settings.transport == "url" and result.ok and result.kind in ("image", "video")
                and result.fixes == ["passed through unchanged"]):
            # nothing changed: the original URL goes, not a copy under --url-prefix
            for out in result.outputs:
                out.unlink(missing_ok=True)
            kept = passthrough(result.kind, result.findings, result.info)
            kept.tokens = result.tokens
            return kept
        return result
    finally:
        release(fetched)
