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
    if not _usable(scan):
        scan = _scan(src)
    assert scan is not None
    if not _container_accepts(container, scan.codec):
        raise RemuxNotPossible(f"{scan.codec} video cannot be stored in {container}")
    if scan.packets == 0 or scan.start is None:
        raise VerifyError(f"{src}: no video packets")
    if len(set(scan.segment_sizes)) > 1:  # one MP4 track has one picture size
        raise RemuxNotPossible("its joined segments differ in picture size")
    steps = [f"remux {scan.codec} into {container}"]
    dropped = 0
    options = {"movflags": "+faststart"} if container in ("mp4", "mov") else {}
    tmp = _tmp_path(dst, "." + container)
    try:
        with av.open(src) as ic:
            ist = ic.streams[scan.stream_index]
            with av.open(tmp, "w", format=container, options=options) as oc:
                try:
                    ost = oc.add_stream_from_template(ist)
                except (ValueError, av.error.FFmpegError) as e:
                    raise RemuxNotPossible(f"{scan.codec} into {container}: {e}") from e
                offset = scan.start
                last_dts: int | None = None
                # joined segments: on the timeline the scan gave them
                mender = TimestampMender(scan.time_base) if scan.restarts else None
                for p in ic.demux(ist):
                    if p.size == 0:
                        continue
                    if mender is not None:
                        mender.mend(p)
                    if p.pts is not None:
                        p.pts -= offset
                    if p.dts is not None:
                        p.dts -= offset
                        # Muxers need strictly increasing dts; a repeated one is a broken packet.
                        if last_dts is not None and p.dts <= last_dts:
                            dropped += 1
                            continue
                        last_dts = p.dts
                    p.stream = ost
                    try:
                        oc.mux(p)
                    except av.error.FFmpegError as e:
                        if last_dts is None:  # the header itself was refused
                            raise RemuxNotPossible(f"{scan.codec} into {container}: {e}") from e
                        raise
        if scan.restarts:
            steps.append(f"{scan.restarts + 1} joined segments put on one timeline")
        if dropped:
            steps.append(f"dropped {dropped} frames with repeated timestamps")
        info = verify(tmp, expected_duration=scan.span)
        out = _describe(
            info, tmp, dst, container, remuxed=True, transcoded=False, attempts=1, steps=steps
        )
        out.dropped = dropped
        os.replace(tmp, dst)
        return out
    finally:
        _unlink(tmp)


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
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            fmt = sniff(fh.read(HEAD_BYTES)).format
            index = None
            if fmt in ("mp4", "mov", "3gp"):
                try:
                    index = mp4_index(fh, size)
                except (ValueError, struct.error):
                    index = None
    except OSError as e:
        raise VerifyError(f"{path}: {e}") from e
    info = MediaInfo(path=path, kind="video", format=fmt, bytes=size)
    gop: list[av.Packet] = []

    def keep(p: av.Packet) -> None:
        if p.is_keyframe:
            gop.clear()
        gop.append(p)

    try:
        with av.open(path, metadata_errors="ignore") as c:
            read_video(c, info, index, bounded=False, on_packet=keep)
            if info.error_code:
                raise VerifyError(f"{path}: {info.error}")
            sc = info.scan
            if sc is None or sc.start is None or sc.end is None:
                raise VerifyError(f"{path}: no timestamps")
            cc = c.streams[sc.stream_index].codec_context
            cc.flush_buffers()
            last = [f for p in gop for f in cc.decode(p)]
            last += cc.decode(None)
            if not last:
                raise VerifyError(f"{path}: the last frames do not decode")
            duration = sc.span
    except av.error.FFmpegError as e:
        raise VerifyError(f"{path}: {e}") from e
    except VideoEncodeError as e:
        if isinstance(e, VerifyError):
            raise
        raise VerifyError(str(e)) from e
    if abs(duration - expected_duration) > tolerance:
        raise VerifyError(
            f"{path}: duration {duration:.3f} s, expected {expected_duration:.3f} s "
            f"(tolerance {tolerance} s)"
        )
    return info


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
    try:
        ccw = float(frame.rotation)  # av_display_rotation_get: counter-clockwise degrees
    except (TypeError, ValueError):
        ccw = 0.0
    if math.isnan(ccw):
        ccw = 0.0
    theta = -round(ccw)  # ffmpeg's get_rotation(): clockwise degrees to turn the frame
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        flip = m is not None and m[3] > 0
        return _Rotation([("transpose", "cclock_flip" if flip else "clock")], True, "rotate 90")
    if abs(theta - 180) < 1:
        f: list[tuple[str, str]] = []
        if m is None or m[0] < 0:
            f.append(("hflip", ""))
        if m is None or m[4] < 0:
            f.append(("vflip", ""))
        return _Rotation(f, False, "rotate 180")
    if abs(theta - 270) < 1:
        flip = m is not None and m[3] < 0
        return _Rotation([("transpose", "clock_flip" if flip else "cclock")], True, "rotate 270")
    if abs(theta) < 1:
        if m is not None and m[4] < 0:
            return _Rotation([("vflip", "")], False, "vertical flip")
        return _Rotation([], False, "")
    return _Rotation([], False, f"rotation {theta:g} deg is not a multiple of 90; left as is")


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
            ost = oc.add_stream("libx264", rate=Fraction(scan.fps).limit_denominator(1001))
            ost.width, ost.height = (att.width, att.height)
            ost.pix_fmt = "yuv420p"
            ost.time_base = tb
            cc = ost.codec_context
            cc.time_base = tb  # frames keep the source pts: VFR stays VFR
            cc.bit_rate = att.bitrate
            cc.thread_count = X264_THREADS
            cc.options = {
                "preset": X264_PRESET,
                "maxrate": str(att.maxrate),
                "bufsize": str(att.bufsize),
                "profile": "high",
            }
            if scan.vfr:
                # With B-frames, MP4 sample durations are dts deltas, which for VFR no longer
                # match each frame's own duration: the last frame's length (and the duration)
                # would come out wrong. Without reordering, dts == pts and durations are exact.
                cc.options["x264-params"] = "bframes=0"
            if X264_PARAMS:
                cc.options["x264-params"] = ":".join(
                    x for x in (cc.options.get("x264-params"), X264_PARAMS) if x)
            default_dur = max(1, round(1 / (max(scan.fps, 0.1) * tb)))
            durs: dict[int, int] = {}  # pts -> duration of frames inside the encoder
            pipe = _Pipeline(tb, att.width, att.height, threads=0)
            first: int | None = None
            last_pts: int | None = None
            last_dur = 0
            end_ts = 0
            started = False
            mender = TimestampMender(tb) if scan.restarts else None
            for frame in _decoded_frames(ic, ist, stats, mender):
                pts = frame.pts
                if pts is None:  # no timestamp at all: continue after the previous frame
                    pts = 0 if last_pts is None else (first or 0) + last_pts + (last_dur or 1)
                if first is None:
                    first = pts
                rel = pts - first
                if limit_ts is not None and rel >= limit_ts:
                    break
                if last_pts is not None and rel <= last_pts:
                    stats.dropped_ts += 1  # non-increasing pts: the muxer would refuse it
                    continue
                dur = frame.duration or 0
                frame.pts = rel
                for out in pipe.process(frame):
                    if not started:
                        started = True
                        # pipeline decided rotation on its first frame: dims may be swapped
                        if (pipe.out_w, pipe.out_h) != (ost.width, ost.height):
                            ost.width, ost.height = pipe.out_w, pipe.out_h
                        stats.rotation_note = pipe.rotation.note if pipe.rotation else ""
                        if pipe.tone_mapped:  # say what the pixels now are: BT.709 SDR
                            cc.color_primaries = cc.color_trc = cc.colorspace = 1
                            cc.color_range = 1
                            stats.tone_mapped = pipe.tone_mapped
                    out.pts = rel
                    out.time_base = tb
                    out.duration = dur
                    durs[rel] = dur or default_dur
                    for pkt in ost.encode(out):
                        # libx264 does not carry frame durations to packets; the MP4 muxer
                        # needs them for the last sample (else the duration comes out short).
                        pkt.duration = durs.pop(pkt.pts, pkt.duration)
                        oc.mux(pkt)
                    stats.frames += 1
                last_pts, last_dur = rel, dur
                end_ts = max(end_ts, rel + (dur or default_dur))
            for pkt in ost.encode(None):
                pkt.duration = durs.pop(pkt.pts, pkt.duration)
                oc.mux(pkt)
            if last_pts is not None:
                if limit_ts is not None:
                    end_ts = min(end_ts, limit_ts)
            stats.width, stats.height = ost.width, ost.height
            stats.duration = float(end_ts * tb)
    if stats.frames == 0:
        raise VerifyError(f"{src}: no frame could be decoded")
    return stats


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
    if not _usable(scan):
        scan = _scan(src)
    assert scan is not None
    if scan.packets == 0 or scan.start is None:
        raise VerifyError(f"{src}: no video packets")
    duration = scan.span
    if max_duration is not None:
        duration = min(duration, max_duration)
    if duration <= 0:
        raise VerifyError(f"{src}: zero duration")
    frames = max(1, round(scan.fps * duration))
    w, h = _fit_dims(scan.width, scan.height, scan.sar, max_box, min_side_exclusive)
    min_short = min(min(w, h), max(MIN_SHORT_SIDE, min_side_exclusive + 2))
    steps = [f"source {scan.codec} {scan.width}x{scan.height} {duration:.3f} s {scan.fps:.3g} fps"]
    if scan.sar != 1:
        steps.append(f"square pixels (SAR {scan.sar})")
    if (w, h) != (scan.width, scan.height) and scan.sar == 1:
        steps.append(f"fit {w}x{h}")
    if scan.header_duration and abs(scan.header_duration - scan.span) > 0.5:
        steps.append(
            f"header says {scan.header_duration:.3f} s, packets span {scan.span:.3f} s"
        )
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
                if stats.rotation_note:
                    steps.append(stats.rotation_note)
                if stats.decode_errors:
                    steps.append(f"skipped {stats.decode_errors} undecodable packets")
                if stats.dropped_ts:
                    steps.append(f"dropped {stats.dropped_ts} frames with repeated timestamps")
                info = verify(tmp, expected_duration=stats.duration)
                out = _describe(
                    info, tmp, dst, "mp4", remuxed=False, transcoded=True, attempts=attempt,
                    steps=steps,
                )
                out.dropped = stats.dropped_ts
                os.replace(tmp, dst)
                return out
        finally:
            _unlink(tmp)
        # Too big: scale the bits by how far off we were, with 5 % extra slack per retry.
        ratio = (payload / size) * 0.95 if size else 0.5
        new_bitrate = att.bitrate * ratio
        new_max = att.maxrate * ratio
        nw, nh = att.width, att.height
        # stats dims may be rotated; the plan works in pre-rotation dims
        bpp = new_bitrate / (nw * nh * max(scan.fps, 0.1))
        if bpp < MIN_BITS_PER_PIXEL or ratio < 0.6:
            nw, nh = _shrink(nw, nh, max(ratio, bpp / MIN_BITS_PER_PIXEL), min_short)
        if (nw, nh) == (att.width, att.height) and new_bitrate < MIN_BYTES_PER_FRAME * 8 * scan.fps:
            break  # nothing left to lower
        att = _Attempt(nw, nh, int(new_bitrate), int(new_max), max(int(att.bufsize * ratio), 8000))
    raise DoesNotFit(
        f"{src}: smallest result {best} B is over the limit {limit} B after {attempt} attempts",
        budget=limit,
        best_bytes=best,
    )
