"""Limits that apply to one video file."""

from __future__ import annotations

import math
from fractions import Fraction

from ..findings import Finding
from ..info import MediaInfo
from ..settings import Settings
from .common import check_item_bytes, finding, in_box, mime_for

# A sample aspect ratio (pixel shape) beyond this either way makes the display size absurd: real
# anamorphic video stays within about 4:1 (e.g. 1440x1080 shown as 1920x1080 is 4:3).
MAX_SAR = 16.0


def max_fps_frames(duration: float, fps: float) -> int:
    """Frames taken at ``fps`` over ``duration`` s: t = 0, 1/fps, ... while t < duration."""
    return max(1, math.ceil(duration * fps - 1e-9)) if duration > 0 else 0


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
    fps_max = limits.value("param.fps.max", 10.0)
    min_frames = limits.value("frames.min", 1) or 1
    if dur is not None:
        row = limits.get("video.min_duration")
        if row is not None and row.value is not None and row.below_min(round(dur, 6)):
            can_frames = max_fps_frames(dur, fps_max) >= min_frames
            how = ("prep sends it as frames" if can_frames
                   else f"too short even for {min_frames} frames at {fps_max:g} fps")
            out.append(finding(row, f"{name}: {dur:.3f} s is shorter than {row.value:g} s; "
                                    f"{how}", round(dur, 3), fixable=can_frames))
        row = limits.get("video.max_duration")
        if row is not None and row.value is not None and row.exceeds_max(round(dur, 6)):
            frames_ok = settings.video_mode != "file"
            how = ("prep sends it as frames (within max_frames)" if frames_ok
                   else "cut it, or use --video-mode frames")
            out.append(finding(row, f"{name}: {dur:.1f} s is longer than {row.value:g} s; {how}",
                               round(dur, 3), fixable=frames_ok))

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

    out += check_item_bytes("video", name, info.bytes, mime_for(fmt), settings,
                            "prep transcodes it smaller or sends frames")

    if info.has_audio:
        row = limits.get("video.audio")
        if row is not None:
            out.append(finding(row, f"{name}: the audio track is ignored by the model; prep "
                                    "drops it when it transcodes", True, fixable=True,
                               limit="ignored"))
    return out



def _ratio(sar: float) -> str:
    f = Fraction(sar).limit_denominator(65535)
    return f"{f.numerator}:{f.denominator}"
