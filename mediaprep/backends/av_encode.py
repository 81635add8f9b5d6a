"""Make a video *file* fit: remux into MP4, or transcode to H.264/MP4 under a byte budget.

Everything goes through PyAV's bundled FFmpeg and libx264; no ``ffmpeg`` binary is needed.

* :func:`remux` copies the video packets into a new container (audio, subtitles and data
  streams are dropped: the Kimi models ignore audio) when the codec may live there.
* :func:`transcode_to_fit` re-encodes to H.264 High/yuv420p in a faststart MP4 whose size, as
  counted by ``size_of`` (e.g. the length of the ``data:`` URL), fits ``max_bytes``.
* :func:`verify` demuxes every packet, decodes the first and the last frames and checks the
  duration.

Outputs are written to a temporary file next to the destination and moved into place with
:func:`os.replace` only after :func:`verify` passes, so an interrupted run never leaves a partial
destination file behind.

Timing: source presentation timestamps are kept (rebased to start at 0), so a VFR source stays
VFR. Why not convert to CFR: duplicating or dropping frames changes what a model sampling at
``fps`` sees, costs bits for duplicated frames, and rounding to a constant rate drifts the
duration; x264's rate control uses the real timestamps (``vfr_input``) so the bitrate still holds.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import av.filter

from ..errors import MediaprepError
from ..output import temp_path_for
from ..tuning import (  # noqa: F401  (re-exported)
    MAX_ATTEMPTS,
    MAX_BITS_PER_PIXEL,
    MIN_BITS_PER_PIXEL,
    MIN_SHORT_SIDE,
    X264_PRESET,
)
from ..types import MediaInfo
from .av import (
    Mp4Index,
    TimestampMender,
    VideoScan,
    display_matrix,
    mp4_index,
    read_video,
    scan_packets,
    video_stream,
)
from .colour import HALD_LEVEL, frame_cicp, hald_clut
from .sniff import HEAD_BYTES, identity_size, largest_fitting, sniff

#: libx264 threads. One thread makes a transcode deterministic (same input and options give the
#: same bytes, so a resumed run matches an uninterrupted one): with frame threads (0 = auto)
#: two runs of mb_cursed-vfr.mp4 gave 738,051 vs 733,988 bytes, and sliced threads
#: (x264-params sliced-threads=1) differed too. Measured cost: none that shows on a 2-core
#: machine (mb_cursed-vfr.mp4: 3.5-3.7 s with auto threads, 2.6-2.7 s with one, under load).
X264_THREADS = 1
#: Extra x264-params joined to the per-encode ones (empty: none).
X264_PARAMS = ""

__all__ = [
    "DoesNotFit",
    "RemuxNotPossible",
    "VerifyError",
    "VideoEncodeError",
    "VideoOutput",
    "remux",
    "transcode_floor_fits",
    "transcode_to_fit",
    "verify",
]

#: MP4 container cost: ftyp+moov headers, plus sample tables (stsz, stts, ctts, stss, stco)
#: per frame. Measured ~13 B/frame for x264 "veryfast" with B-frames; 20 leaves headroom.
MP4_FIXED_OVERHEAD = 2048
MP4_PER_FRAME_OVERHEAD = 20
#: An H.264 frame cannot be smaller than its NAL/slice headers (~10-20 B even for all-skip P).
MIN_BYTES_PER_FRAME = 16


class VideoEncodeError(MediaprepError):
    """Base class for errors from :mod:`mediaprep.backends.av_encode`."""


class RemuxNotPossible(VideoEncodeError):
    """The source's video codec cannot be stored in the requested container."""


class DoesNotFit(VideoEncodeError):
    """No attempt produced a file within the budget.

    ``best_bytes`` is the smallest size reached (as counted by ``size_of``), or ``None`` when the
    budget was too small to even try.
    """

    def __init__(self, message: str, *, budget: int, best_bytes: int | None) -> None:
        super().__init__(message)
        self.budget = budget
        self.best_bytes = best_bytes


class VerifyError(VideoEncodeError):
    """The written file does not demux/decode, or its duration is off."""


@dataclass
class VideoOutput:
    """What was written. ``width``/``height`` are the stored (coded) dimensions; ``bytes`` is
    the file size on disk (not ``size_of`` of it); ``bitrate`` is the overall bits per second."""

    path: str
    container: str
    codec: str
    width: int
    height: int
    duration: float
    bytes: int
    bitrate: int | None
    remuxed: bool
    transcoded: bool
    attempts: int
    steps: list[str] = field(default_factory=list)
    dropped: int = 0  # input frames not in the output (repeated timestamps): said in a finding
    # the output as mediaprep.probe describes it (from verify's one open), path set to dst
    info: MediaInfo | None = field(default=None, repr=False, compare=False)


# --------------------------------------------------------------------------------------------
# source scan


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    s = video_stream(container)
    if s is None:
        raise VideoEncodeError(f"{container.name}: no video stream")
    return s


def _scan(src: str) -> VideoScan:
    """Demux (not decode) all video packets: the real span and count, whatever the header says.

    Only when the probe's scan (``MediaInfo.scan``) is not at hand or stopped early: it is the
    same pass (mediaprep.backends.av.scan_packets), here unbounded. Headers lie (truncated
    files keep the full duration, some WebM have none), and the bitrate must be chosen before
    the first frame is encoded.
    """
    with av.open(src) as c:
        return scan_packets(c, _video_stream(c), bounded=False)


def _usable(scan: VideoScan | None) -> bool:
    return scan is not None and scan.complete and not scan.damaged


def _whole_scan(src: str, scan: VideoScan | None) -> VideoScan:
    """The caller's scan when it covered the whole stream, else a scan of ``src`` of its own."""
    if scan is None or not _usable(scan):
        return _scan(src)
    return scan


def _require_packets(src: str, scan: VideoScan) -> None:
    if scan.packets == 0 or scan.start is None:
        raise VerifyError(f"{src}: no video packets")


# --------------------------------------------------------------------------------------------
# remux


def _tmp_path(dst: str, suffix: str) -> str:
    """A fresh temp file beside dst (so os.replace is an atomic rename), with an ordinary
    file's mode: it is renamed into place as an output."""
    return str(temp_path_for(Path(dst).with_suffix(suffix)))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


_SUPPORTED: dict[str, set[str]] = {}


def _container_accepts(container: str, codec: str) -> bool:
    """avformat_query_codec through PyAV: does the muxer have a tag for this codec?"""
    if container not in _SUPPORTED:
        # Opening a null-IO output is the only way PyAV exposes the muxer's codec table.
        import io

        with av.open(io.BytesIO(), "w", format=container) as oc:
            _SUPPORTED[container] = set(oc.supported_codecs)
    return codec in _SUPPORTED[container]


def remux(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *, container: str = "mp4",
    scan: VideoScan | None = None,
) -> VideoOutput:
    """Copy the video packets of ``src`` into a new ``container`` file at ``dst``.

    Audio, subtitle, data and attachment streams are dropped. MP4/MOV get ``+faststart`` (moov
    first) so a fetching server can start at once. Timestamps are rebased to start at 0; the
    display rotation is kept (it is metadata on the packets' stream, copied with the codec
    parameters). Raises :class:`RemuxNotPossible` when the muxer has no tag for the codec.
    ``scan`` is the source's packet scan when the caller has it (``MediaInfo.scan``).
    """
    src, dst = os.fspath(src), os.fspath(dst)
    scan = _whole_scan(src, scan)
    if not _container_accepts(container, scan.codec):
        raise RemuxNotPossible(f"{scan.codec} video cannot be stored in {container}")
    _require_packets(src, scan)
    if len(set(scan.segment_sizes)) > 1:  # one MP4 track has one picture size
        raise RemuxNotPossible("its joined segments differ in picture size")
    options = {"movflags": "+faststart"} if container in ("mp4", "mov") else {}
    tmp = _tmp_path(dst, "." + container)
    try:
        with av.open(src) as ic:
            ist = ic.streams[scan.stream_index]
            with av.open(tmp, "w", format=container, options=options) as oc:
                dropped = _copy_packets(ic, ist, oc, scan, container)
        info = verify(tmp, expected_duration=scan.span)
        out = _describe(info, tmp, dst, container, remuxed=True, transcoded=False, attempts=1,
                        steps=_remux_steps(scan, container, dropped))
        out.dropped = dropped
        os.replace(tmp, dst)
        return out
    finally:
        _unlink(tmp)


def _copy_packets(ic: Any, ist: Any, oc: Any, scan: VideoScan, container: str) -> int:
    """Copy the video packets of ``ist`` into a stream of ``oc``, rebased to start at 0 (joined
    segments on the timeline the scan gave them); returns how many were dropped because their
    dts repeats (muxers need strictly increasing dts; a repeated one is a broken packet)."""
    ost = _copied_stream(oc, ist, scan, container)
    offset = scan.start
    assert offset is not None
    last_dts: int | None = None
    dropped = 0
    mender = TimestampMender(scan.time_base) if scan.restarts else None
    for p in ic.demux(ist):
        if p.size == 0:
            continue
        if mender is not None:
            mender.mend(p)
        _rebase(p, offset)
        if p.dts is not None:
            if last_dts is not None and p.dts <= last_dts:
                dropped += 1
                continue
            last_dts = p.dts
        p.stream = ost
        _mux_copied(oc, p, scan, container, first=last_dts is None)
    return dropped


def _copied_stream(oc: Any, ist: Any, scan: VideoScan, container: str) -> Any:
    try:
        return oc.add_stream_from_template(ist)
    except (ValueError, av.error.FFmpegError) as e:
        raise RemuxNotPossible(f"{scan.codec} into {container}: {e}") from e


def _rebase(p: av.Packet, offset: int) -> None:
    if p.pts is not None:
        p.pts -= offset
    if p.dts is not None:
        p.dts -= offset


def _mux_copied(oc: Any, p: av.Packet, scan: VideoScan, container: str, *, first: bool) -> None:
    """Mux a copied packet; ``first``: no packet with a dts is in yet, so a refusal is the
    muxer refusing the stream's header (the codec cannot live there)."""
    try:
        oc.mux(p)
    except av.error.FFmpegError as e:
        if first:
            raise RemuxNotPossible(f"{scan.codec} into {container}: {e}") from e
        raise


def _remux_steps(scan: VideoScan, container: str, dropped: int) -> list[str]:
    steps = [f"remux {scan.codec} into {container}"]
    if scan.restarts:
        steps.append(f"{scan.restarts + 1} joined segments put on one timeline")
    if dropped:
        steps.append(f"dropped {dropped} frames with repeated timestamps")
    return steps


def _describe(
    info: MediaInfo,
    tmp: str,
    dst: str,
    container: str,
    *,
    remuxed: bool,
    transcoded: bool,
    attempts: int,
    steps: list[str],
) -> VideoOutput:
    """What was written, from verify's description (no open of its own)."""
    sc = info.scan
    dur = sc.span
    size = os.path.getsize(tmp)
    info.path = os.path.abspath(dst)
    return VideoOutput(
        path=os.path.abspath(dst),
        container=container,
        codec=sc.codec,
        width=sc.width,
        height=sc.height,
        duration=dur,
        bytes=size,
        bitrate=int(size * 8 / dur) if dur > 0 else None,
        remuxed=remuxed,
        transcoded=transcoded,
        attempts=attempts,
        steps=steps,
        info=info,
    )


# --------------------------------------------------------------------------------------------
# verify


def verify(
    path: str | os.PathLike[str], *, expected_duration: float, tolerance: float = 0.1
) -> MediaInfo:
    """Check that ``path`` is a usable video: every video packet demuxes, the first frame and the
    frames of the last GOP decode, and the packet span is within ``tolerance`` s of
    ``expected_duration``. Raises :class:`VerifyError`. Returns the file as
    :func:`mediaprep.probe` describes it (same scan, same rules), from this one open.

    Why not decode everything: a full decode costs as much as a third of the encode; demuxing all
    packets catches truncation and the two decodes catch a broken stream start or end. The last
    GOP is kept in memory (bounded by the GOP size) so no seek is needed.
    """
    path = os.fspath(path)
    fmt, size, index = _head_of(path)
    info = MediaInfo(path=path, kind="video", format=fmt, bytes=size)
    gop: list[av.Packet] = []

    def keep(p: av.Packet) -> None:
        if p.is_keyframe:
            gop.clear()
        gop.append(p)

    try:
        with av.open(path, metadata_errors="ignore") as c:
            read_video(c, info, index, bounded=False, on_packet=keep)
            sc = _timed_scan(path, info)
            _decode_last_gop(path, c.streams[sc.stream_index].codec_context, gop)
            duration = sc.span
    except av.error.FFmpegError as e:
        raise VerifyError(f"{path}: {e}") from e
    except VerifyError:
        raise
    except VideoEncodeError as e:
        raise VerifyError(str(e)) from e
    if abs(duration - expected_duration) > tolerance:
        raise VerifyError(
            f"{path}: duration {duration:.3f} s, expected {expected_duration:.3f} s "
            f"(tolerance {tolerance} s)"
        )
    return info


def _head_of(path: str) -> tuple[str | None, int, Mp4Index | None]:
    """(format sniffed, size, MP4 index when it is one) of a written file."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            fmt = sniff(fh.read(HEAD_BYTES)).format
            return fmt, size, _index_of(fh, fmt, size)
    except OSError as e:
        raise VerifyError(f"{path}: {e}") from e


def _index_of(fh: Any, fmt: str | None, size: int) -> Mp4Index | None:
    if fmt not in ("mp4", "mov", "3gp"):
        return None
    try:
        return mp4_index(fh, size)
    except (ValueError, struct.error):
        return None


def _timed_scan(path: str, info: MediaInfo) -> VideoScan:
    """The whole scan read_video kept, with its timestamps; VerifyError when there is none."""
    if info.error_code:
        raise VerifyError(f"{path}: {info.error}")
    sc = info.scan
    if sc is None or sc.start is None or sc.end is None:
        raise VerifyError(f"{path}: no timestamps")
    return sc


def _decode_last_gop(path: str, cc: Any, gop: list[av.Packet]) -> None:
    cc.flush_buffers()
    last = [f for p in gop for f in cc.decode(p)]
    last += cc.decode(None)
    if not last:
        raise VerifyError(f"{path}: the last frames do not decode")


# --------------------------------------------------------------------------------------------
# transcode


def transcode_floor_fits(frames: int, max_bytes: int, size_of: Callable[[int], int],
                         margin: float) -> bool:
    """Whether any transcode of ``frames`` frames can fit ``max_bytes`` (as transcode_to_fit
    counts it): False when the MP4 overhead and the smallest H.264 frames alone are over it,
    which check can know from the probe, before any encode."""
    floor = MP4_FIXED_OVERHEAD + (MP4_PER_FRAME_OVERHEAD + MIN_BYTES_PER_FRAME) * max(frames, 1)
    return _payload_budget(max_bytes, size_of, margin) >= floor


def _payload_budget(max_bytes: int, size_of: Callable[[int], int], margin: float) -> int:
    """Largest file size n with size_of(n) <= max_bytes*(1-margin) (size_of is monotonic)."""
    return largest_fitting(size_of, math.floor(max_bytes * (1.0 - margin)))


def _even_floor(x: float) -> int:
    return max(2, int(x) // 2 * 2)


def _fit_dims(
    w: int, h: int, sar: Fraction, max_box: tuple[int, int] | None, min_side_exclusive: int
) -> tuple[int, int]:
    """Square-pixel, box-fitted, even dimensions (before rotation; the box is orientation-free).

    SAR is corrected by shrinking the stretched axis, never enlarging the other: no invented
    pixels, and the frame never grows past the source's pixel grid.
    """
    fw, fh = float(w), float(h)
    if sar > 1:
        fh = h / float(sar)
    elif sar < 1:
        fw = w * float(sar)
    if max_box:
        long_box, short_box = max(max_box), min(max_box)
        s = min(1.0, long_box / max(fw, fh), short_box / min(fw, fh))
        fw, fh = fw * s, fh * s
    ow, oh = _even_floor(fw), _even_floor(fh)
    floor_side = min_side_exclusive + 1 + (min_side_exclusive + 1) % 2  # smallest even > limit
    if ow <= min_side_exclusive or oh <= min_side_exclusive:
        ow, oh = max(ow, floor_side), max(oh, floor_side)
    return ow, oh


def _shrink(w: int, h: int, area_factor: float, min_short: int) -> tuple[int, int]:
    """Scale (w, h) so the area is ~area_factor of it, keeping aspect, short side >= min_short."""
    s = math.sqrt(max(area_factor, 0.0))
    short = min(w, h)
    if short * s < min_short:
        s = min(1.0, min_short / short)
    return _even_floor(w * s), _even_floor(h * s)


@dataclass
class _Rotation:
    """How to turn stored frames upright, as ffmpeg's autorotate does (fftools ffmpeg_filter.c)."""

    filters: list[tuple[str, str]]
    swaps: bool
    note: str


def _rotation_of(frame: av.VideoFrame) -> _Rotation:
    m = display_matrix(frame)
    theta = _clockwise_degrees(frame)
    for quarter, turn in _QUARTER_TURNS.items():
        if abs(theta - quarter) < 1:
            return turn(m)
    return _Rotation([], False, f"rotation {theta:g} deg is not a multiple of 90; left as is")


def _clockwise_degrees(frame: av.VideoFrame) -> int:
    """Degrees to turn the frame clockwise, in [0, 360) (ffmpeg's get_rotation())."""
    try:
        ccw = float(frame.rotation)  # av_display_rotation_get: counter-clockwise degrees
    except (TypeError, ValueError):
        ccw = 0.0
    if math.isnan(ccw):
        ccw = 0.0
    theta = -round(ccw)
    return theta - 360 * math.floor(theta / 360 + 0.9 / 360)


# What each quarter turn is, given the display matrix (None: none read) to tell a turn from a
# turn and a mirror


def _turn_90(m: tuple[int, ...] | None) -> _Rotation:
    flip = m is not None and m[3] > 0
    return _Rotation([("transpose", "cclock_flip" if flip else "clock")], True, "rotate 90")


def _turn_180(m: tuple[int, ...] | None) -> _Rotation:
    f: list[tuple[str, str]] = []
    if m is None or m[0] < 0:
        f.append(("hflip", ""))
    if m is None or m[4] < 0:
        f.append(("vflip", ""))
    return _Rotation(f, False, "rotate 180")


def _turn_270(m: tuple[int, ...] | None) -> _Rotation:
    flip = m is not None and m[3] < 0
    return _Rotation([("transpose", "clock_flip" if flip else "cclock")], True, "rotate 270")


def _turn_0(m: tuple[int, ...] | None) -> _Rotation:
    if m is not None and m[4] < 0:
        return _Rotation([("vflip", "")], False, "vertical flip")
    return _Rotation([], False, "")


_QUARTER_TURNS: dict[int, Callable[[tuple[int, ...] | None], _Rotation]] = {
    90: _turn_90, 180: _turn_180, 270: _turn_270, 0: _turn_0}


class _Pipeline:
    """buffer -> (transpose/flip) -> scale -> format=yuv420p -> buffersink, rebuilt whenever the
    decoded frame geometry or pixel format changes mid-stream."""

    def __init__(self, time_base: Fraction, out_w: int, out_h: int, threads: int) -> None:
        self.time_base = time_base
        self.out_w, self.out_h = out_w, out_h
        self.threads = threads
        self.key: tuple[int, int, str] | None = None
        self.rotation: _Rotation | None = None
        self.graph: av.filter.Graph | None = None
        self.src: Any = None  # the graph's buffer source of decoded frames
        self.tone_mapped = ""  # "BT.2020 HLG" when the pipeline tone-maps that to SDR

    def _build(self, frame: av.VideoFrame) -> None:
        rot = self.rotation
        assert rot is not None
        g = av.filter.Graph()
        g.threads = self.threads
        src = g.add(
            "buffer",
            video_size=f"{frame.width}x{frame.height}",
            pix_fmt=str(int(av.VideoFormat(frame.format.name))),
            time_base=str(self.time_base),
            pixel_aspect="1/1",  # SAR is handled by the explicit output size
        )
        nodes = [src]
        for name, arg in rot.filters:
            nodes.append(g.add(name, arg) if arg else g.add(name))
        cicp = frame_cicp(frame)
        if cicp is not None and cicp.hdr:
            # PQ/HLG: no zscale in PyAV's FFmpeg, so the tone map (colour.tone_map) goes in as
            # a Hald CLUT, applied to the scaled picture in RGB; the result is BT.709 SDR
            size = HALD_LEVEL ** 3
            full = "pc" if frame.color_range == 2 else "tv"
            nodes.append(g.add("scale", f"{self.out_w}:{self.out_h}:flags=bicubic:"
                                        f"in_color_matrix={_MATRIX.get(cicp.matrix, 'auto')}:"
                                        f"in_range={full}"))
            nodes.append(g.add("format", "rgb48le"))
            clut_src = g.add("buffer", video_size=f"{size}x{size}",
                             pix_fmt=str(int(av.VideoFormat("rgb48le"))),
                             time_base=str(self.time_base), pixel_aspect="1/1")
            hald = g.add("haldclut", "interp=trilinear")
            g.link_nodes(*nodes, hald)
            clut_src.link_to(hald, 0, 1)
            tail = [hald, g.add("scale", "out_color_matrix=bt709:out_range=tv"),
                    g.add("format", "yuv420p"), g.add("buffersink")]
            g.link_nodes(*tail).configure()
            clut = av.VideoFrame.from_ndarray(hald_clut(cicp), format="rgb48le")
            clut.pts = 0
            clut.time_base = self.time_base
            clut_src.push(clut)
            clut_src.push(None)  # one picture: haldclut keeps using it
            self.src = src
            self.graph = g
            self.key = (frame.width, frame.height, frame.format.name)
            self.tone_mapped = cicp.describe()
            return
        # Full-range (yuvj*, MJPEG) input is converted to limited range, as H.264 players expect.
        nodes.append(g.add("scale", f"{self.out_w}:{self.out_h}:flags=bicubic"))
        nodes.append(g.add("format", "yuv420p"))
        nodes.append(g.add("buffersink"))
        g.link_nodes(*nodes).configure()
        self.src = src
        self.graph = g
        self.key = (frame.width, frame.height, frame.format.name)

    def process(self, frame: av.VideoFrame) -> Iterator[av.VideoFrame]:
        if self.rotation is None:
            self.rotation = _rotation_of(frame)
            if self.rotation.swaps:
                self.out_w, self.out_h = self.out_h, self.out_w
        if self.key != (frame.width, frame.height, frame.format.name):
            self._build(frame)
        assert self.graph is not None
        self.src.push(frame)
        while True:
            try:
                yield self.graph.vpull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return


#: H.273 matrix code -> the scale filter's name for it
_MATRIX = {1: "bt709", 5: "bt601", 6: "smpte170m", 7: "smpte240m", 9: "bt2020"}


@dataclass
class _Attempt:
    width: int
    height: int
    bitrate: int
    maxrate: int
    bufsize: int


@dataclass
class _EncodeStats:
    frames: int = 0
    decode_errors: int = 0
    dropped_ts: int = 0
    duration: float = 0.0
    width: int = 0
    height: int = 0
    rotation_note: str = ""
    tone_mapped: str = ""


def _decoded_frames(c: Any, s: Any, stats: _EncodeStats,
                    mender: TimestampMender | None = None) -> Iterator[av.VideoFrame]:
    """Decode, skipping packets the decoder rejects (corrupt mid-stream data) and counting them.
    ``mender``: joined segments' restarting timestamps put on one timeline, as the scan did."""
    for p in c.demux(s):
        if p.size == 0:  # PyAV's trailing flush packet; the decoder is drained below
            continue
        if mender is not None:
            mender.mend(p)
        try:
            frames = s.codec_context.decode(p)
        except av.error.FFmpegError:
            stats.decode_errors += 1
            continue
        yield from frames
    try:
        yield from s.codec_context.decode(None)
    except av.error.FFmpegError:
        stats.decode_errors += 1


def _encode(
    src: str, tmp: str, scan: VideoScan, att: _Attempt, max_duration: float | None
) -> _EncodeStats:
    """One streaming decode -> filter -> x264 -> MP4 pass. Only a handful of frames are alive at
    once (decoder delay + x264 lookahead), so memory does not grow with the video's length."""
    stats = _EncodeStats()
    tb = scan.time_base
    limit_ts = None if max_duration is None else int(max_duration / tb)
    with av.open(src) as ic:
        ist = ic.streams[scan.stream_index]
        ist.thread_type = "AUTO"  # frame + slice threads in the decoder
        ist.codec_context.thread_count = 0
        with av.open(tmp, "w", format="mp4", options={"movflags": "+faststart"}) as oc:
            ost = _x264_stream(oc, scan, att)
            timeline = _Timeline(default_dur=max(1, round(1 / (max(scan.fps, 0.1) * tb))))
            writer = _FrameWriter(oc, ost, _Pipeline(tb, att.width, att.height, threads=0),
                                  stats, timeline.default_dur)
            mender = TimestampMender(tb) if scan.restarts else None
            for frame in _decoded_frames(ic, ist, stats, mender):
                rel = timeline.relative(frame.pts)
                if limit_ts is not None and rel >= limit_ts:
                    break
                if timeline.repeats(rel):
                    stats.dropped_ts += 1  # non-increasing pts: the muxer would refuse it
                    continue
                dur = frame.duration or 0
                frame.pts = rel
                writer.write(frame, rel, dur)
                timeline.advance(rel, dur)
            writer.flush()
            stats.width, stats.height = ost.width, ost.height
            stats.duration = float(timeline.end(limit_ts) * tb)
    if stats.frames == 0:
        raise VerifyError(f"{src}: no frame could be decoded")
    return stats


def _x264_stream(oc: Any, scan: VideoScan, att: _Attempt) -> Any:
    """The H.264 output stream of one attempt: its size, rates and x264 options; frames keep
    the source's time base (VFR stays VFR)."""
    tb = scan.time_base
    ost = oc.add_stream("libx264", rate=Fraction(scan.fps).limit_denominator(1001))
    ost.width, ost.height = (att.width, att.height)
    ost.pix_fmt = "yuv420p"
    ost.time_base = tb
    cc = ost.codec_context
    cc.time_base = tb  # frames keep the source pts: VFR stays VFR
    cc.bit_rate = att.bitrate
    cc.thread_count = X264_THREADS
    cc.options = _x264_options(scan, att)
    return ost


def _x264_options(scan: VideoScan, att: _Attempt) -> dict[str, str]:
    options = {
        "preset": X264_PRESET,
        "maxrate": str(att.maxrate),
        "bufsize": str(att.bufsize),
        "profile": "high",
    }
    if scan.vfr:
        # With B-frames, MP4 sample durations are dts deltas, which for VFR no longer
        # match each frame's own duration: the last frame's length (and the duration)
        # would come out wrong. Without reordering, dts == pts and durations are exact.
        options["x264-params"] = "bframes=0"
    if X264_PARAMS:
        options["x264-params"] = ":".join(
            x for x in (options.get("x264-params"), X264_PARAMS) if x)
    return options


class _Timeline:
    """The output's timestamps: each frame's pts relative to the first one's (a frame without
    one continues after the previous frame), and where the last frame ends."""

    def __init__(self, default_dur: int) -> None:
        self.default_dur = default_dur  # a frame's duration when it has none
        self.first: int | None = None
        self.last_pts: int | None = None
        self.last_dur = 0
        self.end_ts = 0

    def relative(self, pts: int | None) -> int:
        if pts is None:  # no timestamp at all: continue after the previous frame
            pts = 0 if self.last_pts is None else (
                (self.first or 0) + self.last_pts + (self.last_dur or 1))
        if self.first is None:
            self.first = pts
        return pts - self.first

    def repeats(self, rel: int) -> bool:
        """Whether ``rel`` does not come after the last frame's (the muxer would refuse it)."""
        return self.last_pts is not None and rel <= self.last_pts

    def advance(self, rel: int, dur: int) -> None:
        self.last_pts, self.last_dur = rel, dur
        self.end_ts = max(self.end_ts, rel + (dur or self.default_dur))

    def end(self, limit_ts: int | None) -> int:
        """Where the output ends (cut at ``limit_ts`` when it keeps only the first seconds)."""
        if self.last_pts is not None and limit_ts is not None:
            return min(self.end_ts, limit_ts)
        return self.end_ts


class _FrameWriter:
    """Decoded frames through the filter pipeline into x264 and the MP4 muxer."""

    def __init__(self, oc: Any, ost: Any, pipe: _Pipeline, stats: _EncodeStats,
                 default_dur: int) -> None:
        self.oc, self.ost, self.pipe, self.stats = oc, ost, pipe, stats
        self.default_dur = default_dur
        self.durs: dict[int, int] = {}  # pts -> duration of frames inside the encoder
        self.started = False

    def write(self, frame: av.VideoFrame, rel: int, dur: int) -> None:
        for out in self.pipe.process(frame):
            if not self.started:
                self._start()
            out.pts = rel
            out.time_base = self.pipe.time_base
            out.duration = dur
            self.durs[rel] = dur or self.default_dur
            self._mux(self.ost.encode(out))
            self.stats.frames += 1

    def flush(self) -> None:
        self._mux(self.ost.encode(None))

    def _start(self) -> None:
        """The pipeline decided the rotation on its first frame: the size may be swapped; and
        a tone-mapped output says what its pixels now are (BT.709 SDR)."""
        self.started = True
        pipe, ost = self.pipe, self.ost
        if (pipe.out_w, pipe.out_h) != (ost.width, ost.height):
            ost.width, ost.height = pipe.out_w, pipe.out_h
        self.stats.rotation_note = pipe.rotation.note if pipe.rotation else ""
        if pipe.tone_mapped:
            cc = ost.codec_context
            cc.color_primaries = cc.color_trc = cc.colorspace = 1
            cc.color_range = 1
            self.stats.tone_mapped = pipe.tone_mapped

    def _mux(self, packets: Any) -> None:
        for pkt in packets:
            # libx264 does not carry frame durations to packets; the MP4 muxer needs them for
            # the last sample (else the duration comes out short).
            pkt.duration = self.durs.pop(pkt.pts, pkt.duration)
            self.oc.mux(pkt)


def _plan(
    payload: int,
    duration: float,
    fps: float,
    frames: int,
    w: int,
    h: int,
    min_short: int,
    src_bps: float = 0.0,
) -> _Attempt | None:
    """Bitrate rule: bits = 8 * (payload - container overhead); VBV-capped so the worst case
    (maxrate*duration + a full buffer) still fits; the ABR target sits a little under maxrate.
    Downscale when that leaves fewer than MIN_BITS_PER_PIXEL bits per pixel per frame.

    A generous budget is not spent for nothing: the rate is capped at twice the source's video
    bitrate (H.264 needs up to ~2x HEVC/VP9/AV1 for the same quality), but never below 0.1 and
    never above MAX_BITS_PER_PIXEL bits per pixel (near-transparent for x264; also keeps huge
    budgets from overflowing x264's kbit/s ints)."""
    overhead = MP4_FIXED_OVERHEAD + MP4_PER_FRAME_OVERHEAD * frames
    video_bytes = payload - overhead
    if video_bytes < MIN_BYTES_PER_FRAME * max(frames, 1):
        return None
    bits = video_bytes * 8
    # A buffer of ~1 s (at most 10 % of the budget for short clips) keeps quality steady
    # between scenes while bounding how far x264 can overshoot the average.
    buf_seconds = min(1.0, 0.1 * duration)
    maxrate = bits / (duration + buf_seconds)
    bufsize = maxrate * buf_seconds
    pix_rate = w * h * max(fps, 0.1)
    ceiling = min(max(2.0 * src_bps, 0.1 * pix_rate), MAX_BITS_PER_PIXEL * pix_rate)
    if maxrate > ceiling:
        maxrate, bufsize = ceiling, ceiling * buf_seconds
    bitrate = 0.95 * maxrate
    bpp = bitrate / (w * h * max(fps, 0.1))
    if bpp < MIN_BITS_PER_PIXEL:
        w, h = _shrink(w, h, bpp / MIN_BITS_PER_PIXEL, min_short)
    return _Attempt(w, h, int(bitrate), int(maxrate), max(int(bufsize), 8000))


def transcode_to_fit(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    max_bytes: int,
    size_of: Callable[[int], int] = identity_size,
    margin: float = 0.03,
    max_box: tuple[int, int] | None = (2560, 1440),
    min_side_exclusive: int = 10,
    max_duration: float | None = None,
    scan: VideoScan | None = None,
) -> VideoOutput:
    """Re-encode ``src`` to H.264/yuv420p MP4 (faststart, no audio) at ``dst`` so that
    ``size_of(file size) <= max_bytes * (1 - margin)``.

    Frames are turned upright (display matrix applied, dims swapped for 90/270), made square
    (SAR applied), fitted into ``max_box`` in either orientation (never upscaled) and given even
    dimensions. The bitrate comes from the budget and the real duration (see :func:`_plan`);
    when the result is still too big, the bitrate (and, if bits per pixel get too low, the
    resolution) is lowered and the encode retried, at most ``MAX_ATTEMPTS`` times. Raises
    :class:`DoesNotFit` when no attempt fits (no ``dst`` is left behind), :class:`VerifyError`
    when the output does not verify. ``max_duration`` keeps only the first seconds. ``scan`` is
    the source's packet scan when the caller has it (``MediaInfo.scan``): no second demux pass.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    limit = math.floor(max_bytes * (1.0 - margin))
    payload = _payload_budget(max_bytes, size_of, margin)
    scan = _whole_scan(src, scan)
    _require_packets(src, scan)
    duration = _encoded_span(src, scan, max_duration)
    frames = max(1, round(scan.fps * duration))
    w, h = _fit_dims(scan.width, scan.height, scan.sar, max_box, min_side_exclusive)
    min_short = min(min(w, h), max(MIN_SHORT_SIDE, min_side_exclusive + 2))
    steps = _source_steps(scan, duration, w, h)
    src_bps = scan.packet_bytes * 8 / scan.span if scan.span > 0 else 0.0
    att = _plan(payload, duration, scan.fps, frames, w, h, min_short, src_bps)
    if att is None:
        raise DoesNotFit(
            f"{src}: budget {payload} B cannot hold {frames} frames plus MP4 overhead",
            budget=limit,
            best_bytes=None,
        )
    best: int | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        tmp = _tmp_path(dst, ".mp4")
        try:
            stats = _encode(src, tmp, scan, att, max_duration)
            size = os.path.getsize(tmp)
            counted = size_of(size)
            steps.append(
                f"attempt {attempt}: {stats.width}x{stats.height} "
                f"{att.bitrate // 1000} kb/s (max {att.maxrate // 1000}) -> {size} B "
                f"(counted {counted} B, limit {limit} B)"
            )
            best = counted if best is None else min(best, counted)
            if counted <= limit:
                return _keep_encoded(tmp, dst, stats, attempt, steps)
        finally:
            _unlink(tmp)
        next_att = _lowered(att, payload, size, scan.fps, min_short)
        if next_att is None:
            break  # nothing left to lower
        att = next_att
    raise DoesNotFit(
        f"{src}: smallest result {best} B is over the limit {limit} B after {attempt} attempts",
        budget=limit,
        best_bytes=best,
    )


def _encoded_span(src: str, scan: VideoScan, max_duration: float | None) -> float:
    """Seconds the output will span: the packets', or the first ``max_duration``."""
    duration = scan.span if max_duration is None else min(scan.span, max_duration)
    if duration <= 0:
        raise VerifyError(f"{src}: zero duration")
    return duration


def _source_steps(scan: VideoScan, duration: float, w: int, h: int) -> list[str]:
    """The transcode's first steps: what the source is, and what its pictures become."""
    steps = [f"source {scan.codec} {scan.width}x{scan.height} {duration:.3f} s {scan.fps:.3g} fps"]
    if scan.sar != 1:
        steps.append(f"square pixels (SAR {scan.sar})")
    if (w, h) != (scan.width, scan.height) and scan.sar == 1:
        steps.append(f"fit {w}x{h}")
    if scan.header_duration and abs(scan.header_duration - scan.span) > 0.5:
        steps.append(
            f"header says {scan.header_duration:.3f} s, packets span {scan.span:.3f} s"
        )
    return steps


def _keep_encoded(tmp: str, dst: str, stats: _EncodeStats, attempt: int,
                  steps: list[str]) -> VideoOutput:
    """An attempt that fits: verified, described, and moved into place at ``dst``."""
    if stats.rotation_note:
        steps.append(stats.rotation_note)
    if stats.decode_errors:
        steps.append(f"skipped {stats.decode_errors} undecodable packets")
    if stats.dropped_ts:
        steps.append(f"dropped {stats.dropped_ts} frames with repeated timestamps")
    info = verify(tmp, expected_duration=stats.duration)
    out = _describe(
        info, tmp, dst, "mp4", remuxed=False, transcoded=True, attempts=attempt, steps=steps,
    )
    out.dropped = stats.dropped_ts
    os.replace(tmp, dst)
    return out


def _lowered(att: _Attempt, payload: int, size: int, fps: float,
             min_short: int) -> _Attempt | None:
    """The next attempt after one too big: the bits scaled by how far off it was, with 5 %
    extra slack per retry, and a smaller picture when bits per pixel get too low; None when
    nothing is left to lower."""
    ratio = (payload / size) * 0.95 if size else 0.5
    new_bitrate = att.bitrate * ratio
    new_max = att.maxrate * ratio
    nw, nh = att.width, att.height
    # stats dims may be rotated; the plan works in pre-rotation dims
    bpp = new_bitrate / (nw * nh * max(fps, 0.1))
    if bpp < MIN_BITS_PER_PIXEL or ratio < 0.6:
        nw, nh = _shrink(nw, nh, max(ratio, bpp / MIN_BITS_PER_PIXEL), min_short)
    if (nw, nh) == (att.width, att.height) and new_bitrate < MIN_BYTES_PER_FRAME * 8 * fps:
        return None
    return _Attempt(nw, nh, int(new_bitrate), int(new_max), max(int(att.bufsize * ratio), 8000))
