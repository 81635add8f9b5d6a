"""The video kind: check a video file's limits and prepare it (pass, remux, transcode or
frames).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
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
from ..limits import VIDEO_REQUEST_OVERHEAD, Limits, limits_for
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
    limits = settings.limits
    name = info.path
    out: list[Finding] = []
    fmt = info.format or "unknown"

    row = limits.get("video.formats")
    if row is not None and fmt not in row.value:
        out.append(finding(row, f"{name}: {fmt} videos are not accepted by {settings.target} "
                                f"(accepted: {', '.join(sorted(row.value))}); prep remuxes or "
                                "transcodes it to mp4", fmt, fixable=True,
                           limit=sorted(row.value)))

    dur = info.duration
    files_only = settings.video_mode == "file" or not settings.target.frame_lists
    fps_max = limits.value("param.fps.max", 10.0)
    min_frames = limits.value("frames.min", 1) or 1
    if dur is not None:
        row = limits.get("video.min_duration")
        if row is not None and row.value is not None and row.below_min(round(dur, 6)):
            can_frames = not files_only and max_fps_frames(dur, fps_max) >= min_frames
            how = ("prep sends it as frames" if can_frames
                   else f"too short even for {min_frames} frames at {fps_max:g} fps")
            out.append(finding(row, f"{name}: {dur:.3f} s is shorter than {row.value:g} s; "
                                    f"{how}", round(dur, 3), fixable=can_frames))
        row = limits.get("video.max_duration")
        too_long = row is not None and row.value is not None and row.exceeds_max(round(dur, 6))
        sparse = frames_fps_problem(info, settings) if settings.target.frame_lists else None
        if too_long:
            frames_ok = not files_only and sparse is None
            how = ("prep sends it as frames (within max_frames)" if frames_ok
                   else "cut it, or use --video-mode frames" if sparse is None
                   else "too long to send as frames too")
            out.append(finding(row, f"{name}: {dur:.1f} s is longer than {row.value:g} s; {how}",
                               round(dur, 3), fixable=frames_ok))
        if sparse is not None and (too_long or settings.video_mode == "frames"):
            out.append(sparse)  # what prep would send: frames, and they cannot fit

    row = limits.get("video.recommended_box")
    if row is not None and row.value is not None and info.width and info.height:
        if not in_box(info.width, info.height, row.value):
            bw, bh = row.value
            out.append(finding(row, f"{name}: {info.width}x{info.height} is above the "
                                    f"recommended {bw}x{bh}; prep scales it down",
                               [info.width, info.height], fixable=True, limit=[bw, bh]))

    sar = info.sample_aspect_ratio
    if sar and (sar > MAX_SAR or sar < 1 / MAX_SAR) and info.width and info.height:
        shown = (round(info.width * sar), info.height)
        out.append(Finding("video.resolution", "error",
                           f"{name}: sample aspect ratio {_ratio(sar)} would show the "
                           f"{info.width}x{info.height} frames as {shown[0]:,}x{shown[1]:,}; "
                           "no picture of that shape can be sent (limit "
                           f"1:{MAX_SAR:g} to {MAX_SAR:g}:1)", [1 / MAX_SAR, MAX_SAR], sar))

    if not files_only:
        out += check_item_bytes("video", name, info.bytes, mime_for(fmt), settings,
                                "prep transcodes it smaller or sends frames")
    else:
        out += _file_size_findings(info, settings)

    if info.hdr and settings.hdr == "convert":
        out.append(Finding("video.hdr", "info",
                           f"{name}: HDR ({info.colour}); a decoder that does not tone-map "
                           "shows it washed out: prep transcodes it to SDR BT.709 (--hdr keep "
                           "sends it as it is)", actual=info.colour, fixable=True))
    if info.has_audio:
        row = limits.get("video.audio")
        if row is not None:
            out.append(finding(row, f"{name}: the audio track is ignored by the model; prep "
                                    "drops it when it transcodes", True, fixable=True,
                               limit="ignored"))
    return out



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
    limits = settings.limits
    dur = info.duration or 0.0
    min_d, max_d = limits.value("video.min_duration"), limits.value("video.max_duration")
    mode = settings.video_mode
    too_short = min_d is not None and dur < min_d
    too_long = max_d is not None and dur > max_d
    if not settings.target.frame_lists:  # a file or nothing: the check findings say why
        if not (too_short or too_long):
            if over_token_cap(result, settings):
                settings = _fit_tokens_file(info, settings, result)
            _try_file(src, info, report, settings, sink, result)
        return result
    if over_token_cap(result, settings):
        if mode == "file" and not (too_short or too_long):
            settings = _fit_tokens_file(info, settings, result)
        else:
            why = "to fit --max-tokens" if mode == "auto" else "--video-mode frames"
            return prepare_frames_from_video(src, info, settings, sink, result, why)
    if mode == "auto":
        if too_short:
            return prepare_frames_from_video(
                src, info, settings, sink, result,
                f"{dur:.2f} s is shorter than the {min_d:g} s a video file needs")
        if too_long:
            return prepare_frames_from_video(
                src, info, settings, sink, result,
                f"{dur:.0f} s is longer than the {max_d:g} s a video file may last")
        done = _try_file(src, info, report, settings, sink, result)
        if done:
            return result
        result.findings = [f for f in result.findings if f.code != "file.unreadable"] or list(
            report.findings)
        return prepare_frames_from_video(src, info, settings, sink, result,
                                         "the file could not be made to fit")
    if mode == "frames":
        return prepare_frames_from_video(src, info, settings, sink, result,
                                         "--video-mode frames")
    if too_short or too_long:
        return result  # the check findings already say why a file cannot go
    _try_file(src, info, report, settings, sink, result)
    return result


def _try_file(src: Resource, info: MediaInfo, report: Report, settings: Settings, sink: Sink,
              result: Prepared) -> bool:
    """Pass through, remux or transcode; True when ``result`` is now a sendable file."""
    # PyAV's encoders read a path: bytes in memory get a temp copy, removed afterwards
    with src.as_path("." + (info.format or "bin")) as in_path:
        return _try_file_at(in_path, src, info, report, settings, sink, result)


def _try_file_at(in_path: Path, src: Resource, info: MediaInfo, report: Report,
                 settings: Settings, sink: Sink, result: Prepared) -> bool:
    workdir = None
    try:
        if sink.out_dir is None:
            workdir = Path(tempfile.mkdtemp(prefix="mediaprep-"))
            work_sink = Sink(workdir, sink.stem)
        else:
            work_sink = sink
        # (token findings are met by the part's fps, not by changing the file)
        codes = {f.code for f in report.findings if f.severity in ("error", "warning")
                 and not f.code.startswith("tokens.")}
        if info.hdr and settings.hdr == "convert":
            codes.add("video.hdr")  # copied or remuxed it would stay HDR
        budget, counts_data_url = _file_budget(settings)
        size_of = data_url_sizer(mime_for("mp4")) if counts_data_url else identity_size
        out_path: Path | None = None
        out_info: MediaInfo | None = None  # the output as probe describes it, from verify
        dropped = 0  # input frames the output lacks: never silently
        lie = _header_lie(info)
        tracks = info.video_streams or 1
        if not codes and lie is None and tracks == 1:
            out_path = work_sink.path_for(src.name, info.format or "mp4")
            _atomic_copy(in_path, out_path)
        elif codes <= {"file.unsupported_format"}:
            out_path = work_sink.path_for(src.name, "mp4")
            try:
                vo = remux(in_path, out_path, container="mp4", scan=info.scan)
                out_info = vo.info
                dropped = vo.dropped
                if budget is not None and size_of(out_path.stat().st_size) > budget:
                    out_path.unlink()
                    out_path, out_info = None, None
                else:
                    why = ("not a container the target takes" if codes
                           else f"so the header tells the truth: {lie}" if lie
                           else f"{tracks} video tracks: only the main one is sent (a "
                                "provider may show another, such as a motion photo's still)")
                    copied = "video copied" + (", audio dropped" if info.has_audio else "")
                    result.changes.append(Change("remuxed", (info.format or "?").upper(),
                                                 "MP4", f"{why}; {copied}"))
            except (RemuxNotPossible, VideoEncodeError, OSError) as exc:
                log.info("%s: remux failed, transcoding instead: %s", src.name, exc)
                out_path, out_info = None, None
        if out_path is None:
            out_path = work_sink.path_for(src.name, "mp4")
            box = settings.limits.value("video.recommended_box")
            try:
                vo = transcode_to_fit(in_path, out_path, max_bytes=budget or (1 << 62),
                                      size_of=size_of, margin=settings.safety_margin,
                                      max_box=box, scan=info.scan)
            except DoesNotFit as exc:
                log.info("%s: transcode cannot fit %s bytes: %s", src.name, budget, exc)
                result.findings.append(Finding(
                    "base64.too_large" if counts_data_url else "file.too_large", "error",
                    f"{src.name}: cannot be transcoded within {budget:,} bytes ({exc})",
                    budget, None))
                return False
            except (VideoEncodeError, OSError, ValueError) as exc:
                log.warning("%s: transcode failed: %s", src.name, exc)
                result.findings.append(Finding("file.unreadable", "error",
                                               f"{src.name}: transcoding failed: {exc}"))
                return False
            why = _transcode_reason(codes, settings)
            if info.hdr and "HDR" not in why:  # a transcode is 8-bit SDR whatever its reason
                why += "; HDR tone-mapped to SDR BT.709"
            result.changes.append(Change(
                "transcoded", f"{(info.format or '?').upper()} {info.width}x{info.height}",
                f"H.264 MP4 {vo.width}x{vo.height}, {vo.bytes:,} bytes",
                why + ("; audio dropped" if info.has_audio else "")))
            result.stats["attempts"] = vo.attempts
            out_info = vo.info
            dropped = vo.dropped
        if out_info is None:  # passed through: the copy is probed as any input
            out_info = probe(Resource(name=str(out_path), path=out_path))
        else:  # remuxed or transcoded: verify's description, named as probe names it
            out_info.path = str(out_path)
            out_info.extension = out_path.suffix[1:].lower() or None
            out_info.extension_matches = extension_matches(out_info.extension, out_info.format)
        recheck = check(out_info, settings.replace(video_mode="file"))
        problems = [f for f in recheck.findings if f.severity == "error"]
        if problems:
            out_path.unlink(missing_ok=True)
            result.findings += problems
            return False
        if dropped:
            result.findings.append(Finding(
                "video.frames_dropped", "warning",
                f"{src.name}: {dropped} of its {info.frame_count or '?'} frames repeat an "
                "earlier frame's timestamp and are not in the output", None, dropped))
        url = _file_part_url(work_sink, out_path, settings)
        max_frames = settings.max_frames if settings.max_frames_set else None
        result.part = video_file_part(url, settings.fps, settings.dialect, max_frames)
        result.fps = settings.fps
        result.output_info = out_info
        result.bytes_out = out_path.stat().st_size
        result.outputs = [out_path] if sink.out_dir is not None else []
        result.mime = mime_for(out_info.format)
        if info.first_frame is not None and "transcoded" not in result.changes:
            result.previews[0] = info.first_frame  # the same pictures: copied or remuxed
        result.ok = True
        return True
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


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
    limits = settings.limits
    cap = n
    key = "request.max_data_urls" if settings.transport == "base64" else "request.max_media_urls"
    row = limits.get(key)
    if row is not None and row.value is not None:
        cap = min(cap, row.value - 1 if row.strict else row.value)
    fmax = limits.value("frames.max")
    if fmax is not None:
        cap = min(cap, fmax)
    per_item = limits.value("image.max_data_url_bytes") if settings.transport == "base64" \
        else limits.value(f"image.max_bytes.{settings.transport}")
    per_item = per_item or (10 << 20)
    body = limits.value("request.max_body_bytes")
    if body is not None and cap > 0 and settings.transport != "upload":  # upload: references
        per_item = min(per_item, (body - VIDEO_REQUEST_OVERHEAD) // cap)
    return cap, per_item


def extract_frame_set(src: Resource, info: MediaInfo, settings: Settings, out_dir: Path | None,
                      stem: Path | None, *, for_request: bool = True,
                      keep_previews: bool = False) -> FrameSet:
    """Take frames at the asked fps (raised for short clips), capped, encoded within budget.

    Frames stream from the decoder one at a time; each is encoded and written (or turned into
    a data URL) before the next is decoded. ``keep_previews``: keep the previews of the frames
    a contact sheet shows (:func:`~mediaprep.backends.pillow.preview_sample` of those planned),
    made from the pixels encoded.
    """
    limits = settings.limits
    fps = settings.fps
    duration = info.duration or 0.0
    notes: list[str] = []
    if info.fps and (limits.value("param.fps.min") or 0) <= info.fps < fps:
        # the processor samples at min(fps, the video's own): faster only repeats frames (a
        # video sparser than the fps range keeps the range's rules: issue 22 item 16)
        notes.append(f"fps lowered from {fps:g} to the video's own {info.fps:.4g}")
        fps = info.fps
    min_frames = limits.value("frames.min") or 1
    fps_max = limits.value("param.fps.max") or fps
    if duration > 0 and math.ceil(round(duration * fps, 9)) < min_frames:
        needed = min_frames / duration
        if needed <= fps_max:
            notes.append(f"fps raised from {fps:g} to {needed:.3g} so the {duration:.2f} s clip "
                         f"gives {min_frames} frames")
            fps = needed
        else:
            fps = fps_max
    max_frames = settings.max_frames
    per_item: int | None = None
    if for_request:
        wanted = min(max_frames, max(1, math.ceil(round(duration * fps, 9))))
        cap, per_item = frame_budget(wanted, settings)
        if cap < wanted:
            notes.append(f"frames capped at {cap} (at most {cap} media items per request)")
            max_frames = min(max_frames, cap)
    source_arg: Any = str(src.path) if src.path is not None else src.open()
    # the probe's packet scan (when it covered the whole stream): one rule for the duration
    # and the timeline, and the input is opened once more only, to decode
    plan, frames, meta = extract_frames(source_arg, fps=fps, max_frames=max_frames,
                                        max_side=settings.frame_max_side, scan=info.scan)
    fs = FrameSet(fps=plan.fps, requested_fps=settings.fps, duration=plan.duration,
                  rotation=int(meta.get("rotation", 0)), notes=notes)
    frame_dir = None
    if out_dir is not None:
        frame_dir = inside(out_dir, stem) if stem is not None else out_dir.resolve()
        frame_dir.mkdir(parents=True, exist_ok=True)
    mime = mime_for(FRAME_FORMAT)
    lowered = False
    sampled = set(preview_sample(len(plan.timestamps))) if keep_previews else set()
    for i, fr in enumerate(frames):
        budget = per_item if per_item is not None else 1 << 62
        try:
            enc = encode_to_budget(fr.image, format=FRAME_FORMAT, max_bytes=budget,
                                   size_of=data_url_sizer(mime)
                                   if settings.transport == "base64" else identity_size,
                                   margin=settings.safety_margin, max_quality=FRAME_QUALITY)
            if i in sampled and enc.image is not None:
                if (small := preview_or_none(enc.image)) is not None:
                    fs.previews[i] = small
        finally:
            fr.image.close()
        lowered = lowered or any("scale" in s or "q=" in s for s in enc.steps[1:])
        fs.size = (enc.width, enc.height)
        name = f"frame_{i:06d}.jpg"
        entry = {"file": name, "timestamp": round(fr.timestamp, 6), "index": fr.index}
        if frame_dir is not None:
            path = frame_dir / name
            atomic_write(path, enc.data)
            fs.files.append(path)
            entry["file"] = path.relative_to(out_dir.resolve()).as_posix()
        fs.frames.append(entry)
        fs.bytes_out += len(enc.data)
        if for_request:
            fs.urls.append(data_url(enc.data, mime) if settings.transport == "base64" else "")
    if lowered:
        fs.notes.append("frame quality or size lowered to fit the request")
    return fs


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


def _fit_tokens_frames(info: MediaInfo, settings: Settings, result: Prepared) -> Settings:
    """--max-tokens for frames taken from a video: smaller frames first, then fewer frames
    (mediaprep.tokens.fit_video), as settings for extract_frame_set."""
    cap = settings.limits.value("tokens.max_request")
    w, h = info.display_size or (info.width or 1, info.height or 1)
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
    result.changes.append(Change("sampled", f"{n} frames of {w}x{h}", f"{n2} of {fw}x{fh}",
                                 f"--max-tokens {cap:,}: about {est.video(n2, fw, fh):,} "
                                 "tokens, estimate"))
    return settings.replace(frame_max_side=max(fw, fh), max_frames=n2)


def _fit_tokens_file(info: MediaInfo, settings: Settings, result: Prepared) -> Settings:
    """--max-tokens for a video sent as a file: the server samples at the part's fps, so
    lower the fps (fewer frames; the frame size is the file's)."""
    cap = settings.limits.value("tokens.max_request")
    w, h = info.display_size or (info.width or 1, info.height or 1)
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
    limits = settings.limits
    n = len(fs.frames)
    min_frames = limits.value("frames.min") or 1
    if fs.fps != fs.requested_fps and not math.isclose(fs.fps, fs.requested_fps):
        # the API samples at the fps it is told: say so when it is not what the user asked
        reason = next((x for x in fs.notes if any(w in x for w in ("raised", "capped",
                                                                    "lowered"))),
                      "raised to give enough frames" if fs.fps > fs.requested_fps
                      else "lowered by the max_frames cap")
        result.findings.append(Finding("param.fps", "info",
                                       f"{result.path}: frames taken at {fs.fps:.4g} fps, not "
                                       f"the {fs.requested_fps:g} asked ({reason})",
                                       fs.requested_fps, round(fs.fps, 6), fixable=True))
    if n < min_frames:
        result.findings.append(Finding("frames.too_few", "error",
                                       f"{result.path}: only {n} frames could be taken; at "
                                       f"least {min_frames} are needed", min_frames, n))
        for p in fs.files:
            p.unlink(missing_ok=True)
        return result
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
    est = settings.estimator
    if fs.size is not None and est is not None:
        result.tokens = est.to_json(est.video(n, *fs.size))
        if over_token_cap(result, settings):  # nothing fits: even 4 frames at the floor
            cap = settings.limits.value("tokens.max_request")
            result.findings.append(Finding(
                "tokens.request_too_many", "error", f"{result.path}: about "
                f"{result.tokens['estimate']:,} tokens (estimate) even after fitting, above "
                f"--max-tokens {cap:,}", cap, result.tokens["estimate"]))
            for p in fs.files:
                p.unlink(missing_ok=True)
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


def _resolved(f: Finding) -> Finding:
    return Finding(f.code, f.severity, f.message + " (resolved: sent as frames)", f.limit,
                   f.actual, fixable=True)


def frames_manifest(video: str, fs: FrameSet) -> dict[str, Any]:
    return {"video": video, "fps": round(fs.fps, 6), "requested_fps": fs.requested_fps,
            "duration": round(fs.duration, 6), "rotation": fs.rotation,
            "frames": [{"file": Path(f["file"]).name, "timestamp": f["timestamp"],
                        "index": f["index"]} for f in fs.frames]}


prepare = prepare_video  # the kind protocol's name (mediaprep.kinds.KINDS)
