"""``--transport upload``: prepared files go to the provider's own storage, and parts name
the reference (``oss://...`` on Model Studio, ``ms://<id>`` on Moonshot).

Which storage, its endpoint and key variable are the target's facts
(:class:`~mediaprep.targets.base.Uploads`); one module here per protocol speaks it
(:mod:`.dashscope`, :mod:`.moonshot`) over :mod:`.http`. :func:`upload_prepared` runs after
prepare wrote the outputs (whose parts carry their ``file://`` URIs until then); each upload is
remembered (:mod:`.records`), so the same bytes for the same target, endpoint and model are
uploaded once while the reference is good. A failed upload is the finding ``upload.failed`` on
that input.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..settings import Settings, SettingsError
from ..targets.base import Uploads
from ..types import Finding, Prepared
from .dashscope import DashScopeStorage
from .http import EXTRA, Http, UploadError, httpx_module
from .moonshot import MoonshotFiles
from .records import Records, UploadRecord, default_uploads_dir, file_sha256

__all__ = ["EXTRA", "Records", "UploadError", "UploadRecord", "api_key", "default_uploads_dir",
           "require_upload", "storage_for", "upload_prepared"]

#: protocol name (``Uploads.protocol``) -> the class that speaks it
PROTOCOLS: dict[str, Callable[[Http, str, str], Any]] = {
    "dashscope": DashScopeStorage,
    "moonshot": MoonshotFiles,
}


def _uploads(settings: Settings) -> Uploads:
    uploads = settings.target.uploads
    if uploads is None:
        raise SettingsError(f"target {settings.target} has no storage of its own to upload to")
    return uploads


def api_key(settings: Settings) -> str:
    """The API key for the target's storage, from its environment variable.

    Raises:
        SettingsError: it is not set (the CLI exits 2 before any work).
    """
    uploads = _uploads(settings)
    key = os.environ.get(uploads.key_env, "").strip()
    if not key:
        raise SettingsError(f"--transport upload to {settings.target} needs an API key in "
                            f"${uploads.key_env}")
    return key


def require_upload(settings: Settings) -> None:
    """Refuse before any work what would fail every upload: no httpx, no key."""
    if settings.transport != "upload":
        return
    httpx_module()
    api_key(settings)


# One storage client per (protocol, endpoint, model, key) and process: a batch worker keeps its
# connection and its DashScope policy across the inputs it prepares.
_STORAGES: dict[tuple[str, str, str, str], Any] = {}


def storage_for(settings: Settings) -> Any:
    """The storage client for these settings (made once per process)."""
    uploads = _uploads(settings)
    key = api_key(settings)
    endpoint = settings.api_base or uploads.api_base
    ident = (uploads.protocol, endpoint, str(settings.model), key)
    storage = _STORAGES.get(ident)
    if storage is None:
        storage = PROTOCOLS[uploads.protocol](Http(key), endpoint, str(settings.model))
        _STORAGES[ident] = storage
    return storage


def _local_path(url: str) -> Path | None:
    if not url.startswith("file:"):
        return None
    return Path(unquote(urlparse(url).path))


def _swap_urls(part: dict[str, Any], swap: Callable[[str], str]) -> dict[str, Any]:
    """``part`` with every media URL passed through ``swap`` (either dialect)."""
    out = dict(part)
    for key in ("image_url", "video_url"):
        if key in out:
            out[key] = {**out[key], "url": swap(out[key]["url"])}
    for key in ("image", "video"):
        if key in out:
            value = out[key]
            out[key] = [swap(v) for v in value] if isinstance(value, list) else swap(value)
    return out


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def upload_prepared(result: Prepared, settings: Settings,
                    records: Records | None = None) -> Prepared:
    """Put ``result``'s outputs in the target's storage and make its part name them.

    Reuses a recorded upload of the same bytes (same target, endpoint and model) while it has
    more than the target's margin of life left. A failure makes the result not ok with the
    finding ``upload.failed`` (the provider's status and message, never the key); its outputs
    stay listed (mediaprep wrote them) and a rerun tries again.
    """
    if result.part is None or not result.ok:
        return result
    uploads = _uploads(settings)
    records = records or Records()
    mine = {p.resolve() for p in result.outputs}
    done: dict[Path, dict[str, Any]] = {}

    def swap(url: str) -> str:
        path = _local_path(url)
        if path is None or path.resolve() not in mine:
            return url  # not a file this prepare wrote: never uploaded
        path = path.resolve()
        if path not in done:
            done[path] = _upload_one(path, result.kind, settings, uploads, records)
        return done[path]["ref"]

    try:
        part = _swap_urls(result.part, swap)
    except UploadError as exc:
        result.ok = False
        result.part = None
        result.findings.append(Finding("upload.failed", "error",
                                       f"{result.path}: {exc.message}", None, exc.status))
        return result
    result.part = part
    result.uploads = list(done.values())
    return result


def _upload_one(path: Path, kind: str, settings: Settings, uploads: Uploads,
                records: Records) -> dict[str, Any]:
    storage = storage_for(settings)
    endpoint = storage.endpoint
    target, model = str(settings.target), str(settings.model)
    sha = file_sha256(path)
    size = path.stat().st_size
    entry = {"file": path.name, "sha256": sha, "bytes": size}
    rec = records.get(target, endpoint, model, sha)
    if rec is not None and rec.usable(uploads.margin) and storage.alive(rec.ref, rec.file_id):
        return {**entry, "ref": rec.ref, **_expiry(rec.expires_at), "uploaded": False}
    if rec is not None:
        records.drop(rec)  # expired, or gone from the provider
    cap = settings.limits.value("upload.max_file_bytes")
    if cap is not None and size > cap:
        raise UploadError(f"{path.name} is {size:,} bytes, above the {cap:,} one file may "
                          f"have in {settings.target}'s storage")
    _quota(settings, records, target, endpoint, size)
    file_kind = "video" if path.suffix.lower().lstrip(".") in _VIDEO_SUFFIXES else "image"
    now = time.time()
    ref, file_id = storage.put(path, path.name, sha, file_kind)
    expires = None if uploads.expires is None else now + uploads.expires
    records.put(UploadRecord(target=target, endpoint=endpoint, model=model, sha256=sha,
                             bytes=size, name=path.name, ref=ref, uploaded_at=now,
                             expires_at=expires, file_id=file_id))
    return {**entry, "ref": ref, **_expiry(expires), "uploaded": True}


_VIDEO_SUFFIXES = frozenset({"mp4", "mov", "mkv", "avi", "flv", "wmv", "webm", "3gp", "mpg"})


def _expiry(t: float | None) -> dict[str, str]:
    return {} if t is None else {"expires": str(_iso(t))}


def _quota(settings: Settings, records: Records, target: str, endpoint: str,
           size: int) -> None:
    """The account's file count and bytes (rows ``upload.max_files`` /
    ``upload.max_total_bytes``), as far as mediaprep's own records know them."""
    max_files = settings.limits.value("upload.max_files")
    max_bytes = settings.limits.value("upload.max_total_bytes")
    if max_files is None and max_bytes is None:
        return
    mine = [r for r in records if r.target == target and r.endpoint == endpoint
            and r.usable(0)]
    hint = "; `mediaprep uploads prune` deletes the files mediaprep uploaded"
    if max_files is not None and len(mine) + 1 > max_files:
        raise UploadError(f"mediaprep has {len(mine):,} files in {target}'s storage; the "
                          f"account keeps at most {max_files:,}{hint}")
    total = sum(r.bytes for r in mine) + size
    if max_bytes is not None and total > max_bytes:
        raise UploadError(f"mediaprep's files in {target}'s storage would reach {total:,} "
                          f"bytes; the account keeps at most {max_bytes:,}{hint}")
