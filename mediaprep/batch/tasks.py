"""The per-file work of ``prep`` and ``check`` as small picklable tasks, for any executor.

    tasks = plan_prep(inputs, out_dir, settings)           # in the parent, once
    outcomes = get_executor("dask").run(tasks, prep_one, jobs=4, timeout=300)
    lines = [o.value for o in outcomes]                     # parts.jsonl records, input order

Everything that decides where an output goes (its stem, hence its file name, and the settings
that apply to it) is fixed by :func:`plan_prep` in the parent before dispatch. A task therefore
writes the same files whichever worker runs it and however often it runs: an executor that
retries a task after its worker died cannot duplicate an output, and the atomic writes of
:mod:`mediaprep.output` mean it cannot leave half of one either.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from ..emit.sink import EXTENSION
from ..output import plan_stems
from ..resource import is_url
from ..settings import Settings

__all__ = ["CheckTask", "PrepTask", "check_one", "input_names", "plan_check", "plan_prep",
           "prep_one"]


@dataclass(frozen=True)
class PrepTask:
    """Prepare ``source`` (a path or URL) into ``out_dir`` under ``stem``, with ``settings``."""

    source: str
    display: str
    out_dir: str
    stem: str  # POSIX relative path without extension, unique in the run
    settings: Settings


@dataclass(frozen=True)
class CheckTask:
    source: str
    display: str
    settings: Settings


class PartsLine(dict):  # type: ignore[type-arg]
    """A ``parts.jsonl`` record (a plain dict when written) that also says how many bytes went
    in (``bytes_in``, not written: for a URL, the bytes fetched or the HEAD's size)."""

    bytes_in: int = 0
    previews: dict[int | str, Any] = {}  # prepare's previews, for the report (not written)


def prep_one(task: PrepTask, *, preview: bool = False) -> dict[str, Any]:
    """Prepare one input; return its ``parts.jsonl`` record (never raises for bad media).
    ``preview``: keep prepare's previews on the record (``line.previews``, not written)."""
    from ..api import prepare
    from ..resource import to_resource

    out = Path(task.out_dir)
    result = prepare(to_resource(task.source, name=task.display), settings=task.settings,
                     out_dir=out, stem=PurePosixPath(task.stem), preview=preview)
    line = PartsLine(result.to_json(root=out))
    line.bytes_in = result.bytes_in
    line.previews = result.previews
    return line


def check_one(task: CheckTask) -> dict[str, Any]:
    """Check one input; return its report as JSON (as in ``check --format json``)."""
    from ..api import check
    from ..resource import to_resource

    return check(to_resource(task.source, name=task.display), settings=task.settings).to_json()


# What the fork server imports before forking workers for these (see pool.PRELOAD).
prep_one.worker_imports = ("mediaprep.api", "mediaprep.kinds.image", "mediaprep.kinds.video")  # type: ignore[attr-defined]
check_one.worker_imports = ("mediaprep.api",)  # type: ignore[attr-defined]


def input_names(inputs: Sequence[str]) -> list[str]:
    """Output-relative names for inputs: local paths below their common folder (so ``a/x.jpg``
    and ``b/x.jpg`` stay apart), URLs as ``host/path``. The same list gives the same names."""
    local = [os.path.abspath(p) for p in inputs if not is_url(p)]
    if len(local) > 1:
        common = os.path.commonpath(local)
        if common in local:  # a frames folder among its own files
            common = os.path.dirname(common)
    elif local:
        common = os.path.dirname(local[0])
    names = []
    for p in inputs:
        if is_url(p):
            u = urlsplit(p)
            names.append(f"{u.hostname or 'url'}{u.path or '/'}")
        else:
            names.append(os.path.relpath(os.path.abspath(p), common))
    return names


def plan_prep(inputs: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
              settings: Settings, *, config: Any = None,
              displays: Sequence[str] | None = None) -> list[PrepTask]:
    """One :class:`PrepTask` per input, names decided here once for the whole run.

    ``config`` (a :class:`~mediaprep.config.Config`) applies per-path overrides; ``displays``
    are the names reports show (default: the inputs as given).
    """
    srcs = [os.fspath(p) for p in inputs]
    shown = list(displays) if displays is not None else srcs
    if len(shown) != len(srcs):
        raise ValueError("displays must match inputs one to one")
    names = input_names(srcs)
    stems = plan_stems(names, _input_keys(srcs, names), extensions=EXTENSION.values())
    out = os.path.abspath(os.fspath(out_dir))
    tasks = []
    for src, disp, stem in zip(srcs, shown, stems, strict=True):
        s = settings
        if config is not None and not is_url(src):
            s = config.settings_for(Path(src), settings)
        tasks.append(PrepTask(src, disp, out, stem.as_posix(), s))
    return tasks


def _input_keys(srcs: Sequence[str], names: Sequence[str]) -> list[str]:
    """What tells inputs apart when naming them: the name, unless two inputs share it (two
    URLs differing in their query), then the name and the input itself. The same input named
    twice is one input."""
    by_name: dict[str, set[str]] = {}
    for src, name in zip(srcs, names, strict=True):
        by_name.setdefault(name, set()).add(os.path.abspath(src) if not is_url(src) else src)
    return [name if len(by_name[name]) == 1 else f"{name}\0{src}"
            for src, name in zip(srcs, names, strict=True)]


def plan_check(inputs: Iterable[str | os.PathLike[str]], settings: Settings, *,
               config: Any = None, displays: Sequence[str] | None = None) -> list[CheckTask]:
    srcs = [os.fspath(p) for p in inputs]
    shown = list(displays) if displays is not None else srcs
    tasks = []
    for src, disp in zip(srcs, shown, strict=True):
        s = settings
        if config is not None and not is_url(src):
            s = config.settings_for(Path(src), settings)
        tasks.append(CheckTask(src, disp, s))
    return tasks
