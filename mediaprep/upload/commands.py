"""``mediaprep uploads list|prune``: the files mediaprep recorded uploading, and deleting them
(Moonshot keeps files until deleted: 1,000 files and 10 GB an account). Only recorded files are
touched; a DashScope record is only forgotten (temporary storage empties itself)."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..targets import get_target
from .http import Http, UploadError
from .records import Records, UploadRecord

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """Seconds in ``30m``, ``12h``, ``7d``, ``2w`` (a bare number: seconds).

    Raises:
        ValueError: not such a duration.
    """
    m = _DURATION.match(text or "")
    if not m:
        raise ValueError(f"not a duration: {text!r} (say 30m, 12h, 7d or 2w)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def listing(records: Records, now: float | None = None) -> list[dict[str, Any]]:
    """Every recorded upload, oldest first, with its age and whether it is still usable."""
    now = time.time() if now is None else now
    out = []
    for r in sorted(records, key=lambda r: r.uploaded_at):
        out.append({"target": r.target, "endpoint": r.endpoint, "model": r.model,
                    "ref": r.ref, "name": r.name, "bytes": r.bytes, "sha256": r.sha256,
                    "age_seconds": round(now - r.uploaded_at),
                    "expired": r.expires_at is not None and r.expires_at <= now})
    return out


@dataclass
class Pruned:
    deleted: list[UploadRecord] = field(default_factory=list)  # deleted at the provider too
    forgotten: list[UploadRecord] = field(default_factory=list)  # record only (self-expiring)
    failed: list[tuple[UploadRecord, str]] = field(default_factory=list)  # kept: why


def prune(records: Records, older_than: float | None = None,
          now: float | None = None) -> Pruned:
    """Delete the recorded uploads older than ``older_than`` seconds (None: all of them) at
    the provider where files stay until deleted, then their records. A deletion that fails
    keeps its record (the next prune tries again)."""
    now = time.time() if now is None else now
    done = Pruned()
    clients: dict[tuple[str, str], Any] = {}
    for rec in sorted(records, key=lambda r: r.uploaded_at):
        if older_than is not None and now - rec.uploaded_at < older_than:
            continue
        try:
            uploads = get_target(rec.target).uploads
        except KeyError:
            uploads = None
        if uploads is None or not uploads.deletable:
            records.drop(rec)
            done.forgotten.append(rec)
            continue
        key = os.environ.get(uploads.key_env, "").strip()
        if not key:
            done.failed.append((rec, f"${uploads.key_env} is not set"))
            continue
        ident = (rec.endpoint, key)
        if ident not in clients:
            from . import PROTOCOLS

            clients[ident] = PROTOCOLS[uploads.protocol](Http(key), rec.endpoint, rec.model)
        try:
            clients[ident].delete(rec.file_id)
        except UploadError as exc:
            done.failed.append((rec, exc.message))
            continue
        records.drop(rec)
        done.deleted.append(rec)
    for client in clients.values():
        client.http.close()
    return done
