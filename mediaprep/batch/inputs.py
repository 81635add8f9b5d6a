"""Inputs of a run: walking folders, choosing media files, reading manifests.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..backends.sniff import EXTENSIONS, HEAD_BYTES, SHARED_EXTENSIONS, sniff
from ..config import Config, read_capped_text, resolved_folder
from ..errors import MediaprepError
from ..resource import is_url


@dataclass(frozen=True)
class Item:
    """One unit of work: a file, or a folder of frames taken as one video."""

    path: Path
    display: str
    frames: bool = False
    named: bool = False  # named on the command line (so checked even if not media)
    url: str | None = None  # an http(s) URL named on the command line (path is then unused)
    real: Path | None = None  # the path resolved (None: a URL, a missing file, a link loop)

    @property
    def source(self) -> str:
        """What a task takes: the URL, or the path."""
        return self.url if self.url is not None else str(self.path)


def display_path(path: Path, real: Path | None = None) -> str:
    """Relative to the working directory when inside it (CI annotations need that).

    ``real``: ``path`` resolved already (a folder walk knows it without a syscall per part).
    """
    try:
        return (real or path.resolve()).relative_to(resolved_folder(os.getcwd())).as_posix()
    except (ValueError, RuntimeError, OSError):  # RuntimeError: a symlink loop (Python 3.11)
        return str(path)


def is_media_file(path: Path) -> bool:
    """By extension, or by magic number for media with a misleading name.

    An extension other files share (.ts: TypeScript) counts only when the bytes are media too.
    """
    ext = path.suffix[1:].lower()
    if ext in EXTENSIONS and ext not in SHARED_EXTENSIONS:
        return True
    try:
        if not path.is_file():  # a FIFO would block the open forever; devices never end
            return False
        with open(path, "rb") as fh:
            return sniff(fh.read(HEAD_BYTES)).kind in ("image", "video")
    except OSError:
        return False


def collect(paths: Iterable[str | Path], config: Config, *,
            frames_dirs: Iterable[str | Path] = (), skip: Path | None = None) -> list[Item]:
    """Files named, media files found under folders named (recursively), and frame folders.

    Symlinked folders are not followed (a link loop cannot trap the walk); each real file is
    taken once even when named twice. With ``config.force_exclude``, a file named is taken only
    as a walk would take it (include/exclude, and media only). ``skip``: a folder the walks
    leave out (prep's output folder: ``prep . -o out`` must not take the last run's outputs as
    inputs).
    """
    skip_real = str(_resolved(skip)) if skip is not None else None
    found = _Found()
    for d in frames_dirs:
        found.add(_named(Path(d), frames=True))
    for raw in paths:
        if is_url(raw):
            found.add(Item(Path(str(raw)), str(raw), named=True, url=str(raw)))
        elif Path(raw).is_dir():
            for item in _walked_items(Path(raw), config, skip_real):
                found.add(item)
        elif not (config.force_exclude and _left_out(Path(raw), config)):
            found.add(_named(Path(raw)))
    return found.items


def _walked_items(root: Path, config: Config, skip: str | None) -> Iterator[Item]:
    """The media files under ``root`` that include/exclude take."""
    for f, real in _walk(root, skip):
        if config.selected(f, real) and is_media_file(f):
            yield Item(f, display_path(f, real), real=real)


class _Found:
    """Items in the order found, each real file once."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self._seen: set[Path] = set()

    def add(self, item: Item) -> None:
        key = item.real or item.path
        if key not in self._seen:
            self._seen.add(key)
            self.items.append(item)


def _named(p: Path, **kw: Any) -> Item:
    """An input named on the command line."""
    real = _resolved(p) if p.exists() else None
    return Item(p, display_path(p, real), named=True, real=real, **kw)


def _left_out(p: Path, config: Config) -> bool:
    """Under ``force_exclude``: whether a walk would leave out the file named ``p`` (include,
    exclude, not media). One that does not exist is kept, to be reported as missing."""
    if not p.exists():
        return False
    return not (config.selected(p, _resolved(p)) and is_media_file(p))


def _resolved(p: Path) -> Path | None:
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python 3.11)
        return None


# Left out of folder walks (as ruff and black leave them out): hidden files and folders (.git
# with its LFS objects, .venv, macOS "._name.jpg" resource forks) and the folders of installed
# packages, whose icons and sample images are not the project's media. Named on the command
# line, they are taken.
SKIPPED_FOLDERS = frozenset({"node_modules", "venv", "__pycache__", "__pypackages__",
                             "site-packages"})


def _walked(name: str) -> bool:
    return not name.startswith(".")


def _walk(root: Path, skip: str | None = None) -> Iterator[tuple[Path, Path]]:
    """Files under ``root`` in sorted order, each with its resolved path; a folder under
    ``root`` whose resolved path is ``skip`` is left out, and so are hidden names and
    :data:`SKIPPED_FOLDERS`.

    Why not ``Path.resolve()`` per file: it costs a syscall per path component, thousands of
    times, in the parent before any worker starts. A folder is resolved once; a file that is
    not a symlink resolves to its folder's resolved path plus its name.
    """
    for folder, dirs, files in os.walk(root, followlinks=False):
        real_folder = resolved_folder(os.path.abspath(folder))  # the cache keys by string
        # a folder named itself is walked (prep refuses DIR by name)
        dirs[:] = sorted(d for d in dirs if _walked(d) and d not in SKIPPED_FOLDERS
                         and os.path.join(real_folder, d) != skip)
        for name in sorted(filter(_walked, files)):
            p = Path(folder) / name
            if not os.path.islink(p):
                yield p, real_folder / name
                continue
            if _symlink_loop(p):  # no bytes behind it, and Path.resolve() raises on it
                continue
            try:
                yield p, p.resolve()
            except (OSError, RuntimeError):
                continue


def _symlink_loop(p: Path) -> bool:
    try:
        os.stat(p)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


__all__ = ["ManifestError", "read_manifest"]


class ManifestError(MediaprepError, ValueError):
    """The manifest cannot be read (the CLI exits 2 on this)."""


def read_manifest(path: str | os.PathLike[str]) -> list[str]:
    """The inputs listed in the manifest at ``path``, in order, each once.

    Paths come back absolute when the manifest's own path is absolute (relative ones are joined
    to the manifest's folder); URLs come back unchanged.
    """
    manifest = Path(path)
    try:
        text = read_capped_text(manifest, encoding="utf-8-sig")  # a BOM from Windows editors
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read manifest {manifest}: {exc}") from exc
    base = manifest.parent
    out: list[str] = []
    seen: set[str] = set()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "\x00" in line:
            raise ManifestError(f"manifest {manifest}: a line holds a NUL byte")
        entry = line if is_url(line) else os.path.normpath(os.fspath(base / line))
        if entry not in seen:
            seen.add(entry)
            out.append(entry)
    return out
