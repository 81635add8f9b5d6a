"""What a command costs before and after its work: the modules it loads and how its process
ends. Each check runs a fresh interpreter (a test process has imported everything already)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.videogen import make_video

ROOT = Path(__file__).resolve().parents[1]

#: What ``mediaprep frames`` never uses: the image and image-list kinds, the folder run's
#: journal, cache, tasks and executors, request bodies, the library API, uploads, URLs and the
#: HTML report (and what those load: Dask, tqdm).
NOT_FOR_FRAMES = (
    "mediaprep.api", "mediaprep.kinds.image", "mediaprep.kinds.frames",
    "mediaprep.batch.journal", "mediaprep.batch.cache", "mediaprep.batch.tasks",
    "mediaprep.batch.executors", "mediaprep.batch.inputs", "mediaprep.emit.request",
    "mediaprep.upload", "mediaprep.net.fetch", "mediaprep.report.html", "dask", "tqdm",
)

#: What importing the command line alone (``mediaprep --help``, ``mediaprep limits``) never
#: loads: the decoders and every module a command imports when it runs.
NOT_FOR_THE_COMMAND_LINE = (
    "numpy", "av", "PIL", "mediaprep.kinds", "mediaprep.backends.av", "mediaprep.batch.folder",
    "mediaprep.batch.pool", "mediaprep.batch.extract", *NOT_FOR_FRAMES,
)


def _python(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _loaded(proc: subprocess.CompletedProcess[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (modules and packages) the process's last output line lists."""
    modules = json.loads(proc.stdout.strip().splitlines()[-1])
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def test_importing_the_command_line_loads_no_decoder_and_no_command(tmp_path):
    proc = _python("import json, sys\nimport mediaprep.cli\nprint(json.dumps(list(sys.modules)))",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _loaded(proc, NOT_FOR_THE_COMMAND_LINE) == []


def test_a_frames_run_loads_only_what_frames_use(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", n_frames=30, fps=10)
    code = ("import json, sys\n"
            "from mediaprep.cli import main\n"
            "try:\n"
            "    main(['frames', sys.argv[1], '-o', sys.argv[2]], standalone_mode=False)\n"
            "except SystemExit as exc:\n"
            "    assert exc.code == 0, exc.code\n"
            "print(json.dumps(list(sys.modules)))")
    proc = _python(code, str(clip), str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads((tmp_path / "out" / "frames.json").read_text())["frames"]) == 6
    assert _loaded(proc, NOT_FOR_FRAMES) == []
    # the worker's modules were loaded here, before it was forked (see the next test)
    assert _loaded(proc, ("mediaprep.kinds.video", "mediaprep.backends.av_frames")) == [
        "mediaprep.kinds.video", "mediaprep.backends.av_frames"]


def test_a_frames_error_names_the_video_once(tmp_path):
    """Found on the way: a probe's error (no such file, not a video) was printed without the
    file's name, a worker's failure with it."""
    from click.testing import CliRunner

    from mediaprep.cli import main

    clip = make_video(tmp_path / "clip.mp4", n_frames=30, fps=10)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    for video, extra, why in ((tmp_path / "missing.mp4", [], "no such file"),
                              (text, [], "not a mp4 file"),
                              (clip, ["--timeout", "0.001"], "took too long")):
        res = CliRunner().invoke(main, ["frames", str(video), "-o", str(tmp_path / "o"), *extra])
        assert res.exit_code == 1, res.output
        assert res.output.startswith(f"{video}: error file.unreadable: "), res.output
        assert res.output.count(str(video)) == 1 and why in res.output, res.output


#: What a prep worker of an image-only run loads, in its own process (``-j 0``) or through the
#: fork server its workers are forked from (``-j 2``): PyAV's FFmpeg libraries, tens of MB a
#: worker, only a video (or a file no magic number names) needs.
_PREP_MODULES = """
import json, sys
from mediaprep.cli import main
if __name__ == "__main__":
    try:
        main(["prep", *sys.argv[1:], "--no-cache", "-q"], standalone_mode=False)
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
    import psutil
    servers = [p for p in psutil.Process().children()
               if "forkserver" in " ".join(p.cmdline())]
    libs = {m.path.rsplit("/", 1)[-1] for s in servers for m in s.memory_maps()}
    print(json.dumps({"modules": list(sys.modules), "servers": len(servers),
                      "server_av": any(lib.startswith("libavcodec") for lib in libs)}))
"""


def _prep(tmp_path: Path, src: Path, jobs: int) -> dict[str, object]:
    out = tmp_path / f"out-{src.name}-{jobs}"
    proc = _python(_PREP_MODULES, str(src), "-o", str(out), "-j", str(jobs), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "parts.jsonl").exists()
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork server and /proc maps")
def test_an_image_only_prep_never_loads_pyav_and_a_video_prep_preloads_it(tmp_path):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (640, 480), "red").save(images / "a.jpg")
    Image.new("RGBA", (300, 200)).save(images / "b.png")
    Image.new("RGB", (5000, 3000), "blue").save(images / "big.webp")
    inline = _prep(tmp_path, images, 0)
    assert inline["modules"] and "av" not in inline["modules"]
    workers = _prep(tmp_path, images, 2)
    assert workers["servers"] == 1 and workers["server_av"] is False
    # a run with a video: its workers are forked with PyAV loaded (none imports it alone)
    clips = tmp_path / "clips"
    clips.mkdir()
    make_video(clips / "clip.mp4", n_frames=10, fps=10)
    Image.new("RGB", (64, 48)).save(clips / "c.jpg")
    assert _prep(tmp_path, clips, 2)["server_av"] is True


#: What a frames run of a plain (SDR, sRGB) clip never needs: numpy (its import was a tenth
#: of a 0.1 fps run's CPU, and 12 MB) and LittleCMS. An HDR clip's tone map imports numpy.
NOT_FOR_SDR_FRAMES = ("numpy", "PIL.ImageCms")


def _imported(stderr: str) -> set[str]:
    """The modules ``-X importtime`` (PYTHONPROFILEIMPORTTIME) logged as imported, in every
    process that wrote to ``stderr``: the command and its forked worker."""
    return {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_a_frames_run_of_an_sdr_clip_imports_no_numpy_in_any_process(tmp_path):
    clip = make_video(tmp_path / "clip.mp4", n_frames=100, fps=10, width=320, height=240)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.run([sys.executable, "-m", "mediaprep", "frames", str(clip), "-o",
                           str(out), "--fps", "0.5"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(json.loads((out / "frames.json").read_text())["frames"]) == 5
    imported = _imported(proc.stderr)
    assert "av" in imported and "PIL.JpegImagePlugin" in imported  # the log covers the work
    loaded = [n for n in NOT_FOR_SDR_FRAMES
              if any(m == n or m.startswith(n + ".") for m in imported)]
    assert loaded == []
