"""Frame extraction by presentation time: streaming, bounded memory, decode only what is needed.

Sampling rule. At ``fps`` F the frame *on screen* at ``t = k/F`` (seconds from the video
stream's first frame) is taken for ``k = 0, 1, 2, ...`` while ``k/F < duration``. When that
count exceeds ``max_frames`` M, the M frames at ``t = k * duration / M`` are taken instead and
the rate really used, ``M / duration``, is reported. The frame on screen at ``t`` is the last
frame whose presentation time is ``<= t`` (the first frame when ``t`` precedes it), so the
rule holds for variable frame rate, edit lists and streams whose timestamps do not start at 0.

How it stays fast. The probe's one demux pass without decoding
(:func:`mediaprep.backends.av.scan_packets`, handed in as ``scan=``, else made here) lists
every packet's pts and keyframe/discard flags, and gives the stream's span by the probe's one
duration rule (container headers lie). Decoding then walks the targets in order. For each
target the exact source frame needed is known (the largest pts ``<= t``); if a keyframe lies
after the last decoded frame and at or before that frame, decoding forward would only produce
frames that are thrown away, so the demuxer seeks to that keyframe instead; otherwise it
decodes forward. Decoding uses FFmpeg's frame/slice threads. Only frames actually taken are
converted, with scaling, colour conversion and non-square pixel correction done in one swscale
call; display rotation is applied last as a lossless transpose. At most a couple of decoded
frames are held at a time (plus the decoder's own reference frames).

Robustness. Packets that fail to decode are skipped and counted; read errors end the
stream cleanly; a container whose header claims more time than its samples cover stops at
the real end. Failures surface as :class:`FrameExtractionError` subclasses, never as a raw
PyAV traceback.
"""

from __future__ import annotations

import dataclasses
import math
import os
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any

import av
import av.error
from PIL import Image

from ..errors import MediaprepError
from ..types import MediaInfo
from .av import (
    DISCARD,
    KEY,
    NO_PTS,
    TimestampMender,
    VideoScan,
    display_matrix,
    matrix_turn,
    read_video,
    take_first_frame,
    video_stream,
)
from .colour import frame_cicp, tone_map

VideoInput = str | os.PathLike[str] | IO[bytes]

__all__ = [
    "FrameExtractionError",
    "NoFrames",
    "NoVideoStream",
    "SampledFrame",
    "SamplingPlan",
    "UnreadableVideo",
    "extract_frames",
    "iter_frames",
    "plan_sampling",
    "video_timeline",
]


class FrameExtractionError(MediaprepError):
    """Base class of every error this module raises on purpose."""


class NoVideoStream(FrameExtractionError):
    """The container has no video stream (audio-only, subtitles, cover art only...)."""


class NoFrames(FrameExtractionError):
    """The video stream holds no frame that can be decoded."""


class UnreadableVideo(FrameExtractionError):
    """The container cannot be opened or read, or its video codec has no decoder."""


@dataclass
class SampledFrame:
    """One frame taken from the video.

    ``timestamp`` is the sampling time in seconds from the video stream's start (the
    ``t`` of the plan this frame answers); ``index`` is the source frame's position among
    the stream's presented frames (0-based, presentation order); ``pts`` is that source
    frame's raw presentation time in seconds, as stored in the container.
    """

    image: Image.Image
    timestamp: float
    index: int
    pts: float


@dataclass
class SamplingPlan:
    """Which times to sample: ``timestamps`` (seconds from stream start), at ``fps`` really used."""

    requested_fps: float
    fps: float
    duration: float
    timestamps: list[float]
    capped: bool
    # times left out because the frame on screen there is the one of the time before (a
    # source slower than ``fps``, a frame held long): each source frame is taken once
    repeats: int = 0



# ---------------------------------------------------------------------------------------------
# planning


def plan_sampling(duration: float, fps: float, max_frames: int) -> SamplingPlan:
    """Times at which to take frames from a video ``duration`` seconds long.

    ``t = k / fps`` for every ``k`` with ``k / fps < duration``; if that is more than
    ``max_frames`` times, ``max_frames`` evenly spaced times ``k * duration / max_frames``
    instead, and ``fps`` in the plan becomes ``max_frames / duration``.
    """
    _check_plan_args(duration, fps, max_frames)
    # count of k with k/fps < duration; rounding first keeps 2.0 s at 5 fps at 10, not 11
    n = math.ceil(round(duration * fps, 9))
    if duration > 0:
        n = max(n, 1)
    if n > max_frames:
        step = duration / max_frames
        times = [round(k * step, 9) for k in range(max_frames)]
        return SamplingPlan(fps, max_frames / duration, duration, times, True)
    return SamplingPlan(fps, fps, duration, [round(k / fps, 9) for k in range(n)], False)


def _check_plan_args(duration: float, fps: float, max_frames: int) -> None:
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if not (isinstance(max_frames, int) and max_frames >= 1):
        raise ValueError(f"max_frames must be a positive integer, got {max_frames!r}")
    if not (math.isfinite(duration) and duration >= 0):
        raise ValueError(f"duration must be a finite number >= 0, got {duration!r}")


# ---------------------------------------------------------------------------------------------
# opening and scanning


# FFmpeg's stream-info pass at open decodes the first frames to learn what the header leaves
# out (the pixel format); a decoder learns it from the frames it decodes anyway. Skipping
# every frame in that pass leaves the decoder itself as it was, and an open for decoding
# skips decoding the first keyframe once more (a 1080p one of 830 KB: 45 ms of CPU).
_DECODING_OPEN = {"skip_frame": "all"}


def _open(source: VideoInput, start: int | None = None, *,
          to_decode: bool = False) -> tuple[Any, int | None]:
    """Open ``source`` for reading; a file object is first moved to ``start`` when given.
    ``to_decode``: the open is for decoding frames (see _DECODING_OPEN).

    Returns the container and the file object's starting position (None for paths), so a
    second pass can read the same bytes.
    """
    options = _DECODING_OPEN if to_decode else None
    try:
        if isinstance(source, str | os.PathLike):
            return av.open(os.fspath(source), "r", options=options), None
        pos = None
        if getattr(source, "seekable", lambda: False)():
            if start is None:
                start = source.tell()
            source.seek(start)
            pos = start
        return av.open(source, "r", options=options), pos
    except FileNotFoundError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise UnreadableVideo(f"cannot open container: {exc}") from exc


def _video_stream(container: Any) -> Any:
    stream = video_stream(container)  # the main one, as probe and remux take it
    if stream is None:
        raise NoVideoStream("the container has no video stream")
    return stream


@dataclass
class _Scan:
    stream_index: int
    time_base: Fraction
    origin: int  # pts of the stream's start, in time_base units
    end: float  # end of the last frame (exclusive), in time_base units
    pts: list[int] | None  # sorted pts of presented frames; None when some are unknown
    keys: list[int]  # sorted keyframe pts (empty when unknown)
    rotation: int  # counter-clockwise degrees to turn frames upright: 0, 90, 180 or 270
    sar: Fraction
    width: int
    height: int
    read_errors: int = 0
    seekable: bool = True
    file_start: int | None = None  # where a file-object source starts
    codec: str = ""  # decoder name
    decode_order: list[int] | None = None  # pts of the packets in file (decode) order
    restarts: int = 0  # joined segments: packets are put on the scan's one timeline as read
    frame_bytes: int = 0  # one decoded picture's bytes (its pixel format's); 0 when unknown
    # the probe's decoded first frame (av.take_first_frame), until the walk that takes the
    # stream's first frame takes it out (shared by the copies two decoders make)
    first: list[Any] = dataclasses.field(default_factory=list)

    @property
    def start_seconds(self) -> float:
        return float(self.origin * self.time_base)

    @property
    def duration_seconds(self) -> float:
        return max(0.0, float((self.end - self.origin) * self.time_base))


def _norm_rotation(ccw_degrees: float) -> int:
    return int(round(ccw_degrees / 90.0)) * 90 % 360


def _valid_sar(sar: Any) -> Fraction | None:
    try:
        f = Fraction(sar) if sar is not None else None
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return f if f is not None and Fraction(1, 100) < f < 100 else None


def from_video_scan(vsc: VideoScan, *, file_start: int | None = None,
                    one_way: bool = False) -> _Scan:
    """The frame timeline from the probe's packet scan (:class:`VideoScan`, one demux pass
    shared with probe, remux and transcode): presented frames (FFmpeg's discarded edit-list
    pre-roll is never shown), keyframes, file order. The span is the probe's duration rule
    (``VideoScan.seconds``) from the first presented frame. ``one_way``: a file object that
    cannot be rewound (no seeking)."""
    if vsc.order is None or vsc.flags is None:
        raise UnreadableVideo("the packet scan holds no packet list")
    pts, keys, decode_order = _presented(vsc)
    known = decode_order is not None  # every presented frame's pts
    first = take_first_frame(vsc)
    return _Scan(
        stream_index=vsc.stream_index,
        time_base=Fraction(vsc.time_base),
        origin=pts[0],
        end=_end_pts(vsc, pts),
        pts=pts if known else None,
        keys=keys if known else [],
        codec=vsc.codec or "",
        decode_order=decode_order,
        rotation=_norm_rotation(vsc.rotation or 0),
        sar=_valid_sar(vsc.sar) or Fraction(1),
        width=vsc.width,
        height=vsc.height,
        read_errors=int(vsc.damaged),
        seekable=known and _seekable(vsc, keys, one_way),
        file_start=file_start,
        restarts=vsc.restarts,
        frame_bytes=_frame_bytes(vsc.pix_fmt, vsc.width, vsc.height),
        first=[first] if first is not None else [],
    )


def _frame_bytes(pix_fmt: str | None, width: int, height: int) -> int:
    """The bytes of one decoded picture in ``pix_fmt`` (a 2160p 4:2:0 10-bit one: 24.9 MB), 0
    when the format is unknown."""
    if not pix_fmt or width <= 0 or height <= 0:
        return 0
    try:
        fmt = av.VideoFormat(pix_fmt, width, height)
    except (ValueError, av.error.FFmpegError):
        return 0
    return sum(c.width * c.height * ((c.bits + 7) // 8) for c in fmt.components)


def _presented(vsc: VideoScan) -> tuple[Any, Any, Any]:
    """Sorted pts of the presented frames, sorted keyframe pts, and the presented frames' pts
    in file order (None when some pts are unknown); int64 arrays, 8 bytes a frame."""
    stamps, flags = vsc.order, vsc.flags
    assert stamps is not None and flags is not None
    # keyframes include an edit list's hidden pre-roll: decoding starts there, so a later
    # keyframe is a real place to seek to, not the stream's start
    keys = array("q", sorted(ts for ts, bits in zip(stamps, flags, strict=True)
                             if bits & (KEY | NO_PTS) == KEY))
    order = array("q", (ts for ts, bits in zip(stamps, flags, strict=True)
                        if not bits & DISCARD))
    if not order:
        raise NoFrames("the video stream holds no frames")
    unknown_pts = any(bits & NO_PTS for bits in flags if not bits & DISCARD)
    return array("q", sorted(order)), keys, None if unknown_pts else order


def _end_pts(vsc: VideoScan, pts: Any) -> float:
    """The end of the last frame: the probe's duration rule from the first presented frame."""
    seconds = vsc.seconds if vsc.seconds is not None else vsc.span
    if seconds > 0:
        return float(pts[0] + seconds / float(vsc.time_base))
    return float(pts[-1])


def _seekable(vsc: VideoScan, keys: Any, one_way: bool) -> bool:
    # a seek by time is ambiguous where timestamps restart: read forward
    return len(keys) > 1 and not one_way and not vsc.restarts


def _scan(source: VideoInput, probed: VideoScan | None = None) -> _Scan:
    """The frame timeline: from ``probed`` (the probe's scan of this input: no open here), else
    from the probe's own scan and first-frame read (:func:`mediaprep.backends.av.read_video`,
    unbounded) in one open."""
    one_way = not isinstance(source, str | os.PathLike) and not getattr(
        source, "seekable", lambda: False)()
    if probed is not None:
        start = None
        if not isinstance(source, str | os.PathLike) and not one_way:
            start = source.tell()
        return from_video_scan(probed, file_start=start, one_way=one_way)
    container, file_start = _open(source)
    try:
        stream = _video_stream(container)
        cc = stream.codec_context
        if cc is None or cc.codec is None:
            raise UnreadableVideo(f"no decoder for the video codec of stream {stream.index}")
        info = MediaInfo(path=str(source), kind="video")
        try:
            vsc = read_video(container, info, None, bounded=False, strict=False)
        except (av.error.FFmpegError, OSError, RuntimeError, ZeroDivisionError,
                OverflowError) as exc:
            raise UnreadableVideo(f"cannot read the video stream: {exc}") from exc
        except ValueError as exc:
            raise UnreadableVideo(f"cannot decode the video stream: {exc}") from exc
        if vsc is None or not vsc.frame_count:
            raise NoFrames("the video stream holds no frames")
        if vsc.stream_index != stream.index:  # one rule for the stream: the probe's
            raise UnreadableVideo("the video stream changed between reads")
        return from_video_scan(vsc, file_start=file_start, one_way=one_way)
    finally:
        container.close()


def video_timeline(path_or_file: VideoInput) -> tuple[float, float, int]:
    """``(start_time_s, duration_s, rotation_deg)`` of the video stream.

    ``start_time_s`` is the raw presentation time of the stream's first frame;
    ``duration_s`` the real span of its frames (from the packets, so a header that
    claims an hour for eight seconds of samples does not count); ``rotation_deg`` the
    counter-clockwise turn, in {0, 90, 180, 270}, that makes frames upright.

    Raises :class:`NoVideoStream`, :class:`NoFrames` or :class:`UnreadableVideo`.
    """
    scan = _scan(path_or_file)
    return scan.start_seconds, scan.duration_seconds, scan.rotation


# ---------------------------------------------------------------------------------------------
# decoding


# Decoders whose skip_frame=NONREF drops only pictures no other picture refers to: H.264
# (nal_ref_idc 0) and the MPEG family (B-pictures). HEVC's "non-reference" NAL types may still
# be referenced from a higher temporal sub-layer, so it is decoded in full.
_NONREF_SAFE = frozenset({"h264", "mpeg1video", "mpeg2video", "mpeg4"})


class _Decoder:
    """Sequential decoded frames of one stream, with keyframe seeks; skips bad packets.

    With ``full`` (a set of packet pts), packets whose pts is not in it are decoded with
    non-reference pictures skipped (``skip_frame=NONREF``): what a later picture refers to is
    still decoded, so every frame that comes out is exact, but frames nobody asked for and
    nobody refers to are never reconstructed. Packets in ``full`` are decoded in full. After a
    packet whose pts is in ``drain``, the decoder is drained at once (its frame comes out
    without waiting for the packets a reorder delay would need); the next read must then
    follow a :meth:`seek`.
    """

    MAX_READ_RETRIES = 3

    def __init__(
        self,
        container: Any,
        stream: Any,
        stats: dict[str, Any],
        full: set[int] | None = None,
        drain: set[int] | None = None,
        threads: int = 0,
        mend: bool = False,
    ) -> None:
        self.container = container
        self.mender = TimestampMender(stream.time_base) if mend else None
        self.stream = stream
        self.cc = stream.codec_context
        # before the codec opens: frame + slice threads, as many as FFmpeg finds CPUs for
        # (0), fewer for large pictures, or one when decoders already run side by side (each
        # thread holds its frames)
        self.cc.thread_type = "AUTO"
        self.cc.thread_count = threads
        self.stats = stats
        self.queue: deque[Any] = deque()
        self.packets = container.demux(stream)
        self.eof = False
        self.read_retries = 0
        self.full = full
        self.drain = drain or set()
        # drains count only at or past the picture the current target needs: a demuxer that
        # seeks short (a Matroska file without cues lands at its start) replays earlier
        # targets' packets, and draining there would end the GOP before the needed picture
        self.drain_from: float | None = None
        self.drained = False
        self.skipping = False

    def next(self) -> Any:
        """The next decoded frame, or None at the end of the stream (or of a drain)."""
        while not self.queue:
            if self.eof or self.drained:
                return None
            pkt = self._read()
            if pkt is not None:
                self._feed(pkt)
        return self.queue.popleft()

    def _read(self) -> Any:
        """The next packet; None at the end (then ``eof``) or after a read error."""
        try:
            pkt = next(self.packets)
            self.read_retries = 0
        except StopIteration:
            self.eof = True
            return None
        except av.error.FFmpegError:
            # a read error: try to resync a few times, then end the stream with a drain
            self.stats["decode_errors"] += 1
            self.read_retries += 1
            if self.read_retries > self.MAX_READ_RETRIES:
                self.eof = True
                self._decode(None)
            else:
                self.packets = self.container.demux(self.stream)
            return None
        if not pkt.size:  # the demuxer's end-of-stream packet
            self._decode(None)
            self.eof = True
            return None
        return pkt

    def _feed(self, pkt: Any) -> None:
        """Decode ``pkt``: non-reference pictures skipped unless it is needed, and the decoder
        drained after it when it is a drain point."""
        if self.mender is not None:
            self.mender.mend(pkt)
        pts = pkt.pts
        if self.full is not None:
            skip = pts not in self.full
            if skip != self.skipping:
                self.cc.skip_frame = "NONREF" if skip else "DEFAULT"
                self.skipping = skip
        self._decode(pkt)
        if pts in self.drain and (self.drain_from is None or pts >= self.drain_from):
            self._decode(None)
            self.drained = True

    def _decode(self, pkt: Any) -> None:
        try:
            frames = self.cc.decode(pkt)
        except (av.error.FFmpegError, EOFError):
            self.stats["decode_errors"] += 1
            return
        self.stats["decoded"] += len(frames)
        self.queue.extend(frames)

    def seek(self, pts: int) -> bool:
        """Jump to the keyframe at or before ``pts``; False if the demuxer cannot seek."""
        try:
            self.container.seek(int(pts), backward=True, any_frame=False, stream=self.stream)
        except (av.error.FFmpegError, OSError):
            return False
        self.queue.clear()
        self.cc.flush_buffers()
        self.packets = self.container.demux(self.stream)
        self.eof = False
        self.drained = False
        self.read_retries = 0
        self.stats["seeks"] += 1
        return True


_YUV_SCALE_FORMATS = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21"}
)


def _rgb_image(frame: Any) -> Image.Image:
    """``frame`` as an RGB PIL image: one swscale conversion and one copy."""
    rgb = frame.reformat(format="rgb24")
    plane = rgb.planes[0]
    if plane.line_size <= 0:
        return rgb.to_image()
    return Image.frombuffer(
        "RGB", (rgb.width, rgb.height), plane, "raw", "RGB", plane.line_size, 1
    )


def _sdr_image(frame: Any) -> Image.Image:
    """``frame`` as an 8-bit sRGB picture: a PQ or HLG frame tone-mapped
    (:func:`mediaprep.backends.colour.tone_map`) from its 16-bit RGB, any other as it is."""
    cicp = frame_cicp(frame)
    if cicp is None or not cicp.hdr:
        return _rgb_image(frame)
    matrix = "bt2020" if cicp.matrix in (9, 10) else None
    rgb = frame.reformat(format="rgb48le", src_colorspace=matrix,
                         src_color_range="JPEG" if cicp.full_range else "MPEG")
    return Image.fromarray(tone_map(rgb.to_ndarray(), cicp), "RGB")


_ROTATIONS = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
              270: Image.Transpose.ROTATE_270}


def _upright_turn(frame: Any, rotation: int) -> Any:
    """The transpose that shows ``frame`` upright: its display matrix's (a mirrored rotation
    too), else the rotation's; "identity" for none. Read once per stream: the matrix is the
    track's, and each read of a frame's side data ties the frame in a reference cycle that
    only the garbage collector frees (a decoded frame and its buffers per frame taken)."""
    turn = matrix_turn(display_matrix(frame))
    return turn if turn is not None else _ROTATIONS.get(rotation, "identity")


def _convert(frame: Any, turn: Any, sar: Fraction, max_side: int | None) -> Image.Image:
    """RGB PIL image, square pixels, longest side <= max_side, turned by ``turn`` (a PIL
    transpose or "identity", from :func:`_upright_turn`)."""
    size = _shown_size(frame.width, frame.height, sar, max_side)
    if size != (frame.width, frame.height):
        # scale in the source's YUV first (swscale's fast path; 1080p -> 720p is ~2 ms),
        # then convert the small picture to RGB; asking for both in one call is ~10x slower
        fmt = frame.format.name if frame.format.name in _YUV_SCALE_FORMATS else "rgb24"
        hdr = frame_cicp(frame)
        if hdr is not None and hdr.hdr:
            fmt = frame.format.name  # 10-bit YUV stays 10-bit until the tone map
        frame = frame.reformat(width=size[0], height=size[1], format=fmt,
                               interpolation="BICUBIC")
    img = _sdr_image(frame)
    # rotations and reflections, as FFmpeg's autorotate applies them
    return img.transpose(turn) if turn != "identity" else img


def _shown_size(w: int, h: int, sar: Fraction, max_side: int | None) -> tuple[int, int]:
    """The frame's size with square pixels, its longest side at most ``max_side``."""
    dw = w * float(sar)
    scale = 1.0
    if max_side is not None and max(dw, h) > max_side:
        scale = max_side / max(dw, h)
    return max(1, round(dw * scale)), max(1, round(h * scale))


def iter_frames(
    source: VideoInput,
    plan: SamplingPlan,
    *,
    max_side: int | None = None,
    seek: bool = True,
    stats: dict[str, Any] | None = None,
    scan: VideoScan | None = None,
) -> Iterator[SampledFrame]:
    """Yield the frame on screen at each time of ``plan``, in order.

    ``source`` is a path or a seekable binary file object. Frames come out upright, with
    square pixels, scaled so the longest side is at most ``max_side`` when given. A target
    beyond the last frame's end (a plan made from a lying header) ends the iteration.
    ``seek=False`` forces decoding forward (for checking); ``stats``, when given, is filled
    with ``decode_errors``, ``decoded`` and ``seeks`` counts as decoding goes. ``scan``: the
    probe's packet scan of ``source`` (``MediaInfo.scan``), so the input is not scanned again.

    Raises :class:`NoVideoStream`, :class:`NoFrames` or :class:`UnreadableVideo`.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side!r}")
    timeline = _scan(source, scan)
    return _iter_frames(source, plan, timeline, max_side, seek,
                        stats if stats is not None else {})


def _iter_frames(
    source: VideoInput,
    plan: SamplingPlan,
    scan: _Scan,
    max_side: int | None,
    allow_seek: bool,
    stats: dict[str, Any],
    threads: int | None = None,
) -> Iterator[SampledFrame]:
    for key in ("decode_errors", "decoded", "seeks"):
        stats.setdefault(key, 0)
    stats["decode_errors"] += scan.read_errors
    scan.read_errors = 0
    if not plan.timestamps:
        return
    container, _ = _open(source, scan.file_start, to_decode=True)
    try:
        yield from _walk_frames(container, plan, scan, max_side, allow_seek, stats,
                                _one_decoder_threads(scan) if threads is None else threads)
    finally:
        container.close()


def _one_decoder_threads(scan: _Scan) -> int:
    """Decoding threads of a decoder working alone: as many as FFmpeg finds cores for (0),
    or LARGE_FRAME_THREADS for pictures over PARALLEL_MAX_FRAME_BYTES (each frame thread
    holds pictures of its own)."""
    return LARGE_FRAME_THREADS if scan.frame_bytes > PARALLEL_MAX_FRAME_BYTES else 0


def _walk_frames(container: Any, plan: SamplingPlan, scan: _Scan, max_side: int | None,
                 allow_seek: bool, stats: dict[str, Any],
                 threads: int = 0) -> Iterator[SampledFrame]:
    """The frames of ``plan`` from one decoder on the open ``container``."""
    stream = container.streams[scan.stream_index]
    can_seek = allow_seek and scan.seekable and scan.pts is not None
    full, drain = _decode_sets(scan, plan, can_seek)
    dec = _Decoder(container, stream, stats, full, drain, threads, mend=bool(scan.restarts))
    walk = _Walk(scan, dec, max_side, can_seek)
    times = plan.timestamps
    first = _probe_first_frame(scan, times, can_seek)
    if first is not None:
        yield walk.hand(first, times[0])
        times = times[1:]
    for t in times:
        frame = walk.take(t)
        if frame is None:
            break
        yield frame


def _probe_first_frame(scan: _Scan, times: list[float], can_seek: bool) -> Any:
    """The probe's decode of the stream's first frame, taken out of ``scan`` by the walk whose
    first target is on that frame; returned when that walk would decode it only for this
    target (its next target needs a later keyframe, reached by a seek), else None. Exact: it
    is the same picture the walk would decode (same packets, same decoder)."""
    if not scan.first or scan.pts is None or not times:
        return None
    if _needed_pts(scan, times[0]) != scan.pts[0]:
        return None  # another walk's first target: the first frame is not this walk's
    try:
        frame = scan.first.pop()
    except IndexError:
        return None
    return frame if _only_for_the_start(scan, frame, times, can_seek) else None


def _only_for_the_start(scan: _Scan, frame: Any, times: list[float], can_seek: bool) -> bool:
    """Whether ``frame`` is the stream's first and the walk would decode it for ``times[0]``
    alone: it seeks, and its next target (if any) is decoded from a later keyframe."""
    assert scan.pts is not None
    if not (can_seek and scan.keys and frame.pts == scan.pts[0]):
        return False
    return len(times) < 2 or _past_first_gop(scan, _needed_pts(scan, times[1]))


def _needed_pts(scan: _Scan, t: float) -> int:
    """The pts of the frame on screen at ``t`` seconds from the start (``scan.pts`` known)."""
    inv_tb = float(1 / scan.time_base)
    assert scan.pts is not None
    return _frame_at(scan.pts, scan.origin + t * inv_tb + 1e-6 * inv_tb)


def _past_first_gop(scan: _Scan, pts: int) -> bool:
    """Whether the frame at ``pts`` is decoded from a later keyframe than the first frame."""
    eps = 1e-6 * float(1 / scan.time_base)
    assert scan.pts is not None
    return bisect_right(scan.keys, pts + eps) > bisect_right(scan.keys, scan.pts[0] + eps)


_Decoded = tuple[Any, float, int]  # (frame, pts in time_base units, index among shown frames)


class _Walk:
    """The frame on screen at each target time, in order, from one decoder: decode forward, or
    seek when a keyframe lies between what is decoded and the frame a target needs.

    ``cand`` is the best frame so far at or before the current target; ``ahead`` a decoded
    frame already past it (kept for a later target).
    """

    def __init__(self, scan: _Scan, dec: _Decoder, max_side: int | None,
                 can_seek: bool) -> None:
        self.scan = scan
        self.dec = dec
        self.max_side = max_side
        self.can_seek = can_seek
        self.inv_tb = float(1 / scan.time_base)
        self.eps = 1e-6 * self.inv_tb  # one microsecond, in pts units
        self.counter = 0  # frames seen, for indexes when pts are unknown (forward only)
        self.last_pts: float | None = None  # pts of the newest decoded frame
        self.frame_dur = 0.0
        self.cand: _Decoded | None = None
        self.ahead: _Decoded | None = None
        self.cache: tuple[Any, Image.Image] | None = None  # the last frame taken, converted
        self.turn: Any = None  # the transpose that shows frames upright, once known
        self.eof = False

    # -- one target

    def hand(self, frame: Any, t: float) -> SampledFrame:
        """The answer at ``t`` (the first target) is ``frame``, decoded by the probe: the walk
        has decoded nothing, and its next target is reached by a seek (or decoding forward
        from the start, when the seek fails: so no drain follows the first frame's packet)."""
        p = float(frame.pts)
        self.dec.drain.discard(frame.pts)
        self.cand = (frame, p, self._index_of(p))
        return self._emit(self.cand, t)

    def take(self, t: float) -> SampledFrame | None:
        """The frame on screen at ``t``; None when the video ends before it."""
        target = self.scan.origin + t * self.inv_tb
        limit = target + self.eps
        need: float | None = None
        if self.scan.pts is not None:
            if target > self.scan.end - self.eps:
                return None  # past the last frame: the plan came from a lying header
            need = _frame_at(self.scan.pts, limit)
        self.dec.drain_from = need
        if self.eof:
            return self._after_end(target, t)
        ready = self._in_hand(need, limit)
        if ready is not None:
            return self._emit(ready, t)
        self._seek_for(need, limit)
        self._decode_to(need, limit)
        return self._decoded(target, t)

    def _in_hand(self, need: float | None, limit: float) -> _Decoded | None:
        """The answer when no decoding is needed: the frame needed is the candidate, or the
        next decoded frame is already past this target."""
        if self.ahead is not None and self.ahead[1] <= limit:
            self.cand, self.ahead = self.ahead, None
            self._forget_stale_cache()
        if self.cand is not None and need is not None and self.cand[1] >= need:
            return self.cand
        if self.ahead is not None:
            return self.cand if self.cand is not None else self.ahead
        return None

    def _decoded(self, target: float, t: float) -> SampledFrame | None:
        """The answer once decoding stopped: at the frame needed, past it, or at the end."""
        if self.eof and self.cand is None and self.ahead is None:
            raise NoFrames("no frame of the video stream could be decoded")
        if self.eof and self.cand is not None and target > self._end() - self.eps:
            return None
        return self._emit(self.cand if self.cand is not None else self.ahead, t)  # type: ignore[arg-type]

    def _after_end(self, target: float, t: float) -> SampledFrame | None:
        if self.cand is None or target > self._end() - self.eps:
            return None
        return self._emit(self.cand, t)

    def _end(self) -> float:
        """Where the last decoded candidate stops being shown."""
        if self.scan.pts is not None:
            return self.scan.end
        assert self.cand is not None
        return self.cand[1] + self.frame_dur

    # -- seeking

    def _seek_for(self, need: float | None, limit: float) -> None:
        """Seek when a keyframe lies between what is decoded and the frame needed (or when a
        drained decoder has to restart)."""
        keys = self.scan.keys
        spent = self.dec.drained and not self.dec.queue  # drained, and its frames all taken
        able = self.can_seek and need is not None and bool(keys)
        if spent and not able:
            raise UnreadableVideo("the decoder was drained and cannot seek")
        if not able:
            return
        assert need is not None
        k = self._seek_key(need, spent)
        if k is None:
            return
        if self.dec.seek(k):
            self._first_after_seek(need, limit)
        elif spent:
            raise UnreadableVideo("seeking failed after a drain")
        else:
            self.can_seek = False

    def _seek_key(self, need: float, spent: bool) -> int | None:
        """The keyframe to seek to for ``need``, or None to decode forward."""
        keys = self.scan.keys
        k = keys[bisect_right(keys, need) - 1] if keys[0] <= need else None
        fresh = k is not None and (self.last_pts is None or k > self.last_pts) and k > keys[0]
        if fresh:
            return k
        if spent:  # the decoder was drained: it has to restart
            return k if k is not None else self.scan.origin
        return None

    def _first_after_seek(self, need: float, limit: float) -> None:
        first = self._pull()
        if first is not None and first[1] > need:
            # the demuxer overshot: go back to the start, decode forward
            self.can_seek = False
            if not self.dec.seek(self.scan.origin):
                raise UnreadableVideo("seeking failed and cannot rewind")
            first = self._pull()
        if first is None:
            self.eof = True
        else:
            self._consider(first, limit)

    # -- decoding

    def _decode_to(self, need: float | None, limit: float) -> None:
        """Decode until the frame needed (or one past the target) is in hand, or the end."""
        while not self.eof and self.ahead is None:
            if self.cand is not None and need is not None and self.cand[1] >= need:
                return
            item = self._pull()
            if item is None and self.dec.drained:
                if self.cand is not None:
                    return  # the frame needed did not decode: the one before it stands
                self._restart_without_drains(limit)
                continue
            if item is None:
                self.eof = True
                return
            self._consider(item, limit)

    def _restart_without_drains(self, limit: float) -> None:
        """Nothing decoded since a seek before the decoder drained: go again without drains."""
        keys = self.scan.keys
        self.dec.drain = set()
        if not (keys and self.dec.seek(keys[max(bisect_right(keys, limit) - 1, 0)])):
            raise UnreadableVideo("seeking failed after a drain")

    def _consider(self, item: _Decoded, limit: float) -> None:
        if item[1] > limit:
            self.ahead = item
        elif self.cand is None or item[1] >= self.cand[1]:
            self.cand = item
            self._forget_stale_cache()

    def _forget_stale_cache(self) -> None:
        """Drop the last frame taken once it is neither the candidate nor the one ahead: it
        cannot be taken again (frames only come from decoding forward), and holding it keeps a
        whole decoded picture (25 MB at 2160p 10-bit) out of the decoder's buffer pool."""
        if self.cache is None:
            return
        held = self.cache[0]
        if not any(d is not None and d[0] is held for d in (self.cand, self.ahead)):
            self.cache = None

    def _pull(self) -> _Decoded | None:
        f = self.dec.next()
        if f is None:
            return None
        self.counter += 1
        last = self.last_pts
        if f.pts is not None:
            p = float(f.pts)
        elif last is not None:
            p = last + (self.frame_dur or self.eps)
        else:
            p = float(self.scan.origin)
        if last is not None and p > last:
            self.frame_dur = p - last
        self.last_pts = p
        return f, p, self._index_of(p)

    def _index_of(self, p: float) -> int:
        if self.scan.pts is not None:
            return bisect_left(self.scan.pts, p)
        return self.counter - 1

    def _emit(self, item: _Decoded, t: float) -> SampledFrame:
        f, p, idx = item
        img = None
        if self.cache is not None and self.cache[0] is f:
            try:
                img = self.cache[1].copy()
            except ValueError:  # the caller closed the image it was given: convert again
                img = None
        if img is None:
            if self.turn is None:
                self.turn = _upright_turn(f, self.scan.rotation)
            img = _convert(f, self.turn, self.scan.sar, self.max_side)
            self.cache = (f, img)
        return SampledFrame(image=img, timestamp=t, index=idx,
                            pts=p * float(self.scan.time_base))


def _frame_at(pts_list: Any, limit: float) -> int:
    """The pts of the frame on screen at ``limit``: the last at or before it, else the first."""
    return pts_list[max(bisect_right(pts_list, limit) - 1, 0)]


def _source_frames(scan: _Scan, timestamps: list[float]) -> Iterator[tuple[float, int]]:
    """``(t, pts of the frame on screen at t)`` for each time before the last frame's end
    (the scan's pts must be known)."""
    assert scan.pts is not None
    inv_tb = float(1 / scan.time_base)
    eps = 1e-6 * inv_tb
    for t in timestamps:
        target = scan.origin + t * inv_tb
        if target > scan.end - eps:
            return
        yield t, _frame_at(scan.pts, target + eps)


def _without_repeats(plan: SamplingPlan, scan: _Scan, min_frames: int) -> SamplingPlan:
    """``plan`` without the times whose frame on screen is the previous time's frame (kept
    when fewer than ``min_frames`` times would be left, or when pts are unknown)."""
    if scan.pts is None:
        return plan
    kept: list[float] = []
    seen = 0
    last = None
    for t, p in _source_frames(scan, plan.timestamps):
        seen += 1
        if p != last:
            kept.append(t)
        last = p
    kept += plan.timestamps[seen:]  # past the last frame's end: the walk stops there anyway
    dropped = len(plan.timestamps) - len(kept)
    if not dropped or len(kept) < min(min_frames, len(plan.timestamps)):
        return plan
    return dataclasses.replace(plan, timestamps=kept, repeats=dropped)


def _decode_sets(
    scan: _Scan, plan: SamplingPlan, can_seek: bool
) -> tuple[set[int] | None, set[int] | None]:
    """Which packets to decode in full, and after which to drain the decoder.

    ``full``: the pts of every frame some target needs (None: decode everything in full,
    when pts are unknown or the decoder's NONREF skipping is not known to be exact).
    ``drain``: needed pts after whose packet nothing more of the current GOP is needed,
    because the next target lies past a keyframe (reached by a seek) or there is none. A
    drain is not allowed while a needed B-picture shown before it still follows in decode
    order.
    """
    if scan.pts is None or scan.decode_order is None:
        return None, None
    needs: list[int] = []
    for _, p in _source_frames(scan, plan.timestamps):
        if not needs or needs[-1] != p:
            needs.append(p)
    full = set(needs) if scan.codec in _NONREF_SAFE else None
    if not can_seek or not scan.keys:
        return full, None
    drain = _drain_points(needs, scan.keys)
    if not drain:
        return full, None
    _keep_reordered_needs(drain, needs, scan.keys, scan.decode_order)
    return full, drain


def _drain_points(needs: list[int], keys: Any) -> set[int]:
    """The needed pts after which the next one is decoded from a later keyframe (reached by a
    seek), and the last one."""
    drain = set(needs[-1:])
    for p, nxt in zip(needs, needs[1:], strict=False):
        j = bisect_right(keys, nxt) - 1  # keyframe the next target is decoded from
        if j >= 0 and keys[j] > p:
            drain.add(p)
    return drain


def _keep_reordered_needs(drain: set[int], needs: list[int], keys: Any, order: Any) -> None:
    """Take out of ``drain`` each point that a needed picture shown before it still follows in
    decode order (a B-picture: draining there would end the GOP before it is decoded)."""
    need_set = set(needs)
    key_set = set(keys)
    pending: list[int] = []
    for p in order:
        if p in key_set:
            pending.clear()
        if pending and p in need_set:
            for d in [d for d in pending if p < d]:
                drain.discard(d)
                pending.remove(d)
        if p in drain:
            pending.append(p)


def extract_frames(
    source: VideoInput,
    *,
    fps: float = 2.0,
    max_frames: int = 2000,
    max_side: int | None = None,
    scan: VideoScan | None = None,
    min_frames: int = 1,
) -> tuple[SamplingPlan, Iterator[SampledFrame], dict[str, Any]]:
    """Plan and stream frames of ``source`` at ``fps``, capped at ``max_frames``.

    Each source frame is taken once: a time whose frame on screen is the one taken at the
    time before is left out of the plan (``plan.repeats`` counts them), and each frame keeps
    the first time it answers. When that would leave fewer than ``min_frames`` frames, the
    repeats stay (a caller that needs that many gets them). Streams whose timestamps are not
    all known keep their repeats.

    Returns ``(plan, frames, info)``. ``info`` holds ``rotation`` (degrees counter-clockwise
    applied), ``sar`` (sample aspect ratio corrected, float), ``start_time`` (raw seconds of
    the first frame), ``width``/``height`` (coded size), ``decoders`` (1, or 2 when two
    decoders share the targets: a path on a machine with two cores and enough work) and the
    counters ``decode_errors``
    (packets skipped as undecodable), ``decoded`` and ``seeks``, which grow while ``frames``
    is consumed and are final once it is exhausted. ``scan``: the probe's packet scan of
    ``source`` (``MediaInfo.scan``): the timeline and duration come from it and the input is
    opened once, to decode; without it, the same scan is made here first (a second open).

    Raises :class:`NoVideoStream`, :class:`NoFrames` or :class:`UnreadableVideo` here, or
    :class:`NoFrames` from the iterator when nothing decodes.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side!r}")
    timeline = _scan(source, scan)
    scan = None
    plan = _without_repeats(plan_sampling(timeline.duration_seconds, fps, max_frames),
                            timeline, min_frames)
    info: dict[str, Any] = {
        "rotation": timeline.rotation,
        "sar": float(timeline.sar),
        "start_time": timeline.start_seconds,
        "width": timeline.width,
        "height": timeline.height,
        "decode_errors": 0,
        "decoded": 0,
        "seeks": 0,
    }
    chunks = _parallel_chunks(source, plan, timeline)
    info["decoders"] = 1 if chunks is None else PARALLEL_DECODERS
    if chunks is not None:
        return plan, _iter_frames_parallel(source, plan, chunks, timeline, max_side, info), info
    return plan, _iter_frames(source, plan, timeline, max_side, True, info), info


# --------------------------------------------------------------------------- two decoders
#
# A target's frame depends only on the keyframe before it and the packets between, so targets
# that need different keyframes can be decoded by different decoders: on a machine with two
# cores, two decoders (each one open of the file, kept for all its chunks) take alternate
# chunks of targets, and the frames still come out in order, each the one shown at its time
# (the same code picks it). Frame threads cannot do this when only a few frames per GOP are
# wanted (one picture decodes on one core). A chunk is the targets one keyframe leads to (a
# GOP's): the decoder of the chunk after the one being read may hold only
# PARALLEL_AHEAD_FRAMES of its frames, so the shorter the chunks, the sooner it goes on (at
# 0.1 fps, one target a chunk: both decoders busy all along, not one of them for most of the
# run); a decoder seeks to each GOP it is given, as one decoder alone would. Memory stays
# bounded: a decoder runs at most PARALLEL_WINDOW chunks ahead of the consumer, and one the
# consumer has not reached yet holds at most PARALLEL_AHEAD_FRAMES converted frames.

PARALLEL_DECODERS = 2
PARALLEL_WINDOW = 2  # chunks decoded but not yet taken, in all (3: +30 MB at 1080p, no faster)
PARALLEL_AHEAD_FRAMES = 1  # converted frames queued in a chunk the consumer has not reached
PARALLEL_MIN_WORK = 8 * 1920 * 1080  # target pixels (frames x coded size) worth a second decoder
# Each decoder holds its reference pictures and its buffer pool: about ten pictures, 250 MB at
# 2160p 4:2:0 10-bit. Past a 1080p 10-bit picture one decoder works alone, with at most
# LARGE_FRAME_THREADS frame threads (2160p HEVC 10-bit at 2 fps: peak RSS 576 -> 322 MB, the
# FFmpeg CLI 331 MB).
PARALLEL_MAX_FRAME_BYTES = 1920 * 1080 * 3
LARGE_FRAME_THREADS = 2


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _parallel_chunks(source: VideoInput, plan: SamplingPlan,
                     scan: _Scan) -> list[list[float]] | None:
    """The plan's timestamps cut into chunks for two decoders, one chunk per keyframe the
    targets are decoded from (two decoders never decode the same GOP), or None to decode with
    one: a file-object input, no seeking, one core, or too little work to pay for a second
    open."""
    ts = plan.timestamps
    if not _worth_two_decoders(source, ts, scan):
        return None
    inv_tb = float(1 / scan.time_base)
    chunks: list[list[float]] = []
    last_key: int | None = None
    for t in ts:
        target = scan.origin + t * inv_tb
        k = bisect_right(scan.keys, target + 1e-6 * inv_tb) - 1
        if k != last_key:
            chunks.append([])
        chunks[-1].append(t)
        last_key = k
    return chunks if len(chunks) >= 2 else None


def _worth_two_decoders(source: VideoInput, ts: list[float], scan: _Scan) -> bool:
    seekable_path = (isinstance(source, str | os.PathLike) and scan.seekable
                     and scan.pts is not None and len(scan.keys) >= 2)
    return (seekable_path and _cores() >= 2 and len(ts) >= 4
            and len(ts) * scan.width * scan.height >= PARALLEL_MIN_WORK
            and scan.frame_bytes <= PARALLEL_MAX_FRAME_BYTES)


_CHUNK_DONE = object()  # ends a chunk's queue, with that decoder's counters


class _TwoDecoders:
    """Decoders on threads taking alternate chunks of targets, at most PARALLEL_WINDOW chunks
    ahead of the consumer; the consumer reads the chunks' queues in order."""

    def __init__(self, source: VideoInput, plan: SamplingPlan, chunks: list[list[float]],
                 scan: _Scan, max_side: int | None) -> None:
        import queue
        import threading

        self.source, self.plan, self.chunks = source, plan, chunks
        self.scan, self.max_side = scan, max_side
        self.outs: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in chunks]
        self.turn = threading.Condition()
        self.taken = 0  # chunks the consumer has finished
        self.stop = threading.Event()
        self.threads = [threading.Thread(
            target=self._work, args=(list(range(w, len(chunks), PARALLEL_DECODERS)),),
            daemon=True, name=f"mediaprep-frames-{w}") for w in range(PARALLEL_DECODERS)]

    def _work(self, mine: list[int]) -> None:
        """Decode this thread's chunks, in order, with one open of the input and one decoder:
        a fresh decoder per chunk leaves its freed buffers to the allocator of a thread that
        moves on, and the process's RSS grows with every chunk."""
        own: dict[str, Any] = {"decode_errors": 0, "decoded": 0, "seeks": 0}
        try:
            container, _ = _open(self.source, self.scan.file_start, to_decode=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, in order
            self.outs[mine[0]].put(exc)
            self.outs[mine[0]].put((_CHUNK_DONE, {}))
            return
        try:
            self._decode_chunks(container, mine, own)
        finally:
            container.close()

    def _decode_chunks(self, container: Any, mine: list[int], own: dict[str, Any]) -> None:
        # the scan's read errors are counted once, with the first chunk
        own["decode_errors"] += self.scan.read_errors if mine[0] == 0 else 0
        timeline = dataclasses.replace(self.scan, read_errors=0)
        sub = dataclasses.replace(
            self.plan, timestamps=[t for j in mine for t in self.chunks[j]])
        frames = _walk_frames(container, sub, timeline, self.max_side, True, own, threads=1)
        reported = dict.fromkeys(own, 0)
        for j in mine:
            with self.turn:  # at most PARALLEL_WINDOW chunks ahead of the consumer
                self.turn.wait_for(lambda j=j: self.stop.is_set()
                                   or j < self.taken + PARALLEL_WINDOW)
            if self.stop.is_set() or not self._decode_chunk(j, frames):
                return
            self.outs[j].put((_CHUNK_DONE, {k: own[k] - reported[k] for k in own}))
            reported = dict(own)

    def _decode_chunk(self, j: int, frames: Iterator[SampledFrame]) -> bool:
        """Decode chunk ``j`` into its queue from this thread's ``frames``; False when the
        consumer stopped or decoding failed (the error is queued)."""
        try:
            for _ in self.chunks[j]:
                fr = next(frames, None)
                if fr is None:
                    return True  # the video ended: a short chunk, and the consumer stops
                with self.turn:  # a chunk not yet read holds at most PARALLEL_AHEAD_FRAMES
                    self.turn.wait_for(lambda j=j: self.stop.is_set() or j <= self.taken
                                       or self.outs[j].qsize() < PARALLEL_AHEAD_FRAMES)
                if self.stop.is_set():
                    fr.image.close()
                    return False
                self.outs[j].put(fr)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, in order
            self.outs[j].put(exc)
            self.outs[j].put((_CHUNK_DONE, {}))
            return False
        return True

    def frames(self, stats: dict[str, Any]) -> Iterator[SampledFrame]:
        for t in self.threads:
            t.start()
        try:
            for j in range(len(self.chunks)):
                given = yield from self._chunk(j, stats)
                if given < len(self.chunks[j]):
                    return  # the video ended inside this chunk: one decoder would stop here too
                with self.turn:
                    self.taken = j + 1
                    self.turn.notify_all()
        finally:
            self._close()

    def _chunk(self, j: int, stats: dict[str, Any]) -> Iterator[SampledFrame]:
        """Chunk ``j``'s frames as they come; returns how many there were."""
        given = 0
        while True:
            item = self.outs[j].get()
            if isinstance(item, tuple) and item and item[0] is _CHUNK_DONE:
                for key, n in item[1].items():
                    stats[key] = stats.get(key, 0) + n
                return given
            if isinstance(item, BaseException):
                raise item
            given += 1
            yield item

    def _close(self) -> None:
        self.stop.set()
        with self.turn:
            self.turn.notify_all()
        for out in self.outs:  # frames decoded ahead and never taken
            while not out.empty():
                left = out.get_nowait()
                if isinstance(left, SampledFrame):
                    left.image.close()


def _iter_frames_parallel(source: VideoInput, plan: SamplingPlan, chunks: list[list[float]],
                          scan: _Scan, max_side: int | None,
                          stats: dict[str, Any]) -> Iterator[SampledFrame]:
    for key in ("decode_errors", "decoded", "seeks"):
        stats.setdefault(key, 0)
    return _TwoDecoders(source, plan, chunks, scan, max_side).frames(stats)
