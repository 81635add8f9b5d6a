"""Probe a video from its container: codec, size, duration, frame rate, rotation, audio.

The stream is demuxed (packets read, not decoded) to learn the real span, the frame count and
whether the frame rate varies: container headers lie (fragmented MP4s declaring an hour for eight
seconds of samples, files cut short). Only the first frame is decoded, to read the display
rotation and prove the stream decodes. The demux stops after a byte and time budget, so a huge
or endless input costs a bounded amount of work.
"""

from __future__ import annotations

import time
from fractions import Fraction

import av

from ..info import MediaInfo
from ..sources import Source
from .sniff import Sniffed

# Demux at most this much before trusting the header instead (why: a 2 GB file would take
# seconds to read; the header is right for ordinary complete files).
SCAN_MAX_BYTES = 512 * 1024 * 1024
SCAN_MAX_SECONDS = 5.0
SCAN_MAX_PACKETS = 400_000
# A frame interval differing from the median by more than this counts as irregular; more than
# VFR_SHARE of irregular intervals means the rate varies (occasional gaps do not).
VFR_TOLERANCE = 0.10
VFR_SHARE = 0.10

_CONTAINERS = {"avi": "avi", "flv": "flv", "asf": "wmv", "mpeg": "mpeg", "mpegvideo": "mpeg",
               "mpegts": "ts", "matroska,webm": "mkv", "mov,mp4,m4a,3gp,3g2,mj2": "mp4"}


def probe_video(src: Source, sniffed: Sniffed) -> MediaInfo:
    info = MediaInfo(path=src.name, kind="video", format=sniffed.format, bytes=src.size)
    try:
        container = av.open(str(src.path) if src.path else src.open(), mode="r",
                            metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        info.error_code = "file.unreadable"
        info.error = f"cannot open the container: {_short(exc)}"
        return info
    try:
        with container:
            _read(container, info, sniffed)
    except (av.FFmpegError, OSError, ValueError, RuntimeError, ZeroDivisionError,
            OverflowError) as exc:
        info.error_code = info.error_code or "file.unreadable"
        info.error = info.error or f"cannot read the video: {_short(exc)}"
    return info


def _short(exc: BaseException) -> str:
    # FFmpeg's errors read "[Errno 1094995529] Invalid data found ...: 'path'": the reason alone
    # says it (the finding names the file already).
    text = getattr(exc, "strerror", None) or str(exc)
    return text if len(text) < 200 else text[:200] + "..."


def _read(container: av.container.InputContainer, info: MediaInfo, sniffed: Sniffed) -> None:
    info.container = container.format.name
    if info.format is None:
        info.format = _CONTAINERS.get(container.format.name, container.format.name)
    info.has_audio = bool(container.streams.audio)
    if container.duration is not None and container.duration > 0:
        info.declared_duration = container.duration / av.time_base
    if not container.streams.video:
        if container.streams.audio:
            info.kind = "other"
            info.error_code = "video.no_video_stream"
            info.error = "the file holds audio only, no video stream"
        else:
            info.kind = "other"
            info.error_code = "file.unreadable"
            info.error = "the container holds no audio or video stream (truncated or empty)"
        return
    vs = container.streams.video[0]
    cc = vs.codec_context
    if cc is None:  # FFmpeg found no decoder it could open (unknown codec, absurd header)
        info.error_code = "file.unreadable"
        info.error = "the video stream's codec cannot be opened (unknown or corrupt header)"
        return
    info.codec = cc.name
    info.width, info.height = cc.width or None, cc.height or None
    info.pix_fmt = cc.pix_fmt
    sar = vs.sample_aspect_ratio or cc.sample_aspect_ratio
    if sar and sar.numerator > 0 and sar != 1:
        info.sample_aspect_ratio = float(sar)
    tb = vs.time_base or Fraction(1, av.time_base)
    if vs.duration:
        info.declared_duration = float(vs.duration * tb)
    if vs.average_rate:
        info.fps = float(vs.average_rate)
    _scan_packets(container, vs, info, tb)
    _first_frame(container, vs, info)


def _scan_packets(container, vs, info: MediaInfo, tb: Fraction) -> None:
    if info.bytes > SCAN_MAX_BYTES:
        info.duration = info.declared_duration
        info.notes.append("large file: duration from the header, packets not scanned")
        return
    stamps: list[int] = []
    last_dur = 0
    deadline = time.monotonic() + SCAN_MAX_SECONDS
    complete = True
    try:
        for pkt in container.demux(vs):
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            if ts is None:
                continue
            stamps.append(ts)
            last_dur = max(last_dur, pkt.duration or 0)
            if len(stamps) >= SCAN_MAX_PACKETS or (len(stamps) % 512 == 0
                                                   and time.monotonic() > deadline):
                complete = False
                break
    except av.FFmpegError:
        info.notes.append("demux stopped at a damaged packet")
    info.frame_count = len(stamps) if complete else None
    if not stamps:
        info.error_code = "file.unreadable"
        info.error = "the video stream holds no frames"
        return
    stamps.sort()
    start = stamps[0]
    info.start_time = float(start * tb) if vs.start_time is None else float(vs.start_time * tb)
    intervals = [b - a for a, b in zip(stamps, stamps[1:], strict=False) if b > a]
    if not last_dur and intervals:
        last_dur = sorted(intervals)[len(intervals) // 2]
    span = float((stamps[-1] - start + last_dur) * tb)
    if complete:
        declared = info.declared_duration
        # Close to the packets, the header is the finer word (edit lists trim samples the
        # packets still carry); far from them, the header lies (cut short, bogus fragments).
        # (a container-level duration also covers audio, so it is not the finer word then)
        container_level = not vs.duration and bool(info.has_audio)
        if declared and not container_level and abs(declared - span) <= max(1.0, 0.1 * span):
            info.duration = declared
        else:
            info.duration = span
            if declared and abs(declared - span) > max(1.0, 0.1 * span):
                info.notes.append(f"header declares {declared:.3f} s but the stream holds "
                                  f"{span:.3f} s (cut short or mis-declared)")
    else:
        info.duration = max(span, info.declared_duration or 0.0)
        info.notes.append("packet scan stopped early; duration from the header")
    if len(intervals) >= 3:
        med = sorted(intervals)[len(intervals) // 2]
        irregular = sum(1 for d in intervals if abs(d - med) > VFR_TOLERANCE * med)
        info.fps_varies = irregular / len(intervals) > VFR_SHARE
        if info.duration and info.frame_count:
            info.fps = info.frame_count / info.duration


def _first_frame(container, vs, info: MediaInfo) -> None:
    if info.error_code:
        return
    try:
        container.seek(0, stream=vs) if vs.start_time is not None else container.seek(0)
    except av.FFmpegError:
        pass
    try:
        for frame in container.decode(vs):
            info.rotation = int(getattr(frame, "rotation", 0) or 0) % 360
            if not info.width:
                info.width, info.height = frame.width, frame.height
            return
    except av.FFmpegError as exc:
        info.error_code = "file.unreadable"
        info.error = f"the video stream does not decode ({info.codec}): {_short(exc)}"
        return
    info.error_code = "file.unreadable"
    info.error = "no frame of the video stream decodes"
