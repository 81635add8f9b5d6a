"""Generate small test videos with PyAV (no ffmpeg binary needed).

Reusable by any test or benchmark::

    from tests.videogen import make_video, index_pattern, read_index

    path = make_video(tmp_path / "clip.mp4", n_frames=30, fps=10)     # frames carry their index
    idx = read_index(pil_image)                                       # read it back

Every generated frame ``i`` shows :func:`index_pattern` by default: a grid of black/white
blocks spelling ``i`` in binary, readable back after lossy coding, scaling and non-square
pixels. Other content comes from ``frame_fn(i) -> PIL.Image | ndarray``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

GRID_COLS = 4
GRID_ROWS = 3
INDEX_BITS = GRID_COLS * GRID_ROWS  # frames 0..4095 are distinguishable

FrameFn = Callable[[int], "Image.Image | np.ndarray"]


def index_pattern(i: int, width: int = 64, height: int = 48) -> np.ndarray:
    """RGB array whose 4x3 block grid spells ``i`` (bit 0 top-left, row-major); white = 1."""
    if not 0 <= i < 2**INDEX_BITS:
        raise ValueError(f"index {i} does not fit in {INDEX_BITS} bits")
    arr = np.full((height, width, 3), 16, dtype=np.uint8)
    for bit in range(INDEX_BITS):
        if (i >> bit) & 1:
            r, c = divmod(bit, GRID_COLS)
            y0, y1 = r * height // GRID_ROWS, (r + 1) * height // GRID_ROWS
            x0, x1 = c * width // GRID_COLS, (c + 1) * width // GRID_COLS
            arr[y0:y1, x0:x1] = 235
    return arr


def read_index(image: Image.Image | np.ndarray) -> int:
    """Inverse of :func:`index_pattern`: sample the centre of each grid cell of an upright image."""
    arr = np.asarray(image.convert("L") if isinstance(image, Image.Image) else image)
    if arr.ndim == 3:
        arr = arr.mean(axis=2)
    h, w = arr.shape[:2]
    value = 0
    for bit in range(INDEX_BITS):
        r, c = divmod(bit, GRID_COLS)
        cy, cx = (2 * r + 1) * h // (2 * GRID_ROWS), (2 * c + 1) * w // (2 * GRID_COLS)
        dy, dx = max(1, h // (GRID_ROWS * 4)), max(1, w // (GRID_COLS * 4))
        if arr[cy - dy : cy + dy + 1, cx - dx : cx + dx + 1].mean() > 128:
            value |= 1 << bit
    return value


def make_video(
    path: str | Path,
    *,
    n_frames: int = 30,
    fps: float = 10,
    width: int = 64,
    height: int = 48,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gop: int | None = None,
    bframes: int | None = None,
    qp: int | None = 12,
    preset: str = "ultrafast",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    start_pts: int = 0,
    rotation: int | None = None,
    display_matrix: Sequence[int] | None = None,
    sar: Fraction | None = None,
    frame_fn: FrameFn | None = None,
    audio: bool = False,
    options: dict[str, str] | None = None,
    container_format: str | None = None,
) -> Path:
    """Encode a clip and return its path.

    ``pts`` gives explicit presentation times in ``time_base`` units (variable frame rate);
    otherwise frame ``i`` is at ``start_pts + i`` in a ``1/fps`` time base. ``gop`` fixes the
    keyframe interval (scene-cut detection off), ``bframes`` the B-frame count. ``rotation``
    is a counter-clockwise display rotation written to the container's display matrix,
    ``sar`` the sample aspect ratio. ``audio`` adds a quiet AAC track.
    """
    path = Path(path)
    fps_q = Fraction(fps).limit_denominator(100000)
    if time_base is None:
        time_base = 1 / fps_q
    if pts is not None:
        n_frames = len(pts)
    frame_fn = frame_fn or (lambda i: index_pattern(i, width, height))
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=fps_q)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        cc = stream.codec_context
        cc.time_base = time_base
        stream.time_base = time_base
        opts: dict[str, str] = {}
        if codec == "libx264":
            opts["preset"] = preset
            params = []
            if gop is not None:
                params += [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0"]
            if bframes is not None:
                params.append(f"bframes={bframes}")
            if params:
                opts["x264-params"] = ":".join(params)
            if qp is not None:
                opts["qp"] = str(qp)
        elif gop is not None:
            cc.gop_size = gop
        opts.update(options or {})
        stream.options = opts
        if sar is not None:
            cc.sample_aspect_ratio = sar
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if display_matrix is not None:  # FFmpeg's int32[9] (a mirrored rotation, say)
            stream.set_display_matrix(list(display_matrix))
        astream = None
        if audio:
            astream = out.add_stream("aac", rate=44100, layout="mono")
        for i in range(n_frames):
            img = frame_fn(i)
            if isinstance(img, Image.Image):
                frame = av.VideoFrame.from_image(img.convert("RGB"))
            else:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame = frame.reformat(format=pix_fmt)
            frame.pts = pts[i] if pts is not None else start_pts + i
            frame.time_base = time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if astream is not None:
            seconds = float(n_frames / fps_q)
            _write_audio(out, astream, seconds)
    return path


def _write_audio(out: Any, astream: Any, seconds: float, rate: int = 44100) -> None:
    n = int(seconds * rate)
    block = 1024
    t = 0
    while t < n:
        k = min(block, n - t)
        samples = (0.1 * np.sin(2 * math.pi * 440 * (np.arange(t, t + k) / rate))).astype(
            np.float32
        )
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = t
        out.mux(astream.encode(frame))
        t += k
    out.mux(astream.encode(None))


def make_audio_only(path: str | Path, *, seconds: float = 1.0, codec: str = "aac") -> Path:
    """A file with one audio stream and no video (``codec`` "aac" or "pcm_s16le" for .wav)."""
    path = Path(path)
    rate = 44100 if codec == "aac" else 16000
    with av.open(str(path), "w") as out:
        fmt = "fltp" if codec == "aac" else "s16"
        astream = out.add_stream(codec, rate=rate, layout="mono", format=fmt)
        n = int(seconds * rate)
        t = 0
        while t < n:
            k = min(1024, n - t)
            x = 0.1 * np.sin(2 * math.pi * 440 * (np.arange(t, t + k) / rate))
            data = x.astype(np.float32) if fmt == "fltp" else (x * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(data[None, :], format=fmt, layout="mono")
            frame.sample_rate = rate
            frame.pts = t
            out.mux(astream.encode(frame))
            t += k
        out.mux(astream.encode(None))
    return path


def make_empty_video(
    path: str | Path, *, width: int = 64, height: int = 48, audio_seconds: float = 0.5
) -> Path:
    """A container with a video stream that holds no frames (an audio track keeps it valid).

    Use a ``.mkv`` path: the MP4 muxer drops a track without samples.
    """
    path = Path(path)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        astream = out.add_stream("aac", rate=44100, layout="mono")
        out.start_encoding()
        _write_audio(out, astream, audio_seconds)
    return path


def truncate(src: str | Path, dst: str | Path, fraction: float) -> Path:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst`` (a cut-off download)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


def corrupt_packets(path: str | Path, indices: Sequence[int], *, nbytes: int = 8) -> Path:
    """Overwrite the first ``nbytes`` of the given video packets (demux order) with 0xFF.

    For H.264 in MP4 that garbles the NAL length prefix, so decoding that packet fails with
    ``InvalidDataError`` while the container stays readable.
    """
    path = Path(path)
    positions = []
    with av.open(str(path)) as c:
        for n, pkt in enumerate(c.demux(c.streams.video[0])):
            if pkt.size and n in indices and pkt.pos is not None and pkt.pos >= 0:
                positions.append(pkt.pos)
    with open(path, "r+b") as f:
        for pos in positions:
            f.seek(pos)
            f.write(b"\xff" * nbytes)
    return path


def cut_with_edit_list(src: str | Path, dst: str | Path, seconds: float) -> Path:
    """Remux ``src`` (MP4/MOV) to ``dst`` with its first ``seconds`` hidden by an edit list.

    Every packet is kept, its timestamps moved ``seconds`` earlier; the muxer writes an
    ``elst`` whose media time skips the moved-before-zero pre-roll (as ``ffmpeg -ss S -c copy``
    does when S is not on a keyframe), so readers decode the pre-roll and never show it.
    """
    dst = Path(dst)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ist = inp.streams.video[0]
        ost = out.add_stream_from_template(ist)
        shift = int(round(seconds / ist.time_base))
        for pkt in inp.demux(ist):
            if pkt.dts is None:
                continue
            pkt.pts -= shift
            pkt.dts -= shift
            pkt.stream = ost
            out.mux(pkt)
    return dst
