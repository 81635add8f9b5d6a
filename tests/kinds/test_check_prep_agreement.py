"""check's promise equals prep's delivery (issue 13, item 7).

``mediaprep.check`` and then ``mediaprep.prepare`` run over every generated fixture, every
hostile entry and every file of ``../shared/realmedia``, for both targets. Whatever check
passes, or calls fixable, prep must prepare (``ok``); whatever prep cannot prepare, check must
have refused with an unfixable error. A hostile entry whose prep is killed for taking too long
(past its CPU-time budget) must have been refused by check.

Task functions are top-level in this module so worker processes can import them by name.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import mediaprep
from mediaprep.batch.pool import run_all
from tests.conftest import REALMEDIA

TARGETS = ("dashscope", "moonshot")
#: CPU seconds one input's check + prep may use before its worker is killed (SIGXCPU). CPU
#: time, not wall time: on a loaded machine (CI's 2 cores shared with other jobs) a task that
#: needs 2 s of CPU took over 30 s by the clock, and was called a runaway.
TASK_CPU_SECONDS = 30
#: The wall-clock limit as well, for a task that waits instead of working (a hang): far above
#: what the CPU budget allows even when the machine is 20 times oversubscribed.
TASK_WALL_SECONDS = 20.0 * TASK_CPU_SECONDS


def _realmedia() -> Path | None:
    return REALMEDIA if REALMEDIA.is_dir() else None


def _codes(findings) -> list[str]:
    return sorted({f"{f.code}{'' if f.severity != 'error' else '!' if not f.fixable else '~'}"
                   for f in findings if f.severity in ("error", "warning")})


def _refused(report) -> bool:
    """check says prep cannot make this sendable: an error that is not fixable."""
    return any(f.severity == "error" and not f.fixable for f in report.findings)


@contextmanager
def _cpu_budget(seconds: int) -> Iterator[None]:
    """The kernel kills this worker (SIGXCPU) once the task has used ``seconds`` of CPU time
    (all its threads); the pool reports that as a crash. Without ``resource`` (Windows) only
    the wall-clock limit applies."""
    try:
        import resource
    except ImportError:
        yield
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)  # the worker's earlier tasks too
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    limit = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _check(path: str, target: str) -> dict:
    report = mediaprep.check(path, settings=mediaprep.Settings(target=target))
    return {"refused": _refused(report), "check": _codes(report.findings)}


def check_only(task: tuple[str, str, str, str]) -> dict:
    _name, path, target, _scratch = task
    with _cpu_budget(TASK_CPU_SECONDS):
        return _check(path, target)


def agree_one(task: tuple[str, str, str, str]) -> dict:
    """check, then prep, one input for one target; what each said."""
    name, path, target, scratch = task
    with _cpu_budget(TASK_CPU_SECONDS):
        out = _check(path, target)
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            prepared = mediaprep.prepare(path, settings=mediaprep.Settings(target=target),
                                         out_dir=Path(tmp) / "out")
    out["ok"] = prepared.ok
    out["prep"] = _codes(prepared.findings)
    return out


@pytest.fixture(scope="module")
def hostile(hostile_corpus: dict) -> dict:
    """fixtures.hostile's corpus (built once a session)."""
    return hostile_corpus


def _inputs(generated: dict[str, Path], hostile: dict) -> dict[str, Path]:
    inputs = {f"gen:{n}": p for n, p in generated.items()}
    for name, case in hostile.items():
        if case.kind == "file":  # a folder of symlink loops and a FIFO is the CLI's walk's job
            inputs[f"hostile:{name}"] = case.path
    real = _realmedia()
    if real is not None:
        for p in sorted(real.rglob("*")):
            if p.is_file() and p.parent.name in ("images", "videos"):
                inputs[f"real:{p.parent.name}/{p.name}"] = p
        frames = real / "framelists"
        if frames.is_dir():
            for d in sorted(frames.iterdir()):
                if d.is_dir():
                    inputs[f"real:framelists/{d.name}"] = d
    return inputs


@pytest.fixture(scope="module")
def agreement(generated: dict[str, Path], hostile: dict,
              tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``{(name, target): result}`` for every input and target (run once for the module)."""
    base = tmp_path_factory.mktemp("agree")
    inputs = _inputs(generated, hostile)
    scratch = base / "scratch"
    scratch.mkdir()
    tasks = [(name, str(path), target, str(scratch))
             for name, path in inputs.items() for target in TARGETS]
    outcomes = run_all(tasks, agree_one, jobs=2, timeout=TASK_WALL_SECONDS)
    results: dict = {}
    late = []
    for task, oc in zip(tasks, outcomes, strict=True):
        if oc.ok:
            results[task[0], task[2]] = oc.value
        else:
            late.append((task, oc.error))
    # an input whose check + prep did not finish: prep could not deliver; check must say so
    if late:
        again = run_all([t for t, _ in late], check_only, jobs=2,
                        timeout=TASK_WALL_SECONDS)
        for (task, err), oc in zip(late, again, strict=True):
            value = oc.value if oc.ok else {"refused": False, "check": [f"({oc.error.kind})"]}
            value.update(ok=False, prep=[f"({err.kind}: {err.message[:80]})"])
            results[task[0], task[2]] = value
    return results


def test_every_input_was_run_for_both_targets(agreement: dict) -> None:
    names = {n for n, _ in agreement}
    assert any(n.startswith("gen:") for n in names)
    assert any(n.startswith("hostile:") for n in names)
    assert len(agreement) == 2 * len(names)


def test_what_check_passes_prep_prepares(agreement: dict) -> None:
    """No unfixable error in check -> prepared; prep failed -> check had an unfixable error."""
    bad = [(name, target, r["check"], r["prep"])
           for (name, target), r in sorted(agreement.items())
           if not r["refused"] and not r["ok"]]
    for row in bad:
        print("check passed, prep failed:", *row)
    total = len(agreement)
    print(f"{total} input x target runs, {total - len(bad)} agree, {len(bad)} disagree")
    assert bad == []


@pytest.mark.parametrize("name", ["png_bad_adler", "heic_empty_mdat", "heic_zero_mdat"])
def test_check_finds_what_only_the_decode_found_before(hostile: dict, name: str) -> None:
    """A picture whose header is whole but whose data is not: check refuses it, as prep does."""
    case = hostile[name]
    report = mediaprep.check(case.path)
    assert [f.code for f in report.findings if f.severity == "error"] == ["file.unreadable"]
    assert case.path.name in report.findings[0].message


def test_a_transcode_that_cannot_fit_is_refused_by_check(generated: dict[str, Path],
                                                          tmp_path: Path) -> None:
    """--video-mode file and a budget below the MP4 overhead of its frames: check knows."""
    video = generated["video_2s"]
    opts = {"video_mode": "file", "limits": {"video.max_data_url_bytes": 3000}}
    found = mediaprep.check(video, **opts).findings
    assert [(f.code, f.fixable) for f in found if f.severity == "error"] == [
        ("base64.too_large", False)]
    assert "cannot be transcoded" in found[0].message
    assert not mediaprep.prepare(video, out_dir=tmp_path / "a", **opts).ok
    # sent as frames instead (auto): fixable in check, prepared by prep
    auto = {"limits": opts["limits"]}
    assert all(f.fixable for f in mediaprep.check(video, **auto).findings if f.severity == "error")
    assert mediaprep.prepare(video, out_dir=tmp_path / "b", **auto).ok


def _frames_cli(video: Path, out: Path) -> tuple[int, str]:
    from click.testing import CliRunner

    from mediaprep.cli import main

    res = CliRunner().invoke(main, ["frames", str(video), "-o", str(out)])
    return res.exit_code, res.output + (res.stderr if res.stderr_bytes is not None else "")


def test_frames_refuses_the_clip_prep_refuses(tmp_path: Path) -> None:
    """0.1 s of video cannot give 4 frames even at the highest fps: no frame from `frames`."""
    from tests.fixtures.generate import encode_video

    clip = tmp_path / "one_frame.mp4"
    encode_video(clip, n_frames=1, fps=10)
    assert not mediaprep.prepare(clip, out_dir=tmp_path / "prep").ok
    code, text = _frames_cli(clip, tmp_path / "frames")
    assert code == 1
    assert "video.too_short" in text
    assert not list((tmp_path / "frames").glob("frame_*.jpg"))


def test_frames_raises_the_fps_as_prep_does(tmp_path: Path) -> None:
    """A 1 s clip at the default 2 fps would give 2 frames; both raise the fps to give 4."""
    import json

    from tests.fixtures.generate import encode_video

    clip = tmp_path / "one_second.mp4"
    encode_video(clip, n_frames=10, fps=10)
    prepared = mediaprep.prepare(clip, out_dir=tmp_path / "prep")
    assert prepared.ok and prepared.timestamps is not None
    code, _ = _frames_cli(clip, tmp_path / "frames")
    assert code == 0
    manifest = json.loads((tmp_path / "frames" / "frames.json").read_text())
    assert [f["timestamp"] for f in manifest["frames"]] == prepared.timestamps
    assert manifest["fps"] == prepared.fps == 4.0
