"""Where prepared files go: safe names under the output folder, written atomically.

Output names come from input names, so they are cleaned: no ``..``, no absolute paths, no
control or odd Unicode characters, nothing that could leave the output folder. Two inputs that
would land on the same name get distinct names (a short hash of the input path), decided once
for a whole run so a rerun makes the same names.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Any

_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)
MAX_COMPONENT = 120
# File systems count a name's bytes (NAME_MAX 255 on Linux), not its characters; outputs add a
# hash, a frame suffix, an extension and atomic_write's ".NAME.XXXXXXXX.part" temp name.
MAX_COMPONENT_BYTES = 150
# Write errors that every later output would hit too (a full disk or quota, a read-only file
# system): a batch stops at the first instead of failing each remaining input the same way.
RUN_STOPPING_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def clean_component(part: str) -> str:
    part = unicodedata.normalize("NFKC", part)
    part = "".join(ch for ch in part if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
    part = _UNSAFE.sub("_", part).strip("._ ")
    return _shorten(part[:MAX_COMPONENT]) or "_"


def _shorten(part: str) -> str:
    """At most MAX_COMPONENT_BYTES of UTF-8, cut at a character, keeping a short extension."""
    if len(part.encode("utf-8")) <= MAX_COMPONENT_BYTES:
        return part
    stem, dot, ext = part.rpartition(".")
    if not dot or not stem or len(ext) > 10:
        stem, ext = part, ""
    budget = MAX_COMPONENT_BYTES - (len(ext.encode("utf-8")) + 1 if ext else 0)
    stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip("._ ") or "_"
    return f"{stem}.{ext}" if ext else stem


def safe_relative(name: str) -> PurePath:
    """A relative path made only of clean components (drive, root, ``.`` and ``..`` dropped)."""
    raw = name.replace("\\", "/")
    parts = [p for p in raw.split("/") if p not in ("", ".", "..")]
    if parts and re.fullmatch(r"[A-Za-z]:", parts[0]):
        parts = parts[1:]
    cleaned = [clean_component(p) for p in parts] or ["input"]
    return PurePath(*cleaned)


def output_stems(names: Iterable[str]) -> dict[str, PurePath]:
    """Input display name -> output stem (relative, no extension), unique across the run.

    Extensions are replaced later by what the output really is, so ``a.png`` and ``a.heic``
    would both become ``a.jpg``: the stem carries a hash of the input name when stems collide.
    """
    names = list(dict.fromkeys(names))
    stems: dict[str, PurePath] = {}
    base = {n: safe_relative(n).with_suffix("") for n in names}
    keys = {n: base[n].as_posix().lower() for n in names}
    counts: dict[str, int] = {}
    folders: set[str] = set()  # a stem that is another's folder would share its files
    for n in names:
        key = keys[n]
        counts[key] = counts.get(key, 0) + 1
        parts = key.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    for n in names:
        stem = base[n]
        key = keys[n]
        # frames of a video go to a folder named by its stem: ``clip.mp4`` -> ``clip/``
        if counts[key] > 1 or key in folders:
            digest = hashlib.sha256(n.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            stem = stem.with_name(f"{stem.name}-{digest}")
        stems[n] = stem
    return stems


def inside(root: Path, relative: PurePath) -> Path:
    """``root / relative``, refusing anything that would resolve outside ``root``."""
    root_r = root.resolve()
    target = (root_r / relative).resolve()
    if target != root_r and root_r not in target.parents:
        raise ValueError(f"output {relative} would leave {root}")
    return target


def json_line(value: Any, **options: Any) -> str:
    """``json.dumps`` for a UTF-8 file: non-ASCII stays readable, except in a text holding a
    lone surrogate (a file name whose bytes are not UTF-8, as ``os.fsdecode`` gives it), which
    is escaped (``\\udcff``) instead of failing to encode, and the input with it."""
    text = json.dumps(value, ensure_ascii=False, **options)
    if text.isascii():  # nearly always (data URLs are ASCII): no trial encode of megabytes
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, **options)
    return text


def make_ordinary(path: str | os.PathLike[str]) -> None:
    """Give a temp file the mode of an ordinary new file (0666 less the umask).

    Why: ``mkstemp`` makes 0600, and an output renamed into place keeps it: a web server
    serving DIR for ``--transport url``, or a teammate, could not read it.
    """
    os.chmod(path, 0o666 & ~_UMASK)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        make_ordinary(tmp)
        # No fsync: the rename guards against a killed process (the promise); an fsync per
        # output serialises parallel workers on the disk, and a file lost to a power cut is
        # only prepared again by the next run.
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def temp_path_for(path: Path) -> Path:
    """A fresh temp file name beside ``path`` (for writers that need a path, e.g. PyAV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    make_ordinary(tmp)
    return Path(tmp)


def _unlink(p: str | Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass
