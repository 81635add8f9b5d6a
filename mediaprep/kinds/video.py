"""The video kind: check a video file's limits and prepare it (pass, remux, transcode or
frames).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..backends.av import VideoBounds, probe_video, undecodable_reason
from ..backends.av_encode import (
    DoesNotFit,
    RemuxNotPossible,
    VideoEncodeError,
    remux,
    transcode_floor_fits,
    transcode_to_fit,
)
from ..backends.av_frames import FrameExtractionError, extract_frames
from ..backends.pillow import preview_or_none, preview_sample
from ..backends.pillow_encode import BudgetError, encode_to_budget
from ..backends.sniff import (
    HEAD_BYTES,
    Sniffed,
    data_url_sizer,
    extension_matches,
    identity_size,
    sniff,
)
from ..emit.parts import data_url, frames_part, video_file_part
from ..emit.sink import Sink, require_out_dir, url_for_file
from ..limits import VIDEO_REQUEST_OVERHEAD, Limit, Limits, limits_for
from ..output import atomic_write, inside, temp_path_for
from ..resource import Resource
from ..settings import Settings
from ..tuning import FRAME_QUALITY
from ..types import Change, Finding, MediaInfo, Prepared, Report
from .common import (
    check_extension,
    check_item_bytes,
    check_params,
    finding,
    in_box,
    mime_for,
    report_for,
)

# A sample aspect ratio (pixel shape) beyond this either way makes the display size absurd: real
# anamorphic video stays within about 4:1 (e.g. 1440x1080 shown as 1920x1080 is 4:3).
MAX_SAR = 16.0

log = logging.getLogger("mediaprep")


def max_fps_frames(duration: float, fps: float) -> int:
    """Frames taken at ``fps`` over ``duration`` s: t = 0, 1/fps, ... while t < duration."""
    return max(1, math.ceil(duration * fps - 1e-9)) if duration > 0 else 0


def probe(src: Resource, *, sniffed: Sniffed | None = None, deep: bool = False,
          preview: bool = False, limits: Limits | None = None) -> MediaInfo:
    """What a video file is: container, stream, timing (one packet scan, mediaprep.backends.av).

    A stream that cannot become pictures (encrypted, no decoder in the bundled FFmpeg, or with
    ``deep`` a packet that does not decode) is ``video.undecodable``: the model would get noise
    or nothing."""
    if sniffed is None:
        sniffed = sniff(src.head(HEAD_BYTES))
    info = probe_video(src, sniffed, preview=preview, bounds=video_bounds(limits))
    # (a stream FFmpeg opened no decoder for is refused by the probe as unreadable: say why;
    # only once the container opened: a file refused before that, e.g. for an implausible
    # sample table, is not handed to FFmpeg again)
    no_decoder = info.container is not None and info.codec is None
    if info.kind == "video" and info.error_code != "video.undecodable" and (
            info.error_code is None or no_decoder):
        why = undecodable_reason(src, info, deep=deep)
        if why:
            info.error_code, info.error = "video.undecodable", why
    info.extension = src.extension
    info.extension_matches = extension_matches(src.extension, info.format)
    return info


def video_bounds(limits: Limits | None) -> VideoBounds:
    """What opening a video may cost, from the limits table (its defaults when None)."""
    limits = limits or limits_for()
    return VideoBounds(limits.value("video.max_streams"), limits.value("video.max_frame_pixels"))


def check(info: MediaInfo, settings: Settings) -> Report:
    """Every limit a video file meets or breaks."""
    return report_for(info, settings, lambda: check_extension(info) + check_params(settings)
                      + check_video(info, settings))


def check_video(info: MediaInfo, settings: Settings) -> list[Finding]:
    return [f for judge in _VIDEO_JUDGES for f in judge(info, settings)]


def _files_only(settings: Settings) -> bool:
    """Whether the video can go as a file only (no frames fallback)."""
    return settings.video_mode == "file" or not settings.target.frame_lists


def _format_findings(info: MediaInfo, settings: Settings) -> list[Finding]:
    fmt = info.format or "unknown"
    row = settings.limits.get("video.formats")
    if row is None or fmt in row.value:
        return []
    return [finding(row, f"{info.path}: {fmt} videos are not accepted by {settings.target} "
                         f"(accepted: {', '.join(sorted(row.value))}); prep remuxes or "
                         "transcodes it to mp4", fmt, fixable=True, limit=sorted(row.value))]


def _short_findings(info: MediaInfo, settings: Settings) -> list[Finding]:
    dur = info.duration
    row = settings.limits.get("video.min_duration")
    if dur is None or row is None or row.value is None or not row.below_min(round(dur, 6)):
        return []
    fps_max = settings.limits.value("param.fps.max", 10.0)
    min_frames = settings.limits.value("frames.min", 1) or 1
    can_frames = not _files_only(settings) and max_fps_frames(dur, fps_max) >= min_frames
    how = ("prep sends it as frames" if can_frames
           else f"too short even for {min_frames} frames at {fps_max:g} fps")
    return [finding(row, f"{info.path}: {dur:.3f} s is shorter than {row.value:g} s; {how}",
                    round(dur, 3), fixable=can_frames)]


def _long_findings(info: MediaInfo, settings: Settings) -> list[Finding]:
    """video.max_duration when it is too long, and param.fps when frames could not carry it
    either (what prep would send: frames, and they cannot fit)."""
    dur = info.duration
    if dur is None:
        return []
    row = settings.limits.get("video.max_duration")
    too_long = row is not None and row.value is not None and row.exceeds_max(round(dur, 6))
    sparse = frames_fps_problem(info, settings) if settings.target.frame_lists else None
    out = [_too_long_finding(info, settings, row, sparse)] if too_long else []
    if sparse is not None and (too_long or settings.video_mode == "frames"):
        out.append(sparse)
    return out


def _too_long_finding(info: MediaInfo, settings: Settings, row: Limit,
                      sparse: Finding | None) -> Finding:
    """video.max_duration: fixable when prep can send frames instead (``sparse``: why frames
    could not carry it either)."""
    dur = info.duration or 0.0
    frames_ok = not _files_only(settings) and sparse is None
    if frames_ok:
        how = "prep sends it as frames (within max_frames)"
    elif sparse is None:
        how = "cut it, or use --video-mode frames"
    else:
        how = "too long to send as frames too"
    return finding(row, f"{info.path}: {dur:.1f} s is longer than {row.value:g} s; {how}",
                   round(dur, 3), fixable=frames_ok)


def _box_findings(info: MediaInfo, settings: Settings) -> list[Finding]:
    row = settings.limits.get("video.recommended_box")
    if row is None or row.value is None or not (info.width and info.height):
        return []
    if in_box(info.width, info.height, row.value):
        return []
    bw, bh = row.value
    return [finding(row, f"{info.path}: {info.width}x{info.height} is above the recommended "
                         f"{bw}x{bh}; prep scales it down", [info.width, info.height],
                    fixable=True, limit=[bw, bh])]


def _pixel_shape_findings(info: MediaInfo, settings: Settings) -> list[Finding]:
    sar = info.sample_aspect_ratio
    if not sar or 1 / MAX_SAR <= sar <= MAX_SAR or not (info.width and info.height):
        return []
    shown = (round(info.width * sar), info.height)
    return [Finding("video.resolution", "error",
                    f"{info.path}: sample aspect ratio {_ratio(sar)} would show the "
                    f"{info.width}x{info.height} frames as {shown[0]:,}x{shown[1]:,}; no "
                    f"picture of that shape can be sent (limit 1:{MAX_SAR:g} to "
                    f"{MAX_SAR:g}:1)", [1 / MAX_SAR, MAX_SAR], sar)]


def _byte_findings(info: MediaInfo, settings: Settings) -> list[Finding]:
    if _files_only(settings):
        return _file_size_findings(info, settings)
    return check_item_bytes("video", info.path, info.bytes, mime_for(info.format or "unknown"),
                            settings, "prep transcodes it smaller or sends frames")


def _hdr_findings(info: MediaInfo, settings: Settings) -> list[Finding]:
    if not (info.hdr and settings.hdr == "convert"):
        return []
    return [Finding("video.hdr", "info",
                    f"{info.path}: HDR ({info.colour}); a decoder that does not tone-map shows "
                    "it washed out: prep transcodes it to SDR BT.709 (--hdr keep sends it as it "
                    "is)", actual=info.colour, fixable=True)]


def _audio_findings(info: MediaInfo, settings: Settings) -> list[Finding]:
    row = settings.limits.get("video.audio") if info.has_audio else None
    if row is None:
        return []
    return [finding(row, f"{info.path}: the audio track is ignored by the model; prep drops it "
                         "when it transcodes", True, fixable=True, limit="ignored")]


# What check_video judges, in the order its findings are listed
_VIDEO_JUDGES: tuple[Callable[[MediaInfo, Settings], list[Finding]], ...] = (
    _format_findings, _short_findings, _long_findings, _box_findings, _pixel_shape_findings,
    _byte_findings, _hdr_findings, _audio_findings)


def _file_size_findings(info: MediaInfo, settings: Settings) -> list[Finding]:
    """The byte limit when the video must go as a file (no frames fallback): fixable by a
    transcode, unless the probe already shows no transcode can fit."""
    fmt = info.format or "unknown"
    found = check_item_bytes("video", info.path, info.bytes, mime_for(fmt), settings,
                             "prep transcodes it smaller (whether a transcode reaches the "
                             "budget is known only once it has run)")
    budget, counts_data_url = _file_budget(settings)
    if not found or budget is None or not info.duration:
        return found
    frames = info.frame_count or round((info.fps or 30.0) * info.duration)
    size_of = data_url_sizer(mime_for("mp4")) if counts_data_url else identity_size
    if transcode_floor_fits(frames, budget, size_of, settings.safety_margin):
        return found
    f = found[0]
    return [Finding(f.code, "error", f"{info.path}: {frames:,} frames cannot be transcoded "
                                     f"within {budget:,} bytes (the MP4 overhead and the "
                                     "smallest frames alone are over it); use --video-mode "
                                     "auto to send frames", f.limit, f.actual, fixable=False)]


def _ratio(sar: float) -> str:
    f = Fraction(sar).limit_denominator(65535)
    return f"{f.numerator}:{f.denominator}"


FRAME_FORMAT = "jpeg"


def _file_budget(settings: Settings) -> tuple[int | None, bool]:
    """(largest allowed size, whether it counts the data URL) for a video file."""
    limits = settings.limits
    if settings.transport == "base64":
        row = limits.get("video.max_data_url_bytes")
        body = limits.value("request.max_body_bytes")
        cap = None
        if row is not None and row.value is not None:
            cap = row.value - 1 if row.strict else row.value
        if body is not None:
            cap = (min(cap, body - VIDEO_REQUEST_OVERHEAD) if cap
                   else body - VIDEO_REQUEST_OVERHEAD)
        return cap, True
    row = limits.get(f"video.max_bytes.{settings.transport}")
    return (row.value if row is not None else None), False


def _file_part_url(sink: Sink, path: Path, settings: Settings) -> str:
    if settings.transport == "base64":
        return data_url(path.read_bytes(), mime_for(path.suffix[1:]))
    return url_for_file(sink, path, None, settings)


def prepare_video(src: Resource, report: Report, settings: Settings, sink: Sink) -> Prepared:
    require_out_dir(sink, settings)  # path/url point at written files: as images do
    info = report.info
    result = Prepared(path=src.name, kind="video", ok=False, info=info,
                      findings=list(report.findings), bytes_in=info.bytes, tokens=report.tokens)
    if info.first_frame is not None:  # the probe's decode of it (prepare(preview=True))
        result.previews["input"] = info.first_frame
    job = _VideoJob(src, report, settings, sink, result, _duration_problem(info, settings))
    if not settings.target.frame_lists:  # a file or nothing: the check findings say why
        return job.as_file()
    mode = settings.video_mode
    if over_token_cap(result, settings) and (mode != "file" or job.problem is not None):
        return job.as_frames("to fit --max-tokens") if mode == "auto" else job.as_frames_asked()
    return _BY_MODE.get(mode, _VideoJob.as_file)(job)


def _duration_problem(info: MediaInfo, settings: Settings) -> str | None:
    """Why the video's duration keeps it from going as a file, or None."""
    limits = settings.limits
    dur = info.duration or 0.0
    min_d, max_d = limits.value("video.min_duration"), limits.value("video.max_duration")
    if min_d is not None and dur < min_d:
        return f"{dur:.2f} s is shorter than the {min_d:g} s a video file needs"
    if max_d is not None and dur > max_d:
        return f"{dur:.0f} s is longer than the {max_d:g} s a video file may last"
    return None


@dataclass
class _VideoJob:
    """Preparing one video: sent as a file, as frames, or (auto) as a file when it can be.
    ``problem``: why its duration keeps it from going as a file (None: it does not)."""

    src: Resource
    report: Report
    settings: Settings
    sink: Sink
    result: Prepared
    problem: str | None

    def as_file(self) -> Prepared:
        """The file, fitted to --max-tokens by its fps; nothing when its duration is out of
        range (the check findings already say why a file cannot go)."""
        if self.problem is not None:
            return self.result
        info, settings = self.report.info, self.settings
        if over_token_cap(self.result, settings):
            settings = _fit_tokens_file(info, settings, self.result)
        _try_file(self.src, info, self.report, settings, self.sink, self.result)
        return self.result

    def as_frames(self, why: str) -> Prepared:
        return prepare_frames_from_video(self.src, self.report.info, self.settings, self.sink,
                                         self.result, why)

    def as_frames_asked(self) -> Prepared:
        return self.as_frames("--video-mode frames")

    def auto(self) -> Prepared:
        """A file when its duration allows and it can be made to fit; frames otherwise."""
        if self.problem is not None:
            return self.as_frames(self.problem)
        result = self.result
        if _try_file(self.src, self.report.info, self.report, self.settings, self.sink, result):
            return result
        result.findings = [f for f in result.findings if f.code != "file.unreadable"] or list(
            self.report.findings)
        return self.as_frames("the file could not be made to fit")


_BY_MODE: dict[str, Callable[[_VideoJob], Prepared]] = {
    "auto": _VideoJob.auto, "file": _VideoJob.as_file,
    "frames": _VideoJob.as_frames_asked}


def _try_file(src: Resource, info: MediaInfo, report: Report, settings: Settings, sink: Sink,
              result: Prepared) -> bool:
    """Pass through, remux or transcode; True when ``result`` is now a sendable file."""
    # PyAV's encoders read a path: bytes in memory get a temp copy, removed afterwards
    with src.as_path("." + (info.format or "bin")) as in_path, _work_sink(sink) as work_sink:
        budget, counts_data_url = _file_budget(settings)
        size_of = data_url_sizer(mime_for("mp4")) if counts_data_url else identity_size
        job = _FileJob(in_path, src, info, settings, sink, work_sink, result,
                       _blocking_codes(report, info, settings), budget, counts_data_url,
                       size_of)
        made = job.copy_or_remux() or job.transcode()
        return made is not None and job.accept(made)


@contextlib.contextmanager
def _work_sink(sink: Sink) -> Iterator[Sink]:
    """Where a video file is written: the caller's sink, or a temporary folder (removed after)
    when it has no output folder."""
    if sink.out_dir is not None:
        yield sink
        return
    workdir = Path(tempfile.mkdtemp(prefix="mediaprep-"))
    try:
        yield Sink(workdir, sink.stem)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _blocking_codes(report: Report, info: MediaInfo, settings: Settings) -> set[str]:
    """The codes of the findings a copy of the file would not meet (token findings are met by
    the part's fps, not by changing the file)."""
    codes = {f.code for f in report.findings if f.severity in ("error", "warning")
             and not f.code.startswith("tokens.")}
    if info.hdr and settings.hdr == "convert":
        codes.add("video.hdr")  # copied or remuxed it would stay HDR
    return codes


@dataclass
class _Made:
    """A video file written for sending: where, as verify described it (None: a copy, to be
    probed), and how many input frames it lacks (never silently)."""

    path: Path
    info: MediaInfo | None = None
    dropped: int = 0


@dataclass
class _FileJob:
    """One try at sending a video as a file: what it reads, where it writes, its budget
    (``counts_data_url``: it counts the data URL, not the file), and ``codes``: the findings a
    copy of the file would not meet."""

    in_path: Path
    src: Resource
    info: MediaInfo
    settings: Settings
    sink: Sink  # the caller's
    work_sink: Sink  # where the file is written
    result: Prepared
    codes: set[str]
    budget: int | None
    counts_data_url: bool
    size_of: Callable[[int], int]  # what the budget counts of a file of n bytes

    def copy_or_remux(self) -> _Made | None:
        """The file as it is (nothing to fix), or its packets in an MP4 (only the container is
        wrong, or the header lies, or it holds more than one video track); None when neither
        will do."""
        info = self.info
        lie = _header_lie(info)
        tracks = info.video_streams or 1
        if not self.codes and lie is None and tracks == 1:
            out_path = self.work_sink.path_for(self.src.name, info.format or "mp4")
            _atomic_copy(self.in_path, out_path)
            return _Made(out_path)
        if self.codes <= {"file.unsupported_format"}:
            return self.remux(_remux_reason(self.codes, lie, tracks))
        return None

    def remux(self, why: str) -> _Made | None:
        """The packets in an MP4, when that fits the budget; None when it does not or fails."""
        out_path = self.work_sink.path_for(self.src.name, "mp4")
        try:
            vo = remux(self.in_path, out_path, container="mp4", scan=self.info.scan)
            if self.budget is not None and self.size_of(out_path.stat().st_size) > self.budget:
                out_path.unlink()
                return None
        except (RemuxNotPossible, VideoEncodeError, OSError) as exc:
            log.info("%s: remux failed, transcoding instead: %s", self.src.name, exc)
            return None
        copied = "video copied" + (", audio dropped" if self.info.has_audio else "")
        self.result.changes.append(Change("remuxed", (self.info.format or "?").upper(),
                                          "MP4", f"{why}; {copied}"))
        return _Made(out_path, vo.info, vo.dropped)

    def transcode(self) -> _Made | None:
        """An H.264 MP4 within the budget; None (the finding said) when none can be made."""
        src, info, budget = self.src, self.info, self.budget
        out_path = self.work_sink.path_for(src.name, "mp4")
        box = self.settings.limits.value("video.recommended_box")
        try:
            vo = transcode_to_fit(self.in_path, out_path, max_bytes=budget or (1 << 62),
                                  size_of=self.size_of, margin=self.settings.safety_margin,
                                  max_box=box, scan=info.scan)
        except DoesNotFit as exc:
            log.info("%s: transcode cannot fit %s bytes: %s", src.name, budget, exc)
            self.result.findings.append(Finding(
                "base64.too_large" if self.counts_data_url else "file.too_large", "error",
                f"{src.name}: cannot be transcoded within {budget:,} bytes ({exc})",
                budget, None))
            return None
        except (VideoEncodeError, OSError, ValueError) as exc:
            log.warning("%s: transcode failed: %s", src.name, exc)
            self.result.findings.append(Finding("file.unreadable", "error",
                                                f"{src.name}: transcoding failed: {exc}"))
            return None
        why = _transcode_reason(self.codes, self.settings)
        if info.hdr and "HDR" not in why:  # a transcode is 8-bit SDR whatever its reason
            why += "; HDR tone-mapped to SDR BT.709"
        self.result.changes.append(Change(
            "transcoded", f"{(info.format or '?').upper()} {info.width}x{info.height}",
            f"H.264 MP4 {vo.width}x{vo.height}, {vo.bytes:,} bytes",
            why + ("; audio dropped" if info.has_audio else "")))
        self.result.stats["attempts"] = vo.attempts
        return _Made(out_path, vo.info, vo.dropped)

    def accept(self, made: _Made) -> bool:
        """Check the written file as any input; True (``result`` filled) when it passes."""
        out_info = _output_info(made)
        recheck = check(out_info, self.settings.replace(video_mode="file"))
        problems = [f for f in recheck.findings if f.severity == "error"]
        if problems:
            made.path.unlink(missing_ok=True)
            self.result.findings += problems
            return False
        if made.dropped:
            self.result.findings.append(Finding(
                "video.frames_dropped", "warning",
                f"{self.src.name}: {made.dropped} of its {self.info.frame_count or '?'} frames "
                "repeat an earlier frame's timestamp and are not in the output", None,
                made.dropped))
        self._fill(made.path, out_info)
        return True

    def _fill(self, out_path: Path, out_info: MediaInfo) -> None:
        """``result`` as the sendable file ``out_path``."""
        result, settings = self.result, self.settings
        url = _file_part_url(self.work_sink, out_path, settings)
        max_frames = settings.max_frames if settings.max_frames_set else None
        result.part = video_file_part(url, settings.fps, settings.dialect, max_frames)
        result.fps = settings.fps
        result.output_info = out_info
        result.bytes_out = out_path.stat().st_size
        result.outputs = [out_path] if self.sink.out_dir is not None else []
        result.mime = mime_for(out_info.format)
        if self.info.first_frame is not None and "transcoded" not in result.change_kinds():
            result.previews[0] = self.info.first_frame  # the same pictures: copied or remuxed
        result.ok = True


def _output_info(made: _Made) -> MediaInfo:
    """The written file as probe describes it: probed (a copy, as any input), or verify's
    description (remuxed or transcoded), named as probe names it."""
    if made.info is None:
        return probe(Resource(name=str(made.path), path=made.path))
    out_info = made.info
    out_info.path = str(made.path)
    out_info.extension = made.path.suffix[1:].lower() or None
    out_info.extension_matches = extension_matches(out_info.extension, out_info.format)
    return out_info


def _remux_reason(codes: set[str], lie: str | None, tracks: int) -> str:
    """Why a video is remuxed, in words."""
    if codes:
        return "not a container the target takes"
    if lie:
        return f"so the header tells the truth: {lie}"
    return (f"{tracks} video tracks: only the main one is sent (a provider may show another, "
            "such as a motion photo's still)")


def _transcode_reason(codes: set[str], settings: Settings) -> str:
    """Why a video is transcoded, in words (the first reason its findings give)."""
    if codes & {"file.too_large", "base64.too_large", "request.too_large"}:
        return "to fit the byte limit"
    if "video.resolution" in codes:
        box = settings.limits.value("video.recommended_box")
        return f"above the recommended {box[0]}x{box[1]}" if box else "above the recommended box"
    if "file.unsupported_format" in codes:
        return "not a format the target takes, and it could not be remuxed"
    if "video.hdr" in codes:
        return "HDR tone-mapped to SDR BT.709"
    return "the file could not be copied as it is"


def _header_lie(info: MediaInfo) -> str | None:
    """'header declares X s, packets span Y s' when the container header's duration is far from
    the packets' (the probe's tolerance: 1 s or 10 %): a server may trust either, so prep
    remuxes (lossless) to a header that agrees with the packets."""
    declared, span = info.declared_duration, info.duration
    if not declared or not span or info.frame_count is None:
        return None  # (no complete packet scan: the span is not known well enough to judge)
    if abs(declared - span) <= max(1.0, 0.1 * span):
        return None
    return f"header declared {declared:,.3f} s, packets span {span:,.3f} s"


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = temp_path_for(dst)
    try:
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class FrameSet:
    """Frames taken from one video, encoded, with their timing."""

    fps: float
    requested_fps: float
    duration: float
    rotation: int
    frames: list[dict[str, Any]] = field(default_factory=list)  # file/timestamp/index
    urls: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bytes_out: int = 0
    size: tuple[int, int] | None = None  # frame size as sent (for the token estimate)
    previews: dict[int, Any] = field(default_factory=dict)  # frame index -> its preview


def frame_budget(n: int, settings: Settings) -> tuple[int, int]:
    """(frames allowed in one request, bytes each frame may take) for ``n`` wanted frames."""
    cap = _frames_per_request(n, settings)
    return cap, _bytes_per_frame(cap, settings)


def _frames_per_request(n: int, settings: Settings) -> int:
    """``n``, capped by the media items one request takes and by ``frames.max``."""
    limits = settings.limits
    cap = n
    key = "request.max_data_urls" if settings.transport == "base64" else "request.max_media_urls"
    row = limits.get(key)
    if row is not None and row.value is not None:
        cap = min(cap, row.value - 1 if row.strict else row.value)
    fmax = limits.value("frames.max")
    if fmax is not None:
        cap = min(cap, fmax)
    return cap


def _bytes_per_frame(cap: int, settings: Settings) -> int:
    """What each of ``cap`` frames may take: an image's limit, and its share of the request
    body (upload sends references, not the frames)."""
    limits = settings.limits
    per_item = limits.value("image.max_data_url_bytes") if settings.transport == "base64" \
        else limits.value(f"image.max_bytes.{settings.transport}")
    per_item = per_item or (10 << 20)
    body = limits.value("request.max_body_bytes")
    if body is not None and cap > 0 and settings.transport != "upload":
        per_item = min(per_item, (body - VIDEO_REQUEST_OVERHEAD) // cap)
    return per_item


def extract_frame_set(src: Resource, info: MediaInfo, settings: Settings, out_dir: Path | None,
                      stem: Path | None, *, for_request: bool = True,
                      keep_previews: bool = False) -> FrameSet:
    """Take frames at the asked fps (raised for short clips), capped, encoded within budget.

    Frames stream from the decoder one at a time; each is encoded and written (or turned into
    a data URL) before the next is decoded. ``keep_previews``: keep the previews of the frames
    a contact sheet shows (:func:`~mediaprep.backends.pillow.preview_sample` of those planned),
    made from the pixels encoded.
    """
    notes: list[str] = []
    fps = _raised_for_short(info.duration or 0.0,
                            _lowered_to_own_rate(info, settings, notes), settings, notes)
    max_frames, per_item = settings.max_frames, None
    if for_request:
        max_frames, per_item = _request_cap(info.duration or 0.0, fps, settings, notes)
    source_arg: Any = str(src.path) if src.path is not None else src.open()
    # the probe's packet scan (when it covered the whole stream): one rule for the duration
    # and the timeline, and the input is opened once more only, to decode
    plan, frames, meta = extract_frames(source_arg, fps=fps, max_frames=max_frames,
                                        max_side=settings.frame_max_side, scan=info.scan,
                                        min_frames=_frames_kept(info.duration or 0.0, settings))
    if plan.repeats:
        notes.append(f"{plan.repeats} repeated frames left out (each source frame once)")
    fs = FrameSet(fps=plan.fps, requested_fps=settings.fps, duration=plan.duration,
                  rotation=int(meta.get("rotation", 0)), notes=notes)
    writer = _FrameEncoder(fs, settings, out_dir, _frame_dir(out_dir, stem), per_item,
                          for_request,
                          set(preview_sample(len(plan.timestamps))) if keep_previews else set())
    for i, fr in enumerate(frames):
        writer.add(i, fr)
    if writer.lowered:
        fs.notes.append("frame quality or size lowered to fit the request")
    return fs


def _lowered_to_own_rate(info: MediaInfo, settings: Settings, notes: list[str]) -> float:
    """The asked fps, or the video's own when that is lower: the processor samples at
    min(fps, the video's own), and faster only repeats frames (a video sparser than the fps
    range keeps the range's rules: issue 22 item 16)."""
    fps = settings.fps
    if info.fps and (settings.limits.value("param.fps.min") or 0) <= info.fps < fps:
        notes.append(f"fps lowered from {fps:g} to the video's own {info.fps:.4g}")
        return info.fps
    return fps


def _raised_for_short(duration: float, fps: float, settings: Settings,
                      notes: list[str]) -> float:
    """``fps``, raised (up to ``param.fps.max``) when a short clip would give fewer than
    ``frames.min`` frames."""
    limits = settings.limits
    min_frames = limits.value("frames.min") or 1
    fps_max = limits.value("param.fps.max") or fps
    if duration <= 0 or math.ceil(round(duration * fps, 9)) >= min_frames:
        return fps
    needed = min_frames / duration
    if needed > fps_max:
        return fps_max
    notes.append(f"fps raised from {fps:g} to {needed:.3g} so the {duration:.2f} s clip "
                 f"gives {min_frames} frames")
    return needed


def _request_cap(duration: float, fps: float, settings: Settings,
                 notes: list[str]) -> tuple[int, int]:
    """(frames to take, bytes each may take) for frames that go in one request."""
    max_frames = settings.max_frames
    wanted = min(max_frames, max(1, math.ceil(round(duration * fps, 9))))
    cap, per_item = frame_budget(wanted, settings)
    if cap < wanted:
        notes.append(f"frames capped at {cap} (at most {cap} media items per request)")
        max_frames = min(max_frames, cap)
    return max_frames, per_item


def _frame_dir(out_dir: Path | None, stem: Path | None) -> Path | None:
    """The folder the frames are written to (made), or None: none written."""
    if out_dir is None:
        return None
    frame_dir = inside(out_dir, stem) if stem is not None else out_dir.resolve()
    frame_dir.mkdir(parents=True, exist_ok=True)
    return frame_dir


class _FrameEncoder:
    """Each decoded frame encoded within its budget, then written (into ``frame_dir``) and/or
    made a data URL, into ``fs``; the previews of the ``sampled`` frames kept."""

    def __init__(self, fs: FrameSet, settings: Settings, out_dir: Path | None,
                 frame_dir: Path | None, per_item: int | None, for_request: bool,
                 sampled: set[int]) -> None:
        self.fs, self.settings = fs, settings
        self.out_dir, self.frame_dir = out_dir, frame_dir
        self.budget = per_item if per_item is not None else 1 << 62
        self.for_request = for_request
        self.sampled = sampled
        self.mime = mime_for(FRAME_FORMAT)
        self.base64 = settings.transport == "base64"
        self.lowered = False  # a frame's quality or size was lowered to fit

    def add(self, i: int, fr: Any) -> None:
        enc = self._encode(i, fr)
        self.lowered = self.lowered or any("scale" in s or "q=" in s for s in enc.steps[1:])
        fs = self.fs
        fs.size = (enc.width, enc.height)
        fs.frames.append(self._entry(i, fr, enc.data))
        fs.bytes_out += len(enc.data)
        if self.for_request:
            fs.urls.append(data_url(enc.data, self.mime) if self.base64 else "")

    def _encode(self, i: int, fr: Any) -> Any:
        """The frame encoded (its preview kept when it is sampled); its image closed after."""
        try:
            enc = encode_to_budget(fr.image, format=FRAME_FORMAT, max_bytes=self.budget,
                                   size_of=data_url_sizer(self.mime) if self.base64
                                   else identity_size,
                                   margin=self.settings.safety_margin, max_quality=FRAME_QUALITY)
            if i in self.sampled and enc.image is not None:
                if (small := preview_or_none(enc.image)) is not None:
                    self.fs.previews[i] = small
        finally:
            fr.image.close()
        return enc

    def _entry(self, i: int, fr: Any, data: bytes) -> dict[str, Any]:
        """The frame's line of the manifest; its file written when frames are."""
        name = f"frame_{i:06d}.jpg"
        entry = {"file": name, "timestamp": round(fr.timestamp, 6), "index": fr.index}
        if self.frame_dir is not None and self.out_dir is not None:
            path = self.frame_dir / name
            atomic_write(path, data)
            self.fs.files.append(path)
            entry["file"] = path.relative_to(self.out_dir.resolve()).as_posix()
        return entry


def _frames_kept(duration: float, settings: Settings) -> int:
    """Frames a request needs, so repeated ones stay when fewer would be left: frames.min,
    and enough to cover the video at param.fps.min (a video sparser than that keeps its
    repeats: issue 22 item 16)."""
    limits = settings.limits
    lowest = limits.value("param.fps.min") or 0.0
    return max(limits.value("frames.min") or 1, math.ceil(round(duration * lowest, 9)))


def frames_for_command(src: Resource, info: MediaInfo, settings: Settings,
                       out_dir: Path) -> tuple[FrameSet | None, Finding | None]:
    """The ``frames`` command's frames, by prep's rules: the fps raise of
    :func:`extract_frame_set` and the ``frames.min`` floor. A clip prep refuses for too few
    frames gets none: returns (None, the finding that says why). A --max-frames below the
    floor is the user's choice and lowers it (the frames are not a request)."""
    short = [f for f in check_video(info, settings)
             if f.code == "video.too_short" and not f.fixable]
    if short:
        return None, short[0]
    fs = extract_frame_set(src, info, settings, out_dir, None, for_request=False)
    min_frames = min(settings.limits.value("frames.min") or 1, settings.max_frames)
    if len(fs.frames) < min_frames:
        for p in fs.files:
            p.unlink(missing_ok=True)
        return None, Finding("frames.too_few", "error",
                             f"{info.path}: only {len(fs.frames)} frames could be taken; at "
                             f"least {min_frames} are needed", min_frames, len(fs.frames))
    return fs, None


def over_token_cap(result: Prepared, settings: Settings) -> bool:
    cap = settings.limits.value("tokens.max_request")
    est = (result.tokens or {}).get("estimate")
    return cap is not None and est is not None and est > cap


def _shown_size(info: MediaInfo) -> tuple[int, int]:
    """The size the video is shown at (1x1 when unknown)."""
    return info.display_size or (info.width or 1, info.height or 1)


def _fit_tokens_frames(info: MediaInfo, settings: Settings, result: Prepared) -> Settings:
    """--max-tokens for frames taken from a video: smaller frames first, then fewer frames
    (mediaprep.tokens.fit_video), as settings for extract_frame_set."""
    cap = settings.limits.value("tokens.max_request")
    w, h = _shown_size(info)
    s = min(1.0, settings.frame_max_side / max(w, h))
    w, h = max(1, int(w * s)), max(1, int(h * s))
    dur = info.duration or 0.0
    n = min(settings.max_frames, max(1, math.ceil(round(dur * settings.fps, 9))))
    est = settings.estimator
    if cap is None or est is None or est.video(n, w, h) <= cap:
        return settings
    fit = est.fit_video(n, w, h, cap, min_frames=settings.limits.value("frames.min") or 1)
    if fit is None:
        return settings  # cannot fit: the check finding stays and says so
    n2, fw, fh = fit
    fw, fh = _extracted_size(w, h, max(fw, fh), lambda fw, fh: est.video(n2, fw, fh) <= cap)
    result.changes.append(Change("sampled", f"{n} frames of {w}x{h}", f"{n2} of {fw}x{fh}",
                                 f"--max-tokens {cap:,}: about {est.video(n2, fw, fh):,} "
                                 "tokens, estimate"))
    return settings.replace(frame_max_side=max(fw, fh), max_frames=n2)


def _extracted_size(w: int, h: int, side: int,
                    fits: Callable[[int, int], bool]) -> tuple[int, int]:
    """The size frames of ``w`` x ``h`` come out at with ``frame_max_side=side``, as the frame
    extractor rounds it, lowering ``side`` until that size ``fits`` (the fit's floor can sit
    on a patch boundary that the extractor's rounding crosses)."""
    while True:
        s = min(1.0, side / max(w, h))
        size = max(1, round(w * s)), max(1, round(h * s))
        if side <= 1 or fits(*size):
            return size
        side -= 1


def _fit_tokens_file(info: MediaInfo, settings: Settings, result: Prepared) -> Settings:
    """--max-tokens for a video sent as a file: the server samples at the part's fps, so
    lower the fps (fewer frames; the frame size is the file's)."""
    cap = settings.limits.value("tokens.max_request")
    w, h = _shown_size(info)
    dur = info.duration or 0.0
    est = settings.estimator
    if est is None or est.rule.video_sample_fps is not None:
        return settings  # the server samples at its own rate: the part's fps changes nothing
    chunk = est.chunk(w, h)
    keep = (cap // chunk) * est.cfg.temporal_merge_kernel_size if cap else 0
    fps_min = settings.limits.value("param.fps.min") or 0.0
    if keep < 1 or dur <= 0 or keep / dur < fps_min:
        return settings
    fps = min(settings.fps, math.floor(keep / dur * 1000) / 1000)
    n = est.file_frames(dur, fps, settings.max_frames, info.fps)
    result.changes.append(Change("sampled", f"fps {settings.fps:g}", f"fps {fps:g}",
                                 f"--max-tokens {cap:,}: {n} frames, about "
                                 f"{est.video(n, w, h):,} tokens, estimate"))
    result.tokens = est.to_json(est.video(n, w, h))
    return settings.replace(fps=fps)


def frames_fps_problem(info: MediaInfo, settings: Settings) -> Finding | None:
    """param.fps (error) when a video sent as frames could not be: the frames one request
    holds (``max_frames``, the media items a request takes) spread over its duration come at
    less than ``param.fps.min``, and the part's fps would then be out of the target's range
    (a 3-hour video: 250 frames at 0.023 fps). The finding says how long a video can be."""
    limits = settings.limits
    lo = limits.value("param.fps.min")
    dur = info.duration or 0.0
    if lo is None or dur <= 0 or settings.fps <= 0:
        return None
    wanted = min(settings.max_frames, max_fps_frames(dur, settings.fps))
    cap = min(wanted, frame_budget(wanted, settings)[0])
    if max_fps_frames(dur, lo) <= cap:
        return None
    why = "max_frames" if cap == settings.max_frames else "the media items one request takes"
    longest = cap / lo
    return Finding("param.fps", "error",
                   f"{info.path}: {dur:,.0f} s as frames would be {cap} frames at "
                   f"{cap / dur:.3g} fps, below the lowest fps {lo:g} (param.fps.min): at most "
                   f"{cap} frames can be sent ({why}), which covers at most {longest:,.0f} s; "
                   f"cut the video to {longest:,.0f} s or less",
                   [lo, limits.value("param.fps.max")], round(cap / dur, 6))


def prepare_frames_from_video(src: Resource, info: MediaInfo, settings: Settings, sink: Sink,
                              result: Prepared, why: str | None = None) -> Prepared:
    if over_token_cap(result, settings):
        settings = _fit_tokens_frames(info, settings, result)
    sparse = frames_fps_problem(info, settings)
    if sparse is not None:
        if sparse.message not in {f.message for f in result.findings}:
            result.findings.append(sparse)
        return result
    try:
        fs = extract_frame_set(src, info, settings, sink.out_dir, sink.stem,
                               keep_previews=sink.keep_preview)
    except (FrameExtractionError, BudgetError, OSError, ValueError) as exc:
        result.findings.append(Finding("file.unreadable", "error",
                                       f"{src.name}: cannot take frames: {exc}"))
        return result
    return _finish_frames(fs, settings, sink, result, why)


def _finish_frames(fs: FrameSet, settings: Settings, sink: Sink, result: Prepared,
                   why: str | None = None) -> Prepared:
    n = len(fs.frames)
    min_frames = settings.limits.value("frames.min") or 1
    fps_note = _fps_finding(fs, result.path)
    if fps_note is not None:
        result.findings.append(fps_note)
    if n < min_frames:
        result.findings.append(Finding("frames.too_few", "error",
                                       f"{result.path}: only {n} frames could be taken; at "
                                       f"least {min_frames} are needed", min_frames, n))
        _remove(fs.files)
        return result
    _fill_frames(fs, settings, sink, result, why)
    if _over_tokens_after_fit(fs, settings, result):  # nothing fits: even 4 frames at the floor
        _remove(fs.files)
        return result
    # The frames stand in for the video: findings about the file no longer block it. They keep
    # their severity, as an image's do once fixed: they describe the input (a fixed input is
    # counted by them), and ``ok`` says the output is good.
    result.findings = [f if f.severity != "error" else _resolved(f) for f in result.findings
                       if f.code != "tokens.context"]  # that was the server's sampling of a file
    result.ok = True
    if sink.out_dir is not None and sink.stem is not None:
        manifest = frames_manifest(result.path, fs)
        atomic_write(inside(sink.out_dir, sink.stem) / "frames.json",
                     json.dumps(manifest, indent=2).encode())
    return result


def _fps_finding(fs: FrameSet, path: str) -> Finding | None:
    """param.fps (info) when the frames were taken at another fps than asked: the API samples
    at the fps it is told, so say so."""
    if fs.fps == fs.requested_fps or math.isclose(fs.fps, fs.requested_fps):
        return None
    return Finding("param.fps", "info",
                   f"{path}: frames taken at {fs.fps:.4g} fps, not the {fs.requested_fps:g} "
                   f"asked ({_fps_reason(fs)})", fs.requested_fps, round(fs.fps, 6),
                   fixable=True)


def _fps_reason(fs: FrameSet) -> str:
    """Why the fps changed: the note that says so, else the direction it went."""
    for note in fs.notes:
        if any(w in note for w in ("raised", "capped", "lowered")):
            return note
    if fs.fps > fs.requested_fps:
        return "raised to give enough frames"
    return "lowered by the max_frames cap"


def _remove(files: list[Path]) -> None:
    for p in files:
        p.unlink(missing_ok=True)


def _fill_frames(fs: FrameSet, settings: Settings, sink: Sink, result: Prepared,
                 why: str | None) -> None:
    """``result`` as the frames ``fs``: their part, timing, outputs and the change made."""
    n = len(fs.frames)
    if settings.transport != "base64":
        fs.urls = [url_for_file(sink, p, None, settings) for p in fs.files]
    result.part = frames_part(fs.urls, round(fs.fps, 6), settings.dialect)
    result.fps = round(fs.fps, 6)
    result.timestamps = [f["timestamp"] for f in fs.frames]
    result.outputs = list(fs.files)
    result.previews = fs.previews if fs.files else {}
    result.bytes_out = fs.bytes_out
    result.changes.append(Change("sent as frames", f"a {fs.duration:.2f} s video",
                                 f"{n} frames at {fs.fps:.4g} fps",
                                 "; ".join(x for x in (why, *fs.notes) if x) or None))


def _over_tokens_after_fit(fs: FrameSet, settings: Settings, result: Prepared) -> bool:
    """The frames' token estimate (on ``result``); True, with the finding, when even the
    fitted frames are above --max-tokens."""
    est = settings.estimator
    if fs.size is None or est is None:
        return False
    result.tokens = est.to_json(est.video(len(fs.frames), *fs.size))
    if not over_token_cap(result, settings):
        return False
    cap = settings.limits.value("tokens.max_request")
    result.findings.append(Finding(
        "tokens.request_too_many", "error", f"{result.path}: about "
        f"{result.tokens['estimate']:,} tokens (estimate) even after fitting, above "
        f"--max-tokens {cap:,}", cap, result.tokens["estimate"]))
    return True


def _resolved(f: Finding) -> Finding:
    return Finding(f.code, f.severity, f.message + " (resolved: sent as frames)", f.limit,
                   f.actual, fixable=True)


def frames_manifest(video: str, fs: FrameSet) -> dict[str, Any]:
    return {"video": video, "fps": round(fs.fps, 6), "requested_fps": fs.requested_fps,
            "duration": round(fs.duration, 6), "rotation": fs.rotation,
            "frames": [{"file": Path(f["file"]).name, "timestamp": f["timestamp"],
                        "index": f["index"]} for f in fs.frames]}


prepare = prepare_video  # the kind protocol's name (mediaprep.kinds.KINDS)
