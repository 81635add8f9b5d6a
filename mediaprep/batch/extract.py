"""``mediaprep frames VIDEO -o DIR`` as a library call: :func:`frames_to_folder`.

The probe and the decode run in a worker process, killed after ``timeout`` (a hostile file
hangs or grows there, not in the caller), forked from the caller when it runs no other thread;
only files an earlier frames run recorded writing may be replaced or removed
(:mod:`mediaprep.batch.frames_dir`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MediaprepError
from ..settings import Settings
from .frames_dir import (
    FramesRecord,
    claim_frames,
    finish_frames,
    give_up_frames,
    read_frames_record,
    refuse_frames_in_the_way,
)

__all__ = ["FramesOutcome", "FramesOutputError", "frames_job", "frames_to_folder"]


class FramesOutputError(MediaprepError):
    """The output folder, not the input, stopped the frames: it cannot be made or written
    (CLI: exit 2)."""


@dataclass
class FramesOutcome:
    """What :func:`frames_to_folder` did: the ``frames.json`` written, or why not."""

    video: str
    manifest: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None  # "code: message" when the input gave no frames

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.manifest and self.manifest.get("frames"))


def frames_to_folder(video: str, out_dir: str | os.PathLike[str], settings: Settings, *,
                     timeout: float | None) -> FramesOutcome:
    """Take frames of ``video`` at ``settings.fps`` capped by ``settings.max_frames`` into
    ``out_dir``, with ``out_dir/frames.json``.

    Args:
        video: the video's path.
        out_dir: the folder for the frames (made if missing).
        settings: fps, max_frames, the frame size (``frame_max_side``) and the limits.
        timeout: seconds the worker may take before it is killed (None: no limit).

    Returns:
        A :class:`FramesOutcome`: ``manifest`` (what ``frames.json`` holds) and ``notes``, or
        ``error`` ("code: message") when the input gave no frames.

    Raises:
        FramesDirRefused: ``out_dir`` holds a ``frames.json`` or frame names that are not
            mediaprep's (nothing is written).
        FramesOutputError: the output folder cannot be made or written.
    """
    from ..output import new_run_id
    from .folder import run_tasks
    from .summary import task_failure_message

    out = Path(out_dir)  # made by the worker once the input is known to be a video
    record = read_frames_record(out, video)
    refuse_frames_in_the_way(out, record, settings.max_frames)
    if record.run is not None:  # a killed run's half-written frames
        _sweep(out, record.run)
    run_id = new_run_id()  # the marker of this run's temporaries, for the sweep below
    outcome = run_tasks([(video, str(out), settings, run_id, record)], frames_job, jobs=1,
                        timeout=timeout, on_result=None, executor=None,
                        executor_options=None, start_method=_one_worker_start())[0]
    if not outcome.ok:
        _sweep(out, run_id)  # a killed worker may leave a half-written frame
        give_up_frames(out, video)
        return FramesOutcome(video, error="file.unreadable: "
                                          + task_failure_message(video, outcome.error))
    done = outcome.value
    if done.get("output_error") or done.get("error"):
        give_up_frames(out, video)
    if done.get("output_error"):
        raise FramesOutputError(done["output_error"])
    if done.get("error"):
        return FramesOutcome(video, error=done["error"])
    manifest = finish_frames(out, video, record, done["manifest"])
    return FramesOutcome(video, manifest=manifest, notes=list(done["notes"]))


def _sweep(out: Path, run: str) -> None:
    """Remove the temporaries run ``run`` left in the output folder (imported here: a run
    that needs no sweep does not load the journal)."""
    from .journal import sweep_temporaries

    sweep_temporaries(out, [out], [run])


def _one_worker_start() -> str | None:
    """How the one worker starts: forked from this process when no other Python thread runs
    here, once what it needs is imported here (a fork server would start a second interpreter
    and import it all again: 0.4 s of CPU and 30 MB). Else the pool's default.

    Imported here, not in the child: the child's resident size then counts only the library
    pages its work touches, not every page an import touched (10 MB at 1080p).

    Native threads left (a BLAS pool, FFmpeg's decoder and scaler threads) are then idle: only
    a Python thread could have work running on them. Garbage is collected first, in this
    process, where those threads still are: a child that freed a dead scaler would wait
    forever for threads it does not have."""
    import gc
    import importlib
    import multiprocessing
    import threading

    if threading.active_count() != 1 or "fork" not in multiprocessing.get_all_start_methods():
        return None
    for module in frames_job.worker_imports:  # type: ignore[attr-defined]
        importlib.import_module(module)
    gc.collect()
    # a native thread still alive here (a scaler's or decoder's pool some earlier work in this
    # process kept) is not in the child: a child that reused or freed its owner would wait for
    # it forever (seen: a test process's kept scaler, freed by swscale in the child)
    return "fork" if _os_threads() == 1 else None


def _os_threads() -> int:
    """The threads of this process as the kernel counts them (Python's and native ones); 1
    where that cannot be read, and Python's own count decides."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def frames_job(task: tuple[str, str, Settings, str, FramesRecord]) -> dict[str, Any]:
    """The work of one frames run (in a worker): probe, take the frames, write them."""
    from ..output import writing_for_run

    video, out_dir, settings, run_id, record = task
    with writing_for_run(run_id):
        return _frames_work(video, out_dir, settings, record, run_id)


# What frames_job imports: a fork server preloads them, and a forked worker finds them imported
frames_job.worker_imports = ("mediaprep.kinds", "mediaprep.kinds.video",  # type: ignore[attr-defined]
                             "mediaprep.backends.av_frames", "mediaprep.resource")


def _frames_work(video: str, out_dir: str, settings: Settings,
                 record: FramesRecord, run_id: str) -> dict[str, Any]:
    from ..backends.av_frames import FrameExtractionError
    from ..kinds import probe_resource
    from ..kinds.video import frames_for_command, frames_manifest
    from ..resource import to_resource

    src = to_resource(video)
    info = probe_resource(src, limits=settings.limits)
    if info.kind != "video" or info.error_code:
        return {"error": f"{info.error_code or 'file.unsupported_format'}: "
                         f"{info.error or 'not a video'}"}
    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return {"output_error": f"cannot make the output folder {out_dir}: {exc}"}
    try:
        claim_frames(Path(out_dir), video, record, settings.max_frames, run_id)
        fs, refused = frames_for_command(src, info, settings, Path(out_dir))
    except OSError as exc:
        if _is_output_error(exc, out_dir):
            return {"output_error": f"cannot write frames into {out_dir}: {exc}"}
        return {"error": f"file.unreadable: cannot take frames: {exc}"}
    except (FrameExtractionError, ValueError) as exc:
        return {"error": f"file.unreadable: cannot take frames: {exc}"}
    if fs is None:  # prep's rules: too few frames (see frames_for_command)
        return {"error": f"{refused.code}: {refused.message}"}
    return {"manifest": frames_manifest(video, fs), "notes": list(fs.notes)}


def _is_output_error(exc: OSError, out_dir: str) -> bool:
    """Whether an error while taking frames is the output's: a full or read-only disk, or a
    path in (or above) the output folder; the input is only ever read."""
    from ..output import RUN_STOPPING_ERRNOS

    if exc.errno in RUN_STOPPING_ERRNOS:
        return True
    out = os.path.realpath(out_dir)
    for name in (exc.filename, exc.filename2):
        if not isinstance(name, str | bytes | os.PathLike):
            continue
        p = os.path.realpath(os.fsdecode(name))
        if p == out or p.startswith(out.rstrip(os.sep) + os.sep) or out.startswith(p + os.sep):
            return True
    return False
