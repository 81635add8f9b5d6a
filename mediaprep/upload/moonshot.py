"""Moonshot files: ``POST {api base}/files`` (multipart ``file`` and ``purpose``), referenced
as ``ms://<id>``; ``GET /files``, ``GET /files/<id>``, ``DELETE /files/<id>``. Files stay
until deleted (``mediaprep uploads prune``)."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from .http import Http, UploadError


class MoonshotFiles:
    def __init__(self, http: Http, endpoint: str, model: str) -> None:
        self.http = http
        self.endpoint = endpoint
        self.model = model
        self.policy_calls = 0

    def put(self, path: Path, name: str, sha256: str, kind: str) -> tuple[str, str | None]:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        what = f"upload of {name}"
        resp = self.http.request("POST", f"{self.endpoint}/files", what=what,
                                 data={"purpose": "video" if kind == "video" else "image"},
                                 file=("file", path, mime))
        body = self.http.json(resp, what)
        file_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(file_id, str) or not file_id:
            raise UploadError(f"{what}: the answer names no file id", resp.status_code)
        return f"ms://{file_id}", file_id

    def alive(self, ref: str, file_id: str | None) -> bool:
        """Whether the file is still there (deleted by hand in the console: upload again)."""
        if not file_id:
            return False
        try:
            self.http.request("GET", f"{self.endpoint}/files/{file_id}",
                              what=f"file {file_id}")
        except UploadError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def delete(self, file_id: str | None) -> None:
        if not file_id:
            return
        try:
            self.http.request("DELETE", f"{self.endpoint}/files/{file_id}",
                              what=f"deleting file {file_id}")
        except UploadError as exc:
            if exc.status != 404:  # already gone: what prune wanted
                raise

    def listing(self) -> list[dict[str, Any]]:
        resp = self.http.request("GET", f"{self.endpoint}/files", what="listing files")
        body = self.http.json(resp, "listing files")
        data = body.get("data") if isinstance(body, dict) else None
        return list(data) if isinstance(data, list) else []
