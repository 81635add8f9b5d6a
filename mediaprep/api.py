"""The library's front door: probe, check and prepare one input.

Every input becomes one :class:`~mediaprep.resource.Resource`, whose ``access`` decides the URL
policy and whose ``local`` fetches a URL (when allowed) into a local file, so every kind and
backend reads a local file or bytes. The kind of
the input (mediaprep.kinds) then probes, checks and prepares it.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from .backends.sniff import extension_matches
from .emit.parts import image_part, video_file_part
from .emit.sink import Sink
from .kinds import KINDS, add_notes, check_info, noted_warnings, probe_resource
from .net.fetch import FetchError
from .output import safe_relative
from .resource import (
    Resource,
    ResourceLike,
    fetch_error_finding,
    kind_from_extension,
    to_resource,
    url_extension,
)
from .settings import Settings, make_settings
from .types import Finding, MediaInfo, Prepared, Report

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
        A :class:`~mediaprep.types.MediaInfo`. Bad media never raises: ``info.error`` and
        ``info.error_code`` say what is wrong.

    Raises:
        SettingsError: an option is invalid. ResourceError: an input it cannot take (a wrong
            type, an empty path).
    """
    s = make_settings(settings, **options)
    res = to_resource(source)
    access = res.access(s)
    if access.mode in ("unverified", "refused"):
        return MediaInfo(path=res.name, kind="other", error_code="url.not_verified",
                         error="a URL input is not fetched unless allowed")
    try:
        with res.local(s) as local:
            return probe_resource(local, limits=s.limits, deep=deep)
    except FetchError as exc:
        return MediaInfo(path=res.name, kind="other", error=f"cannot fetch: {exc.message}",
                         error_code=exc.finding_code)


def check(source: ResourceLike, *, settings: Settings | None = None, **options: Any) -> Report:
    """Check ``source`` against every applicable limit; nothing is written.

    Args:
        source: any input :func:`probe` takes.
        settings: a :class:`~mediaprep.settings.Settings`; or pass its fields as keywords
            (``target``, ``dialect``, ``transport``, ``model``, ``fps``, ``max_frames``, ...,
            and ``limits={key: value}`` to override rows of the limits table).

    Returns:
        A :class:`~mediaprep.types.Report`: ``report.ok``, ``report.findings``,
        ``report.tokens``.

    Raises:
        SettingsError: an option is invalid. ResourceError: an input it cannot take (a wrong
            type, an empty path).
    """
    s = make_settings(settings, **options)
    res = to_resource(source)
    access = res.access(s)
    if access.mode == "unverified":
        info = MediaInfo(path=res.name, kind=kind_from_extension(res.url))
        return Report(path=res.name, kind=info.kind, info=info, findings=[access.finding])
    if access.mode == "refused":
        info = MediaInfo(path=res.name, kind="other", error="URL fetching is off",
                         error_code="file.unreadable")
        return Report(path=res.name, kind="other", info=info, findings=[access.finding])
    try:
        if access.mode == "head":
            info, complete = _head_info(res, s)
            if complete:
                return check_info(info, s)
        with res.local(s) as local:
            return check_info(probe_resource(local, limits=s.limits, deep=s.deep), s)
    except FetchError as exc:
        info = MediaInfo(path=res.name, kind="other", error=exc.message,
                         error_code=exc.finding_code)
        return Report(path=res.name, kind="other", info=info,
                      findings=[fetch_error_finding(res.name, exc)])


def prepare(source: ResourceLike, *, settings: Settings | None = None,
            out_dir: str | Path | None = None, stem: PurePath | None = None,
            preview: bool = False, **options: Any) -> Prepared:
    """Make ``source`` sendable and return its content part (docs/formats.md, "Content parts").

    Args:
        source: any input :func:`probe` takes.
        settings: a :class:`~mediaprep.settings.Settings`; or pass its fields as keywords.
        out_dir: where outputs are written (atomically; never over the input). Without it,
            images stay in memory (base64 transport only). The call keeps no record of what
            it wrote, so a file already at an output's name is replaced: the caller owns
            ``out_dir`` (``prep_many`` and ``mediaprep prep`` replace only what a run made).
        stem: the outputs' name below ``out_dir`` (default: the input's own name).
        preview: also fill ``prepared.previews`` (small RGB PIL images of what is sent, by
            output index; ``prepared.preview`` is the first) where the pixels come free: the
            decode that proves a passed-through image, the pixels an image or a video's frames
            were encoded from. The report's thumbnails use them.

    Returns:
        A :class:`~mediaprep.types.Prepared`: ``prepared.ok``, ``prepared.part`` (the content
        part), ``prepared.findings``, ``prepared.fixes``. Bad media never raises: ``ok`` is
        False and the findings say why.

    Raises:
        SettingsError: an option is invalid, or asks for outputs with nowhere to write them,
            or ``transport="upload"`` without the target's API key in the environment.
        ResourceError: an input it cannot take (a wrong type, an empty path).
    """
    s = make_settings(settings, **options)
    if s.transport == "upload":
        from .upload import require_upload

        require_upload(s)  # no key, no httpx: refused before any work
    res = to_resource(source)
    access = res.access(s)
    if access.mode == "unverified":
        return _unverified_url(res, s, access.finding)
    if access.mode == "refused":
        return Prepared(path=res.name, kind="other", ok=False, findings=[access.finding])
    try:
        judged = _judged_from_head(res, s) if access.mode == "head" else None
        if judged is not None:
            return judged
        with res.local(s) as local:
            result = _prepare_local(local, s, out_dir, stem, preview)
    except FetchError as exc:
        return Prepared(path=res.name, kind="other", ok=False,
                        findings=[fetch_error_finding(res.name, exc)])
    if res.url is None:
        return result
    result.path = res.name
    if access.mode == "head" and result.ok and result.kind in ("image", "video") \
            and not result.changes:
        return _url_kept(res, s, result)
    return result


def _unverified_url(res: Resource, s: Settings, finding: Finding) -> Prepared:
    """A URL not looked at (no --allow-url): sent as it is when its name says image or video."""
    kind = kind_from_extension(res.url)
    if kind == "other":
        return Prepared(path=res.name, kind="other", ok=False, findings=[Finding(
            "file.unsupported_format", "error",
            f"{res.name}: cannot tell from the URL whether it is an image or a video; pass "
            "--allow-url to let mediaprep look at it")])
    return _url_passthrough(res, s, kind, [finding])


def _judged_from_head(res: Resource, s: Settings) -> Prepared | None:
    """A URL's result from its first bytes alone: passed through or refused (None: it must be
    fetched whole and prepared). Raises FetchError."""
    info, complete = _head_info(res, s)
    if not complete:
        return None
    report = check_info(info, s)
    worth_fixing = [f for f in report.findings if f.severity in ("error", "warning")]
    if not worth_fixing and info.kind in ("image", "video"):
        return _url_passthrough(res, s, info.kind, report.findings, info)
    if _blocking(report):
        return Prepared(path=res.name, kind=info.kind, ok=False, info=info,
                        findings=report.findings, bytes_in=info.bytes)
    return None


def _url_kept(res: Resource, s: Settings, result: Prepared) -> Prepared:
    """Nothing changed: the original URL goes, not a copy under --url-prefix."""
    for out in result.outputs:
        out.unlink(missing_ok=True)
    kept = _url_passthrough(res, s, result.kind, result.findings, result.info)
    kept.tokens = result.tokens
    return kept


def _prepare_local(src: Resource, s: Settings, out_dir: str | Path | None,
                   stem: PurePath | None, preview: bool = False) -> Prepared:
    if stem is None:  # the input's own name, never its folders (an absolute path would nest)
        stem = safe_relative(Path(src.name).name).with_suffix("")
    sink = Sink(Path(out_dir) if out_dir is not None else None, stem, keep_preview=preview)
    info = probe_resource(src, limits=s.limits, deep=s.deep, preview=preview)
    report = check_info(info, s)
    if _blocking(report) or info.error_code:
        return Prepared(path=src.name, kind=info.kind, ok=False, info=info,
                        findings=report.findings, bytes_in=info.bytes, tokens=report.tokens,
                        previews={"input": info.first_frame} if info.first_frame else {})
    kind = KINDS.get(info.kind)
    if kind is not None:
        with noted_warnings() as said:  # a decoder's warning: a note on the input, not stderr
            prepared = kind.prepare(src, report, s, sink)
        add_notes(prepared.info, said)
        if s.transport == "upload":
            from .upload import upload_prepared

            prepared = upload_prepared(prepared, s)
        return prepared
    return Prepared(path=src.name, kind=info.kind, ok=False, info=info,
                    findings=report.findings + [Finding(
                        "file.unsupported_format", "error",
                        f"{src.name}: not an image or a video")])


# ------------------------------------------------------------------------------ URL inputs
#
# The policy (fetch or not, judge from the first bytes or not) is Resource.access; what is
# left here is the part of a URL's flow that needs the kinds: probing its first bytes, and the
# content part that names the URL itself.



def _blocking(report: Report) -> bool:
    return any(f.severity == "error" and not f.fixable for f in report.findings)


def _head_info(res: Resource, settings: Settings) -> tuple[MediaInfo, bool]:
    """What a URL is, from a HEAD and its first bytes (raises FetchError).

    Returns (MediaInfo, complete): ``complete`` is False when the first bytes could not say
    enough (a video whose index is at the end, an image whose header is past the range).
    """
    read = res.head_read(settings)
    name = res.name
    if not read.head.data:
        return MediaInfo(path=name, kind="other", bytes=read.size or 0,
                         error="the URL serves no bytes", error_code="file.unreadable"), True
    info = probe_resource(read.head, limits=settings.limits)
    info.path = name
    info.bytes = read.size if read.size is not None else len(read.head.data)
    info.extension = url_extension(res.url)
    info.extension_matches = extension_matches(info.extension, info.format)
    return info, not read.partial or _enough_in_range(info)


def _enough_in_range(info: MediaInfo) -> bool:
    """Whether the first bytes of a longer file say enough to judge it."""
    if info.kind == "image" and info.error_code == "file.unreadable" and info.width:
        # the structure walk saw the end of the range, not of the file
        info.error = info.error_code = None
    if info.kind == "image" and info.error_code is None:
        return True
    return info.error_code == "image.decompression_bomb"  # videos: need the whole index


def _url_passthrough(res: Resource, settings: Settings, kind: str, findings: list[Finding],
                     info: MediaInfo | None = None) -> Prepared:
    """The URL itself as the content part: nothing about it needed a change."""
    if kind == "image":
        part = image_part(res.url, settings.dialect)
    else:
        max_frames = settings.max_frames if settings.max_frames_set else None
        part = video_file_part(res.url, settings.fps, settings.dialect, max_frames)
    return Prepared(path=res.name, kind=kind, ok=True, part=part, findings=findings, info=info,
                    fps=settings.fps if kind == "video" else None,
                    bytes_in=info.bytes if info is not None else 0)
