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
    model's context in vision tokens: ``tokens.context``).
    Returns (requests written, failed inputs left out)."""
    from ..emit.parts import urls_in
    from ..emit.request import check_request, request_body, request_headers
    from ..limits import context_tokens
    from ..output import atomic_writer, json_line
    from ..report import displayable, input_failed

    limits = settings.limits

    def cap(key: str) -> float:
        row = limits.get(key)
        return float("inf") if row is None or row.value is None else row.value

    max_data, max_urls, max_bytes = (cap("request.max_data_urls"),
                                     cap("request.max_media_urls"),
                                     cap("request.max_body_bytes"))
    ctx = context_tokens(limits, settings.model)
    max_tokens = float("inf") if ctx is None else ctx
    base = len(json.dumps(request_body([prompt], settings), separators=(",", ":")).encode())
    skipped = written = 0

    batch: list[tuple[str, dict[str, Any]]] = []
    size = base
    n_data = n_urls = n_tokens = 0

    def flush(fh: Any) -> None:
        nonlocal batch, size, n_data, n_urls, n_tokens, written
        if not batch:
            return
        body = request_body([p for _, p in batch] + [prompt], settings)
        problems = [f for f in check_request(body, settings) if f.severity == "error"]
        if problems:  # one input alone too big for a request: prep keeps parts within limits
            raise BatchRequestError(displayable(f"{batch[0][0]}: {problems[0].message}"))
        cid = batch[0][0] if len(batch) == 1 else f"{batch[0][0]}+{len(batch) - 1}"
        request = {"custom_id": cid, "method": "POST", "url": url, "body": body}
        headers = request_headers([p for _, p in batch], settings)
        if headers:  # uploaded oss:// parts resolve only with the OSS header
            request["headers"] = headers
        fh.write(json_line(request, separators=(",", ":")) + "\n")
        written += 1
        batch, size, n_data, n_urls, n_tokens = [], base, 0, 0, 0

    with atomic_writer(dest) as fh, open(parts, encoding="utf-8") as src:
        for text in src:
            line = json.loads(text)
            part = line.get("part")
            if input_failed(line) or not part:
                skipped += 1
                continue
            urls = urls_in(part)
            d = sum(1 for u in urls if u.startswith("data:"))
            psize = len(json.dumps(part, separators=(",", ":")).encode()) + 1
            tokens = _client_tokens(line)
            if batch and (len(batch) >= group or n_data + d > max_data
                          or n_urls + len(urls) - d > max_urls
                          or size + psize > max_bytes
                          or n_tokens + tokens > max_tokens):
                flush(fh)
            batch.append((line["path"], part))
            n_tokens += tokens
            size += psize
            n_data += d
            n_urls += len(urls) - d
        flush(fh)
    return written, skipped


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
    from ..emit.sink import EXTENSION
    from ..resource import frame_files

    def real(p: Path) -> Path:
        try:
            return Path(os.path.realpath(p))
        except (OSError, ValueError):
            return Path(os.path.abspath(p))

    target = real(dest)
    out_r = real(out)
    state = out_r / STATE_DIR
    reserved = {out_r / PARTS_FILE: "the parts file", out_r / REPORT_FILE: "the report"}
    try:
        st = os.stat(dest)
        same = {(st.st_dev, st.st_ino)}
    except OSError:
        same = set()

    def is_dest(p: Path) -> bool:  # also by identity: another spelling, a case-blind disk
        if p == target:
            return True
        try:
            s = os.stat(p)
        except OSError:
            return False
        return (s.st_dev, s.st_ino) in same

    why = next((what for p, what in reserved.items() if is_dest(p)), None)
    if target == state or state in target.parents or is_dest(state):
        why = "mediaprep's state folder"
    if why is None and (target == out_r or out_r in target.parents):
        rel = target.relative_to(out_r).parts
        name = rel[0] if rel else ""
        folders = {PurePosixPath(s).parts[0].casefold() for s in stems}
        if len(rel) != 1:
            why = "a folder the run writes in"
        elif name.startswith(".") or is_reserved_name(name):
            why = "a name mediaprep keeps"
        elif name.casefold() in folders or target.is_dir():
            why = "an output's folder"
        elif name.rpartition(".")[2].casefold() in set(EXTENSION.values()):
            why = "an output (outputs have that extension)"
    if why is not None:
        return (f"{option} {dest} would overwrite {why} of {out}; "
                "choose another file (in the output folder: directly in it, named "
                f"like {example})")
    for item in items:
        if item.real is None:
            continue
        members = [item.real]
        if item.real.is_dir():
            with contextlib.suppress(OSError, ValueError):
                members = [real(m) for m in frame_files(item.real)]
        for m in members:
            if is_dest(m):
                return (f"{option} {dest} is an input ({item.display}); "
                        "choose another file")
    return None


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
