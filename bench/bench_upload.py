"""Upload of a big compliant video with ``--transport upload``: time, peak RSS, bytes sent.

    python bench/bench_upload.py [--seconds 12] [--video PATH]

Makes (or takes) a compliant H.264 MP4 near the 1 GB a DashScope temporary-storage upload
takes, starts the storage servers of the tests on 127.0.0.1 (tests/upload/servers.py, in this
process: their memory is not counted), and runs ``mediaprep prep --transport upload`` as a child
process on both targets (Moonshot only when the file is within its 100 MB). Prints the child's
wall time and peak RSS (the largest of the CLI and its workers) beside the file's size: flat
memory means the RSS stays a small, fixed fraction of the file whatever its size. Then the
rerun (uploads: 0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.upload.servers import DashScopeServer, MoonshotServer  # noqa: E402

MiB = 1024 * 1024


def make_video(path: Path, seconds: float) -> None:
    """1080p noise at a near-lossless CRF: about 80 MB a second of video."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=1920x1080:rate=30", "-t", str(seconds), "-vf",
                    "noise=alls=60:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "4",
                    "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)], check=True)


def run_prep(video: Path, out: Path, api_base: str, target: str, jobs: str) -> dict:
    """One ``mediaprep prep`` child; its wall time, its and its workers' peak RSS, its summary."""
    # a wrapper process measures its own children (the CLI and its workers): ru_maxrss of
    # RUSAGE_CHILDREN is the largest any of them reached, in KiB
    wrapper = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
               "sys.exit(rc)")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "mediaprep",
                           "prep", str(video), "-o", str(out), "--no-cache", "--transport",
                           "upload", "--target", target, "--api-base", api_base, "-j", jobs],
                          capture_output=True, text=True, env={**os.environ,
                                                               "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    peak = int(done.stderr.strip().splitlines()[-1])
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    uploads = [line for line in done.stderr.splitlines() if "uploads:" in line]
    changes = [line for line in done.stderr.splitlines() if "changes:" in line]
    return {"wall": wall, "peak_mb": peak / 1024,
            "uploads": uploads[0].split("prep: ")[-1] if uploads else "",
            "changes": changes[0].split("prep: ")[-1] if changes else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=12.0, help="length of the generated video")
    ap.add_argument("--video", type=Path, help="use this compliant MP4 instead")
    ap.add_argument("--jobs", default="1", help="prep -j (0: in the CLI process)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    os.environ.update({"DASHSCOPE_API_KEY": "sk-bench-ds", "MOONSHOT_API_KEY": "sk-bench-ms",
                       "MEDIAPREP_UPLOADS_DIR": str(work / "records")})
    try:
        video = args.video or work / "big.mp4"
        if args.video is None:
            make_video(video, args.seconds)
        size = video.stat().st_size
        print(f"video: {video.name}, {size:,} bytes ({size / MiB:.0f} MiB)")
        print(f"{'run':<28}{'wall s':>8}{'peak RSS MB':>13}{'RSS/size':>10}  uploads / changes")
        servers = [("dashscope", DashScopeServer("sk-bench-ds", work / "oss"), "/api/v1")]
        if size <= 100 * MiB:
            servers.append(("moonshot", MoonshotServer("sk-bench-ms", work / "files"), "/v1"))
        for target, server, path in servers:
            with server:
                for label in ("first", "rerun"):
                    r = run_prep(video, work / f"out-{target}", server.base + path, target,
                                 args.jobs)
                    peak = f"{r['peak_mb']:.0f}"
                    ratio = f"{r['peak_mb'] * MiB / size:.3f}"
                    print(f"{target + ' ' + label:<28}{r['wall']:>8.1f}{peak:>13}{ratio:>10}  "
                          f"{r['uploads']} / {r['changes']}")
                stored = sum(p.stat().st_size for p in (work / ("oss" if target == "dashscope"
                                                                else "files")).rglob("*")
                             if p.is_file() and not p.name.startswith(".body-"))
                print(f"{'':<28}server stored {stored:,} bytes")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
