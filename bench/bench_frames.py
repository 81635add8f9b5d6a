"""Benchmark: ``mediaprep frames`` against the FFmpeg CLI; the library against the usual scripts.

    python bench/bench_frames.py            # CLI rows: mediaprep frames vs ffmpeg, 2 and 0.1 fps
    python bench/bench_frames.py --library  # + library rows against the baselines below
    python bench/bench_frames.py --long     # + peak memory: 2,000 frames from a 1 h 720p clip
    python bench/bench_frames.py --rows "4K10@2,2 min@0.1" --baseline ../main  # some rows, A/B

CLI rows (issues 16 and 28): a 30 s and a 2-minute 1080p30 H.264 clip (~5.7 Mbit/s, GOP 2 s
= 60 frames, x264 B-frames with pyramid) and a 10 s 2160p30 HEVC 10-bit clip (generated with
PyAV and cached in ``--workdir``). Each row runs, interleaved in this one run, ``mediaprep
frames CLIP -o DIR --fps F`` (a fresh interpreter: import, probe and worker start counted) and
``ffmpeg -i CLIP -vf fps=F':round=up,scale=W:H -q:v 3 DIR/%04d.jpg`` with F' the fps mediaprep
used (raised for a short clip to give frames.min frames) and W:H the size it wrote, so both
take and encode the same frames (the Debian ``ffmpeg`` package, bench only: the row is skipped
when it is absent). The 30 s 0.1 fps row also runs decord as a whole-process script taking the
frames on screen at mediaprep's times, resized and saved the same way (when decord imports).

Every command runs under a small launcher (a child subreaper, so mediaprep's worker and any
fork server are adopted and counted): wall and CPU seconds of the whole process tree, the
largest single process's peak RSS (``ru_maxrss``, from a launcher too small to lend its own
peak: Linux keeps a peak RSS across fork and exec) and the tree's peak summed PSS (shared
pages counted once), sampled every 10 ms. Ratios are theirs / ours (above 1: mediaprep is
faster); the RSS ratio is ours / FFmpeg's (target <= 1.2).

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
import functools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


# A tiny launcher (no PyAV, no numpy): Linux keeps a process's peak RSS across fork and exec,
# so a command started straight from this big benchmark process would report this process's
# peak as its own; started from a small fresh one, it reports its own. As a child subreaper it
# also adopts and reaps every descendant (mediaprep's worker, a fork server), so their CPU and
# peak RSS are counted, and it samples the tree's summed PSS (shared pages counted once).
_LAUNCHER = r"""
import ctypes, json, os, resource, sys, time
import psutil
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
me, peak, status = psutil.Process(), 0, None
while True:
    got = os.waitpid(-1, os.WNOHANG)
    if got[0] == pid:
        status = got[1]
    kids = me.children(recursive=True)
    if status is not None and not kids:
        break
    total = 0
    for p in kids:
        try:
            total += p.memory_full_info().pss
        except psutil.Error:
            pass
    peak = max(peak, total)
    time.sleep(0.01)
wall = time.perf_counter() - t0
while True:
    try:
        if os.waitpid(-1, 0)[0] <= 0:
            break
    except ChildProcessError:
        break
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "wall": wall,
                  "cpu": ru.ru_utime + ru.ru_stime, "rss": ru.ru_maxrss / 1024,
                  "pss": peak / 2**20}))
"""


@dataclass
class Run:
    """One command's cost: wall and CPU seconds (the whole process tree), the largest single
    process's peak RSS and the tree's peak summed PSS (MB), and the frames it wrote."""

    wall: float
    cpu: float
    rss: float
    pss: float
    frames: int = 0


def run_timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> Run:
    """Run one command through the launcher above (in this checkout's root, so ``python -m
    mediaprep`` imports this copy)."""
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], capture_output=True,
                          text=True, env=env, cwd=cwd)  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    got = json.loads(lines[-1]) if lines else {"rc": proc.returncode}
    if proc.returncode != 0 or got["rc"] != 0:
        raise RuntimeError(f"{cmd[:3]} failed ({got['rc']}): {proc.stderr[-500:]}")
    return Run(got["wall"], got["cpu"], got["rss"], got["pss"])


def _fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def cli_ours(clip: Path, fps: float, out: Path, root: Path = ROOT) -> Run:
    """``mediaprep frames`` from the checkout at ``root`` (default: this one)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", "mediaprep", "frames", str(clip), "-o", str(_fresh_dir(out)),
           "--fps", f"{fps:g}"]  # fmt: skip
    run = run_timed(cmd, env, cwd=root)
    run.frames = len(list(out.glob("*.jpg")))
    return run


def written(out: Path) -> tuple[tuple[int, int] | None, float, list[float]]:
    """The size of the frames a run wrote (the first one's), the fps it used (raised for a
    short clip: prep's frames.min) and its timestamps, from its frames.json."""
    from PIL import Image

    manifest = json.loads((out / "frames.json").read_text())
    first = next(iter(sorted(out.glob("*.jpg"))), None)
    size = None
    if first is not None:
        with Image.open(first) as im:
            size = im.size
    return size, manifest["fps"], [f["timestamp"] for f in manifest["frames"]]


def cli_ffmpeg(clip: Path, fps: float, out: Path, size: tuple[int, int] | None = None) -> Run:
    """The FFmpeg CLI doing the same work: the fps mediaprep used, ``round=up`` (plain
    ``fps=F`` rounds to the nearest and is late by up to half an interval: +5 s at 0.1 fps;
    round=up is exact at the same cost) and scaled to the size mediaprep wrote (``size``), so
    both sides take and encode the same frames."""
    vf = f"fps={fps:.6g}:round=up" + (f",scale={size[0]}:{size[1]}" if size else "")
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clip), "-vf", vf,
           "-q:v", "3", str(_fresh_dir(out) / "%04d.jpg")]  # fmt: skip
    run = run_timed(cmd)
    run.frames = len(list(out.glob("*.jpg")))
    return run


# decord's documented fast path as a whole process, as a user's script runs it: import,
# VideoReader, get_batch of the frames on screen at the times mediaprep took, resize to the
# size mediaprep wrote, JPEG each.
_DECORD_SCRIPT = r"""
import json, sys
import decord
from PIL import Image
clip, out, w, h = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
times = json.loads(sys.argv[5])
vr = decord.VideoReader(clip, ctx=decord.cpu(0))
ts = vr.get_frame_timestamp(range(len(vr)))[:, 0]
idx = [max(0, int((ts <= t + 1e-6).sum()) - 1) for t in times]
for i, a in enumerate(vr.get_batch(idx).asnumpy()):
    Image.fromarray(a).resize((w, h), Image.BICUBIC).save(f"{out}/{i:04d}.jpg", quality=90)
"""


def have_decord() -> bool:
    try:
        import decord  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def cli_decord(clip: Path, out: Path, size: tuple[int, int], times: list[float]) -> Run:
    cmd = [sys.executable, "-c", _DECORD_SCRIPT, str(clip), str(_fresh_dir(out)),
           str(size[0]), str(size[1]), json.dumps(times)]  # fmt: skip
    run = run_timed(cmd)
    run.frames = len(list(out.glob("*.jpg")))
    return run


def _median(runs: list[Run]) -> Run:
    """The run of median wall time (its CPU, memory and frame count with it)."""
    runs = sorted(runs, key=lambda r: r.wall)
    return runs[len(runs) // 2]


def encode_hevc10(path: Path, *, seconds: float, width: int, height: int) -> Path:
    """A 10-bit HEVC clip (x265 ultrafast, GOP 1 s at 30 fps) of moving gradients."""
    if path.exists():
        return path
    tmp = path.with_suffix(".part" + path.suffix)
    n = int(seconds * 30)
    yy, xx = np.mgrid[0:height, 0:width + 8 * n].astype(np.float32)
    tex = ((np.sin(xx / 97.0) * np.cos(yy / 61.0) + 1) * 400 + 64).astype(np.uint16)
    grey = np.full((height, width), 512, dtype=np.uint16)
    with av.open(str(tmp), "w", format="mp4") as out:
        st = out.add_stream("libx265", rate=30)
        st.width, st.height, st.pix_fmt = width, height, "yuv420p10le"
        st.options = {"preset": "ultrafast",
                      "x265-params": "keyint=30:min-keyint=30:log-level=error"}
        for i in range(n):
            y = tex[:, 8 * i: 8 * i + width]
            frame = av.VideoFrame.from_ndarray(np.stack([y, grey, grey], axis=-1) * 64,
                                               format="yuv444p16le").reformat(
                                                   format="yuv420p10le")
            frame.pts = i
            out.mux(st.encode(frame))
        out.mux(st.encode(None))
    tmp.rename(path)
    return path


def _row(name: str, fps: float, mine: list[Run], theirs: list[Run], target: float | None,
         decord: list[Run]) -> str:
    o = _median(mine)
    line = (f"  {name:<6} {fps:>4g}  {o.wall:>6.2f}s {o.cpu:>6.2f}s {o.frames:>4} "
            f"{o.rss:>5.0f} {o.pss:>5.0f}")
    if theirs:
        f = _median(theirs)
        ratio, cpu_ratio = f.wall / o.wall, f.cpu / o.cpu
        verdict = ""
        if target is not None:
            verdict = f">= {target:g}x {'met' if ratio >= target else 'NOT met'}"
        rss_ratio = o.rss / f.rss
        line += (f"  {f.wall:>6.2f}s {f.cpu:>6.2f}s {f.frames:>4} {f.rss:>5.0f}  "
                 f"{ratio:>5.2f}x {cpu_ratio:>5.2f}x  {rss_ratio:>4.2f}x  {verdict}"
                 f"  RSS <= {RSS_TARGET:g}x {'met' if rss_ratio <= RSS_TARGET else 'NOT met'}"
                 f"  CPU min {min(r.cpu for r in mine):.2f}/{min(r.cpu for r in theirs):.2f}s")
    if decord:
        d = _median(decord)
        line += (f"  decord {d.wall:.2f}s {d.cpu:.2f}s {d.rss:.0f} MB: {d.wall / o.wall:.2f}x "
                 f"wall {d.cpu / o.cpu:.2f}x CPU (>= 1 met: {d.wall >= o.wall})")
    return line


# (clip, fps, wall-ratio target vs the FFmpeg CLI or None, with decord): issue 28 item 6
CLI_ROWS = [("30 s", 2.0, 1.2, False), ("30 s", 0.1, None, True), ("2 min", 2.0, 1.2, False),
            ("2 min", 0.1, 10.0, False), ("4K10", 2.0, None, False)]
RSS_TARGET = 1.2  # peak RSS at most this times the FFmpeg CLI's, at 1080p and 4K HEVC 10-bit


def cli_clips(work: Path) -> dict[str, Path]:
    """The CLI rows' clips, made once into ``work``."""
    return {
        "30 s": encode_clip(work / "h264_1080p30_30s.mp4", seconds=30, fps=30, width=1920,
                            height=1080, gop=60, crf=None, bitrate=5_700_000, bframes=3),
        "2 min": encode_clip(work / "h264_1080p30_120s.mp4", seconds=120, fps=30, width=1920,
                             height=1080, gop=60, crf=None, bitrate=5_700_000, bframes=3),
        "4K10": encode_hevc10(work / "hevc10_2160p30_10s.mp4", seconds=10, width=3840,
                              height=2160),
    }  # fmt: skip


def _print_head(repeat: int, have_ffmpeg: bool, decord_ok: bool) -> None:
    print("\n== mediaprep frames vs FFmpeg CLI (1080p30 H.264 5.7 Mbit/s GOP 60 B-frames; "
          "4K10: 2160p30 HEVC 10-bit GOP 30)")
    print(f"  medians of {repeat} interleaved runs (CPU: the whole process tree, min/median); "
          "RSS: the largest process's peak; PSS: the process tree's peak (shared pages once)")
    if not have_ffmpeg:
        print("  (ffmpeg not installed: FFmpeg rows skipped; apt-get install -y ffmpeg)")
    if not decord_ok:
        print("  (decord not installed: pip install decord; its row is skipped)")
    head = f"  {'clip':<6} {'fps':>4}  {'ours':>7} {'CPU':>7} {'n':>4} {'RSS':>5} {'PSS':>5}"
    if have_ffmpeg:
        head += (f"  {'ffmpeg':>7} {'CPU':>7} {'n':>4} {'RSS':>5}  {'wall':>6} {'CPU':>6}"
                 f"  {'RSS':>5}  speed target")
    print(head)


@dataclass
class RowRuns:
    """One row's runs, side by side: ours, the FFmpeg CLI's, decord's and another checkout's."""

    mine: list[Run]
    theirs: list[Run]
    decord: list[Run]
    before: list[Run]


def run_row(work: Path, clip: Path, fps: float, repeat: int, *, with_ffmpeg: bool,
            with_decord: bool, baseline: Path | None) -> RowRuns:
    """Ours, then the others on the frames and size ours took, ``repeat`` times interleaved
    (A B A B ...: a load change hits both sides)."""
    runs = RowRuns([], [], [], [])
    for _ in range(repeat):
        runs.mine.append(cli_ours(clip, fps, work / "out_ours"))
        size, used_fps, times = written(work / "out_ours")
        if with_ffmpeg:
            runs.theirs.append(cli_ffmpeg(clip, used_fps, work / "out_ffmpeg", size))
        if with_decord and size is not None:
            runs.decord.append(cli_decord(clip, work / "out_decord", size, times))
        if baseline is not None:
            runs.before.append(cli_ours(clip, fps, work / "out_before", baseline))
    return runs


def cli_rows(work: Path, repeat: int, baseline: Path | None = None,
             only: list[str] | None = None) -> None:
    """Each row runs ours, ffmpeg (and decord, and ``baseline``, another checkout) interleaved
    ``repeat`` times and prints medians and ratios (theirs / ours: above 1, mediaprep is
    faster). ``only``: the rows to run, as "CLIP@FPS" ("4K10@2", "2 min@0.1"); all when None."""
    clips = cli_clips(work)
    have_ffmpeg = shutil.which("ffmpeg") is not None
    decord_ok = have_decord()
    rows = [r for r in CLI_ROWS if only is None or f"{r[0]}@{r[1]:g}" in only]
    _print_head(repeat, have_ffmpeg, decord_ok)
    for name, fps, target, with_decord in rows:
        runs = run_row(work, clips[name], fps, repeat, with_ffmpeg=have_ffmpeg,
                       with_decord=with_decord and decord_ok, baseline=baseline)
        line = _row(name, fps, runs.mine, runs.theirs, target, runs.decord)
        if runs.before:
            b, o = _median(runs.before), _median(runs.mine)
            line += (f"  before {b.wall:.2f}s {b.cpu:.2f}s {b.rss:.0f} MB: {b.wall / o.wall:.2f}x"
                     f" wall {b.cpu / o.cpu:.2f}x CPU")
        print(line + f"  (load {os.getloadavg()[0]:.1f})", flush=True)


# ------------------------------------------------------------------------------ main


def library_rows(work: Path, repeat: int, rss_only: bool) -> None:
    """The library against the usual scripts (a) and (b), or only our peak RSS."""
    t0 = time.perf_counter()
    hd = encode_clip(work / "hd60.mp4", seconds=60, fps=30, width=1920, height=1080, gop=60)
    lg = encode_clip(work / "gop10s.mp4", seconds=120, fps=30, width=1280, height=720, gop=300)
    print(f"inputs ready in {time.perf_counter() - t0:.1f} s ({work})")
    cases = [
        ("2 fps, 60 s 1080p H.264, GOP 2 s", str(hd), 2.0, 2.0),
        ("0.1 fps, 120 s 720p H.264, GOP 10 s", str(lg), 0.1, 5.0),
    ]
    for title, path, fps, target in cases:
        if rss_only:
            rss_o, _ = fresh_peak_rss("ours", path, fps)
            print(f"\n== {title}: peak RSS mediaprep {rss_o:.0f} MB")
            continue
        n = ours(path, fps)["frames"]
        compare(
            f"{title} vs (a) decode all + PIL each",
            functools.partial(ours, path, fps),
            functools.partial(baseline_all_pil, path, fps),
            items=n,
            repeat=repeat,
            unit="frames",
            target=target,
        )
        compare(
            f"{title} vs (b) qwen-vl-utils linspace on full decode",
            functools.partial(ours, path, fps),
            functools.partial(baseline_linspace, path, fps),
            items=n,
            repeat=repeat,
            unit="frames",
        )
        rss_o, _ = fresh_peak_rss("ours", path, fps)
        rss_b, _ = fresh_peak_rss("baseline_all_pil", path, fps)
        print(f"  peak RSS   mediaprep {rss_o:.0f} MB, baseline (a) {rss_b:.0f} MB")


def long_memory_check(work: Path) -> None:
    """Peak memory taking 2,000 frames from a 1 h 720p clip (target < 300 MB)."""
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
    ap.add_argument("--rows", default=None,
                    help='only these CLI rows, comma-separated CLIP@FPS: "4K10@2,2 min@0.1"')
    ap.add_argument("--rss-only", action="store_true", help="skip the timing comparisons")
    ap.add_argument("--library", action="store_true", help="also the library-level baselines")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)

    only = args.rows.split(",") if args.rows else None
    cli_rows(work, args.repeat, Path(args.baseline) if args.baseline else None, only)
    if args.library or args.rss_only:
        library_rows(work, args.repeat, args.rss_only)
    if args.long:
        long_memory_check(work)


if __name__ == "__main__":
    main()
