"""HTTP for the upload transport: retries, streaming from disk, progress, and no key leaks.

Why httpx and not the providers' SDKs: the dashscope SDK's ``OssUtils.upload`` posts the form
with ``requests``, which builds the whole multipart body in memory (a 1 GB video is a 1 GB+
process), asks for a new policy per file unless handed one, and does not retry; the ``openai``
SDK's ``files.create`` would do for Moonshot, but one client for both protocols gives one
retry rule, one progress display and one place that keeps the key out of messages. httpx
streams a multipart file from disk in 64 KiB reads and is what the ``openai`` SDK itself runs
on. Both SDKs are tested against mediaprep's test servers, so the protocols stay theirs.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from ..errors import MediaprepError
from ..limits import (
    UPLOAD_ATTEMPTS,
    UPLOAD_BACKOFF_SECONDS,
    UPLOAD_MAX_WAIT_SECONDS,
    UPLOAD_PROGRESS_MIN_BYTES,
    UPLOAD_STALL_SECONDS,
)

#: What to install when httpx is missing (the one place the extra is named).
EXTRA = "pip install 'mediaprep[upload]'"


class UploadError(MediaprepError):
    """An upload (or a call it needs) failed: ``status`` is the provider's HTTP status (None:
    no answer), ``message`` what it said, with the API key never in it."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def httpx_module() -> Any:
    """The httpx module, or a clear error naming the extra to install."""
    try:
        import httpx
    except ImportError:
        from ..settings import SettingsError

        raise SettingsError(f"--transport upload needs httpx: {EXTRA}") from None
    return httpx


class Http:
    """One connection pool to one provider, with its key; every call retried as the limits
    say (:data:`~mediaprep.limits.UPLOAD_ATTEMPTS`)."""

    def __init__(self, key: str, *, attempts: int = UPLOAD_ATTEMPTS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        httpx = httpx_module()
        self._key = key
        self.attempts = attempts
        self._sleep = sleep
        self.client = httpx.Client(timeout=httpx.Timeout(UPLOAD_STALL_SECONDS),
                                   follow_redirects=False)
        self.retries = 0  # requests sent again (for the closing numbers)

    def redact(self, text: str) -> str:
        """``text`` without the key (a server may echo the Authorization header back)."""
        return text.replace(self._key, "***") if self._key else text

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"}

    def request(self, method: str, url: str, *, what: str, authorised: bool = True,
                headers: Mapping[str, str] | None = None, params: Mapping[str, str] | None = None,
                data: Mapping[str, str] | None = None, file: tuple[str, Path, str] | None = None,
                ok: tuple[int, ...] = (200,)) -> Any:
        """Send one request, again after a 429, a 5xx or a dropped connection (backoff with
        jitter, Retry-After honoured); ``file`` (field name, path, MIME type) is streamed from
        disk, opened afresh for each attempt. Returns the response when its status is in
        ``ok``; raises :class:`UploadError` otherwise."""
        sent_headers = {**(self.auth if authorised else {}), **(headers or {})}
        last: str = ""
        status: int | None = None
        for attempt in range(self.attempts):
            if attempt:
                self.retries += 1
            resp, failure = self._send(method, url, what=what, headers=sent_headers,
                                       params=params, data=data, file=file)
            if resp is not None and resp.status_code in ok:
                return resp
            if resp is None:
                status, last, wait = None, failure, _backoff(attempt)
            else:
                status, last = resp.status_code, _provider_message(resp)
                if not _worth_again(status):
                    break  # the provider said no: asking again says no again
                wait = _retry_after(resp.headers.get("retry-after"), attempt)
            if attempt + 1 < self.attempts:
                self._sleep(wait)
        tried = f" (after {self.attempts} attempts)" if status is None or _worth_again(status) \
            else ""
        head = f"HTTP {status}" if status is not None else "no answer"
        raise UploadError(self.redact(f"{what}: {head}: {last}{tried}"), status)

    def _send(self, method: str, url: str, *, what: str, headers: Mapping[str, str],
              params: Mapping[str, str] | None, data: Mapping[str, str] | None,
              file: tuple[str, Path, str] | None) -> tuple[Any, str]:
        """One attempt: (the response, "") or (None, why no answer came)."""
        httpx = httpx_module()
        try:
            if file is None:
                return self.client.request(method, url, headers=headers, params=params,
                                           data=data), ""
            field, path, mime = file
            with open(path, "rb") as fh, _progress(path, what) as counted:
                stream = _Counting(fh, counted)
                return self.client.request(method, url, headers=headers, params=params,
                                           data=data, files={field: (path.name, stream, mime)}), ""
        except httpx.TransportError as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def json(self, resp: Any, what: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise UploadError(f"{what}: the answer is not JSON", resp.status_code) from None

    def close(self) -> None:
        self.client.close()


def _worth_again(status: int) -> bool:
    """A 429 or a 5xx may go away; any other refusal will not."""
    return status == 429 or status >= 500


def _backoff(attempt: int) -> float:
    """Exponential backoff with full jitter, capped."""
    return min(UPLOAD_MAX_WAIT_SECONDS,
               UPLOAD_BACKOFF_SECONDS * (2 ** attempt) * (0.5 + random.random()))


def _retry_after(value: str | None, attempt: int) -> float:
    """Seconds a Retry-After asks for (delta-seconds or an HTTP date), capped; else the
    backoff."""
    if value:
        value = value.strip()
        if value.isdigit():
            return min(float(value), UPLOAD_MAX_WAIT_SECONDS)
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
            return max(0.0, min(when - time.time(), UPLOAD_MAX_WAIT_SECONDS))
        except (TypeError, ValueError):
            pass
    return _backoff(attempt)


_XML_MESSAGE = re.compile(rb"<(Code|Message)>([^<]{0,300})</\1>")


def _provider_message(resp: Any) -> str:
    """What the provider said: a JSON ``message`` / ``error.message``, OSS's XML Code and
    Message, or the first 300 characters."""
    body = resp.content[:4096]
    try:
        data = json.loads(body)
        if isinstance(data, dict):
            err = data.get("error")
            if isinstance(err, dict) and err.get("message"):
                return str(err["message"])
            for key in ("message", "code"):
                if data.get(key):
                    return str(data[key])
    except ValueError:
        pass
    found = _XML_MESSAGE.findall(body)
    if found:
        return " ".join(v.decode("utf-8", "replace") for _, v in found)
    return body[:300].decode("utf-8", "replace").strip() or resp.reason_phrase


class _Counting:
    """A file httpx streams from (its multipart encoder reads 64 KiB at a time, seeks to 0
    and asks fstat for the length), counting the bytes read."""

    def __init__(self, fh: IO[bytes], count: Callable[[int], None]) -> None:
        self._fh = fh
        self._count = count

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._count(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def fileno(self) -> int:
        return self._fh.fileno()


class _progress:
    """Progress in bytes on a terminal (stderr) for a big file; nothing otherwise."""

    def __init__(self, path: Path, what: str) -> None:
        self.bar: Any = None
        size = path.stat().st_size
        if size >= UPLOAD_PROGRESS_MIN_BYTES and sys.stderr.isatty():
            from tqdm import tqdm

            # A thread lock, not tqdm's default multiprocessing one: this runs in a worker
            # process that ends with os._exit, and a semaphore left behind there makes the
            # resource tracker warn about a leak at the end of the run.
            tqdm.set_lock(threading.RLock())
            self.bar = tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                            desc=f"upload {path.name}", leave=False, file=sys.stderr)

    def __enter__(self) -> Callable[[int], None]:
        return self.bar.update if self.bar is not None else (lambda n: None)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()
