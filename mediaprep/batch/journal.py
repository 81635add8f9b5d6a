"""The journal under DIR/.mediaprep: what a run finished, so a rerun resumes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from ..limits import TABLE_VERSION
from ..output import (
    STATE_DIR,
    THUMB_FOLDER,
    atomic_write,
    inside,
    is_link_or_not_folder,
    is_reserved_name,
    is_run_id,
    json_line,
    writing_for_run,
)
from ..output import sweep_temporaries as _sweep
from ..report.changes import changes_of, words_of
from ..resource import frame_files, is_url
from ..types import Finding, line_problem
from .cache import Cache, cache_for_run, cache_key, canonical_json, hash_input, package_version
from .cache_line import Carried, line_bytes, put_back_payloads, take_out_payloads
from .frames_dir import MANIFEST
from .journal_index import JournalIndex, Record
from .journal_log import JOURNAL_FOLDER, LOG_NAME, LineAt, append_record
from .summary import warnings_left
from .tasks import PrepTask, prep_one

log = logging.getLogger("mediaprep")

# --- prep over many inputs: a journal (resume) and the content-addressed cache ----------------
#
# Each input's work is one call of :func:`prep_job` in a worker. It writes the input's outputs
# (atomically, by prepare), then appends its journal record to the worker's log in
# ``DIR/.mediaprep/journal/`` (journal_log): the metadata (the key it was made under, the sizes
# and times of the outputs) and the input's ``parts.jsonl`` line, in one write. The parent
# indexes each record as its input ends and copies the lines, in input order, into a
# temporary file renamed over ``parts.jsonl`` at the end; then it writes the index of every
# record (``journal.idx``) and removes the logs. A run killed at any moment therefore leaves
# whole outputs, whole records (a torn log tail is never read) and either the previous
# ``parts.jsonl`` or none; the rerun finds the finished inputs' records still valid (same input
# path, size, mtime and inode, same options and name, outputs as recorded) and skips their
# work. The cache stores the same record and line with the outputs, keyed by the input's bytes.

LOCK_FILE = "lock"
META_FILE = "meta.json"  # a journal record's metadata, as stored in a cache entry
LINE_FILE = "line.json"  # and its parts.jsonl line
_OUT = "out/s"  # cache names of outputs: _OUT + the output's path after its stem
STALE_FILE = "stale.json"  # outputs of inputs earlier runs named and later ones did not
RUNS_FILE = "runs"  # markers of the runs whose temporaries may still be in DIR (JSON list)
MAX_RUNS = 64  # runs remembered (each killed run adds one until a run ends)
# The record files of mediaprep before the logs (one .json and one .line per input): removed.
_RECORD_NAME = re.compile(r"^[0-9a-f]{40}\.(json|line)\Z")


@dataclass(frozen=True)
class PrepJob:
    """One input of a ``prep`` run: the task, and where its cache and journal live."""

    task: PrepTask
    journal_dir: str
    cache_dir: str | None = None  # None: no cache
    run_id: str | None = None  # the run's marker, carried by the temporaries it makes
    thumbs: bool = False  # make the input's report thumbnails once it is prepared


@dataclass(slots=True)
class PrepDone:
    """What the parent needs to know about a finished input (its line is in the journal).
    Not frozen: the parent takes ``record`` once it has indexed it (:meth:`take_record`) and
    the rest once its result holds it (:meth:`clear`), as the executor keeps every outcome
    until the run ends (3.7 KB an input: 370 MB at 10^5)."""

    ok: bool
    fixed: bool
    bytes_in: int
    bytes_out: int
    status: str  # one line for humans: "a.jpg: ok (converted ...)"
    origin: str  # "prepared", "cache" or "journal"
    changes: tuple[str, ...] = ()  # kinds of change (report.changes.KINDS)
    warnings: tuple[str, ...] = ()  # codes of the warnings that hold for what is sent
    codes: tuple[str, ...] = ()  # every finding's code, as parts.jsonl lists them
    outputs: tuple[str, ...] = ()  # the files written, relative to DIR
    record: dict[str, Any] | None = None  # the journal record written now (None: a hit)
    line_at: LineAt | None = None  # and where its parts.jsonl line is

    def take_record(self) -> tuple[dict[str, Any] | None, LineAt | None]:
        """The record written now and where its line is, handed over once."""
        record, at = self.record, self.line_at
        self.record = self.line_at = None
        return record, at

    def clear(self) -> None:
        """Drop the words and names, which the parent's result for the input holds now."""
        self.status = self.origin = ""
        self.changes = self.warnings = self.codes = self.outputs = ()


def state_dir(out_dir: str | os.PathLike[str]) -> Path:
    return Path(out_dir) / STATE_DIR


def record_name(stem: str) -> str:
    """The name of an input's journal record: a digest of its output stem (unique in a run)."""
    return hashlib.sha256(stem.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def input_key(task: PrepTask) -> str | None:
    """Cache key of a task: its input's bytes and extension, its settings, the limits table's
    version (and mediaprep's).

    ``None`` when there are no bytes to hash here (a URL, a missing file): never cached.
    """
    if is_url(task.source):
        return None
    path = Path(task.source)
    # The extension is part of what is prepared: the same bytes named .jpg and .bin are probed
    # differently (a name that lies about the format is a finding of its own).
    options = {"settings": task.settings.to_json(), "extension": path.suffix.lower()}
    try:
        if path.is_dir():  # a frames folder: its members' names and bytes, in order
            members = [[m.name, hash_input(m)] for m in frame_files(path)]
            options["frames"] = True
            return cache_key(canonical_json(members).encode(), options, TABLE_VERSION)
        return cache_key(path, options, TABLE_VERSION)
    except (OSError, TypeError, ValueError):
        return None


def _fingerprint(source: str, *, ctime: bool = False) -> Any:
    """What says an input is unchanged without reading it: path, size, mtime and inode (of each
    member, for a frames folder), as ``make`` and ``rsync`` judge files. None for URLs.
    ``ctime``: the inode's change time too, which every write moves and no one can set back
    (what says the bytes stayed the same during one prepare; not part of a journal key).
    One stat call for a file: the parent asks for every input of a rerun."""
    if is_url(source):
        return None
    try:
        st = os.stat(source)
        if stat.S_ISDIR(st.st_mode):
            return [_stat_line(os.fspath(m), os.stat(m), ctime) for m in frame_files(Path(source))]
        return _stat_line(source, st, ctime)
    except OSError:
        return None


def _stat_line(path: str, st: os.stat_result, ctime: bool) -> list[Any]:
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino,
            *([st.st_ctime_ns] if ctime else [])]


_SETTINGS_MEMO: dict[int, tuple[Any, str]] = {}  # id -> (settings, canonical JSON)


def _settings_json(settings: Any) -> str:
    """A task's settings as canonical JSON, once per settings object (every task of a run
    shares one, unless a per-path override gives it another)."""
    memo = _SETTINGS_MEMO.get(id(settings))
    if memo is None or memo[0] is not settings:
        if len(_SETTINGS_MEMO) > 64:
            _SETTINGS_MEMO.clear()  # bounded: a run has a few settings objects
        memo = _SETTINGS_MEMO[id(settings)] = (settings, canonical_json(settings.to_json()))
    return memo[1]


def journal_key(task: PrepTask) -> str | None:
    """The key a journal record must carry to stand for ``task`` (None: never skipped)."""
    fp = _fingerprint(task.source)
    if fp is None:
        return None
    try:
        header = [fp, TABLE_VERSION, package_version(), task.stem, task.display, task.out_dir]
        text = canonical_json(header) + "\0" + _settings_json(task.settings)
        return hashlib.sha256(text.encode()).hexdigest()
    except (TypeError, ValueError):
        return None


def journal_hit(job: PrepJob, index: JournalIndex, name: str | None = None) -> PrepDone | None:
    """The input's result from its journal record (``name``: its record_name, when known),
    when one was finished under the same key and its outputs are still as written. Cheap (a
    dictionary lookup and stat calls, no file opened): the parent runs it for every input
    before starting any worker."""
    rec = index.get(name or record_name(job.task.stem))
    if rec is None:  # first: on a cold run there is none, and no key to compute
        return None
    if rec.jkey is None or rec.jkey != journal_key(job.task):
        return None
    if not (_still_valid(rec.valid_until) and _intact(job.task.out_dir, rec, index)):
        return None
    return _done(rec.done_fields(), "journal")


def _valid_until(line: dict[str, Any] | None, margin: float = 0.0) -> float | None:
    """Until when a line stands (Unix time; None: for good): an uploaded reference expires
    (less the target's margin), and a failed upload is tried again by the next run (0)."""
    if not isinstance(line, dict):
        return None
    if any(f.get("code") == "upload.failed" for f in line.get("findings") or []):
        return 0.0
    from ..upload.records import expiry_time

    times = [expiry_time(u) for u in line.get("uploads") or []]
    times = [t for t in times if t is not None]
    return min(times) - margin if times else None


def _still_valid(until: Any) -> bool:
    if until is None:
        return True
    return isinstance(until, int | float) and not isinstance(until, bool) and until > time.time()


def prep_job(job: PrepJob) -> PrepDone:
    """Prepare one input, or reuse its cache entry; append its journal record to this
    process's log. (Journal hits never get here: the parent finds them first.)

    A top-level function (picklable): this is what ``prep`` runs in its workers.
    """
    with writing_for_run(job.run_id):
        return _prep_job(job)


# The input's thumbnails for DIR/report.html are made in the worker, while its files are fresh
# in the page cache and in parallel with the other inputs (the report at the end only reads
# them). An input prepared now has them made from prepare's own pixels (previews), before its
# journal record, which lists them: a thumbnail from a lossy encode's pixels cannot be made
# again from the file, so a record whose thumbnails are gone is prepared again, and the cache
# keeps them with the outputs. Nothing here fails the input.

_MANIFEST = "frames/manifest"  # cache name of the frames.json beside a video's frames
_THUMB = "thumb/"  # cache names of an input's report thumbnails: _THUMB + the file's name
_LINE_SPLICES = "line.splices"  # where the line's data URL payloads go back (.cache_line)


def _prep_job(job: PrepJob) -> PrepDone:
    t = job.task
    jkey = journal_key(t)
    # Taken before the key's hash and again after prepare: bytes rewritten in between (a file
    # being saved or synced) must not be cached under a key made from other bytes.
    before = _fingerprint(t.source, ctime=True)
    cache, key = _cache_of(job)
    if cache is not None:
        hit = _cache_hit(cache, key, job, jkey)
        if hit is not None:
            return hit
    line = prep_one(t, preview=job.thumbs)
    if before is not None and _fingerprint(t.source, ctime=True) != before:
        _say_changed(line, t.display)
        cache = None
        jkey = None  # nor skipped by the journal next time
    thumbs = _new_thumbnails(t, line) if job.thumbs else []
    text, carried = line_bytes(line)
    meta = _line_meta(t, jkey, line, thumbs, bytes_in=getattr(line, "bytes_in", 0))
    at = append_record(job.journal_dir, job.run_id, meta, text)
    if cache is not None:
        _store(cache, key, t, meta, (text, carried), line, thumbs)
    return _done(meta["done"], "prepared", meta, at)


def _cache_of(job: PrepJob) -> tuple[Cache | None, str]:
    """The job's cache and its input's key there; (None, "") when not cached (no cache, or
    nothing to key: a URL, a missing file)."""
    key = input_key(job.task) if job.cache_dir is not None else None
    if job.cache_dir is None or key is None:
        return None, ""
    return cache_for_run(job.cache_dir, job.run_id), key


def _new_thumbnails(t: PrepTask, line: Any) -> list[Path]:
    """The input's report thumbnails, made from prepare's own pixels (its previews)."""
    from ..report.html import thumbnail_line

    return thumbnail_line(t.out_dir, line, t.source, previews=line.previews)


prep_job.worker_imports = (*prep_one.worker_imports, "mediaprep.report.html")  # type: ignore[attr-defined]


def _cache_hit(cache: Cache, key: str, job: PrepJob, jkey: str | None) -> PrepDone | None:
    """The input from its cache entry (None: a miss); a damaged entry is a miss."""
    try:
        return _from_cache(cache, key, job, jkey)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("cache: entry for %s unusable (%s); preparing it again", job.task.display,
                    exc)
        return None


def _say_changed(line: dict[str, Any], display: str) -> None:
    line["findings"] = [*line.get("findings", []), Finding(
        "file.changed", "warning",
        f"{display}: changed while it was prepared (its size, time or inode differ "
        "after); what was sent may mix two versions, and it is not cached: run again once "
        "it stays still").to_json()]


def _status(line: dict[str, Any], display: str) -> str:
    """One line for a person: ``a.jpg: fixed: rotated (as its EXIF orientation says);
    re-encoded from JPEG to JPEG 3000x4000, quality 92, 1.2 MiB``, ``b.png: ok, unchanged``,
    ``c.mp4: FAILED (video.too_short: ...)``. The words are the HTML report's and
    parts.jsonl's ``fixes`` (:func:`~mediaprep.report.changes.words_of`)."""
    if line.get("ok"):
        words = words_of(line)
        warned = "".join(f"; warning {f.get('code')}: {_own_words(f.get('message'), display)}"
                         for f in warnings_left(line))
        if not words:
            return f"{display}: ok, unchanged{warned}"
        return f"{display}: fixed: " + "; ".join(words) + warned
    detail = "; ".join(f"{f.get('code')}: {f.get('message')}" for f in line.get("findings") or []
                       if f.get("severity") == "error")
    return f"{display}: FAILED" + (f" ({detail})" if detail else "")


def _own_words(message: Any, display: str) -> str:
    """A finding's message without the file name it starts with (the line starts with it)."""
    text = str(message or "")
    name = Path(display).name
    for prefix in (f"{display}: ", f"{name}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def _fixed(line: dict[str, Any]) -> bool:
    """Whether a prepared input was changed: any change to what the model gets (a rotation, a
    resize, a conversion, flattening, frames) or an error fixed counts; only an input sent as
    it was counts as passed."""
    if not line.get("ok"):
        return False
    return bool(changes_of(line)) or any(f.get("severity") == "error"
                                         for f in line.get("findings") or [])


def _input_bytes(source: str) -> int:
    p = Path(source)
    try:
        if p.is_dir():
            return sum(m.stat().st_size for m in frame_files(p))
        return p.stat().st_size
    except (OSError, ValueError):
        return 0


def _outputs_of(t: PrepTask, names: list[str]) -> list[dict[str, Any]]:
    out = Path(t.out_dir)
    stats = []
    for rel in names:
        st = (out / rel).stat()
        stats.append({"name": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return stats


def _done_of(line: dict[str, Any], display: str) -> dict[str, Any]:
    """What the parent gets to know of a prepared input (PrepDone's fields)."""
    return {"ok": bool(line.get("ok")), "fixed": _fixed(line),
            "status": _status(line, display), "changes": changes_of(line),
            "warnings": [f.get("code") for f in warnings_left(line)],
            "codes": [f.get("code") for f in line.get("findings") or []],
            "outputs": [str(o) for o in line.get("outputs") or []]}


def _line_meta(t: PrepTask, jkey: str | None, line: dict[str, Any], thumbs: list[Path] | None,
               bytes_in: int = 0) -> dict[str, Any]:
    """The metadata of the journal record of ``line``, made now (:func:`_record_meta`)."""
    uploads = getattr(t.settings.target, "uploads", None)
    return _record_meta(t, jkey, list(line.get("outputs") or []), _done_of(line, t.display),
                        thumbs, bytes_in=bytes_in,
                        valid_until=_valid_until(line, 0.0 if uploads is None else uploads.margin))


def _record_meta(t: PrepTask, jkey: str | None, outputs: list[str], done: dict[str, Any],
                 thumbs: list[Path] | None, *, bytes_in: int = 0,
                 valid_until: float | None = None) -> dict[str, Any]:
    """The metadata of an input's journal record: the key it was made under, its outputs'
    sizes and times, its thumbnails, and what the parent reports of it (``done``).
    journal_log.append_record adds its stamp and the line's size."""
    stats = _outputs_of(t, outputs)
    meta: dict[str, Any] = {
        "name": record_name(t.stem),  # first: a journal.idx row starts with it (journal_index)
        "jkey": jkey,
        "stem": t.stem,
        "display": t.display,
        "out_dir": t.out_dir,
        "outputs": stats,
        "thumbs": _thumb_stats(t, thumbs or []),
        "done": {**{k: done[k] for k in ("ok", "fixed", "status")},
                 **{k: list(done.get(k) or []) for k in ("changes", "warnings", "codes",
                                                         "outputs")},
                 "bytes_in": _input_bytes(t.source) or bytes_in,  # a URL: prepare's count
                 "bytes_out": sum(o["size"] for o in stats)},
    }
    if valid_until is not None:
        meta["valid_until"] = valid_until
    return meta


def _thumb_stats(t: PrepTask, thumbs: list[Path]) -> list[dict[str, Any]]:
    """The report's thumbnails of an input (relative to DIR), by size: another input with the
    same output shares one, and rewriting it may change its time but not its bytes."""
    return [{"name": p.relative_to(t.out_dir).as_posix(), "size": p.stat().st_size}
            for p in thumbs]


def _stored_json(entry: Any, name: str) -> Any:
    """A cache entry's JSON text ``name``, parsed (None: unreadable or not JSON)."""
    try:
        return _json_or_none(entry.data(name))
    except OSError:
        return None


def _json_or_none(text: bytes | None) -> Any:
    """``text`` parsed as JSON; None for no text or not JSON."""
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return None


def _cached_line_text(entry: Any) -> bytes | None:
    """A cache entry's line with its data URLs' payloads put back (:mod:`.cache_line`); None
    when it cannot be read or its splices are not ones a put writes."""
    try:
        text = entry.data(LINE_FILE)
        if not entry.has(_LINE_SPLICES):
            return text
        return put_back_payloads(text, json.loads(entry.data(_LINE_SPLICES)), entry.data)
    except (OSError, ValueError, KeyError):
        return None


def _intact(out_dir: str, rec: Record, index: JournalIndex) -> bool:
    """Whether the record's line (in a log, or in ``parts.jsonl``) and outputs are still the
    ones it recorded. Stat calls on plain strings: the parent runs this for every input."""
    if index.line_at(rec.name) is None:
        return False
    try:
        for name, size, mtime_ns in rec.outputs:
            st = os.stat(os.path.join(out_dir, name))
            if st.st_size != size or st.st_mtime_ns != mtime_ns:
                return False
        # made from prepare's pixels: only preparing it again makes them again
        return all(os.stat(os.path.join(out_dir, name)).st_size == size
                   for name, size in rec.thumbs)
    except (OSError, TypeError, ValueError):
        return False


def _done(done: dict[str, Any], origin: str, record: dict[str, Any] | None = None,
          at: LineAt | None = None) -> PrepDone:
    d = done
    return PrepDone(bool(d["ok"]), bool(d["fixed"]), int(d["bytes_in"]), int(d["bytes_out"]),
                    str(d["status"]), origin, tuple(str(c) for c in d.get("changes") or ()),
                    tuple(str(c) for c in d.get("warnings") or ()),
                    tuple(str(c) for c in d.get("codes") or ()),
                    tuple(str(o) for o in d.get("outputs") or ()), record, at)


def _store(cache: Cache, key: str, t: PrepTask, meta: dict[str, Any],
           written: tuple[bytes, list[Carried]], line: dict[str, Any],
           thumbs: list[Path]) -> None:
    """Put the outputs, their thumbnails and the journal record in the cache (the line
    without the data URLs of the outputs stored beside it: :mod:`.cache_line`); a cache that
    fails is no error."""
    files: dict[str, str | os.PathLike[str] | bytes] = {
        META_FILE: (json.dumps(meta, ensure_ascii=True) + "\n").encode()}
    files.update({_THUMB + p.name: p for p in thumbs})
    outputs = _outputs_to_store(t, line)
    if outputs is None:
        return  # an output outside its stem cannot be renamed for another input
    files.update({name: path for path, (name, _) in outputs.items()})
    files.update(_line_files(written, outputs))
    if any(rel.startswith(t.stem + "/") for rel in line.get("outputs") or []) and \
            _regular_file(Path(t.out_dir) / t.stem / MANIFEST):
        files[_MANIFEST] = Path(t.out_dir) / t.stem / MANIFEST  # prepare wrote it
    try:
        cache.put(key, {"stem": t.stem}, files)
    except (OSError, ValueError) as exc:  # the run goes on; the next one prepares it again
        log.warning("cache: could not store %s: %s", t.display, exc)


def _line_files(written: tuple[bytes, list[Carried]], outputs: dict[Path, tuple[str, int]]
                ) -> dict[str, bytes]:
    """The line as a cache entry keeps it: without the payloads of the outputs stored beside
    it, and where they go back (:mod:`.cache_line`)."""
    stored = {os.path.abspath(path): kept for path, kept in outputs.items()}
    text, carried = written  # the line as the journal has it, and its data URLs
    short, splices = take_out_payloads(
        text, [replace(c, path=os.path.abspath(c.path)) for c in carried], stored)
    return {LINE_FILE: short, **({_LINE_SPLICES: json.dumps(splices).encode()} if splices else {})}


def _outputs_to_store(t: PrepTask, line: dict[str, Any]) -> dict[Path, tuple[str, int]] | None:
    """Each output's path -> its name in a cache entry and its size (-1: not there); None when
    one lies outside the input's stem."""
    out: dict[Path, tuple[str, int]] = {}
    for rel in line.get("outputs") or []:
        if not rel.startswith(t.stem):
            return None
        path = Path(t.out_dir) / rel
        try:
            size = os.lstat(path).st_size
        except OSError:
            size = -1  # put reports it
        out[path] = (_OUT + rel[len(t.stem):], size)
    return out


def _cached_record(cache: Cache, key: str, display: str
                   ) -> tuple[Any, dict[str, Any], dict[str, Any], bytes] | None:
    """A cache entry's files, record and line, when usable: the cache folder may be shared or
    planted, so its record and line are input like any other, checked before any of it reaches
    DIR, parts.jsonl or the report."""
    entry = cache.get(key)
    if entry is None or not (entry.has(META_FILE) and entry.has(LINE_FILE)):
        return None
    text = _cached_line_text(entry)
    old, cached_line = _stored_json(entry, META_FILE), _json_or_none(text)
    if isinstance(old, dict) and not _still_valid(old.get("valid_until")):
        return None  # an uploaded reference past its life: prepared and uploaded again
    problem = ("its record is not one prep writes" if _meta_problem(old)
               else line_problem(cached_line))
    if problem is not None:
        log.warning("cache: entry %s for %s not used: %s", key[:12], display, problem)
        cache.discard(key, problem)
        return None
    assert old is not None and cached_line is not None and text is not None
    return entry, old, cached_line, text


def _from_cache(cache: Cache, key: str, job: PrepJob, jkey: str | None) -> PrepDone | None:
    t = job.task
    found = _cached_record(cache, key, t.display)
    if found is None:
        return None
    entry, old, cached_line, cached_text = found
    names = _renamed_outputs(old, t.stem)
    # The line names the input and its outputs (relative to DIR); file:// URLs also name DIR.
    # Anything else is the same for every input with these bytes and options, and then the
    # cached line is the record's line as it is (no decode and encode of data URLs).
    same = (old["stem"], old["display"]) == (t.stem, t.display) and (
        old["out_dir"] == t.out_dir or t.settings.transport != "path")
    line = cached_line if same else _rebase(cached_line, t, old["stem"], old["out_dir"],
                                            old["display"])
    if names is None or line is None:
        return None
    # Outputs are copies (materialise never links): a link would tie this folder's files to
    # the cache's, so an edit in place, as Image.save(path) over its own file does, or damage
    # in the cache would change both. get() verified the entry's hashes.
    entry.materialise(t.out_dir, names)
    thumbs = _cached_thumbs(entry, t) if job.thumbs else None
    if same:
        text = cached_text.rstrip(b"\n") + b"\n"
        meta = _record_meta(t, jkey, list(names.values()), old["done"], thumbs,
                            valid_until=old.get("valid_until"))
    else:
        text = (json_line(line) + "\n").encode("utf-8")
        meta = _line_meta(t, jkey, line, thumbs)
    if entry.has(_MANIFEST):
        _frames_manifest(entry.data(_MANIFEST), t, line)
    at = append_record(job.journal_dir, job.run_id, meta, text)
    if job.thumbs:
        _thumbnails(t, line)
    return _done(meta["done"], "cache", meta, at)


def _regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _frames_manifest(data: bytes, t: PrepTask, line: dict[str, Any]) -> None:
    """A cached video's frames.json, as prepare writes it for this input: it names the input
    as its line does (kinds.video writes the same JSON with the same indent)."""
    try:
        manifest = json.loads(data)
    except ValueError:
        return
    if isinstance(manifest, dict) and isinstance(manifest.get("frames"), list):
        manifest["video"] = line.get("path")
        atomic_write(inside(Path(t.out_dir), PurePosixPath(t.stem)) / MANIFEST,
                     json.dumps(manifest, indent=2).encode())


def _renamed_outputs(old: dict[str, Any], stem: str) -> dict[str, str] | None:
    """Cache names of a cached record's outputs -> their names for ``stem`` (None: an output
    outside its stem, which cannot be renamed for another input)."""
    old_stem = old["stem"]
    if not all(o["name"].startswith(old_stem) for o in old["outputs"]):
        return None
    return {_OUT + o["name"][len(old_stem):]: stem + o["name"][len(old_stem):]
            for o in old["outputs"]}


def _thumbnails(t: PrepTask, line: dict[str, Any]) -> None:
    """What is missing of a cache hit's thumbnails, made from its files."""
    from ..report.html import thumbnail_line

    thumbnail_line(t.out_dir, line, t.source)


def _meta_problem(meta: Any) -> bool:
    """Whether a cached journal record lacks what :func:`_from_cache` reads, as prep writes it."""
    if not isinstance(meta, dict) or not all(
            isinstance(meta.get(k), str) for k in ("stem", "out_dir", "display")):
        return True
    outputs = meta.get("outputs")
    if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs):
        return True
    return not _done_as_written(meta.get("done"))


def _done_as_written(done: Any) -> bool:
    """Whether a record's ``done`` has the types prep writes."""
    return (isinstance(done, dict)
            and all(isinstance(done.get(k), bool) for k in ("ok", "fixed"))
            and isinstance(done.get("status"), str)
            and all(type(done.get(k)) is int for k in ("bytes_in", "bytes_out"))
            and isinstance(done.get("changes", []), list))


def _cached_thumbs(entry: Any, t: PrepTask) -> list[Path]:
    """The entry's thumbnails, put in DIR's thumbnail folder (named by the outputs' bytes, the
    same for any input they were made for); none when that folder is not ours."""
    folder = Path(t.out_dir) / THUMB_FOLDER
    from ..report.html import is_thumbnail_name

    # only pictures named as the report names them: an entry cannot plant a row record
    names = {n: n[len(_THUMB):] for n in entry.files
             if n.startswith(_THUMB) and is_thumbnail_name(n[len(_THUMB):])}
    if not names or is_link_or_not_folder(folder):
        return []  # a link (or a file) there: the page carries its pictures inline
    return entry.materialise(folder, names)


def _rebase(line: dict[str, Any], t: PrepTask, old_stem: str, old_out: str,
            old_display: str) -> dict[str, Any] | None:
    """A cached line made for another name or folder, renamed for this task (None: cannot)."""
    from ..emit.parts import file_uri, prefixed_url

    s = t.settings
    urls: dict[str, str] = {}
    outputs = []
    for rel in line.get("outputs") or []:
        new = t.stem + rel[len(old_stem):]
        outputs.append(new)
        if s.transport == "path":
            urls[file_uri(Path(old_out) / rel)] = file_uri(Path(t.out_dir) / new)
        elif s.transport == "url" and s.url_prefix:
            urls[prefixed_url(s.url_prefix, rel)] = prefixed_url(s.url_prefix, new)
    seen: set[str] = set()

    def swap(v: Any) -> Any:
        if isinstance(v, str) and v in urls:
            seen.add(v)
            return urls[v]
        if isinstance(v, list):
            return [swap(x) for x in v]
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        return v

    out = dict(line)
    out["path"] = t.display
    out["outputs"] = outputs
    out["part"] = swap(line.get("part"))
    out["parts"] = swap(line.get("parts"))  # an input sent as tiles: every tile's URL
    if seen != set(urls):
        return None  # a URL the part should carry is not where expected: prepare afresh
    if old_display != t.display:
        out["findings"] = [{**f, "message": str(f.get("message", ""))
                            .replace(old_display, t.display)}
                           for f in line.get("findings") or []]
    return out


def state_problem(out_dir: str | os.PathLike[str]) -> str | None:
    """Why ``prep`` must not write to ``out_dir`` (None: it may): its state folder or journal
    is a symbolic link or not a folder. A link would make every write and removal there happen
    in the folder it points to, outside DIR."""
    state = state_dir(out_dir)
    for p in (state, state / JOURNAL_FOLDER):
        if is_link_or_not_folder(p):
            what = "a symbolic link" if p.is_symlink() else "not a folder"
            return (f"{p} is {what}: mediaprep keeps its state there and writes and removes "
                    "files in it, so it must be a plain folder inside the output folder "
                    "(remove it, or choose another -o folder)")
    lock = state / LOCK_FILE  # opened, not replaced (the other files are replaced by rename)
    if lock.is_symlink():
        return (f"{lock} is a symbolic link: mediaprep opens that file, so it must not point "
                "elsewhere (remove it, or choose another -o folder)")
    return None


def write_folders(out_dir: str | os.PathLike[str], stems: Iterable[str],
                  *extra: str | os.PathLike[str]) -> Iterator[Path]:
    """The folders a ``prep`` run writes in: DIR, its state, journal and thumbnail folders, each
    output's folder and a video's frames folder (``DIR/<stem>/``), and ``extra`` (the batch
    requests' folder). Output stems never hold a hidden part (output.clean_component).

    Made as they are asked for (a sweep after a killed run), never held as a list: 10^6
    inputs would make 2 x 10^6 paths. Each stem's frames folder is its own; the output folders
    they share are given once."""
    out = Path(os.path.abspath(out_dir))
    yield from (out, out / STATE_DIR, out / STATE_DIR / JOURNAL_FOLDER, out / THUMB_FOLDER)
    parents: set[str] = {""}
    for stem in stems:
        parent = stem.rpartition("/")[0]
        if parent not in parents:
            parents.add(parent)
            yield out / parent
        yield out / stem
    for e in extra:
        yield Path(os.path.abspath(e))


def recorded_runs(out_dir: str | os.PathLike[str]) -> list[str]:
    """Markers of the earlier runs into ``out_dir`` that may have left temporaries."""
    try:
        with open(state_dir(out_dir) / RUNS_FILE, encoding="utf-8") as fh:
            runs = json.load(fh)
    except (OSError, ValueError):
        return []
    return [r for r in runs if is_run_id(r)] if isinstance(runs, list) else []


def record_runs(out_dir: str | os.PathLike[str], runs: Iterable[str]) -> None:
    """Remember ``runs`` (before any worker writes: a run killed at once is still known)."""
    runs = list(dict.fromkeys(runs))[-MAX_RUNS:]
    atomic_write(state_dir(out_dir) / RUNS_FILE, json.dumps(runs) + "\n")


def sweep_temporaries(out_dir: str | os.PathLike[str], folders: Iterable[Path],
                      runs: Iterable[str]) -> int:
    """Remove the temporaries that the runs ``runs`` (killed, or their workers killed by a
    timeout) left in ``folders`` below ``out_dir``; return how many.

    Only names the one atomic-write helper makes (output.temp_path_for), carrying one of these
    runs' markers: a user's ``.x.tmp`` or ``.git/objects/.pack.tmp`` is never touched, nor is
    anything reached through a symbolic link. A folder outside ``out_dir`` in ``folders`` (the
    batch requests') is swept without the link check below DIR."""
    out = Path(os.path.abspath(out_dir))
    runs = list(runs)
    below: list[Path] = []
    others: list[Path] = []
    for f in folders:  # one pass: a run names one or two folders per input
        (below if f == out or out in f.parents else others).append(f)
    return _sweep(below, runs, root=out) + _sweep(others, runs)


def _safe_output_name(name: Any) -> bool:
    """An output name a journal record may carry: relative, inside DIR, not below one of
    mediaprep's own names (the state folder, parts.jsonl, report.html: output.RESERVED_NAMES)."""
    if not isinstance(name, str) or not name or "\x00" in name or os.path.isabs(name):
        return False
    parts = Path(name).parts
    return ".." not in parts and not is_reserved_name(parts[0])


def _unchanged_file(out: Path, o: dict[str, Any]) -> bool:
    """Whether ``DIR/name`` is still the file a record wrote: a plain file (no link on the way
    below DIR) of the recorded size and time. Anything else may be the user's now."""
    name = o.get("name")
    if not _safe_output_name(name):
        return False
    p = out / name
    cur = out
    for part in Path(name).parts[:-1]:
        cur = cur / part
        if cur.is_symlink():
            return False
    try:
        st = p.lstat()
    except OSError:
        return False
    return (stat.S_ISREG(st.st_mode) and st.st_size == o.get("size")
            and st.st_mtime_ns == o.get("mtime_ns"))


def stale_outputs(out_dir: str | os.PathLike[str], index: JournalIndex, names: Iterable[str],
                  *, clean: bool = False) -> tuple[list[str], list[str]]:
    """Outputs made by earlier runs for inputs this run no longer names: those of the journal
    records the index is about to drop (every record not in ``names``), and those found before
    (remembered in ``.mediaprep/stale.json``, as the records are gone). Only files still as
    mediaprep wrote them count. With ``clean`` they are removed (and the folders they leave
    empty).

    Returns ``(still there, removed)``, names relative to DIR, sorted."""
    out = Path(out_dir)
    remembered = state_dir(out) / STALE_FILE
    found = {str(o.get("name")): o for o in remembered_stale(remembered)}
    for rec in index.others(names):
        found.update((o["name"], o) for o in rec.output_stats())
    still = {n: o for n, o in found.items() if _unchanged_file(out, o)}
    removed = _remove_outputs(out, sorted(still)) if clean else []
    for name in removed:
        still.pop(name)
    if still or remembered.exists():
        atomic_write(remembered, json.dumps(list(still.values())) + "\n")
    return sorted(still), removed


def remembered_stale(path: Path) -> list[dict[str, Any]]:
    """The outputs ``.mediaprep/stale.json`` remembers (none: no file, or not as written)."""
    try:
        with open(path, encoding="utf-8") as fh:
            old = json.load(fh)
    except (OSError, ValueError):
        return []
    return [o for o in old if isinstance(o, dict)] if isinstance(old, list) else []


def _remove_outputs(out: Path, names: list[str]) -> list[str]:
    """Remove the files ``names`` (relative to ``out``) and the folders they leave empty;
    the names removed."""
    removed = []
    for name in names:
        try:
            (out / name).unlink()
        except OSError:
            continue
        removed.append(name)
        parent = (out / name).parent
        while parent != out and out in parent.parents:
            try:
                parent.rmdir()  # only an empty folder goes
            except OSError:
                break
            parent = parent.parent
    return removed


def clean_journal(journal_dir: str | os.PathLike[str]) -> None:
    """Remove the journal's logs (the index and ``parts.jsonl`` hold their records now) and
    the record files of mediaprep before the logs: only those names, only in a journal folder
    that is not a link."""
    if is_link_or_not_folder(Path(journal_dir)):
        return
    names: list[str] = []
    with contextlib.suppress(OSError), os.scandir(journal_dir) as entries:
        names = [e.name for e in entries
                 if LOG_NAME.match(e.name) or _RECORD_NAME.match(e.name)]
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(journal_dir, name))


@contextlib.contextmanager
def run_lock(out_dir: str | os.PathLike[str]) -> Iterator[bool]:
    """Hold ``DIR/.mediaprep/lock`` for the run; yields False when another run holds it.

    An advisory ``flock``: the kernel drops it when the process dies, even by SIGKILL, so a
    killed run never blocks its rerun.
    """
    path = state_dir(out_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fh = os.fdopen(os.open(path, flags, 0o666), "r+b")  # never through a link
    try:
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        except (ImportError, OSError):
            pass  # no flock here: run unlocked
        yield True
    finally:
        fh.close()
