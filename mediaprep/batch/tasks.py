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

from ..backends.sniff import EXTENSIONS, IMAGE_FORMATS
from ..emit.sink import EXTENSION
from ..output import plan_stem_names
from ..resource import is_url, url_extension
from ..settings import Settings

__all__ = ["CheckTask", "PrepTask", "check_one", "input_names", "media_imports", "plan_check",
           "plan_prep", "prep_one"]


@dataclass(frozen=True, slots=True)  # slots: a million of them are planned at once
class PrepTask:
    """Prepare ``source`` (a path or URL) into ``out_dir`` under ``stem``, with ``settings``."""

    source: str
    display: str
    out_dir: str
    stem: str  # POSIX relative path without extension, unique in the run
    settings: Settings


@dataclass(frozen=True, slots=True)
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


# What the fork server imports before forking workers for these (see pool.PRELOAD); the video
# kind is added by the run when its inputs may hold a video (media_imports).
prep_one.worker_imports = ("mediaprep.api", "mediaprep.kinds.image")  # type: ignore[attr-defined]
check_one.worker_imports = ("mediaprep.api",)  # type: ignore[attr-defined]

#: The image formats' extensions: an input named so is prepared without the video kind.
_IMAGE_EXTENSIONS = frozenset(e for e, fmt in EXTENSIONS.items() if fmt in IMAGE_FORMATS)


def media_imports(sources: Iterable[str]) -> tuple[str, ...]:
    """The modules a prep run's workers need beyond :func:`prep_one`'s own: the video kind
    (PyAV and FFmpeg's libraries: 18 MB of the fork server), unless every input is named as an
    image. The fork server imports them once for all workers; an input that needs the video
    kind anyway (an image named .mp4, a file no magic number names) has its worker import it
    then."""
    for src in sources:
        ext = url_extension(src) if is_url(src) else os.path.splitext(src)[1][1:].lower()
        if ext not in _IMAGE_EXTENSIONS:
            return ("mediaprep.kinds.video",)
    return ()


def input_names(inputs: Sequence[str]) -> list[str]:
    """Output-relative names for inputs: local paths below their common folder (so ``a/x.jpg``
    and ``b/x.jpg`` stay apart), URLs as ``host/path``. The same list gives the same names."""
    absolute = [None if is_url(p) else os.path.abspath(p) for p in inputs]
    common = _common_folder([a for a in absolute if a is not None])
    return [_url_name(p) if a is None else _relative(a, common)
            for p, a in zip(inputs, absolute, strict=True)]


def _common_folder(local: list[str]) -> str:
    """The folder all ``local`` paths (absolute) are below: their common path, or its parent
    when it is one of them (a frames folder among its own files). Taken over their distinct
    folders (the same answer, for a thousand folders instead of a million paths)."""
    if not local:
        return ""
    folders = {os.path.dirname(a) for a in local}
    if len(folders) == 1 and len(set(local)) == 1:
        return folders.pop()
    common = os.path.commonpath(folders)
    return os.path.dirname(common) if common in set(local) else common


def _url_name(url: str) -> str:
    u = urlsplit(url)
    return f"{u.hostname or 'url'}{u.path or '/'}"


def _relative(path: str, folder: str) -> str:
    """``os.path.relpath(path, folder)`` for absolute, normalised paths; a path below
    ``folder`` is cut, not walked (relpath costs 20 µs, a million times)."""
    prefix = folder if folder.endswith(os.sep) else folder + os.sep
    if path.startswith(prefix) and len(path) > len(prefix):
        return path[len(prefix):]
    return os.path.relpath(path, folder)


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
    stems = plan_stem_names(names, _input_keys(srcs, names), extensions=EXTENSION.values())
    out = os.path.abspath(os.fspath(out_dir))
    distinct: list[Settings] = [settings]
    return [PrepTask(src, disp, out, stem, _settings_of(src, settings, config, distinct))
            for src, disp, stem in zip(srcs, shown, stems, strict=True)]


def _settings_of(src: str, settings: Settings, config: Any, distinct: list[Settings]) -> Settings:
    """The settings of one input: ``config``'s per-path overrides on top of ``settings``. The
    inputs of one override share one object (``distinct``: those made so far; as many as the
    config has overrides): not a copy each, held for every input and pickled with each."""
    if config is None or is_url(src):
        return settings
    own = config.settings_for(Path(src), settings)
    for seen in distinct:
        if own is seen or own == seen:
            return seen
    distinct.append(own)
    return own


def _input_keys(srcs: Sequence[str], names: Sequence[str]) -> list[str]:
    """What tells inputs apart when naming them: the name, unless two inputs share it (two
    URLs differing in their query), then the name and the input itself. The same input named
    twice is one input."""
    first: dict[str, str] = {}  # name -> the first input named so (no set per input: 10^6)
    shared: set[str] = set()
    for src, name in zip(srcs, names, strict=True):
        prev = first.setdefault(name, src)
        if prev != src and _identity(prev) != _identity(src):
            shared.add(name)
    return [f"{name}\0{src}" if name in shared else name
            for src, name in zip(srcs, names, strict=True)]


def _identity(src: str) -> str:
    return src if is_url(src) else os.path.abspath(src)


def plan_check(inputs: Iterable[str | os.PathLike[str]], settings: Settings, *,
               config: Any = None, displays: Sequence[str] | None = None) -> list[CheckTask]:
    srcs = [os.fspath(p) for p in inputs]
    shown = list(displays) if displays is not None else srcs
    distinct: list[Settings] = [settings]
    return [CheckTask(src, disp, _settings_of(src, settings, config, distinct))
            for src, disp in zip(srcs, shown, strict=True)]
