"""Which files in a ``mediaprep frames VIDEO -o DIR`` folder are mediaprep's own.

``DIR/frames.json`` carries ``"generator": "mediaprep"`` and, under ``written``, each frame file
the run wrote with its size and modification time: the record of what is mediaprep's, as the
journal is for ``prep`` (only a file still as recorded is; one the user changed since is the
user's). A run refuses to start (nothing written) when DIR's ``frames.json`` is not mediaprep's,
or when a frame name it may write is taken by a file that is not mediaprep's (an earlier ffmpeg
extraction, the input itself). Before the first frame is written the worker records the names
it may write (``"complete": false``, the names without a size), so frames of a run killed at
any moment are known as mediaprep's to the next run, which replaces or removes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MediaprepError
from ..output import atomic_write, is_run_id

__all__ = ["FramesDirRefused", "FramesRecord", "claim_frames", "finish_frames",
           "give_up_frames", "read_frames_record", "refuse_frames_in_the_way"]

MANIFEST = "frames.json"
GENERATOR = "mediaprep"  # frames.json's mark: mediaprep wrote it and the frames it lists
#: An earlier frames.json is read up to this size (2,000 frames take about 300 KB); a larger
#: one is not mediaprep's.
MANIFEST_MAX_BYTES = 4 * 1024 * 1024
FRAME_NAME = re.compile(r"frame_(\d{6})\.jpg\Z")


class FramesDirRefused(MediaprepError):
    """DIR holds a frames.json or a frame file that is not mediaprep's: the run would replace
    it. (CLI: a usage error, exit 2, before anything is written.)"""


@dataclass(frozen=True)
class FramesRecord:
    """An earlier run's record, reduced to the frame files still as it wrote them."""

    own: list[dict[str, Any]] = field(default_factory=list)  # the record's entries
    complete: bool = True  # False: written by a run that did not finish
    run: str | None = None  # that unfinished run's marker: its temporaries are swept

    def names(self) -> set[str]:
        return {e["file"] for e in self.own}


def _file_id(path: str | os.PathLike[str] | None) -> tuple[int, int] | None:
    try:
        st = os.stat(path) if path is not None else None
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino) if st is not None else None


def _still_own(out: Path, entry: dict[str, Any], complete: bool,
               keep: tuple[int, int] | None) -> bool:
    """Whether ``DIR/entry[file]`` is still the file mediaprep wrote: a plain file (not a link)
    of the recorded size and time; a name claimed by a run that did not finish (no size) is
    its file when it is a plain file. Never the input (``keep``)."""
    try:
        st = os.lstat(out / entry["file"])
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) == keep:
        return False
    if "size" not in entry:
        return not complete
    return st.st_size == entry["size"] and st.st_mtime_ns == entry.get("mtime_ns")


def _valid_entry(e: Any) -> bool:
    return (isinstance(e, dict) and isinstance(e.get("file"), str)
            and FRAME_NAME.match(e["file"]) is not None
            and ("size" not in e or (isinstance(e["size"], int)
                                     and isinstance(e.get("mtime_ns"), int))))


def read_frames_record(out: Path, video: str | None = None) -> FramesRecord:
    """What an earlier run recorded in ``DIR/frames.json`` (empty when there is none).

    Raises:
        FramesDirRefused: a frames.json mediaprep did not write (a link, not a file, not JSON,
            no ``"generator": "mediaprep"``, too large).
    """
    path = out / MANIFEST
    data = _read_manifest(path)
    if data is None:
        return FramesRecord()
    written = data.get("written")
    complete = data.get("complete", True) is not False
    keep = _file_id(video)
    own = [e for e in (written if isinstance(written, list) else [])
           if _valid_entry(e) and _still_own(out, e, complete, keep)]
    run = data.get("run")
    return FramesRecord(own, complete, run if not complete and is_run_id(run) else None)


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """``frames.json`` as mediaprep wrote it (None: there is none); FramesDirRefused when it
    is not one mediaprep wrote."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FramesDirRefused(f"cannot read {path}: {exc.strerror or exc}") from None
    theirs = (f"{path} was not written by mediaprep frames: it is not replaced (move it away "
              "or choose another folder)")
    if not stat.S_ISREG(st.st_mode) or st.st_size > MANIFEST_MAX_BYTES:
        raise FramesDirRefused(theirs)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
        with os.fdopen(fd, "rb") as fh:
            data = json.loads(fh.read(MANIFEST_MAX_BYTES + 1))
    except (OSError, ValueError):
        raise FramesDirRefused(theirs) from None
    if not isinstance(data, dict) or data.get("generator") != GENERATOR:
        raise FramesDirRefused(theirs)
    return data


def frame_names(max_frames: int) -> list[str]:
    """The names a run taking at most ``max_frames`` frames may write (see extract_frame_set)."""
    return [f"frame_{i:06d}.jpg" for i in range(max_frames)]


def refuse_frames_in_the_way(out: Path, record: FramesRecord, max_frames: int) -> None:
    """Raise :class:`FramesDirRefused` when a name this run may write is taken by anything that
    is not a file mediaprep recorded writing and that is unchanged since (a user's file, a
    link, a folder, the input itself)."""
    own = record.names()
    taken: list[str] = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(out) as entries:
        for entry in entries:
            m = FRAME_NAME.match(entry.name)
            if m and int(m.group(1)) < max_frames and entry.name not in own:
                taken.append(entry.name)
    if taken:
        taken.sort()
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        raise FramesDirRefused(
            f"{out} holds {taken[0]}{more} that mediaprep frames did not write (or that "
            "changed since): it would be replaced; move them away or choose another folder")


def claim_frames(out: Path, video: str, record: FramesRecord, max_frames: int,
                 run_id: str) -> None:
    """Before the first frame is written: record in frames.json every name the run may write
    and the earlier run's own files, without sizes (the run may rewrite any of them), and the
    run's marker, so a run killed at any point leaves only files the next run knows as
    mediaprep's: its frames by name, its half-written temporaries by the marker."""
    names = sorted(record.names() | set(frame_names(max_frames)))
    atomic_write(out / MANIFEST, json.dumps(
        {"generator": GENERATOR, "video": video, "complete": False, "run": run_id,
         "frames": [], "written": [{"file": n} for n in names]}) + "\n")


def _stamp(out: Path, name: str) -> dict[str, Any]:
    st = os.lstat(out / name)
    return {"file": name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _remove_own(out: Path, entries: Iterable[dict[str, Any]], complete: bool,
                keep: tuple[int, int] | None) -> None:
    for e in entries:
        if _still_own(out, e, complete, keep):  # looked at again: the user may have been busy
            with contextlib.suppress(OSError):
                os.unlink(out / e["file"])


def finish_frames(out: Path, video: str, record: FramesRecord,
                  manifest: dict[str, Any]) -> dict[str, Any]:
    """After a run wrote its frames: remove the earlier run's own frames this one did not
    write again, then write the final frames.json (its frames and their sizes and times).
    Returns what was written."""
    new = [f["file"] for f in manifest["frames"]]
    kept = set(new)
    _remove_own(out, [e for e in record.own if e["file"] not in kept], record.complete,
                _file_id(video))
    final = {"generator": GENERATOR, **manifest, "written": [_stamp(out, n) for n in new]}
    atomic_write(out / MANIFEST, json.dumps(final, indent=2) + "\n")
    return final


def give_up_frames(out: Path, video: str) -> None:
    """After a run that did not finish: remove the frames it claimed and wrote, and its
    unfinished frames.json. A frames.json still complete (the run stopped before claiming)
    and its frames are left as they are."""
    try:
        record = read_frames_record(out, video)
    except FramesDirRefused:
        return
    if record.complete:
        return
    _remove_own(out, record.own, record.complete, _file_id(video))
    with contextlib.suppress(OSError):
        os.unlink(out / MANIFEST)
