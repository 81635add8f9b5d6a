"""OpenAI Batch API requests (JSONL) from a ``prep`` run's ``parts.jsonl``.

    check_batch_options(settings, prompt)                 # before the run
    refuse_batch_requests_path(dest, items, out_dir, stems)  # never over an input or the run's
    written, left_out = write_batch_requests(out / "parts.jsonl", dest, settings, prompt)
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import MediaprepError
from ..output import PARTS_FILE, REPORT_FILE, STATE_DIR, is_reserved_name
from ..settings import Settings

__all__ = ["DEFAULT_BATCH_URL", "BatchRequestError", "check_batch_options",
           "refuse_batch_requests_path", "refuse_report_path", "write_batch_requests"]

DEFAULT_BATCH_URL = "/v1/chat/completions"


class BatchRequestError(MediaprepError):
    """One prepared input alone breaks a request limit (prep keeps parts within limits, so
    this means limits were overridden apart). CLI: exit 1."""


def check_batch_options(settings: Settings, prompt: str | None) -> str | None:
    """Why batch requests cannot be written with these options (None: they can)."""
    if prompt is None:
        return "--batch-requests needs --prompt (the text sent with the media)"
    if settings.dialect != "openai":
        return "batch requests are OpenAI Batch API lines: use --dialect openai"
    if settings.transport == "path":
        return ("batch requests cannot carry file:// paths: use --transport base64 "
                "or url")
    return None


def write_batch_requests(parts: Path, dest: Path, settings: Settings, prompt: str,
                         group: int = 1, url: str = DEFAULT_BATCH_URL) -> tuple[int, int]:
    """OpenAI Batch API JSONL from ``parts.jsonl``: ``group`` inputs per request at most, fewer
    when one more would break a request limit (data URLs per request, whole-body bytes, the
    model's context in vision tokens: ``tokens.context``). An input sent as tiles
    (``--tiles``) goes whole into one request: every tile, in reading order.
    Returns (requests written, failed inputs left out)."""
    from ..emit.request import request_body
    from ..output import atomic_writer
    from ..report import input_failed

    caps = _RequestCaps.of(settings)
    base = len(json.dumps(request_body([prompt], settings), separators=(",", ":")).encode())
    written = skipped = 0
    pending = _Pending(base)
    with atomic_writer(dest) as fh, open(parts, encoding="utf-8") as src:
        for text in src:
            line = json.loads(text)
            media = None if input_failed(line) else _InputMedia.of(line)
            if media is None:
                skipped += 1
                continue
            if pending.inputs and not pending.fits(media, caps, group):
                written += _write_request(fh, pending, settings, prompt, url)
                pending = _Pending(base)
            pending.add(media)
        written += _write_request(fh, pending, settings, prompt, url)
    return written, skipped


@dataclass(frozen=True)
class _RequestCaps:
    """The request limits a batch request is filled up to (inf: no limit)."""

    data_urls: float
    media_urls: float
    body_bytes: float
    tokens: float

    @classmethod
    def of(cls, settings: Settings) -> _RequestCaps:
        from ..limits import context_tokens

        def cap(key: str) -> float:
            row = settings.limits.get(key)
            return float("inf") if row is None or row.value is None else row.value

        ctx = context_tokens(settings.limits, settings.model)
        return cls(cap("request.max_data_urls"), cap("request.max_media_urls"),
                   cap("request.max_body_bytes"), float("inf") if ctx is None else ctx)


@dataclass(frozen=True)
class _InputMedia:
    """One prepared input's content parts (one, or its tiles) and what they add to a request."""

    path: str
    parts: list[dict[str, Any]]
    data_urls: int  # data: URLs among its media URLs
    media_urls: int  # its other media URLs
    size: int  # JSON bytes its parts add to the body (each with its comma)
    tokens: int  # vision tokens the client decides (_client_tokens)

    @classmethod
    def of(cls, line: dict[str, Any]) -> _InputMedia | None:
        """None: nothing to send (no part and no tiles)."""
        from ..emit.parts import urls_in

        parts = line.get("parts") or ([line["part"]] if line.get("part") else [])
        if not parts:
            return None
        urls = [u for part in parts for u in urls_in(part)]
        data = sum(1 for u in urls if u.startswith("data:"))
        size = sum(len(json.dumps(part, separators=(",", ":")).encode()) + 1 for part in parts)
        return cls(line["path"], parts, data, len(urls) - data, size, _client_tokens(line))


@dataclass
class _Pending:
    """The inputs of the request being filled, and what they add up to."""

    size: int  # the body's bytes so far (at first: the prompt alone)
    inputs: list[_InputMedia] = field(default_factory=list)
    data_urls: int = 0
    media_urls: int = 0
    tokens: int = 0

    def fits(self, media: _InputMedia, caps: _RequestCaps, group: int) -> bool:
        """Whether ``media`` may join without breaking ``group`` or a request limit."""
        return (len(self.inputs) < group
                and self.data_urls + media.data_urls <= caps.data_urls
                and self.media_urls + media.media_urls <= caps.media_urls
                and self.size + media.size <= caps.body_bytes
                and self.tokens + media.tokens <= caps.tokens)

    def add(self, media: _InputMedia) -> None:
        self.inputs.append(media)
        self.size += media.size
        self.data_urls += media.data_urls
        self.media_urls += media.media_urls
        self.tokens += media.tokens


def _write_request(fh: Any, pending: _Pending, settings: Settings, prompt: str,
                   url: str) -> int:
    """Write the pending inputs as one request line; the number of lines written (0 or 1)."""
    from ..emit.request import check_request, request_body, request_headers
    from ..output import json_line
    from ..report import displayable

    if not pending.inputs:
        return 0
    first = pending.inputs[0].path
    parts = [part for media in pending.inputs for part in media.parts]
    body = request_body([*parts, prompt], settings)
    problems = [f for f in check_request(body, settings) if f.severity == "error"]
    if problems:  # one input alone too big for a request: prep keeps parts within limits
        raise BatchRequestError(displayable(f"{first}: {problems[0].message}"))
    more = len(pending.inputs) - 1
    request = {"custom_id": f"{first}+{more}" if more else first, "method": "POST", "url": url,
               "body": body}
    headers = request_headers(parts, settings)
    if headers:  # uploaded oss:// parts resolve only with the OSS header
        request["headers"] = headers
    fh.write(json_line(request, separators=(",", ":")) + "\n")
    return 1


def _client_tokens(line: dict[str, Any]) -> int:
    """The vision tokens the client decides in one parts.jsonl line: an image's or a frame
    list's estimate; 0 for a video file (the server samples it; its own warning says so)."""
    est = line.get("tokens")
    if not isinstance(est, dict) or not isinstance(est.get("estimate"), int):
        return 0
    if line.get("kind") in ("image", "frames") or line.get("timestamps") is not None:
        return est["estimate"]
    return 0


def refuse_batch_requests_path(dest: Path, items: Sequence[Any], out: Path,
                               stems: Iterable[str] = (), *, option: str = "--batch-requests",
                               example: str = "requests.jsonl") -> str | None:
    """Why ``dest`` must not be written (None: it may): batch requests never overwrite an input
    or anything the run writes (an output, a frames folder, parts.jsonl, the HTML report,
    DIR/.mediaprep).

    Inside DIR only a file directly in DIR is taken (``out/requests.jsonl``), and only when
    its name is none an output can have: not one of mediaprep's own names, not hidden (the
    run's temporaries), no output's extension (``.jpg``, ``.mp4``...: an output of this run, an
    earlier one's, or a later one's), not the top folder of an output (``stems``: the run's
    output stems, whose videos' frames go to ``DIR/<stem>/``), compared as a case-insensitive
    file system does. So it is never an output, nor swept or cleaned as one.
    ``items``: the run's inputs (:class:`~mediaprep.batch.inputs.Item`). ``option`` and
    ``example`` name the option and a good file name in the message."""
    why = _run_file_problem(dest, out, stems)
    if why is not None:
        return (f"{option} {dest} would overwrite {why} of {out}; "
                "choose another file (in the output folder: directly in it, named "
                f"like {example})")
    same = _SameFile(dest)
    for item in items:
        if any(same(m) for m in _input_files(item)):
            return f"{option} {dest} is an input ({item.display}); choose another file"
    return None


def _real(p: Path) -> Path:
    try:
        return Path(os.path.realpath(p))
    except (OSError, ValueError):
        return Path(os.path.abspath(p))


class _SameFile:
    """Whether a path is ``dest``: by its real path, or by identity (another spelling, a
    case-blind disk)."""

    def __init__(self, dest: Path) -> None:
        self.target = _real(dest)
        try:
            st = os.stat(dest)
            self.ids = {(st.st_dev, st.st_ino)}
        except OSError:
            self.ids = set()

    def __call__(self, p: Path) -> bool:
        if p == self.target:
            return True
        try:
            s = os.stat(p)
        except OSError:
            return False
        return (s.st_dev, s.st_ino) in self.ids


def _run_file_problem(dest: Path, out: Path, stems: Iterable[str]) -> str | None:
    """What of the run ``dest`` would overwrite (None: nothing): parts.jsonl, the report, the
    state folder, or a name inside DIR an output may have."""
    same = _SameFile(dest)
    out_r = _real(out)
    state = out_r / STATE_DIR
    reserved = {out_r / PARTS_FILE: "the parts file", out_r / REPORT_FILE: "the report"}
    why = next((what for p, what in reserved.items() if same(p)), None)
    target = same.target
    if target == state or state in target.parents or same(state):
        return "mediaprep's state folder"
    if why is None and (target == out_r or out_r in target.parents):
        return _name_in_out_problem(target, target.relative_to(out_r).parts, stems)
    return why


def _name_in_out_problem(target: Path, rel: tuple[str, ...],
                         stems: Iterable[str]) -> str | None:
    """Why ``target``, at ``rel`` inside DIR, may be a file the run writes (None: it is not)."""
    from ..emit.sink import EXTENSION

    name = rel[0] if rel else ""
    folders = {PurePosixPath(s).parts[0].casefold() for s in stems}
    if len(rel) != 1:
        return "a folder the run writes in"
    if name.startswith(".") or is_reserved_name(name):
        return "a name mediaprep keeps"
    if name.casefold() in folders or target.is_dir():
        return "an output's folder"
    if name.rpartition(".")[2].casefold() in set(EXTENSION.values()):
        return "an output (outputs have that extension)"
    return None


def _input_files(item: Any) -> list[Path]:
    """An input's files (a frames folder's members), as real paths; none for a URL."""
    from ..resource import frame_files

    if item.real is None:
        return []
    members = [item.real]
    if item.real.is_dir():
        with contextlib.suppress(OSError, ValueError):
            members = [_real(m) for m in frame_files(item.real)]
    return members


def refuse_report_path(dest: Path, items: Sequence[Any], out: Path, stems: Iterable[str] = (),
                       requests: Path | None = None) -> str | None:
    """Why the page ``prep --report`` names must not be written there (None: it may): as
    :func:`refuse_batch_requests_path` (never an input or a file the run makes), except that
    ``DIR/report.html`` is the page's own place; nor a folder, nor the batch requests' file."""
    def same(a: Path, b: Path) -> bool:
        return os.path.realpath(a) == os.path.realpath(b) or (
            a.exists() and b.exists() and os.path.samefile(a, b))

    if same(dest, out / REPORT_FILE):
        return None
    if dest.is_dir():
        return f"--report {dest} is a folder; name the page's file (e.g. {dest / REPORT_FILE})"
    if not dest.resolve().parent.is_dir():  # mediaprep makes no folder it would not own
        return (f"--report {dest}: its folder {dest.parent} does not exist; make it first, or "
                "name a file in an existing folder")
    if requests is not None and same(dest, requests):
        return f"--report {dest} is also the --batch-requests file; choose another file"
    return refuse_batch_requests_path(dest, items, out, stems, option="--report",
                                      example="run-report.html")
