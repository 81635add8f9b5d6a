"""Benchmark: fit a 60 s 1080p30 clip into a 10 MB data URL with transcode_to_fit.

Baseline: what a user would write by hand with PyAV: decode, libx264 at the same average
bitrate (ABR, no VBV cap, preset "veryfast"), same container. It shows how much the VBV cap,
the overhead estimate and verify cost, and whether the hand-written version would even fit.

    python bench/bench_transcode.py [--seconds 60] [--keep /tmp/bench_src_1080p.mp4]

The source clip is generated once (moving gradients, scrolling noise texture, moving blocks:
hard enough that x264 cannot make it tiny) and cached at --keep.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import compare, peak_rss_mb  # noqa: E402
from mediaprep.backends.av_encode import transcode_to_fit  # noqa: E402

LIMIT = 10_485_760  # DashScope: "max bytes per data-uri item : 10485760"


def data_url_size(n: int) -> int:
    return len("data:video/mp4;base64,") + 4 * math.ceil(n / 3)


def make_source(path: Path, seconds: float, w: int = 1920, h: int = 1080, fps: int = 30) -> None:
    rng = np.random.default_rng(1)
    tex = rng.integers(0, 255, (h, w * 2), dtype=np.uint8)  # scrolled, not regenerated
    yy, xx = np.mgrid[0:h, 0:w]
    base = ((xx // 3 + yy // 5) % 256).astype(np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.options = {"crf": "16", "preset": "ultrafast"}
        for i in range(int(seconds * fps)):
            y = base + np.uint8(i % 256)
            y = (y // 2 + tex[:, (i * 7) % w : (i * 7) % w + w] // 4).astype(np.uint8)
            bx, by = (i * 13) % (w - 200), (i * 5) % (h - 200)
            y[by : by + 200, bx : bx + 200] = 235
            u = np.full((h // 2, w // 2), 128 + (i % 60), np.uint8)
            v = np.full((h // 2, w // 2), 128 - (i % 40), np.uint8)
            f = av.VideoFrame.from_ndarray(
                np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(h * 3 // 2, w),
                format="yuv420p",
            )
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def baseline(src: str, bitrate: int) -> dict[str, float]:
    buf = io.BytesIO()
    with av.open(src) as ic, av.open(buf, "w", format="mp4") as oc:
        ist = ic.streams.video[0]
        ist.thread_type = "AUTO"
        ost = oc.add_stream("libx264", rate=ist.average_rate)
        ost.width, ost.height, ost.pix_fmt = ist.width, ist.height, "yuv420p"
        ost.codec_context.bit_rate = bitrate
        ost.codec_context.options = {"preset": "veryfast"}
        for f in ic.decode(ist):
            for p in ost.encode(f.reformat(format="yuv420p")):
                oc.mux(p)
        for p in ost.encode(None):
            oc.mux(p)
    n = buf.getbuffer().nbytes
    return {"bytes": n, "data_url": data_url_size(n), "fits": int(data_url_size(n) <= LIMIT)}


def ours(src: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        out = transcode_to_fit(
            src, os.path.join(d, "o.mp4"), max_bytes=LIMIT, size_of=data_url_size
        )
        return {
            "bytes": out.bytes,
            "data_url": data_url_size(out.bytes),
            "fits": int(data_url_size(out.bytes) <= LIMIT),
            "attempts": out.attempts,
            "dims": f"{out.width}x{out.height}",
            "duration": out.duration,
        }


def _ours_for_rss() -> dict[str, float]:
    return ours(os.environ["BENCH_SRC"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--keep", default="/tmp/bench_src_1080p.mp4")
    ap.add_argument("--rss", action="store_true", help="also measure peak RSS (one more run)")
    a = ap.parse_args()
    src = Path(a.keep)
    if not src.exists():
        t = time.perf_counter()
        make_source(src, a.seconds)
        print(f"generated {src} in {time.perf_counter() - t:.1f} s")
    print(f"source: {src.stat().st_size} B, budget: data URL <= {LIMIT} B (margin 3 %)")
    # same average bitrate as ours picks on its first attempt, for a like-for-like baseline
    bitrate = int((LIMIT * 0.97 * 3 / 4 - 2048) * 8 / a.seconds)
    frames = int(a.seconds * 30)
    compare(
        f"transcode_to_fit {a.seconds:g} s 1080p30 -> 10 MB data URL",
        lambda: ours(str(src)),
        lambda: baseline(str(src), bitrate),
        items=frames,
        unit="frames",
    )
    if a.rss:
        os.environ["BENCH_SRC"] = str(src)
        peak, out = peak_rss_mb(_ours_for_rss)
        print(f"  peak RSS (ours, child process): {peak:.0f} MB  {out}")


if __name__ == "__main__":
    main()
