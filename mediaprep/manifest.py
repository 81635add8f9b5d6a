"""Input lists: a manifest file names one input (a path or a URL) per line.

A cluster job should not walk a network file system to find its inputs: list them once (``find``,
a database query, an object-store listing) and hand the list over.

    # comments and blank lines are skipped
    photos/a.jpg                 relative paths are relative to the manifest's folder
    /data/videos/b.mp4
    https://example.com/c.png    URLs are kept as they are (fetched only if fetching is allowed)

Lines are UTF-8 and stripped of surrounding whitespace; a line starting with ``#`` is a comment
(a ``#`` inside a path is part of the path). Duplicates are kept once, first occurrence wins, so
no input is prepared twice.
"""

from __future__ import annotations

import os
from pathlib import Path

from .sources import is_url

__all__ = ["ManifestError", "read_manifest"]


class ManifestError(ValueError):
    """The manifest cannot be read (the CLI exits 2 on this)."""


def read_manifest(path: str | os.PathLike[str]) -> list[str]:
    """The inputs listed in the manifest at ``path``, in order, each once.

    Paths come back absolute when the manifest's own path is absolute (relative ones are joined
    to the manifest's folder); URLs come back unchanged.
    """
    manifest = Path(path)
    try:
        text = manifest.read_text(encoding="utf-8-sig")  # tolerate a BOM from Windows editors
    except (OSError, UnicodeDecodeError) as exc:
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
