"""Inputs of a command-line run: walking folders, choosing media files, building the report."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .check import Report
from .config import Config
from .probe.sniff import EXTENSIONS, HEAD_BYTES, sniff
from .settings import Settings


@dataclass(frozen=True)
class Item:
    """One unit of work: a file, or a folder of frames taken as one video."""

    path: Path
    display: str
    frames: bool = False
    named: bool = False  # named on the command line (so checked even if not media)


def display_path(path: Path) -> str:
    """Relative to the working directory when inside it (CI annotations need that)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, RuntimeError, OSError):  # RuntimeError: a symlink loop (Python 3.11)
        return str(path)


def is_media_file(path: Path) -> bool:
    """By extension, or by magic number for media with a misleading name."""
    if path.suffix[1:].lower() in EXTENSIONS:
        return True
    try:
        if not path.is_file():  # a FIFO would block the open forever; devices never end
            return False
        with open(path, "rb") as fh:
            return sniff(fh.read(HEAD_BYTES)).kind in ("image", "video")
    except OSError:
        return False


def collect(paths: Iterable[str | Path], config: Config, *,
            frames_dirs: Iterable[str | Path] = ()) -> list[Item]:
    """Files named, media files found under folders named (recursively), and frame folders.

    Symlinked folders are not followed (a link loop cannot trap the walk); each real file is
    taken once even when named twice.
    """
    items: list[Item] = []
    seen: set[Path] = set()

    def add(item: Item) -> None:
        key = item.path.resolve() if item.path.exists() else item.path
        if key not in seen:
            seen.add(key)
            items.append(item)

    for d in frames_dirs:
        p = Path(d)
        add(Item(p, display_path(p), frames=True, named=True))
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for f in _walk(p):
                if config.selected(f) and is_media_file(f):
                    add(Item(f, display_path(f)))
        else:
            add(Item(p, display_path(p), named=True))
    return items


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            p = Path(folder) / name
            if _symlink_loop(p):  # no bytes behind it, and Path.resolve() raises on it
                continue
            yield p


def _symlink_loop(p: Path) -> bool:
    try:
        os.stat(p)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def report_json(reports: list[Report], settings: Settings, *,
                strict: bool = False) -> dict[str, Any]:
    """The ``check --format json`` object of SPEC section 4."""
    files = [r.to_json() for r in reports]
    failed = sum(1 for r in reports if r.failed(strict=strict))
    return {
        "target": settings.target,
        "dialect": settings.dialect,
        "transport": settings.transport,
        "files": files,
        "summary": {
            "files": len(reports),
            "passed": len(reports) - failed,
            "failed": failed,
            "errors": sum(r.errors for r in reports),
            "warnings": sum(r.warnings for r in reports),
        },
    }
