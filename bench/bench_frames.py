"""Benchmark: ``mediaprep frames`` against the FFmpeg CLI; the library against the usual scripts.

    python bench/bench_frames.py            # CLI rows: mediaprep frames vs ffmpeg, 2 and 0.1 fps
    python bench/bench_frames.py --library  # + library rows against the baselines below
    python bench/bench_frames.py --long     # + peak memory: 2,000 frames from a 1 h 720p clip

CLI rows (issue 16): a 30 s and a 2-minute 1080p30 H.264 clip (~5.7 Mbit/s, GOP 2 s = 60
frames, x264 B-frames with pyramid; generated with PyAV from moving synthetic content and
cached in ``--workdir``). Each row times, in this one run, ``mediaprep frames CLIP -o DIR
--fps F`` (a fresh interpreter, so import and probe are counted) and ``ffmpeg -i CLIP -vf
fps=F:round=up,scale=W:H -q:v 3 DIR/%04d.jpg`` (W:H: the size mediaprep wrote; the Debian
``ffmpeg`` package, bench only: the row is skipped when it is absent), prints both and the
ratio, and the peak RSS of each command's whole process tree (the worker counted). decord's
``VideoReader.get_batch`` at the same timestamps runs too when decord imports.

Inputs are generated with PyAV into ``--workdir`` (default: a folder in the temp dir, reused
between runs). Baselines:

(a) decode every frame with PyAV's defaults, convert each to a PIL image, keep the ones on
    screen at the sampled times (what most scripts do);
(b) qwen-vl-utils' rule: decode every frame to an RGB array, then keep
    ``np.linspace(0, total - 1, n).round()`` of them (torchvision/decord read the whole clip
    into memory first; here the unused arrays are dropped at once so the machine survives).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import compare, peak_rss_mb  # noqa: E402

from mediaprep.backends.av_frames import extract_frames  # noqa: E402


def encode_clip(
    path: Path,
    *,
    seconds: float,
    fps: int,
    width: int,
    height: int,
    gop: int,
    preset: str = "veryfast",
    crf: int | None = 23,
    simple: bool = False,
    bitrate: int | None = None,
    bframes: int | None = None,
) -> Path:
    """A moving textured pattern (or, with ``simple``, a nearly static one) as H.264."""
    if path.exists():
        return path
    tmp = path.with_suffix(".part" + path.suffix)
    n = int(round(seconds * fps))
    yy, xx = np.mgrid[0 : height * 2, 0 : width * 2].astype(np.float32)
    tex = 128 + 60 * np.sin(xx / 37.0) * np.cos(yy / 23.0) + 40 * np.sin((xx + yy) / 91.0)
    tex = np.clip(tex, 0, 255).astype(np.uint8)
    if bitrate is not None:  # fine detail, so the encoder really spends the bit rate
        tex += np.random.default_rng(1).integers(0, 24, size=tex.shape, dtype=np.uint8)
    chroma = np.full((height // 2, width), 128, dtype=np.uint8)
    with av.open(str(tmp), "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0"
        if bframes is not None:
            params += f":bframes={bframes}:b-pyramid=normal"
        st.options = {"preset": preset, "x264-params": params}
        if bitrate is not None:
            st.bit_rate = bitrate
        elif crf is not None:
            st.options = {**st.options, "crf": str(crf)}
        for i in range(n):
            if simple:
                y = tex[:height, :width].copy()
                x0 = (i * 8) % (width - 64)
                y[32:96, x0 : x0 + 64] = 235
            else:
                dy = int(height / 2 * (1 + math.sin(i / 50.0)))
                dx = (i * 3) % width
                y = tex[dy : dy + height, dx : dx + width].copy()
                y[40:120, 40 : 40 + (i % 200) * 4] = 235
            frame = av.VideoFrame.from_ndarray(np.vstack([y, chroma]), format="yuv420p")
            frame.pts = i
            out.mux(st.encode(frame))
        out.mux(st.encode(None))
    tmp.rename(path)
    return path


# ------------------------------------------------------------------------------ workloads


def ours(path: str, fps: float, max_frames: int = 2000) -> dict:
    plan, frames, info = extract_frames(path, fps=fps, max_frames=max_frames)
    n = 0
    for f in frames:
        n += f.image.size[0] > 0
    return {"frames": n, "decoded": info["decoded"], "seeks": info["seeks"]}


def baseline_all_pil(path: str, fps: float) -> dict:
    """Decode everything, PIL-convert everything, keep the frame on screen at each k/fps."""
    kept = 0
    decoded = 0
    with av.open(path) as c:
        s = c.streams.video[0]
        tb = float(s.time_base)
        start = s.start_time or 0
        step = 1 / fps
        next_t = 0.0
        prev = None
        t = 0.0
        for frame in c.decode(s):
            img = frame.to_image()
            decoded += 1
            t = (frame.pts - start) * tb
            while prev is not None and next_t < t - 1e-9:  # prev was on screen at next_t
                kept += 1
                next_t += step
            prev = img
        end = t + (float(frame.duration * tb) if frame.duration else 0.0)
        while prev is not None and next_t < end - 1e-9:
            kept += 1
            next_t += step
    return {"frames": kept, "decoded": decoded}


def baseline_linspace(path: str, fps: float) -> dict:
    """qwen-vl-utils: full decode to RGB arrays, then linspace over frame indices."""
    with av.open(path) as c:
        s = c.streams.video[0]
        total = s.frames or 0
        duration = float(s.duration * s.time_base) if s.duration else total / float(s.average_rate)
        n = max(2, int(round(duration * fps)))
        wanted = set(np.linspace(0, total - 1, n).round().astype(int).tolist())
        kept = []
        for i, frame in enumerate(c.decode(s)):
            arr = frame.to_ndarray(format="rgb24")
            if i in wanted:
                kept.append(arr.shape)
    return {"frames": len(kept), "decoded": total}


def fresh_peak_rss(name: str, path: str, fps: float, max_frames: int = 2000) -> tuple[float, dict]:
    """peak_rss_mb from a small fresh process.

    Linux keeps a process's peak RSS across fork+exec, so a child spawned by this (large)
    benchmark process would report the parent's peak; a re-exec'd helper starts small.
    """
    cmd = [sys.executable, __file__, "--rss-of", name, path, str(fps), str(max_frames)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rss, result = json.loads(out.strip().splitlines()[-1])
    return rss, result


def _rss_helper(name: str, path: str, fps: str, max_frames: str) -> None:
    fn = {"ours": ours, "baseline_all_pil": baseline_all_pil}[name]
    args = (path, float(fps), int(max_frames)) if name == "ours" else (path, float(fps))
    print(json.dumps(peak_rss_mb(functools.partial(fn, *args))))


# ------------------------------------------------------------------------------ CLI rows

ROOT = Path(__file__).resolve().parent.parent


def run_timed(cmd: list[str], env: dict[str, str] | None = None,
              cwd: Path = ROOT) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one command.

    Runs in this checkout's root, so ``python -m mediaprep`` imports this copy.
    The RSS is the whole process tree's: ``mediaprep frames`` decodes in a worker forked from
    a fork server, neither of which the command's own rusage counts, so the tree's summed RSS
    is sampled every 10 ms (psutil) and the larger of that and the command's own peak kept.
    """
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=cwd)  # fmt: skip
    tree_peak = 0
    try:
        root_p = psutil.Process(proc.pid)
        while True:
            got = os.wait4(proc.pid, os.WNOHANG)
            if got[0] == proc.pid:
                _, status, ru = got
                break
            total = 0
            try:
                for p in [root_p, *root_p.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
            except psutil.Error:
                pass
            tree_peak = max(tree_peak, total)
            time.sleep(0.01)
    except psutil.Error:
        _, status, ru = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed ({proc.returncode}): {err[-500:]}")
    return dt, max(ru.ru_maxrss / 1024.0, tree_peak / 2**20)


def _fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def cli_ours(clip: Path, fps: float, out: Path, root: Path = ROOT) -> tuple[float, float, int]:
    """``mediaprep frames`` from the checkout at ``root`` (default: this one)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", "mediaprep", "frames", str(clip), "-o", str(_fresh_dir(out)),
           "--fps", f"{fps:g}"]  # fmt: skip
    dt, rss = run_timed(cmd, env, cwd=root)
    return dt, rss, len(list(out.glob("*.jpg")))


def written_size(out: Path) -> tuple[int, int] | None:
    """The size of the frames a run wrote (the first one's)."""
    from PIL import Image

    first = next(iter(sorted(out.glob("*.jpg"))), None)
    if first is None:
        return None
    with Image.open(first) as im:
        return im.size


def cli_ffmpeg(clip: Path, fps: float, out: Path,
               size: tuple[int, int] | None = None) -> tuple[float, float, int]:
    """The FFmpeg CLI doing the same work: ``fps=F:round=up`` (plain ``fps=F`` rounds to the
    nearest and is late by up to half an interval: +5 s at 0.1 fps; round=up is exact at the
    same cost) and scaled to the size mediaprep wrote (``size``), so both sides encode the same
    pixels."""
    vf = f"fps={fps:g}:round=up" + (f",scale={size[0]}:{size[1]}" if size else "")
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clip), "-vf", vf,
           "-q:v", "3", str(_fresh_dir(out) / "%04d.jpg")]  # fmt: skip
    dt, rss = run_timed(cmd)
    return dt, rss, len(list(out.glob("*.jpg")))


def decord_at(clip: Path, fps: float) -> int | None:
    """decord's documented fast path: VideoReader + get_batch of the frame indices."""
    try:
        import decord  # type: ignore[import-not-found]
    except ImportError:
        return None
    vr = decord.VideoReader(str(clip), ctx=decord.cpu(0))
    rate = vr.get_avg_fps()
    n = len(vr)
    idx = sorted({min(n - 1, int(k / fps * rate)) for k in range(int(n / rate * fps + 0.999))})
    return int(vr.get_batch(idx).shape[0])


def _median(runs: list[tuple[float, float, int]]) -> tuple[float, float, int]:
    """The run of median wall time (its RSS and frame count with it)."""
    runs = sorted(runs, key=lambda r: r[0])
    return runs[len(runs) // 2]


def cli_rows(work: Path, repeat: int, baseline: Path | None = None) -> None:
    """Each row runs ours, ffmpeg (and ``baseline``, another checkout) interleaved ``repeat``
    times (A B A B ...: a load change hits both sides) and prints medians and ratios."""
    clips = {
        "30 s": encode_clip(work / "h264_1080p30_30s.mp4", seconds=30, fps=30, width=1920,
                            height=1080, gop=60, crf=None, bitrate=5_700_000, bframes=3),
        "2 min": encode_clip(work / "h264_1080p30_120s.mp4", seconds=120, fps=30, width=1920,
                             height=1080, gop=60, crf=None, bitrate=5_700_000, bframes=3),
    }  # fmt: skip
    have_ffmpeg = shutil.which("ffmpeg") is not None
    rows = [("30 s", 2.0, 1.2), ("30 s", 0.1, None), ("2 min", 2.0, None), ("2 min", 0.1, 10.0)]
    print("\n== mediaprep frames vs FFmpeg CLI (1080p30 H.264, 5.7 Mbit/s, GOP 60, B-frames)")
    print(f"  medians of {repeat} interleaved runs; load average {os.getloadavg()[0]:.2f}")
    if not have_ffmpeg:
        print("  (ffmpeg not installed: FFmpeg rows skipped; apt-get install -y ffmpeg)")
    head = f"  {'clip':<6} {'fps':>4}  {'mediaprep':>10} {'frames':>6} {'RSS MB':>7}"
    if have_ffmpeg:
        head += f"  {'ffmpeg':>8} {'frames':>6} {'RSS MB':>7}  {'ratio':>6}  target"
    if baseline is not None:
        head += f"  {'before':>8} {'speed-up':>8}"
    print(head)
    for name, fps, target in rows:
        clip = clips[name]
        mine: list[tuple[float, float, int]] = []
        theirs: list[tuple[float, float, int]] = []
        before: list[tuple[float, float, int]] = []
        for _ in range(repeat):
            mine.append(cli_ours(clip, fps, work / "out_ours"))
            if have_ffmpeg:
                theirs.append(cli_ffmpeg(clip, fps, work / "out_ffmpeg",
                                         written_size(work / "out_ours")))
            if baseline is not None:
                before.append(cli_ours(clip, fps, work / "out_before", baseline))
        o = _median(mine)
        line = f"  {name:<6} {fps:>4g}  {o[0]:>9.2f}s {o[2]:>6} {o[1]:>7.0f}"
        if have_ffmpeg:
            f = _median(theirs)
            ratio = f[0] / o[0]
            verdict = ""
            if target is not None:
                verdict = f">= {target:g}x {'met' if ratio >= target else 'NOT met'}"
            line += f"  {f[0]:>7.2f}s {f[2]:>6} {f[1]:>7.0f}  {ratio:>5.2f}x  {verdict}"
        if baseline is not None:
            b = _median(before)
            line += f"  {b[0]:>7.2f}s {b[0] / o[0]:>7.2f}x"
        print(line, flush=True)
    try:
        import decord  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        print("  decord: not installed (pip install decord), row skipped")
        return
    for name, fps, _ in rows:
        t0 = time.perf_counter()
        n = decord_at(clips[name], fps)
        dt = time.perf_counter() - t0
        print(f"  decord get_batch {name} {fps:g} fps: {n} frames in {dt:.2f} s (in-process)")


# ------------------------------------------------------------------------------ main


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--rss-of":
        _rss_helper(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "bench"))
    ap.add_argument("--long", action="store_true", help="also the 1 h / 2,000 frames memory check")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", default=None,
                    help="another checkout of mediaprep, timed interleaved as 'before'")
    ap.add_argument("--rss-only", action="store_true", help="skip the timing comparisons")
    ap.add_argument("--library", action="store_true", help="also the library-level baselines")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)

    cli_rows(work, args.repeat, Path(args.baseline) if args.baseline else None)
    if not (args.library or args.long or args.rss_only):
        return

    t0 = time.perf_counter()
    hd = encode_clip(work / "hd60.mp4", seconds=60, fps=30, width=1920, height=1080, gop=60)
    lg = encode_clip(work / "gop10s.mp4", seconds=120, fps=30, width=1280, height=720, gop=300)
    print(f"inputs ready in {time.perf_counter() - t0:.1f} s ({work})")

    cases = [
        ("2 fps, 60 s 1080p H.264, GOP 2 s", str(hd), 2.0, 2.0),
        ("0.1 fps, 120 s 720p H.264, GOP 10 s", str(lg), 0.1, 5.0),
    ]
    for title, path, fps, target in cases if args.library or args.rss_only else []:
        if args.rss_only:
            rss_o, _ = fresh_peak_rss("ours", path, fps)
            print(f"\n== {title}: peak RSS mediaprep {rss_o:.0f} MB")
            continue
        n = ours(path, fps)["frames"]
        compare(
            f"{title} vs (a) decode all + PIL each",
            functools.partial(ours, path, fps),
            functools.partial(baseline_all_pil, path, fps),
            items=n,
            repeat=args.repeat,
            unit="frames",
            target=target,
        )
        compare(
            f"{title} vs (b) qwen-vl-utils linspace on full decode",
            functools.partial(ours, path, fps),
            functools.partial(baseline_linspace, path, fps),
            items=n,
            repeat=args.repeat,
            unit="frames",
        )
        rss_o, _ = fresh_peak_rss("ours", path, fps)
        rss_b, _ = fresh_peak_rss("baseline_all_pil", path, fps)
        print(f"  peak RSS   mediaprep {rss_o:.0f} MB, baseline (a) {rss_b:.0f} MB")

    if args.long:
        t0 = time.perf_counter()
        hour = encode_clip(
            work / "hour720.mp4",
            seconds=3600,
            fps=5,
            width=1280,
            height=720,
            gop=50,
            preset="ultrafast",
            crf=35,
            simple=True,
        )
        print(f"\n1 h clip ready in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        rss, out = fresh_peak_rss("ours", str(hour), 2.0, 2000)
        dt = time.perf_counter() - t0
        verdict = "met" if rss < 300 else "NOT met"
        print(f"== memory: 2,000 frames from 1 h 720p: {out['frames']} frames in {dt:.1f} s")
        print(f"  peak RSS {rss:.0f} MB (target < 300 MB: {verdict}); decoded={out['decoded']}")


if __name__ == "__main__":
    main()
