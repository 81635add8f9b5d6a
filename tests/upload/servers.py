"""Servers on 127.0.0.1 that speak the providers' storage protocols, for the upload tests.

- :class:`DashScopeServer`: ``GET /api/v1/uploads?action=getPolicy&model=M`` (Bearer key; the
  JSON shape Model Studio documents, wrapped in ``data``), and the OSS form POST to its
  ``upload_host`` (``/oss``), checking the form's fields and that ``key`` lies under the
  ``upload_dir`` of a policy it issued, and refusing a second upload to a key while
  ``x-oss-forbid-overwrite`` is true (409 FileAlreadyExists, OSS's XML).
- :class:`MoonshotServer`: ``/v1/files`` create (multipart ``file`` + ``purpose``), list, get,
  delete; 100 MB a file and 1,000 files.
- Faults for the next upload requests: ``server.faults.append("429" | "500" | "drop" |
  "slow" | "trickle")`` ("trickle" reads the body at about 8 MiB/s, as a slow uplink).

Bodies are streamed to a temporary file and parsed there, so a 300 MB upload does not sit in
this process's memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import mmap
import os
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

MiB = 1024 * 1024


def _multipart(body_path: Path, content_type: str) -> tuple[dict[str, str], tuple[str, int, int]
                                                            | None, list[str]]:
    """(text fields, (file name, start, end) of the file field in the body, field order)."""
    boundary = content_type.split("boundary=", 1)[1].strip().strip('"').encode()
    delim = b"--" + boundary
    fields: dict[str, str] = {}
    file_at = None
    order: list[str] = []
    with open(body_path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return fields, None, order
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            pos = mm.find(delim)
            while pos >= 0:
                start = pos + len(delim)
                if mm[start:start + 2] == b"--":
                    break
                head_end = mm.find(b"\r\n\r\n", start)
                head = mm[start:head_end].decode("utf-8", "replace")
                nxt = mm.find(b"\r\n" + delim, head_end + 4)
                if nxt < 0:
                    break
                name = filename = None
                for line in head.split("\r\n"):
                    if line.lower().startswith("content-disposition"):
                        for bit in line.split(";"):
                            bit = bit.strip()
                            if bit.startswith("name="):
                                name = bit[5:].strip('"')
                            elif bit.startswith("filename="):
                                filename = bit[9:].strip('"')
                if name is not None:
                    order.append(name)
                    if filename is not None:
                        file_at = (filename, head_end + 4, nxt)
                    else:
                        fields[name] = mm[head_end + 4:nxt].decode("utf-8")
                pos = nxt + 2
        finally:
            mm.close()
    return fields, file_at, order


class _Base(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, key: str, store: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.key = key
        self.store = Path(store)
        self.store.mkdir(parents=True, exist_ok=True)
        self.faults: list[str] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
        self.server_close()

    def fault(self) -> str | None:
        with self.lock:
            return self.faults.pop(0) if self.faults else None

    def authorised(self, handler: _Handler) -> bool:
        return handler.headers.get("Authorization") == f"Bearer {self.key}"


class _Handler(BaseHTTPRequestHandler):
    server: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_xml(self, status: int, code: str, message: str) -> None:
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self, fault: str | None) -> Path | None:
        """The request body in a temporary file (None: the fault dropped the connection)."""
        length = int(self.headers.get("Content-Length") or 0)
        fd, name = tempfile.mkstemp(dir=self.server.store, prefix=".body-")
        left = length
        with os.fdopen(fd, "wb") as out:
            while left:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                out.write(chunk)
                left -= len(chunk)
                if fault == "trickle":
                    time.sleep(0.125)
                if fault == "drop" and length - left >= min(length // 2, 256 * 1024):
                    os.unlink(name)
                    self.close_connection = True
                    self.connection.shutdown(2)  # mid-upload: no answer at all
                    return None
        return Path(name)

    def drain(self) -> None:
        """Read and drop the body (a request answered without it would leave it on the
        connection, read as the next request)."""
        left = int(self.headers.get("Content-Length") or 0)
        while left:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)

    def answer_fault(self, fault: str | None) -> bool:
        if fault == "429":
            self.send_json(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                           {"Retry-After": "1"})
            return True
        if fault == "500":
            self.send_json(500, {"error": {"message": "internal error", "type": "server"}})
            return True
        if fault == "slow":
            time.sleep(2.0)
        return False

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append(("GET", self.path))
        self.server.get(self)

    def do_POST(self) -> None:  # noqa: N802
        self.server.requests.append(("POST", self.path))
        self.server.post(self)

    def do_DELETE(self) -> None:  # noqa: N802
        self.server.requests.append(("DELETE", self.path))
        self.server.delete(self)


class DashScopeServer(_Base):
    """Model Studio's policy call and OSS's form upload."""

    def __init__(self, key: str, store: Path, models: tuple[str, ...] = ("kimi-k2.5",),
                 policy_seconds: int = 300, max_file_size_mb: int = 1024) -> None:
        super().__init__(key, store)
        self.models = models
        self.policy_seconds = policy_seconds
        self.max_file_size_mb = max_file_size_mb
        self.policies: dict[str, dict[str, Any]] = {}  # policy text -> what was issued
        self.objects: dict[str, Path] = {}  # key -> stored bytes
        self.forms: list[dict[str, str]] = []
        self.secret = os.urandom(16)

    def get(self, h: _Handler) -> None:
        url = urlsplit(h.path)
        if url.path != "/api/v1/uploads":
            h.send_json(404, {"code": "NotFound", "message": "no such path"})
            return
        if not self.authorised(h):
            h.send_json(401, {"code": "InvalidApiKey", "message": "Invalid API-key provided. "
                              f"(got {h.headers.get('Authorization')})"})
            return
        q = parse_qs(url.query)
        model = (q.get("model") or [""])[0]
        if q.get("action") != ["getPolicy"] or model not in self.models:
            h.send_json(400, {"code": "InvalidParameter", "message": f"Model not exist: {model}"})
            return
        upload_dir = f"dashscope-instant/{uuid.uuid4().hex}/{time.strftime('%Y-%m-%d')}"
        policy = base64.b64encode(json.dumps({
            "expiration": time.time() + self.policy_seconds,
            "conditions": [["starts-with", "$key", upload_dir]]}).encode()).decode()
        signature = base64.b64encode(hmac.new(self.secret, policy.encode(),
                                              hashlib.sha1).digest()).decode()
        data = {"policy": policy, "signature": signature, "upload_dir": upload_dir,
                "upload_host": f"{self.base}/oss", "expire_in_seconds": self.policy_seconds,
                "max_file_size_mb": self.max_file_size_mb, "capacity_limit_mb": 999999999,
                "oss_access_key_id": "LTAI-test-access-id", "x_oss_object_acl": "private",
                "x_oss_forbid_overwrite": "true"}
        self.policies[policy] = {"upload_dir": upload_dir, "model": model,
                                 "until": time.time() + self.policy_seconds}
        h.send_json(200, {"request_id": uuid.uuid4().hex, "data": data})

    def post(self, h: _Handler) -> None:
        if urlsplit(h.path).path != "/oss":
            h.drain()
            h.send_json(404, {"message": "no such path"})
            return
        fault = self.fault()
        body = h.read_body(fault)
        if body is None:
            return
        try:
            if h.answer_fault(fault):
                return
            fields, file_at, order = _multipart(body, h.headers.get("Content-Type", ""))
            self.forms.append(fields)
            issued = self.policies.get(fields.get("policy", ""))
            want_sig = base64.b64encode(hmac.new(self.secret, fields.get("policy", "").encode(),
                                                 hashlib.sha1).digest()).decode()
            if (issued is None or fields.get("Signature") != want_sig
                    or fields.get("OSSAccessKeyId") != "LTAI-test-access-id"):
                h.send_xml(403, "SignatureDoesNotMatch", "The request signature we calculated "
                           "does not match the signature you provided.")
                return
            if time.time() > issued["until"]:
                h.send_xml(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
                return
            key = fields.get("key", "")
            if not key.startswith(issued["upload_dir"] + "/") or file_at is None \
                    or order[-1] != "file" or fields.get("success_action_status") != "200":
                h.send_xml(403, "AccessDenied", "Invalid according to Policy: Policy Condition "
                           "failed: [\"starts-with\", \"$key\", ...] or the file is not last")
                return
            name, start, end = file_at
            if end - start > self.max_file_size_mb * MiB:
                h.send_xml(400, "EntityTooLarge", "Your proposed upload exceeds the maximum "
                           "allowed size.")
                return
            with self.lock:
                if key in self.objects and fields.get("x-oss-forbid-overwrite") == "true":
                    h.send_xml(409, "FileAlreadyExists", "The object you specified already "
                               "exists and can not be overwritten.")
                    return
                dest = self.store / hashlib.sha256(key.encode()).hexdigest()
                with open(body, "rb") as src, open(dest, "wb") as out:
                    src.seek(start)
                    left = end - start
                    while left:
                        chunk = src.read(min(left, 1 << 20))
                        out.write(chunk)
                        left -= len(chunk)
                self.objects[key] = dest
            h.send_response(200)
            h.send_header("Content-Length", "0")
            h.end_headers()
        finally:
            body.unlink(missing_ok=True)

    def delete(self, h: _Handler) -> None:
        h.send_json(405, {"message": "not allowed"})

    def stored(self, ref: str) -> bytes:
        assert ref.startswith("oss://"), ref
        return self.objects[ref[len("oss://"):]].read_bytes()


class MoonshotServer(_Base):
    """Moonshot's /v1/files."""

    def __init__(self, key: str, store: Path, max_bytes: int = 100 * MiB,
                 max_files: int = 1000) -> None:
        super().__init__(key, store)
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.files: dict[str, dict[str, Any]] = {}
        self.paths: dict[str, Path] = {}

    def _auth(self, h: _Handler) -> bool:
        if self.authorised(h):
            return True
        h.send_json(401, {"error": {"message": "Invalid Authentication: "
                                    f"{h.headers.get('Authorization')}",
                                    "type": "invalid_authentication_error"}})
        return False

    def get(self, h: _Handler) -> None:
        if not self._auth(h):
            return
        url = urlsplit(h.path)
        path = url.path
        if path == "/v1/files":
            items = list(self.files.values())
            after = (parse_qs(url.query).get("after") or [None])[0]
            if after in self.files:  # the cursor the openai SDK pages with
                items = items[[f["id"] for f in items].index(after) + 1:]
            h.send_json(200, {"object": "list", "data": items, "has_more": False})
        elif path.startswith("/v1/files/") and path[10:] in self.files:
            h.send_json(200, self.files[path[10:]])
        else:
            h.send_json(404, {"error": {"message": "file not found",
                                        "type": "resource_not_found_error"}})

    def post(self, h: _Handler) -> None:
        if urlsplit(h.path).path != "/v1/files":
            h.drain()
            h.send_json(404, {"error": {"message": "no such path"}})
            return
        fault = self.fault()
        if not self.authorised(h):
            h.drain()
            self._auth(h)
            return
        body = h.read_body(fault)
        if body is None:
            return
        try:
            if h.answer_fault(fault):
                return
            fields, file_at, _ = _multipart(body, h.headers.get("Content-Type", ""))
            if file_at is None or fields.get("purpose") not in ("image", "video",
                                                                "file-extract"):
                h.send_json(400, {"error": {"message": "purpose must be image, video or "
                                            "file-extract, with a file",
                                            "type": "invalid_request_error"}})
                return
            name, start, end = file_at
            if end - start > self.max_bytes:
                h.send_json(400, {"error": {"message": "file size exceeds the 100MB limit",
                                            "type": "invalid_request_error"}})
                return
            with self.lock:
                if len(self.files) >= self.max_files:
                    h.send_json(400, {"error": {"message": "too many files: the limit is "
                                                f"{self.max_files}",
                                                "type": "exceeded_current_quota_error"}})
                    return
                file_id = "cv" + uuid.uuid4().hex[:18]
                dest = self.store / file_id
                with open(body, "rb") as src, open(dest, "wb") as out:
                    src.seek(start)
                    left = end - start
                    while left:
                        chunk = src.read(min(left, 1 << 20))
                        out.write(chunk)
                        left -= len(chunk)
                self.paths[file_id] = dest
                self.files[file_id] = {"id": file_id, "object": "file", "bytes": end - start,
                                       "created_at": int(time.time()), "filename": name,
                                       "purpose": fields["purpose"], "status": "ok"}
            h.send_json(200, self.files[file_id])
        finally:
            body.unlink(missing_ok=True)

    def delete(self, h: _Handler) -> None:
        if not self._auth(h):
            return
        file_id = urlsplit(h.path).path[len("/v1/files/"):]
        with self.lock:
            if file_id not in self.files:
                h.send_json(404, {"error": {"message": "file not found"}})
                return
            del self.files[file_id]
            self.paths.pop(file_id).unlink(missing_ok=True)
        h.send_json(200, {"id": file_id, "object": "file", "deleted": True})

    def stored(self, ref: str) -> bytes:
        assert ref.startswith("ms://"), ref
        return self.paths[ref[len("ms://"):]].read_bytes()
