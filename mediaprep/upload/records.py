"""What mediaprep uploaded, one small JSON file per upload: the upload cache, and the list
``mediaprep uploads list|prune`` works from.

A record is keyed by target, endpoint, model and the content's SHA-256, so the same bytes
(another run, a resumed run, the same file under another name) are uploaded once while the
reference is good. The folder is ``$MEDIAPREP_UPLOADS_DIR``, else
``$XDG_STATE_HOME/mediaprep/uploads``, else ``~/.local/state/mediaprep/uploads``: state, not a
cache, since the records are what lets ``prune`` delete Moonshot files later. Records never hold
an API key. Only files named as records (:data:`RECORD_NAME`) are ever removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..output import atomic_write, is_link_or_not_folder

UPLOADS_DIR_ENV = "MEDIAPREP_UPLOADS_DIR"
RECORD_NAME = re.compile(r"^[0-9a-f]{40}\.json\Z")
_HASH_CHUNK = 1 << 20


@dataclass
class UploadRecord:
    target: str
    endpoint: str
    model: str
    sha256: str
    bytes: int
    name: str  # the file's name when uploaded
    ref: str  # what a part names: oss://..., ms://<id>
    uploaded_at: float  # Unix time
    expires_at: float | None  # Unix time (None: until deleted)
    file_id: str | None = None  # the provider's id, for deleting (Moonshot)

    def usable(self, margin: float, now: float | None = None) -> bool:
        """Whether the reference has more than ``margin`` seconds of life left."""
        if self.expires_at is None:
            return True
        return self.expires_at - margin > (time.time() if now is None else now)


def expiry_time(entry: dict[str, Any]) -> float | None:
    """The Unix time of a prepared upload entry's ``expires`` (ISO 8601 UTC; None: none)."""
    value = entry.get("expires") if isinstance(entry, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return 0.0  # unreadable: treated as expired


def default_uploads_dir() -> Path:
    explicit = os.environ.get(UPLOADS_DIR_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "mediaprep" / "uploads"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def record_key(target: str, endpoint: str, model: str, sha256: str) -> str:
    return hashlib.sha256("\0".join((target, endpoint, model, sha256)).encode()).hexdigest()[:40]


class Records:
    """The records folder."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_uploads_dir()

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def _usable_root(self, make: bool) -> bool:
        if self.root.is_symlink():
            return False  # never written through a link
        if make:
            self.root.mkdir(parents=True, exist_ok=True)
        return not is_link_or_not_folder(self.root)

    def get(self, target: str, endpoint: str, model: str, sha256: str) -> UploadRecord | None:
        return self._read(self._path(record_key(target, endpoint, model, sha256)))

    def put(self, record: UploadRecord) -> None:
        if not self._usable_root(make=True):
            return  # an upload that cannot be remembered is only uploaded again next time
        key = record_key(record.target, record.endpoint, record.model, record.sha256)
        atomic_write(self._path(key), json.dumps(asdict(record), sort_keys=True) + "\n")

    def drop(self, record: UploadRecord) -> None:
        path = self._path(record_key(record.target, record.endpoint, record.model,
                                     record.sha256))
        if self._read(path) is not None:  # ours, and a record: nothing else is removed
            path.unlink(missing_ok=True)

    def __iter__(self) -> Iterator[UploadRecord]:
        if not self.root.is_dir() or not self._usable_root(make=False):
            return
        for path in sorted(self.root.iterdir()):
            if RECORD_NAME.match(path.name):
                record = self._read(path)
                if record is not None:
                    yield record

    @staticmethod
    def _read(path: Path) -> UploadRecord | None:
        try:
            if path.is_symlink():
                return None
            data = json.loads(path.read_text("utf-8"))
            return UploadRecord(**data)
        except (OSError, ValueError, TypeError):
            return None
