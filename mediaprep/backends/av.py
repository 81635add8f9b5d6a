"""Probe a video from its container: codec, size, duration, frame rate, rotation, audio.

The stream is demuxed (packets read, not decoded) to learn the real span, the frame count and
whether the frame rate varies: container headers lie (fragmented MP4s declaring an hour for eight
seconds of samples, files cut short). Only the first frame is decoded, to read the display
rotation and prove the stream decodes. The demux stops after a byte, time and packet budget
(8 bytes a packet), so a huge or endless input costs a bounded amount of work; the duration is
then bounded from the index (an MP4's stts, else the last packets after a seek to the end), never
from the scanned prefix. An MP4's moov is walked from the bytes before FFmpeg opens the file: a
video sample table the file cannot hold (FFmpeg would build an index entry per declared sample)
is refused as file.unreadable before anything is decoded.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import time
import weakref
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import pairwise
from typing import IO, Any

import av
from PIL import Image

from ..types import MediaInfo
from .colour import frame_cicp, tone_map
from .pillow import PREVIEW_SIDE
from .sniff import Sniffed
from .source import MediaSource

# Demux at most this much before trusting the header instead (why: a 2 GB file would take
# seconds to read; the header is right for ordinary complete files).
SCAN_MAX_BYTES = 512 * 1024 * 1024
SCAN_MAX_SECONDS = 5.0
SCAN_MAX_PACKETS = 400_000
# A frame interval differing from the median by more than this counts as irregular; more than
# VFR_SHARE of irregular intervals means the rate varies (occasional gaps do not).
VFR_TOLERANCE = 0.10
VFR_SHARE = 0.10

# The MP4 index (moov) is read from the bytes before FFmpeg opens the file, to refuse sample
# tables the file cannot hold (FFmpeg builds a 24-byte entry per declared sample on open) and to
# bound the duration when the packet scan stops early. A moov beyond this is not read.
MOOV_MAX_BYTES = 64 * 1024 * 1024
# When the scan stops early, packets demuxed after seeking to the end to find the last one.
TAIL_MAX_PACKETS = 5_000
# Entries of an MP4 edit list (elst) before it is refused unread: FFmpeg rebuilds the sample
# index once per entry (20,000 entries in 284 kB took 4 GB); cameras and editors write 1-3.
MP4_MAX_EDITS = 1_000
# The largest frame each codec's highest level allows, in pixels (H.264 level 6.2: 139,264
# macroblocks; HEVC, VP9 and AV1: 35,651,584 luma samples, 8192 x 4352): named in the finding
# when ``video.max_frame_pixels`` refuses a frame of that codec.
LEVEL_MAX_PIXELS = {"h264": 139_264 * 256, "hevc": 35_651_584, "vp9": 35_651_584,
                    "av1": 35_651_584}

_CONTAINERS = {"avi": "avi", "flv": "flv", "asf": "wmv", "mpeg": "mpeg", "mpegvideo": "mpeg",
               "mpegts": "ts", "matroska,webm": "mkv", "mov,mp4,m4a,3gp,3g2,mj2": "mp4"}


# VideoScan.flags bits, one byte a packet
KEY = 1  # a keyframe
DISCARD = 2  # FFmpeg drops the frame (edit-list pre-roll): never shown
NO_PTS = 4  # the packet has no pts (its dts stands in)


@dataclass
class VideoScan:
    """The one demux-only pass over a video stream's packets (no decoding): what probe, remux,
    transcode and output verification all read their timing from.

    ``start``/``end`` are the smallest pts and the largest pts + duration (a packet without a
    duration lasts as long as the one before); ``frame_count`` counts packets with a timestamp,
    ``packets`` every non-empty one. ``complete`` is False when the scan stopped early (budget or
    a damaged packet): its numbers then describe a prefix only.

    ``order`` and ``flags`` list every packet with a timestamp in file (decode) order: its pts
    (the dts when it has none) and :data:`KEY`/:data:`DISCARD`/:data:`NO_PTS` bits; frame
    extraction reads its timeline from them (mediaprep.backends.av_frames), so the input is
    not scanned twice. ``seconds`` and ``rotation`` are the probe's duration (one rule:
    :func:`read_video`) and display rotation, set once the probe has them.
    """

    stream_index: int
    codec: str
    width: int
    height: int
    sar: Fraction
    time_base: Fraction
    start: int | None = None
    end: int | None = None
    packets: int = 0
    packet_bytes: int = 0
    corrupt: int = 0
    header_duration: float | None = None
    # Packet durations that differ by more than half: frames reordered by B-frames would get
    # wrong MP4 sample durations (the encoder turns B-frames off then).
    vfr: bool = False
    frame_count: int = 0
    max_packet_duration: int = 0
    complete: bool = True
    damaged: bool = False
    stamps: array[int] | None = field(default=None, repr=False, compare=False)
    order: array[int] | None = field(default=None, repr=False, compare=False)
    flags: bytes | None = field(default=None, repr=False, compare=False)
    seconds: float | None = None
    rotation: int = 0
    # Segments joined by ``cat`` (timestamps restart at each): the restarts mended onto one
    # timeline (TimestampMender), and the coded sizes of the segments, first one included
    restarts: int = 0
    segment_sizes: list[tuple[int, int]] = field(default_factory=list)
    pix_fmt: str | None = None  # the header's pixel format (a decoded frame's size from it)

    @property
    def span(self) -> float:
        """Seconds from the first packet's pts to the last one's end: what an output must
        match when it is verified against its input, and what bitrates are computed over.
        What the video *lasts* is ``seconds`` (the probe's rule), not this."""
        if self.start is None or self.end is None:
            return 0.0
        return float((self.end - self.start) * self.time_base)

    @property
    def fps(self) -> float:
        d = self.span
        return self.packets / d if d > 0 else 30.0


#: The largest first frame (a 1080p 4:2:0 10-bit picture) the probe holds for frame extraction
FIRST_FRAME_KEEP_BYTES = 1920 * 1080 * 3

# The probe's decoded first frame of the latest scan, (a weak reference to the scan, the
# frame), for frame extraction to take instead of decoding that keyframe again: one picture
# at most in the process, let go when its scan is (never on the scan itself: a probe's info is
# pickled between processes and may be held by a caller for as long as it likes).
_first_held: list[Any] = [None]


def keep_first_frame(scan: VideoScan, frame: Any) -> None:
    """Hold ``frame`` (the first of ``scan``'s stream, as the probe decoded it) for
    :func:`take_first_frame`, in place of any other scan's."""
    _first_held[0] = (weakref.ref(scan, _let_go), frame)


def _let_go(ref: weakref.ref) -> None:
    held = _first_held[0]
    if held is not None and held[0] is ref:
        _first_held[0] = None


def take_first_frame(scan: VideoScan) -> Any:
    """The first frame the probe decoded for ``scan`` (held by :func:`keep_first_frame`), no
    longer held; None when another scan's (or none) is held."""
    held = _first_held[0]
    if held is None or held[0]() is not scan:
        return None
    _first_held[0] = None
    return held[1]
#: Segments whose coded size is read (from the keyframe that starts each one) at most
MAX_SEGMENT_SIZES = 64
#: How far back (seconds) a keyframe's timestamp must go to start a joined segment
RESTART_MIN_SECONDS = 0.5


class TimestampMender:
    """One timeline for segments joined end to end (``cat a.ts b.ts c.ts``: timestamps restart
    at each). A keyframe shown more than :data:`RESTART_MIN_SECONDS` before the latest picture
    so far starts a segment; it and every packet after it are shifted to follow the end of what
    came before. The one rule the scan, remux, transcode and frame extraction apply (each to
    its own demux of the same packets), so they agree. Cheap per packet: the scan runs it on
    every one; the others only on a stream the scan found joined."""

    def __init__(self, time_base: Fraction | None) -> None:
        self.margin = int(RESTART_MIN_SECONDS / time_base) if time_base else 0
        self.shift = 0
        self.restarts = 0
        self.top: int | None = None  # the latest timestamp so far, mended
        self.last: av.Packet | None = None

    def mend(self, p: av.Packet, ts: int | None = None) -> bool:
        """Shift ``p`` onto the timeline (in place); True when it starts a segment. ``ts``:
        its pts (its dts when it has none), when the caller has read it already."""
        if ts is None:
            ts = p.pts if p.pts is not None else p.dts
            if ts is None:
                return False
        top = self.top
        starts = self._starts_segment(p, ts)
        if starts:
            self._restart(ts)
        if self.shift:
            self._shift(p)
        mended = ts + self.shift
        if top is None or mended >= top:
            self.top = mended
            self.last = p
        return starts

    def _starts_segment(self, p: av.Packet, ts: int) -> bool:
        """A keyframe shown well before the latest picture so far."""
        return self.top is not None and ts + self.shift < self.top - self.margin and p.is_keyframe

    def _restart(self, ts: int) -> None:
        """A segment starts at ``ts``: its picture right after the latest one shown, for as
        long as that one lasted."""
        assert self.top is not None and self.last is not None
        self.shift = self.top + (self.last.duration or 1) - ts
        self.restarts += 1

    def _shift(self, p: av.Packet) -> None:
        if p.pts is not None:
            p.pts += self.shift
        if p.dts is not None:
            p.dts += self.shift


def coded_size(codec: str, packet: av.Packet) -> tuple[int, int] | None:
    """The picture size a keyframe's own parameter sets (H.264/HEVC SPS...) declare, read by
    the codec's parser: no decoding. None when the parser finds none."""
    try:
        parser = av.CodecContext.create(codec, "r")
        parser.parse(bytes(packet))
        parser.parse(None)
        return (parser.width, parser.height) if parser.width and parser.height else None
    except (av.FFmpegError, ValueError, TypeError):
        return None


def video_stream(container: av.container.InputContainer):
    """The stream that is the video: of the video streams that are not cover art (an attached
    picture is a one-frame "video" stream, never the content), the one with the most frames
    (then the longest, then the first): a Pixel motion photo's MP4 also holds a 1-2 frame
    high-resolution "top shot" track, which FFmpeg's own choice (the largest) would pick.
    None when there is none."""
    streams = [s for s in container.streams.video
               if not (s.disposition & av.stream.Disposition.attached_pic)]
    if len(streams) <= 1:
        return streams[0] if streams else None

    def length(s: Any) -> tuple[int, float, int]:
        seconds = float(s.duration * s.time_base) if s.duration and s.time_base else 0.0
        return (s.frames or 0, seconds, -s.index)

    return max(streams, key=length)


def side_data(frame: Any) -> Iterator[Any]:
    """A frame's side data entries. Iterating ``frame.side_data`` gives the entries up to
    PyAV 18.1.0 and their types (the mapping's keys) from 18.1.1: each key is looked up."""
    container = frame.side_data
    for item in container:
        yield item if hasattr(item, "type") else container[item]


def display_matrix(frame: Any) -> tuple[int, ...] | None:
    """A decoded frame's display matrix (FFmpeg's int32[9], 16.16 fixed point), or None."""
    try:
        for sd in side_data(frame):
            if str(getattr(sd, "type", "")).endswith("DISPLAYMATRIX"):
                raw = bytes(sd)
                if len(raw) >= 36:
                    return struct.unpack("=9i", raw[:36])  # native-endian int32[9]
    except ValueError:  # PyAV raises on side data types it has no enum member for
        pass
    return None


#: The sign pattern (a, b, c, d) of a display matrix's 2x2 part -> the PIL transpose that shows
#: the frame as it says: a destination point is (a*p + c*q, b*p + d*q) (libavutil/display.h).
_MATRIX_TURNS: dict[tuple[int, int, int, int], Any] = {
    (1, 0, 0, 1): "identity",
    (-1, 0, 0, 1): Image.Transpose.FLIP_LEFT_RIGHT,
    (1, 0, 0, -1): Image.Transpose.FLIP_TOP_BOTTOM,
    (-1, 0, 0, -1): Image.Transpose.ROTATE_180,
    (0, -1, 1, 0): Image.Transpose.ROTATE_90,
    (0, 1, -1, 0): Image.Transpose.ROTATE_270,
    (0, 1, 1, 0): Image.Transpose.TRANSPOSE,
    (0, -1, -1, 0): Image.Transpose.TRANSVERSE,
}


def matrix_turn(m: tuple[int, ...] | None) -> Any:
    """The transpose a display matrix asks for (a mirrored rotation too), or None when there is
    no matrix or it is not a multiple of 90 degrees (then the rotation angle decides)."""
    if m is None:
        return None

    def sign(v: int) -> int:
        return 0 if abs(v) < 1 << 8 else (1 if v > 0 else -1)

    return _MATRIX_TURNS.get((sign(m[0]), sign(m[1]), sign(m[3]), sign(m[4])))


def video_streams(container: av.container.InputContainer) -> int:
    """How many video streams the container holds, cover art not counted."""
    return sum(1 for s in container.streams.video
               if not (s.disposition & av.stream.Disposition.attached_pic))


def scan_packets(container, vs, *, bounded: bool = True, strict: bool | None = None,
                 on_packet: Callable[[av.Packet], None] | None = None) -> VideoScan:
    """Demux every packet of ``vs`` once (``on_packet`` sees each non-empty one). ``bounded``
    stops after SCAN_MAX_PACKETS packets or SCAN_MAX_SECONDS (``complete`` is then False).
    ``strict`` (default: not ``bounded``) raises on a damaged packet instead of stopping there
    (``damaged`` is then True)."""
    if strict is None:
        strict = not bounded
    tally = _PacketTally(_empty_scan(container, vs), bounded, on_packet)
    try:
        for p in container.demux(vs):
            if p.size and not tally.add(p):  # (an empty packet: the flush packet)
                tally.scan.complete = False
                break
    except av.FFmpegError:
        if strict:
            raise
        tally.scan.damaged = True
    return tally.finish()


def _empty_scan(container, vs) -> VideoScan:
    """A scan of ``vs`` with its header facts and no packet counted yet."""
    cc = vs.codec_context
    tb = vs.time_base or Fraction(1, av.time_base)
    codec, width, height = (cc.name, cc.width or 0, cc.height or 0) if cc is not None else (
        "", 0, 0)
    return VideoScan(stream_index=vs.index, codec=codec, width=width, height=height,
                     sar=_stream_sar(vs, cc), time_base=Fraction(tb),
                     header_duration=_header_seconds(container, vs),
                     pix_fmt=cc.pix_fmt if cc is not None else None)


def _stream_sar(vs, cc) -> Fraction:
    """The stream's sample aspect ratio (its codec's when the stream has none); 1 when unset."""
    sar = vs.sample_aspect_ratio or (cc.sample_aspect_ratio if cc is not None else None)
    return Fraction(sar) if sar and sar > 0 else Fraction(1)


def _header_seconds(container, vs) -> float | None:
    """The duration the header declares: the stream's, else the container's."""
    if vs.duration is not None and vs.time_base:
        return float(vs.duration * vs.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


class _PacketTally:
    """What :func:`scan_packets` adds up packet by packet, into ``scan``: 8 bytes of timestamp
    and 1 byte of flags a packet, so the scan's memory is bounded with its length."""

    def __init__(self, scan: VideoScan, bounded: bool,
                 on_packet: Callable[[av.Packet], None] | None) -> None:
        self.scan = scan
        self.bounded = bounded
        self.on_packet = on_packet
        self.stamps = array("q")
        self.flags = bytearray()
        self.last_dur = self.dmin = self.dmax = 0
        self.deadline = time.monotonic() + SCAN_MAX_SECONDS
        self.mender = TimestampMender(scan.time_base)

    def add(self, p: av.Packet) -> bool:
        """Count a non-empty packet; False when the budget of a bounded scan is spent."""
        sc = self.scan
        ts, bits = (p.pts, 0) if p.pts is not None else (p.dts, NO_PTS)
        if ts is not None:
            if self.mender.mend(p, ts):
                self._segment_starts(p)
            ts += self.mender.shift
        if self.on_packet is not None:
            self.on_packet(p)
        sc.packets += 1
        sc.packet_bytes += p.size
        sc.corrupt += bool(p.is_corrupt)
        if ts is None:
            return True
        self.stamps.append(ts)
        self.flags.append(bits | (KEY if p.is_keyframe else 0) | (DISCARD if p.is_discard else 0))
        self._time(p, ts)
        return not self.bounded or not self._spent()

    def _segment_starts(self, p: av.Packet) -> None:
        """Note the coded size of a joined segment that starts at keyframe ``p``."""
        sizes = self.scan.segment_sizes
        if len(sizes) >= MAX_SEGMENT_SIZES:
            return
        if not sizes:
            sizes.append((self.scan.width, self.scan.height))
        size = coded_size(self.scan.codec, p)
        if size is not None:
            sizes.append(size)

    def _time(self, p: av.Packet, ts: int) -> None:
        """Widen the span by a packet shown at ``ts`` (a packet without a duration lasts as long
        as the one before) and track the shortest and longest durations."""
        sc = self.scan
        if p.duration:
            self.dmin = min(self.dmin, p.duration) if self.dmin else p.duration
            self.dmax = max(self.dmax, p.duration)
        dur = p.duration or self.last_dur
        self.last_dur = dur
        sc.start = ts if sc.start is None else min(sc.start, ts)
        sc.end = ts + dur if sc.end is None else max(sc.end, ts + dur)

    def _spent(self) -> bool:
        n = len(self.stamps)
        return n >= SCAN_MAX_PACKETS or (n % 512 == 0 and time.monotonic() > self.deadline)

    def finish(self) -> VideoScan:
        sc = self.scan
        sc.frame_count = len(self.stamps)
        sc.restarts = self.mender.restarts
        sc.max_packet_duration = self.dmax
        sc.vfr = bool(self.dmin) and self.dmax > 1.5 * self.dmin
        sc.order = self.stamps  # 8 bytes a packet, not 36
        sc.flags = bytes(self.flags)
        # (sorted without numpy, whose import costs a frames run a tenth of its CPU and 12 MB;
        # a list of Python ints only while sorting)
        sc.stamps = array("q", sorted(self.stamps))
        return sc


@dataclass(frozen=True)
class VideoBounds:
    """What opening and probing a video may cost (``video.max_streams`` and
    ``video.max_frame_pixels`` of the limits table; None: off)."""

    max_streams: int | None = None
    max_frame_pixels: int | None = None

    def frame_problem(self, codec: str | None, w: int, h: int) -> str | None:
        """Why frames of ``w`` x ``h`` are refused before decoding, or None."""
        if self.max_frame_pixels is None or w * h <= self.max_frame_pixels:
            return None
        level = LEVEL_MAX_PIXELS.get(codec or "")
        why = (f"; no level of {codec} allows more than {level:,} (8192x4352)" if level else "")
        return (f"the video declares frames of {w}x{h} = {w * h:,} pixels, above "
                f"video.max_frame_pixels {self.max_frame_pixels:,}{why}; refused before "
                "decoding (raise the limit to decode it anyway)")

    def open_options(self) -> dict[str, str]:
        """FFmpeg options of the probe's open, so that its stream probe (which decodes a
        frame of every stream) is bounded: at most one stream past the limit is set up, no
        frame above the pixel limit is allocated (max_pixels: the stream's size is still read
        from its bitstream, an H.264 SPS, not from the container's sample entry, which may
        lie either way), one thread a stream (FFmpeg's own choice when given no options)."""
        options = {"threads": "1"}
        if self.max_streams is not None:
            options["max_streams"] = str(self.max_streams + 1)
        if self.max_frame_pixels is not None:
            options["max_pixels"] = str(self.max_frame_pixels)
        return options

    def limit_decoders(self, container: av.container.InputContainer) -> None:
        """Give the video streams' own decoders the open's pixel limit: a picture larger
        than it (a bitstream saying more than its sample entry) does not decode."""
        if self.max_frame_pixels is None:
            return
        for vs in container.streams.video:
            if vs.codec_context is not None:
                vs.codec_context.options = {"max_pixels": str(self.max_frame_pixels)}

    def container_problem(self, container: av.container.InputContainer) -> str | None:
        """Why an opened container is refused before its packets are read or a frame is
        decoded (too many streams; a video stream, any of them, with frames too large)."""
        problem = self.streams_problem(len(container.streams), more=True)
        for vs in () if problem else container.streams.video:
            cc = vs.codec_context
            if cc is not None:
                problem = self.frame_problem(cc.name, cc.width or 0, cc.height or 0)
                if problem:
                    break
        return problem

    def streams_problem(self, n: int, more: bool = False) -> str | None:
        if self.max_streams is None or n <= self.max_streams:
            return None
        count = f"more than {self.max_streams}" if more else f"{n:,}"
        return (f"the container holds {count} streams, above video.max_streams "
                f"{self.max_streams} (FFmpeg decodes a frame of every stream to open the "
                "file); refused before decoding")


def probe_video(src: MediaSource, sniffed: Sniffed, *, preview: bool = False,
                bounds: VideoBounds | None = None) -> MediaInfo:
    info = MediaInfo(path=src.name, kind="video", format=sniffed.format, bytes=src.size)
    bounds = bounds or VideoBounds()
    index = _read_mp4_index(src, sniffed.format, info.bytes)
    # (FFmpeg fails to open an MP4 with more tracks than it may set up: said here)
    problem = index and (index.implausible or bounds.streams_problem(index.tracks))
    if problem:
        info.error_code, info.error = "file.unreadable", problem
        return info
    if sniffed.format in HEADER_TIMED_FORMATS:
        fresh = MediaInfo(path=info.path, kind="video", format=info.format, bytes=info.bytes)
        quick = _open_and_read(src, fresh, index, bounds, preview, quick=True)
        if not quick.error_code:
            return quick
        # something is wrong with it: the full open says what, as it always has (a frame
        # larger than its sample entry says is refused from the size FFmpeg's stream-info
        # decode reads from the bitstream, before the probe decodes a picture)
    return _open_and_read(src, info, index, bounds, preview)


def _open_and_read(src: MediaSource, info: MediaInfo, index: Mp4Index | None,
                   bounds: VideoBounds, preview: bool, *, quick: bool = False) -> MediaInfo:
    """Open the container and fill ``info`` from it. ``quick``: without FFmpeg's stream-info
    decode (:data:`HEADER_TIMED_FORMATS`)."""
    options = bounds.open_options()
    if quick:
        options.update(SKIP_STREAM_INFO_DECODE)
    try:
        container = av.open(str(src.path) if src.path else src.open(), mode="r",
                            metadata_errors="ignore", options=options)
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        info.error_code = "file.unreadable"
        info.error = f"cannot open the container: {_short(exc)}"
        return info
    _read_container(container, info, index, bounds, preview, pictures_from_decoder=quick)
    _judge_encryption(info, index)
    if info.error_code:
        info.scan = None
    return info


#: Containers whose header (an MP4's moov) gives every timing fact the probe reads: opened
#: without FFmpeg's stream-info decode of the first frames (45 ms of CPU for a 1080p H.264
#: keyframe), the pixel format, colour and pixel shape that decode would find are read from
#: the stream's own decoder once :func:`_first_frame` has decoded the first frame (it holds the
#: same values then). Other containers (Matroska, MPEG-TS ...) keep the full open: FFmpeg
#: estimates their streams' durations and starts from what that pass reads.
HEADER_TIMED_FORMATS = frozenset({"mp4", "mov", "3gp"})
#: The open's decoders skip every frame of the stream-info pass (it still reads and parses).
SKIP_STREAM_INFO_DECODE = {"skip_frame": "all"}


def _read_mp4_index(src: MediaSource, fmt: str | None, size: int) -> Mp4Index | None:
    """The MP4 index of an MP4/MOV/3GP file, read before FFmpeg opens it (None: none read)."""
    if fmt not in ("mp4", "mov", "3gp"):
        return None
    try:
        with src.open() as fh:
            return mp4_index(fh, size)
    except (OSError, ValueError, struct.error):
        return None


def _read_container(container: av.container.InputContainer, info: MediaInfo,
                    index: Mp4Index | None, bounds: VideoBounds, preview: bool, *,
                    pictures_from_decoder: bool = False) -> None:
    """Fill ``info`` from an opened container (which is closed after), unless the bounds
    refuse it; what FFmpeg raises on the way becomes the error. ``pictures_from_decoder``:
    see :func:`read_video`."""
    try:
        with container:
            problem = bounds.container_problem(container)
            if problem:
                info.error_code, info.error = "file.unreadable", problem
                return
            if pictures_from_decoder:
                bounds.limit_decoders(container)
            read_video(container, info, index, preview=preview,
                       pictures_from_decoder=pictures_from_decoder)
    except (av.FFmpegError, OSError, ValueError, RuntimeError, ZeroDivisionError,
            OverflowError) as exc:
        info.error_code = info.error_code or "file.unreadable"
        info.error = info.error or f"cannot read the video: {_short(exc)}"


def _judge_encryption(info: MediaInfo, index: Mp4Index | None) -> None:
    """An encrypted video track is video.undecodable, whatever else failed for want of the key
    (unless the file failed for another reason and a decoder was found)."""
    if index is None or not index.encrypted:
        return
    no_decoder = info.container is not None and info.codec is None
    if info.error_code is None or no_decoder:
        info.error_code, info.error = "video.undecodable", index.encrypted


def _short(exc: BaseException) -> str:
    # FFmpeg's errors read "[Errno 1094995529] Invalid data found ...: 'path'": the reason alone
    # says it (the finding names the file already).
    text = getattr(exc, "strerror", None) or str(exc)
    return text if len(text) < 200 else text[:200] + "..."


def read_video(container: av.container.InputContainer, info: MediaInfo,
               index: Mp4Index | None, *, bounded: bool = True, strict: bool | None = None,
               on_packet: Callable[[av.Packet], None] | None = None,
               preview: bool = False, pictures_from_decoder: bool = False) -> VideoScan | None:
    """Fill ``info`` from an open container: header facts, the packet scan (kept on
    ``info.scan`` when it covered the whole stream) and the first decoded frame (with
    ``preview``, kept small on ``info.first_frame``). Unbounded
    (``bounded=False``, for verifying an output) the scan covers every packet whatever the
    size, and a damaged packet raises (unless ``strict=False``: the scan then stops there).
    ``pictures_from_decoder``: the container was opened without FFmpeg's stream-info decode
    (:data:`SKIP_STREAM_INFO_DECODE`), so the pixel format, colour and pixel shape are read
    once the first frame is decoded, from the stream's decoder (the scan's too).
    Returns the scan, whole or not (None when there is none)."""
    _container_facts(container, info)
    vs = video_stream(container)
    if vs is None:
        _no_video_stream(container, info)
        return None
    if vs.codec_context is None:  # FFmpeg found no decoder it could open (unknown codec...)
        info.error_code = "file.unreadable"
        info.error = "the video stream's codec cannot be opened (unknown or corrupt header)"
        return None
    tb = vs.time_base or Fraction(1, av.time_base)
    _stream_facts(vs, tb, info)
    if not pictures_from_decoder:
        _picture_facts(vs, info)
    sc = _scan_packets(container, vs, info, tb, index, on_packet, bounded, strict)
    first = _first_frame(container, vs, info, preview)
    if pictures_from_decoder:
        _picture_facts(vs, info)
    if sc is not None:
        _scan_from_probe(sc, vs, info, first, pictures_from_decoder)
    return sc


def _scan_from_probe(sc: VideoScan, vs, info: MediaInfo, first: Any,
                     pictures_from_decoder: bool) -> None:
    """What the scan keeps of the probe: its duration and rotation, the first frame it
    decoded (when small enough to hold), and the picture facts learnt from that decode."""
    sc.seconds = info.duration
    sc.rotation = info.rotation or 0
    if first is not None and _picture_bytes(first) <= FIRST_FRAME_KEEP_BYTES:
        keep_first_frame(sc, first)
    if pictures_from_decoder:
        sc.pix_fmt, sc.sar = info.pix_fmt, _stream_sar(vs, vs.codec_context)


def _container_facts(container: av.container.InputContainer, info: MediaInfo) -> None:
    """What the container's header says: its format, streams and duration."""
    info.container = container.format.name
    if info.format is None:
        info.format = _CONTAINERS.get(container.format.name, container.format.name)
    info.has_audio = bool(container.streams.audio)
    info.video_streams = video_streams(container)
    if container.duration is not None and container.duration > 0:
        info.declared_duration = container.duration / av.time_base


def _no_video_stream(container: av.container.InputContainer, info: MediaInfo) -> None:
    info.kind = "other"
    if container.streams.audio:
        info.error_code = "video.no_video_stream"
        info.error = "the file holds audio only, no video stream"
    else:
        info.error_code = "file.unreadable"
        info.error = "the container holds no audio or video stream (truncated or empty)"


def _stream_facts(vs, tb: Fraction, info: MediaInfo) -> None:
    """What the video stream's header says: codec, size, duration and rate."""
    cc = vs.codec_context
    info.codec = cc.name
    info.width, info.height = cc.width or None, cc.height or None
    if vs.duration:
        info.declared_duration = float(vs.duration * tb)
    if vs.average_rate:
        info.fps = float(vs.average_rate)


def _picture_facts(vs, info: MediaInfo) -> None:
    """What the stream's codec context says of its pictures: pixel format, colour, pixel
    shape (learnt by decoding: FFmpeg's stream-info pass at open, else the first frame)."""
    cc = vs.codec_context
    info.pix_fmt = cc.pix_fmt
    _colour_facts(cc, info)
    sar = vs.sample_aspect_ratio or cc.sample_aspect_ratio
    if sar and sar.numerator > 0 and sar != 1:
        info.sample_aspect_ratio = float(sar)


def _colour_facts(cc, info: MediaInfo) -> None:
    cicp = frame_cicp(cc)
    if cicp is None:
        return
    info.cicp = [cicp.primaries, cicp.transfer, cicp.matrix, int(cicp.full_range)]
    info.hdr = cicp.hdr
    if cicp.hdr or cicp.wide:
        info.colour = cicp.describe()


def _scan_packets(container, vs, info: MediaInfo, tb: Fraction, index: Mp4Index | None,
                  on_packet: Callable[[av.Packet], None] | None = None,
                  bounded: bool = True, strict: bool | None = None) -> VideoScan | None:
    if bounded and info.bytes > SCAN_MAX_BYTES:
        _skip_large(container, vs, info, tb, index)
        return None
    sc = scan_packets(container, vs, bounded=bounded, strict=strict, on_packet=on_packet)
    if not _count_frames(info, sc):
        return sc
    timing = _StampTiming.of(sc.stamps, tb, sc.max_packet_duration)
    sc.stamps = None
    if sc.complete and not sc.damaged:
        info.scan = sc  # the whole stream: remux/transcode need not scan it again
    # (the stream's own start when it declares one, else its first packet's)
    info.start_time = float((timing.start if vs.start_time is None else vs.start_time) * tb)
    if sc.complete:
        _duration_of_whole(info, vs, timing.span)
    else:
        _duration_of_prefix(container, vs, info, tb, index, timing)
    if sc.restarts:
        _joined_segments(info, sc)
    _judge_rate(info, timing)
    return sc


def _count_frames(info: MediaInfo, sc: VideoScan) -> bool:
    """The frame count a scan found (known only when it covered the whole stream); False,
    with the error said, when it found none."""
    if sc.damaged:
        info.notes.append("demux stopped at a damaged packet")
    info.frame_count = sc.frame_count if sc.complete else None
    if not sc.frame_count:
        info.error_code = "file.unreadable"
        info.error = "the video stream holds no frames"
        return False
    return True


def _skip_large(container, vs, info: MediaInfo, tb: Fraction, index: Mp4Index | None) -> None:
    """A file too large to scan: its duration from the index, else from the header."""
    bound = _index_span(container, vs, tb, index, None)
    info.duration = bound or info.declared_duration
    info.notes.append("large file: packets not scanned; duration from "
                      + ("the index" if bound else "the header"))


@dataclass
class _StampTiming:
    """What the scanned timestamps say: the first one, the positive intervals between them
    (how many of each length: a steady rate has a few lengths, so this stays small where a
    list would take 36 bytes an interval) and their median, and the span from the first to
    the end of the last."""

    start: int
    intervals: Counter[int]
    median: int
    span: float

    @classmethod
    def of(cls, ts_sorted: array[int], tb: Fraction, last_dur: int) -> _StampTiming:
        start = ts_sorted[0]
        intervals = Counter(b - a for a, b in pairwise(ts_sorted) if b > a)
        med = _median_length(intervals)
        # (a last packet without a duration lasts the median interval)
        span = float((ts_sorted[-1] - start + (last_dur or med)) * tb)
        return cls(start, intervals, med, span)


def _median_length(lengths: Counter[int]) -> int:
    """The upper median of the lengths counted (the one at index n // 2 once sorted), 0 for
    none."""
    middle, seen = lengths.total() // 2, 0
    for length in sorted(lengths):
        seen += lengths[length]
        if seen > middle:
            return length
    return 0


def _duration_of_whole(info: MediaInfo, vs, span: float) -> None:
    """The duration when every packet was scanned. Close to the packets, the header is the
    finer word (edit lists trim samples the packets still carry); far from them, the header
    lies (cut short, bogus fragments). (A container-level duration also covers audio, so it is
    not the finer word then.)"""
    declared = info.declared_duration
    container_level = not vs.duration and bool(info.has_audio)
    close = bool(declared) and abs(declared - span) <= max(1.0, 0.1 * span)
    if close and not container_level:
        info.duration = declared
        return
    info.duration = span
    if declared and not close:
        info.notes.append(f"header declares {declared:.3f} s but the stream holds "
                          f"{span:.3f} s (cut short or mis-declared)")


def _duration_of_prefix(container, vs, info: MediaInfo, tb: Fraction, index: Mp4Index | None,
                        timing: _StampTiming) -> None:
    """What was scanned is only a prefix: the end comes from the index (MP4 sample table) or
    from the last packets, found by seeking to the end; the header only without those."""
    bound = _index_span(container, vs, tb, index, timing.start)
    info.duration = max(timing.span, bound or info.declared_duration or 0.0)
    info.notes.append("packet scan stopped early; duration from "
                      + ("the index" if bound else "the header (no index found)"))


def _joined_segments(info: MediaInfo, sc: VideoScan) -> None:
    """Say that segments were joined, and judge the largest of their sizes."""
    sizes = list(dict.fromkeys(sc.segment_sizes))
    info.notes.append(f"{sc.restarts + 1} segments joined (timestamps restart at each), "
                      "read as one; sizes " + ", ".join(f"{w}x{h}" for w, h in sizes))
    largest = max(sizes, key=lambda wh: wh[0] * wh[1], default=None)
    if largest and largest[0] * largest[1] > (info.width or 0) * (info.height or 0):
        info.width, info.height = largest  # every segment is judged: the largest


def _judge_rate(info: MediaInfo, timing: _StampTiming) -> None:
    """Whether the frame rate varies, and the rate the packets give (from 3 intervals on)."""
    intervals, med = timing.intervals, timing.median
    n = intervals.total()
    if n < 3:
        return
    off = VFR_TOLERANCE * med
    irregular = sum(count for length, count in intervals.items() if abs(length - med) > off)
    info.fps_varies = irregular / n > VFR_SHARE
    if info.duration and info.frame_count:
        info.fps = info.frame_count / info.duration


def frame_preview(frame: av.VideoFrame) -> Any:
    """A decoded frame as a small RGB PIL image (long side at most PREVIEW_SIDE), turned by its
    display matrix as the frames sent are (a phone clip shot upright shows upright): the
    report's pictures of a video."""
    turn = matrix_turn(display_matrix(frame))
    small = _stored_preview(frame)
    return small.transpose(turn) if turn not in (None, "identity") else small


def _stored_preview(frame: av.VideoFrame) -> Any:
    w, h = frame.width, frame.height
    scale = min(1.0, PREVIEW_SIDE / max(w, h, 1))
    size = max(1, round(w * scale)), max(1, round(h * scale))
    cicp = frame_cicp(frame)
    if cicp is not None and cicp.hdr:  # as sent: tone-mapped, the transcodes' colour path
        from PIL import Image

        rgb = frame.reformat(width=size[0], height=size[1], format="rgb48le",
                             src_colorspace="bt2020" if cicp.matrix in (9, 10) else None,
                             src_color_range="JPEG" if cicp.full_range else "MPEG")
        return Image.fromarray(tone_map(rgb.to_ndarray(), cicp), "RGB")
    return _scaled_rgb(frame, *size).to_image()


def _scaled_rgb(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """``frame`` scaled to RGB by this thread's kept scaler, the pixels of
    ``frame.to_image(width=, height=)``: that makes a new scaler each call (more than a
    preview's scaling costs), which from PyAV 17 starts a thread per core too."""
    scaler = _preview_scaler()
    try:
        return scaler.reformat(frame, width=width, height=height, format="rgb24", threads=1)
    except TypeError:  # PyAV before 17: no threads argument (its scaling has no threads)
        return scaler.reformat(frame, width=width, height=height, format="rgb24")


_SCALERS = threading.local()


def _preview_scaler() -> Any:
    """This thread's scaler for previews (a VideoReformatter is not shared across threads)."""
    scaler = getattr(_SCALERS, "scaler", None)
    if scaler is None:
        from av.video.reformatter import VideoReformatter

        scaler = _SCALERS.scaler = VideoReformatter()
    return scaler


def _picture_bytes(frame: av.VideoFrame) -> int:
    return sum(plane.buffer_size for plane in frame.planes)


def _first_frame(container, vs, info: MediaInfo, preview: bool = False) -> Any:
    """Decode the stream's first frame: its rotation (and size, when the header has none),
    and with ``preview`` its small picture; the frame, or None when none decodes (the error
    said on ``info``)."""
    if info.error_code:
        return None
    try:
        container.seek(0, stream=vs) if vs.start_time is not None else container.seek(0)
    except av.FFmpegError:
        pass
    try:
        for frame in container.decode(vs):
            info.rotation = int(getattr(frame, "rotation", 0) or 0) % 360
            if not info.width:
                info.width, info.height = frame.width, frame.height
            if preview:
                try:
                    info.first_frame = frame_preview(frame)
                except Exception:  # noqa: BLE001 - a view of the run: never fails the input
                    info.first_frame = None
            return frame
    except av.FFmpegError as exc:
        info.error_code = "file.unreadable"
        info.error = f"the video stream does not decode ({info.codec}): {_short(exc)}"
        return None
    info.error_code = "file.unreadable"
    info.error = "no frame of the video stream decodes"
    return None


def _index_span(container, vs, tb: Fraction, index: Mp4Index | None,
                start: int | None) -> float | None:
    """Seconds the whole stream spans by its index, without demuxing it all: an MP4's sample
    table (stts), else the last packets after a seek to the end (Matroska cues, AVI idx1 ...)."""
    if index is not None and index.video_span is not None and not index.fragmented:
        return index.video_span
    if start is None:
        start = vs.start_time if vs.start_time is not None else 0
    end = _tail_end(container, vs)
    if end is None or end <= start:
        return None
    return float((end - start) * tb)


def _tail_end(container, vs) -> int | None:
    """The latest pts + duration of the last packets (at most TAIL_MAX_PACKETS), after a seek
    to the end; None when there is none or the seek fails."""
    try:
        container.seek(2 ** 62, stream=vs, backward=True, any_frame=False)
        end = None
        for n, pkt in enumerate(container.demux(vs)):
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            if ts is not None:
                t = ts + (pkt.duration or 0)
                end = t if end is None else max(end, t)
            if n >= TAIL_MAX_PACKETS:
                break
    except (av.FFmpegError, OverflowError, ValueError):
        return None
    return end


# --------------------------------------------------------------------------------- MP4 index

_CONTAINER_BOXES = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


@dataclass
class Mp4Index:
    """What an MP4's moov says of its first video track, read from the bytes."""

    video_samples: int | None = None
    video_span: float | None = None  # seconds the stts sums to (over the samples stsz lists)
    fragmented: bool = False  # moof boxes add samples the moov does not list
    implausible: str | None = None  # why the sample table cannot be right, if it cannot
    encrypted: str | None = None  # why the video cannot be decoded: a CENC sample entry
    tracks: int = 0  # trak boxes in the moov (each a stream FFmpeg sets up)


def _top_boxes(fh: IO[bytes], size: int):
    """(type, payload offset, payload size) of each top-level box, reading headers only."""
    pos = 0
    for _ in range(100_000):
        if pos + 8 > size:
            return
        fh.seek(pos)
        head = fh.read(16)
        if len(head) < 8:
            return
        n, kind = struct.unpack(">I4s", head[:8])
        hdr = 8
        if n == 1:
            if len(head) < 16:
                return
            n, hdr = struct.unpack(">Q", head[8:16])[0], 16
        elif n == 0:
            n = size - pos
        if n < hdr:
            return
        yield kind, pos + hdr, min(n, size - pos) - hdr
        pos += n


def _children(buf: bytes, off: int, end: int):
    while off + 8 <= end:
        n, kind = struct.unpack_from(">I4s", buf, off)
        hdr = 8
        if n == 1 and off + 16 <= end:
            n, hdr = struct.unpack_from(">Q", buf, off + 8)[0], 16
        elif n == 0:
            n = end - off
        if n < hdr:
            return
        yield kind, off + hdr, min(off + n, end)
        off += n


def mp4_index(fh: IO[bytes], size: int) -> Mp4Index | None:
    """Walk an MP4/MOV's boxes (headers, then the moov only) to judge its first video track's
    sample table; ``None`` when there is no moov to read."""
    if not fh.seekable():
        return None
    top = _top_level(fh, size)
    if top is None:
        return None
    moov, mdat, fragmented = top
    index = _judge_tracks(moov, size, mdat, fragmented)
    index.encrypted = _moov_encryption(moov)
    return index


def _top_level(fh: IO[bytes], size: int) -> tuple[bytes, int, bool] | None:
    """(the moov's bytes, the bytes of media data, whether moof boxes follow) from the
    top-level boxes; None when there is no moov, or one above MOOV_MAX_BYTES."""
    moov = None
    mdat = 0
    fragmented = False
    for kind, off, n in _top_boxes(fh, size):
        if kind == b"moov" and moov is None:
            if n > MOOV_MAX_BYTES:
                return None
            fh.seek(off)
            moov = fh.read(n)
        elif kind == b"mdat":
            mdat += n
        elif kind == b"moof":
            fragmented = True
    return None if moov is None else (moov, mdat, fragmented)


def _judge_tracks(moov: bytes, size: int, mdat: int, fragmented: bool) -> Mp4Index:
    """The first video track judged (:func:`_judge`); every track counted."""
    index = Mp4Index(fragmented=fragmented)
    tracks, judged = 0, False
    for kind, off, end in _children(moov, 0, len(moov)):
        if kind != b"trak":
            continue
        tracks += 1
        if judged:
            continue  # the first video track is judged; the others are only counted
        track = _track(moov, off, end)
        if track.get("handler") != b"vide":
            continue
        index, judged = _judge(track, size, mdat, fragmented), True
    index.tracks = tracks
    return index


def _track(buf: bytes, off: int, end: int) -> dict:
    out: dict = {}

    def walk(o: int, e: int) -> None:
        for kind, po, pe in _children(buf, o, e):
            if kind in _CONTAINER_BOXES:
                walk(po, pe)
            elif kind == b"hdlr" and pe - po >= 12:
                out["handler"] = buf[po + 8:po + 12]
            elif kind == b"mdhd" and pe - po >= 24:
                ver = buf[po]
                out["timescale"] = struct.unpack_from(">I", buf, po + (20 if ver == 1 else 12))[0]
            elif kind == b"stts" and pe - po >= 8:
                n = min(struct.unpack_from(">I", buf, po + 4)[0], (pe - po - 8) // 8)
                out["stts"] = array("I", buf[po + 8:po + 8 + 8 * n])
                if array("I", b"\0\0\0\1")[0] != 1:
                    out["stts"].byteswap()
            elif kind == b"stsz" and pe - po >= 12:
                out["stsz"] = struct.unpack_from(">II", buf, po + 4)
            elif kind == b"stz2" and pe - po >= 12:
                out["stsz"] = (0, struct.unpack_from(">I", buf, po + 8)[0])
            elif kind == b"elst" and pe - po >= 8:
                out["edits"] = struct.unpack_from(">I", buf, po + 4)[0]

    walk(off, end)
    return out


def _judge(track: dict, size: int, mdat: int, fragmented: bool) -> Mp4Index:
    out = Mp4Index(fragmented=fragmented)
    edits = track.get("edits", 0)
    if edits > MP4_MAX_EDITS:
        out.implausible = (f"the MP4 edit list holds {edits:,} entries (more than "
                           f"{MP4_MAX_EDITS:,}; editors write a few): FFmpeg would rebuild "
                           "its index once per entry; refused before decoding (a corrupt or "
                           "hostile index)")
        return out
    sample_size, count = track.get("stsz", (0, None))
    if count is None:
        return out
    out.video_samples = count
    out.implausible = _samples_problem(count, sample_size, size)
    if out.implausible is None:
        out.video_span = _stts_seconds(track, count)
    return out


def _samples_problem(count: int, sample_size: int, size: int) -> str | None:
    """Why ``count`` samples cannot be in a file of ``size`` bytes: every sample takes at least
    one byte of it (a constant sample size: that many); None when they can."""
    need = count * max(1, sample_size)
    if not count or need <= size:
        return None
    each = f" of {sample_size:,} B" if sample_size else ""
    return (f"the MP4 sample table declares {count:,} video samples{each} "
            f"({need:,} B) in a file of {size:,} B; refused before decoding "
            "(a corrupt or hostile index)")


def _stts_seconds(track: dict, count: int) -> float | None:
    """Seconds the time-to-sample runs (stts) add up to over the first ``count`` samples;
    None without a timescale or stts, or when they add up to nothing."""
    scale = track.get("timescale") or 0
    runs = track.get("stts")
    if not scale or runs is None:
        return None
    left, ticks = count, 0
    for i in range(0, len(runs) - 1, 2):
        k = min(runs[i], left)
        ticks += k * runs[i + 1]
        left -= k
        if not left:
            break
    return ticks / scale if ticks else None


# --- can the stream be decoded into pictures? (encryption, a missing decoder, --deep damage) ---

#: Sample entries of an encrypted track (ISO 23001-7 CENC: the real format sits in sinf/frma).
_ENCRYPTED_ENTRIES = {b"encv"}
_ENC_CONTAINERS = {b"trak", b"mdia", b"minf", b"stbl", b"sinf", b"schi"}


_NO_DECODER = "the bundled FFmpeg has no decoder for this video codec; the model would get nothing"


def undecodable_reason(src: MediaSource, info: MediaInfo, *, deep: bool = False) -> str | None:
    """Why the probed video stream cannot be decoded into the pictures the model would see, or
    None: whether the bundled FFmpeg has a decoder for the stream, and with ``deep`` every
    video packet decodes (frames are dropped as they come: memory stays bounded). Encryption
    (a CENC 'encv' sample entry) is judged by :func:`probe_video` from the moov it reads."""
    if not deep:  # the probe's own open already told whether a decoder exists
        return _NO_DECODER if info.container is not None and info.codec is None else None
    try:
        container = av.open(str(src.path) if src.path else src.open(), mode="r",
                            metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return None  # the probe already says why it cannot be opened
    try:
        with container:
            vs = video_stream(container)
            if vs is None:
                return None
            if vs.codec_context is None:
                return _NO_DECODER
            return _decode_all(container, vs)
    except (av.FFmpegError, OSError, ValueError, RuntimeError) as exc:
        return f"decoding failed: {_short(exc)}" if deep else None


def _moov_encryption(moov: bytes) -> str | None:
    """'encrypted (CENC scheme ...)' when an MP4's video sample entry is encrypted, else None."""
    found: list[str] = []
    _walk_encryption(moov, 0, len(moov), 0, found)
    if not found:
        return None
    scheme = found[-1] if len(found) > 1 else "unknown scheme"
    return (f"the video stream is encrypted ({scheme}, CENC); without the key the model would "
            "get noise")


def _walk_encryption(moov: bytes, o: int, e: int, depth: int, found: list[str]) -> None:
    """Append 'cenc' per encrypted video sample entry, then each scheme (schm) under it."""
    if depth > 12:
        return
    for k, po, pe in _children(moov, o, e):
        if k in _ENC_CONTAINERS:
            _walk_encryption(moov, po, pe, depth + 1, found)
        elif k == b"stsd" and pe - po >= 8:
            _walk_sample_entries(moov, po + 8, pe, depth, found)
        elif k == b"schm" and pe - po >= 8 and found:
            found.append(moov[po + 4:po + 8].decode("latin-1"))


def _walk_sample_entries(moov: bytes, o: int, e: int, depth: int, found: list[str]) -> None:
    """An stsd's sample entries: 'cenc' for each encrypted one, then what is under it."""
    for ek, eo, ee in _children(moov, o, e):
        if ek in _ENCRYPTED_ENTRIES:
            found.append("cenc")
            # a visual sample entry holds 78 bytes before its child boxes
            _walk_encryption(moov, eo + 78, ee, depth + 1, found)


def _decode_all(container, vs) -> str | None:
    """Decode every video packet; a message naming the first damaged one, or None."""
    cc = vs.codec_context
    tb = vs.time_base or Fraction(1, av.time_base)
    errors = packets = 0
    first: str | None = None
    for pkt in container.demux(vs):
        if pkt.size == 0:
            continue
        packets += 1
        why = _decode_error(cc, pkt)
        if why is not None:
            errors += 1
            first = first or f"packet {packets}{_at_seconds(pkt, tb)}: {why}"
    why = _decode_error(cc, None)  # drained: what the decoder held back
    if why is not None:
        errors += 1
        first = first or f"at the end of the stream: {why}"
    if errors:
        return (f"{errors} of {packets} video packets cannot be decoded (first: {first}); the "
                "model would get damaged or missing frames")
    return None


def _decode_error(cc, pkt: av.Packet | None) -> str | None:
    """Why decoding ``pkt`` (None: draining the decoder) fails, or None; frames are dropped."""
    try:
        for _frame in cc.decode(pkt):
            pass
    except av.FFmpegError as exc:
        return _short(exc)
    return None


def _at_seconds(pkt: av.Packet, tb: Fraction) -> str:
    ts = pkt.pts if pkt.pts is not None else pkt.dts
    return f" at {float(ts * tb):.3f} s" if ts is not None else ""


# --- the report's strip of a video ------------------------------------------------------------


def video_strip(path: str | os.PathLike[str], n: int, *, first: Any = None
                ) -> tuple[list[tuple[Any, float]], dict[str, Any]]:
    """Up to ``n`` frames spread over a video as small pictures (:func:`frame_preview`), with
    their times from its start, and the video's ``duration``, ``fps`` and size: the report's
    strip. ``first``: its first frame as the probe kept it (``MediaInfo.first_frame``: not
    decoded again). Raises on anything it cannot show.

    Cheap by design (the report must not cost what prep costs): a small video is decoded
    forward once; any other is read at its keyframes only (the decoder skips the rest), sought
    for each moment, so a strip of a 4K HEVC file costs a few keyframe decodes. A short file
    with one keyframe then shows fewer pictures than asked.
    """
    with _open_for_strip(path) as container:
        stream = container.streams.video[0]
        _quiet_decoder(stream.codec_context)
        clock = _StripClock.of(container, stream, n)
        meta = {"duration": clock.duration, "fps": clock.fps,
                "width": stream.codec_context.width or 0,
                "height": stream.codec_context.height or 0}
        costly = clock.forward_pixels(meta["width"], meta["height"]) > FORWARD_DECODE_PIXELS
        pics: list[tuple[Any, float]] = []
        if costly and n > 1:
            pics = _strip_by_seeking(container, stream, clock, first)
        if not pics:
            pics = _strip_forward(container, stream, clock, first,
                                  keyframes_only=n == 1 or costly)
    if not pics:
        raise ValueError("no frame could be decoded")
    return pics, meta


def _open_for_strip(path: str | os.PathLike[str]) -> Any:
    """A short probe (QUICK_PROBE; mediaprep's own outputs are MP4), in full when the short one
    leaves the size unknown."""
    container = av.open(str(path), "r", options=QUICK_PROBE)
    if not container.streams.video or not container.streams.video[0].codec_context.width:
        container.close()
        container = av.open(str(path), "r")
    return container


def _quiet_decoder(cc: Any) -> None:
    """A decoder set for a few pictures, not throughput: one thread (frame threads decode
    ahead, CPU spent on frames never shown, and each costs a start-up), and no deblocking where
    the codec allows (invisible at 256 px, a fifth of these codecs' decode time)."""
    cc.thread_count = 1
    cc.skip_frame = "DEFAULT"  # the probe's "all" stays off the decode
    if cc.name in LOOP_FILTERED:
        cc.options = {"skip_loop_filter": "all"}


@dataclass(frozen=True)
class _StripClock:
    """A video's timing as its strip reads it: where its stream starts (seconds), how long it
    lasts and its rate (None: unknown), its time base, and the moments (seconds from the start)
    the strip would show."""

    start: float
    duration: float | None
    fps: float | None
    tb: Any
    times: list[float]

    @classmethod
    def of(cls, container: Any, stream: Any, n: int) -> _StripClock:
        tb = stream.time_base
        duration = _stream_seconds(container, stream)
        rate = stream.average_rate or stream.guessed_rate
        times = [duration * k / n for k in range(n)] if duration else [0.0]
        return cls(_stream_start(stream), duration, float(rate) if rate else None, tb, times)

    def forward_pixels(self, width: int, height: int) -> float:
        """The pixels a forward decode of every frame would cost."""
        return (self.duration or 0) * (self.fps or 30) * width * height


def _stream_start(stream: Any) -> float:
    """Seconds at which a stream's first frame is shown (0 when it does not say)."""
    tb = stream.time_base
    return float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0


def _stream_seconds(container: Any, stream: Any) -> float | None:
    """What a stream lasts by its header, else by the container's; None when neither says."""
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return None


def _strip_by_seeking(container: Any, stream: Any, clock: _StripClock,
                      first: Any) -> list[tuple[Any, float]]:
    """The strip from keyframes only, one seek a moment; stops early where seeking does not
    pay (a decoder that decodes an open GOP's leading pictures)."""
    stream.codec_context.skip_frame = "NONKEY"
    tb = clock.tb
    # A seek that lands on a keyframe shown already, or close after it (under half the
    # strip's spacing: the same picture to the eye), decodes nothing.
    gap = (clock.duration or 0) / len(clock.times) / 2 / float(tb)
    shown: list[int] = []
    pics: list[tuple[Any, float]] = []
    times = clock.times
    if first is not None:
        pics += _probe_frame_at_start(container, stream, clock, first, shown)
        times = times[1:]
    for t in times:
        frame = _key_frame_near(container, stream, clock.start + t, tb, shown, gap)
        if frame is False:
            continue  # the same keyframe as the last moment: not decoded again
        if frame is None:
            break
        if _apart(frame, pics, clock, gap):
            pics.append(_frame_at(frame, clock.start, tb))
        if frame.pts is not None and frame.pts < shown[-1]:
            # a picture from before the keyframe sought: this decoder decodes an open
            # GOP's leading pictures (VVC), so every seek would cost a GOP: stop here
            break
    if not pics:
        container.seek(0)  # back to the start, for the forward decode
    return pics


def _apart(frame: Any, pics: list[tuple[Any, float]], clock: _StripClock, gap: float) -> bool:
    """Whether ``frame`` comes more than ``gap`` (time base units) after the last picture."""
    if not pics:
        return True
    at = max(0.0, _seconds(frame, clock.tb) - clock.start)
    return at > pics[-1][1] + gap * float(clock.tb)


def _probe_frame_at_start(container: Any, stream: Any, clock: _StripClock, first: Any,
                          shown: list[int]) -> list[tuple[Any, float]]:
    """The start's keyframe is the probe's frame (``first``): its packet is only read, for its
    time and so that a later seek landing on it decodes nothing."""
    for packet in container.demux(stream):
        if packet.size and packet.pts is not None:
            shown.append(packet.pts)
            return [(first, max(0.0, float(packet.pts * clock.tb) - clock.start))]
    return []


def _key_frame_near(container: Any, stream: Any, seconds: float, tb: Any, shown: list[int],
                    gap: float) -> Any:
    """:func:`_next_key_frame` after a seek to the keyframe at or before ``seconds``."""
    with contextlib.suppress(av.FFmpegError):
        container.seek(int(seconds / tb), stream=stream, backward=True)
        # nothing decoded before the seek may come out after it
        stream.codec_context.flush_buffers()
    return _next_key_frame(container, stream, shown, gap)


def _strip_forward(container: Any, stream: Any, clock: _StripClock, first: Any, *,
                   keyframes_only: bool) -> list[tuple[Any, float]]:
    """The strip from one forward decode: the first frame at or after each moment (at most
    MAX_FORWARD_FRAMES decoded; ``keyframes_only``: the decoder skips the others)."""
    if keyframes_only:
        stream.codec_context.skip_frame = "NONKEY"
    tb, start = clock.tb, clock.start
    pics: list[tuple[Any, float]] = []
    wanted = iter(clock.times)
    nxt = next(wanted, None)
    for k, frame in enumerate(container.decode(stream)):
        if nxt is None or k >= MAX_FORWARD_FRAMES:
            break
        if k == 0 and first is not None:
            pics.append((first, max(0.0, _seconds(frame, tb) - start)))
        elif _seconds(frame, tb) - start + 1e-6 >= nxt or k == 0:
            pics.append(_frame_at(frame, start, tb))
        else:
            continue
        nxt = next(wanted, None)
    return pics


def _next_key_frame(container: Any, stream: Any, shown: list[int], gap: float) -> Any:
    """The first frame decoded after a seek (None: none left), or False when the seek landed
    on a keyframe at most ``gap`` (time base units) after one in ``shown``: a short clip has
    one keyframe, so three seeks make one decode."""
    for packet in container.demux(stream):
        if packet.size and packet.pts is not None:
            if any(s <= packet.pts <= s + gap for s in shown):
                return False
            shown.append(packet.pts)
            break
    else:
        return None
    for frame in packet.decode():
        return frame
    # a decoder that holds the picture back (HEVC reorders) gives it up when drained: feeding
    # it more packets instead decodes the next keyframe too, and may put that one out first
    drained = stream.codec_context.decode(None)
    stream.codec_context.flush_buffers()  # out of its drained state, ready for the next seek
    if drained:
        return drained[0]
    return next(iter(container.decode(stream)), None)


LOOP_FILTERED = frozenset({"h264", "hevc", "vvc"})  #: decoders that can skip their deblocking
#: A short probe that decodes nothing: the streams' sizes and rates are in the container's
#: header, and FFmpeg's probe decodes a picture of every stream for the pixel format (45 ms for
#: a 3K H.264 keyframe) that the strip's own decode finds anyway.
QUICK_PROBE = {"analyzeduration": "0", "probesize": "65536", "skip_frame": "all"}
#: a video whose every frame adds up to fewer pixels is decoded forward for its strip
FORWARD_DECODE_PIXELS = 10_000_000
MAX_FORWARD_FRAMES = 600  #: frames decoded forward at most for a video's thumbnails


def _seconds(frame: Any, tb: Any) -> float:
    """A frame's time from its pts in the stream's time base (a frame drained from the decoder
    carries no time base of its own: its ``time`` is NaN)."""
    return float(frame.pts * tb) if frame.pts is not None and tb else 0.0


def _frame_at(frame: Any, start: float, tb: Any) -> tuple[Any, float]:
    return frame_preview(frame), max(0.0, _seconds(frame, tb) - start)


def _still_streams(container: Any) -> tuple[Any, Any]:
    """An image file's colour stream and its alpha plane's stream (FFmpeg's AVIF demuxer
    names them "Color" and "Alpha"), the latter None when absent."""
    videos = list(container.streams.video)
    alpha = next((s for s in videos if (s.metadata or {}).get("title") == "Alpha"), None)
    colour = next((s for s in videos if s is not alpha), None)
    if colour is None:
        raise ValueError("no picture stream")
    return colour, alpha


def probe_still(src: MediaSource) -> tuple[int, int, bool] | None:
    """Width, height and whether it has alpha, of a still image (an AVIF Pillow refuses) as
    the bundled FFmpeg reads it, from the stream header (nothing decoded); None when FFmpeg
    cannot read it either."""
    try:
        with av.open(str(src.path) if src.path else src.open(), mode="r") as container:
            colour, alpha = _still_streams(container)
            cc = colour.codec_context
            if not cc.width or not cc.height:
                return None
            return cc.width, cc.height, alpha is not None
    except (av.FFmpegError, OSError, ValueError):
        return None


def decode_still(src: MediaSource) -> Any:
    """The picture of an image file Pillow refuses (an AVIF), decoded by the bundled FFmpeg
    (dav1d): RGB, or RGBA with its alpha plane; a PIL image. OSError when it cannot."""
    try:
        return _decode_still(src)
    except (av.FFmpegError, StopIteration, ValueError) as exc:
        raise OSError(f"the bundled FFmpeg cannot decode it: {_short(exc)}") from exc


def _decode_still(src: MediaSource) -> Any:
    with av.open(str(src.path) if src.path else src.open(), mode="r") as container:
        colour, alpha = _still_streams(container)
        frame = next(container.decode(colour))
        img = frame.to_image()
        if alpha is None:
            return img
    with av.open(str(src.path) if src.path else src.open(), mode="r") as container:
        _, alpha = _still_streams(container)
        plane = next(container.decode(alpha)).reformat(format="gray", width=img.width,
                                                        height=img.height)
        img.putalpha(Image.fromarray(plane.to_ndarray(), "L"))
    return img
