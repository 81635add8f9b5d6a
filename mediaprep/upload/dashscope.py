"""Model Studio temporary storage: a policy from ``GET {api base}/uploads?action=getPolicy``,
then a form POST to its ``upload_host``; the part names ``oss://{upload_dir}/{name}``.

One policy serves every upload while it is valid (the policy call is limited to 100 QPS);
a policy the storage no longer takes (403) is asked for again once.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from .http import Http, UploadError

#: Seconds before a policy's stated expiry that it is no longer used for a new upload.
POLICY_MARGIN = 30.0
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class DashScopeStorage:
    def __init__(self, http: Http, endpoint: str, model: str) -> None:
        self.http = http
        self.endpoint = endpoint
        self.model = model
        self._policy: dict[str, Any] | None = None
        self._policy_until = 0.0
        self.policy_calls = 0

    def policy(self, *, fresh: bool = False) -> dict[str, Any]:
        if not fresh and self._policy is not None and time.monotonic() < self._policy_until:
            return self._policy
        what = f"upload policy for {self.model}"
        resp = self.http.request("GET", f"{self.endpoint}/uploads", what=what,
                                 params={"action": "getPolicy", "model": self.model})
        self.policy_calls += 1
        body = self.http.json(resp, what)
        data = body.get("data") if isinstance(body, dict) else None
        need = ("upload_host", "upload_dir", "policy", "signature", "oss_access_key_id")
        if not isinstance(data, dict) or any(not data.get(k) for k in need):
            raise UploadError(f"{what}: the answer lacks {', '.join(need)}", resp.status_code)
        self._policy = data
        life = float(data.get("expire_in_seconds") or 300)
        self._policy_until = time.monotonic() + max(0.0, life - POLICY_MARGIN)
        return data

    def put(self, path: Path, name: str, sha256: str, kind: str) -> tuple[str, str | None]:
        """Upload ``path``; its object name carries the content hash, so the same bytes under
        the same policy land on the same key (and an overwrite refusal means they are there)."""
        size = path.stat().st_size
        for fresh in (False, True):
            pol = self.policy(fresh=fresh)
            cap = pol.get("max_file_size_mb")
            if cap and size > float(cap) * 1024 * 1024:
                raise UploadError(f"{name}: {size:,} bytes, above the {cap} MB the upload "
                                  "policy allows")
            key = f"{pol['upload_dir']}/{sha256[:16]}-{_SAFE.sub('_', name)}"
            form = {
                "OSSAccessKeyId": pol["oss_access_key_id"],
                "Signature": pol["signature"],
                "policy": pol["policy"],
                "key": key,
                "x-oss-object-acl": str(pol.get("x_oss_object_acl") or "private"),
                "x-oss-forbid-overwrite": str(pol.get("x_oss_forbid_overwrite") or "true"),
                "success_action_status": "200",
                "x-oss-content-type": _mime(kind, path),
            }
            try:
                self.http.request("POST", pol["upload_host"], what=f"upload of {name}",
                                  authorised=False, data=form,
                                  file=("file", path, form["x-oss-content-type"]),
                                  ok=(200, 204))
            except UploadError as exc:
                if exc.status == 409 and "exist" in exc.message.lower():
                    return f"oss://{key}", None  # content-addressed: these bytes are there
                if exc.status == 403 and not fresh:
                    continue  # the policy went stale between calls: one fresh one
                raise
            return f"oss://{key}", None
        raise AssertionError("unreachable")

    def alive(self, ref: str, file_id: str | None) -> bool:
        return True  # temporary storage has no lookup; the record's expiry decides

    def delete(self, file_id: str | None) -> None:
        return None  # temporary storage empties itself after 48 hours


def _mime(kind: str, path: Path) -> str:
    import mimetypes

    return mimetypes.guess_type(path.name)[0] or ("video/mp4" if kind == "video"
                                                  else "application/octet-stream")
