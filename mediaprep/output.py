"""Where prepared files go: safe names under the output folder, written atomically.

Output names come from input names, so they are cleaned: no ``..``, no absolute paths, no
control or odd Unicode characters, nothing that could leave the output folder. Two inputs that
would land on the same name get distinct names (a short hash of the input path), decided once
for a whole run so a rerun makes the same names.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import itertools
import json
import os
import re
import secrets
import stat
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path, PurePath, PurePosixPath
from typing import IO, Any

_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)
_PLAIN = re.compile(r"[A-Za-z0-9_.\-]+")  # what _UNSAFE and the character filter keep as is
_DRIVE = re.compile(r"[A-Za-z]:")
MAX_COMPONENT = 120
# File systems count a name's bytes (NAME_MAX 255 on Linux), not its characters; outputs add a
# hash, a frame suffix, an extension, and a temp name adds 30 bytes (see temp_path_for).
MAX_COMPONENT_BYTES = 150
# Write errors that every later output would hit too (a full disk or quota, a read-only file
# system): a batch stops at the first instead of failing each remaining input the same way.
RUN_STOPPING_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def clean_component(part: str) -> str:
    if not _PLAIN.fullmatch(part):  # an ASCII name of safe characters needs no cleaning
        part = unicodedata.normalize("NFKC", part)
        part = "".join(ch for ch in part
                       if unicodedata.category(ch)[0] not in ("C", "Z") or ch == " ")
        part = _UNSAFE.sub("_", part)
    part = part.strip("._ ")
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
    return PurePath(*_clean_parts(name))


def _clean_parts(name: str) -> list[str]:
    raw = name.replace("\\", "/")
    parts = [p for p in raw.split("/") if p not in ("", ".", "..")]
    if parts and _DRIVE.fullmatch(parts[0]):
        parts = parts[1:]
    return [clean_component(p) for p in parts] or ["input"]


def output_stems(names: Iterable[str]) -> dict[str, PurePath]:
    """Input display name -> output stem (relative, no extension), unique across the run
    (:func:`plan_stems` for names that are all distinct)."""
    names = list(dict.fromkeys(names))
    return dict(zip(names, plan_stems(names), strict=True))


def plan_stems(names: Sequence[str], keys: Sequence[str] | None = None, *,
               extensions: Iterable[str] = ()) -> list[PurePath]:
    """The output stem (relative, no extension) of each input, decided over the whole run.

    ``names``: each input's output-relative name (two inputs may share one: ``h/a.png`` from
    two URLs differing in their query); ``keys``: what tells inputs apart (default: the
    names); the same key is the same input and gets the same stem. ``extensions``: those an
    output can get (``a.jpg/`` as another input's folder would take ``a``'s output file).

    Extensions are replaced later by what the output really is, so ``a.png`` and ``a.heic``
    would both become ``a.jpg``: a stem that two inputs share, that is another stem's folder
    (a video's frames go to ``DIR/<stem>/``), or that takes a name mediaprep owns in DIR
    (:data:`RESERVED_NAMES`), gets a hash of its input's key; the hash is lengthened until the
    name is free, free also of every stem kept as it is. Names compare as a case-insensitive
    file system does. The result depends on the set of inputs, not their order: a rerun on
    the same inputs gives the same stems.
    """
    return [PurePath(s) for s in plan_stem_names(names, keys, extensions=extensions)]


def plan_stem_names(names: Sequence[str], keys: Sequence[str] | None = None, *,
                    extensions: Iterable[str] = ()) -> list[str]:
    """:func:`plan_stems` as POSIX strings: no path object per input (10^6 inputs took
    minutes in pathlib)."""
    ids = list(keys) if keys is not None else list(names)
    if len(ids) != len(names):
        raise ValueError("keys must match names one to one")
    base = [_base_stem(n) for n in names]
    fold = [b.casefold() for b in base]
    free = _FreeName(fold, extensions)
    stems, taken = _kept_stems(base, fold, _shared_keys(fold, ids), free)
    _rename_clashes(stems, base, ids, names, free, taken)
    return [s for s in stems if s is not None]


def _kept_stems(base: Sequence[str], fold: Sequence[str], shared: set[str],
                free: Callable[[str], bool]) -> tuple[list[str | None], set[str]]:
    """Each input's base stem where it is its own and free (else None), and the folded stems
    so kept."""
    stems: list[str | None] = []
    taken: set[str] = set()
    for b, k in zip(base, fold, strict=True):
        keep = k not in shared and free(k)
        stems.append(b if keep else None)
        if keep:
            taken.add(k)
    return stems, taken


def _rename_clashes(stems: list[str | None], base: Sequence[str], ids: Sequence[str],
                    names: Sequence[str], free: Callable[[str], bool], taken: set[str]) -> None:
    """Fill the stems not kept (None) with their base and a hash of their input's key, in an
    order that depends on the inputs, not their order; ``taken``: folded stems in use."""
    renamed: dict[str, str] = {}  # by key: an input named twice gets one stem
    for i in sorted((i for i, s in enumerate(stems) if s is None),
                    key=lambda i: (ids[i], names[i])):
        if ids[i] not in renamed:
            renamed[ids[i]] = _hashed(base[i], ids[i], lambda k: free(k) and k not in taken)
            taken.add(renamed[ids[i]].casefold())
        stems[i] = renamed[ids[i]]


def _base_stem(name: str) -> str:
    """An input's stem before the run's names are compared: its cleaned relative name without
    its extension, moved below ``_<name>`` when its first folder is a reserved name (an input
    ``report.html/x.png`` would make the folder ``DIR/report.html/``). A stem that is only
    that name is renamed by :func:`plan_stems` instead."""
    parts = _clean_parts(name)
    last = parts[-1]
    dot = last.rfind(".")
    if 0 < dot < len(last) - 1:  # as PurePath.with_suffix("") cuts
        parts[-1] = last[:dot]
    if len(parts) > 1 and parts[0].casefold() in _RESERVED_KEYS:
        parts[0] = "_" + parts[0]
    return "/".join(parts)


def _shared_keys(fold: Sequence[str], ids: Sequence[str]) -> set[str]:
    """Folded stems that two different inputs would get."""
    first: dict[str, str] = {}
    shared: set[str] = set()
    for key, ident in zip(fold, ids, strict=True):
        if first.setdefault(key, ident) != ident:
            shared.add(key)
    return shared


class _FreeName:
    """Whether a folded stem is free: no input's folder, not blocked by a folder named as an
    output file (``a`` when ``a.jpg/`` exists), not one of mediaprep's own names in DIR."""

    def __init__(self, fold: Sequence[str], extensions: Iterable[str]) -> None:
        self.folders: set[str] = set()
        for key in fold:
            parent = key.rpartition("/")[0]
            while parent and parent not in self.folders:
                self.folders.add(parent)
                parent = parent.rpartition("/")[0]
        exts = {e.casefold().lstrip(".") for e in extensions}
        self.blocked = {f.rpartition(".")[0] for f in self.folders
                        if f.rpartition(".")[2] in exts}

    def __call__(self, key: str) -> bool:
        return (key not in self.folders and key not in self.blocked
                and ("/" in key or key not in _RESERVED_KEYS))


def _hashed(stem: str, key: str, free: Callable[[str], bool]) -> str:
    """``stem`` with the shortest hash of ``key`` (8 hex digits at least) that ``free`` takes."""
    raw = key.encode("utf-8", "surrogatepass")
    for round_ in itertools.count():
        digest = hashlib.sha256(raw if round_ == 0 else raw + b"\0%d" % round_).hexdigest()
        for length in range(8, len(digest) + 1, 4):
            candidate = f"{stem}-{digest[:length]}"
            if free(candidate.casefold()):
                return candidate
    raise AssertionError("unreachable")


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


# --- what prep keeps in DIR besides the outputs --------------------------------------------------

PARTS_FILE = "parts.jsonl"  # DIR/parts.jsonl: one line per input
REPORT_FILE = "report.html"  # DIR/report.html: the run's page
STATE_DIR = ".mediaprep"  # DIR/.mediaprep: the journal, the lock, the run markers, ...
# The report's pictures, beside DIR/report.html and visible: a CI artifact upload (which skips
# hidden folders) or a copy of the page with its folder keeps them.
THUMB_FOLDER = PurePosixPath("report_files")
# The names a run owns at DIR's top level: never an output's name or its folder's.
RESERVED_NAMES = frozenset({PARTS_FILE, REPORT_FILE, STATE_DIR, THUMB_FOLDER.parts[0]})
_RESERVED_KEYS = frozenset(n.casefold() for n in RESERVED_NAMES)


def is_reserved_name(name: str) -> bool:
    """Whether ``name`` at DIR's top level is one of :data:`RESERVED_NAMES`, as a
    case-insensitive file system compares names."""
    return name.casefold() in _RESERVED_KEYS


# --- temporary files: the one helper every temp-then-rename in an output folder goes through --
#
# A temporary is named ``.mp-tmp-<run>-<random>-<final name>``: a prefix nobody else uses and
# the marker of the run that made it (``prep`` records its runs in DIR/.mediaprep, so a rerun
# sweeps only what those runs, now dead, left behind; see :func:`sweep_temporaries`). Outside a
# ``prep`` run (the library, ``frames``) the marker is this process's own, which no run records:
# such a temporary is removed by its writer when it fails, never swept by another process.

TEMP_PREFIX = ".mp-tmp-"
RUN_ID_LENGTH = 12  # hex digits
_TEMP_NAME = re.compile(r"^\.mp-tmp-([0-9a-f]{12})-[0-9a-f]{8}-.+\Z", re.DOTALL)
_PROCESS_RUN = secrets.token_hex(RUN_ID_LENGTH // 2)
_RUN: contextvars.ContextVar[str] = contextvars.ContextVar("mediaprep_run", default=_PROCESS_RUN)
_NAME_BYTES = 100  # of the final name kept in a temp name (its extension always)


def new_run_id() -> str:
    """A fresh run marker (what :func:`writing_for_run` takes)."""
    return secrets.token_hex(RUN_ID_LENGTH // 2)


def is_run_id(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{12}", value) is not None


@contextlib.contextmanager
def writing_for_run(run_id: str | None) -> Iterator[None]:
    """Temporaries made inside this block (this thread) carry ``run_id`` (None: no change)."""
    if run_id is None:
        yield
        return
    if not is_run_id(run_id):
        raise ValueError(f"not a run marker: {run_id!r}")
    token = _RUN.set(run_id)
    try:
        yield
    finally:
        _RUN.reset(token)


def temp_run_id(name: str) -> str | None:
    """The run marker of a name :func:`temp_path_for` made; None for any other name."""
    m = _TEMP_NAME.match(name)
    return m.group(1) if m else None


def _temp_name(final: str) -> str:
    if len(final.encode("utf-8", "surrogateescape")) > _NAME_BYTES:
        stem, dot, ext = final.rpartition(".")
        if not dot or len(ext) > 10:
            stem, dot, ext = final, "", ""
        cut = stem.encode("utf-8", "surrogateescape")[:_NAME_BYTES - len(ext) - 1]
        final = cut.decode("utf-8", "ignore") + dot + ext
    return f"{TEMP_PREFIX}{_RUN.get()}-{secrets.token_hex(4)}-{final}"


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create the temp file for ``path`` beside it (exclusively, never through a link)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(
        os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.parent / _temp_name(path.name)
        try:
            # 0666 less the umask: an ordinary file's mode once it is renamed into place (a web
            # server serving DIR for ``--transport url``, or a teammate, can read it)
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def temp_path_for(path: Path) -> Path:
    """A fresh, empty temp file beside ``path`` (same extension, for writers that need a path,
    e.g. PyAV); the caller renames it over ``path`` or removes it."""
    fd, tmp = _create_temp(path)
    os.close(fd)
    return tmp


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text: UTF-8) to ``path`` via a temp file in the same folder and a rename.

    ``path`` itself may be a symbolic link: the rename replaces the link, never its target.
    """
    with atomic_writer(path, binary=True) as fh:
        # No fsync: the rename guards against a killed process (the promise); an fsync per
        # output serialises parallel workers on the disk, and a file lost to a power cut is
        # only prepared again by the next run.
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)


@contextlib.contextmanager
def atomic_writer(path: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """A file to write ``path``'s new content to; renamed over ``path`` when the block ends
    without an error, removed when it raises."""
    fd, tmp = _create_temp(path)
    try:
        if binary:
            fh: IO[Any] = os.fdopen(fd, "wb")
        else:
            fh = os.fdopen(fd, "w", encoding="utf-8")
        with fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


class TempFile:
    """An open temp file for ``path`` (raw descriptor ``fd``, for ``os.write``/``sendfile``):
    :meth:`commit` renames it over ``path``, :meth:`discard` removes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd, self.tmp = _create_temp(path)
        self._open = True

    def _close(self) -> None:
        if self._open:
            self._open = False
            os.close(self.fd)

    def commit(self) -> None:
        try:
            self._close()
            os.replace(self.tmp, self.path)
        except BaseException:
            _unlink(self.tmp)
            raise

    def discard(self) -> None:
        self._close()
        _unlink(self.tmp)


def sweep_temporaries(folders: Iterable[Path], runs: Iterable[str],
                      root: Path | None = None) -> int:
    """Remove the temporaries that runs ``runs`` left in ``folders``; return how many.

    Only names :func:`temp_path_for` made, with one of these run markers, are removed, and only
    files (a link is removed, never what it points to). A folder under ``root`` is entered only
    when no part of it below ``root`` is a symbolic link, so the sweep never leaves ``root``;
    a missing folder is skipped.
    """
    wanted = {r for r in runs if is_run_id(r)}
    if not wanted:
        return 0
    removed = 0
    for folder in dict.fromkeys(folders):
        fd = _open_folder(folder, root)
        if fd is not None:
            try:
                removed += _sweep_folder(fd, wanted)
            finally:
                os.close(fd)
    return removed


def _sweep_folder(fd: int, runs: set[str]) -> int:
    """Remove the temporaries of ``runs`` in the folder open as ``fd``; how many."""
    removed = 0
    try:
        with os.scandir(fd) as entries:
            names = [e.name for e in entries
                     if temp_run_id(e.name) in runs and not e.is_dir(follow_symlinks=False)]
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=fd)
                removed += 1
    except OSError:
        pass
    return removed


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def _open_folder(folder: Path, root: Path | None) -> int | None:
    """A descriptor of ``folder``, opened part by part below ``root`` without following a
    link (None: missing, not a folder, or reached through a link)."""
    try:
        if root is None:
            return os.open(folder, _DIR_FLAGS | getattr(os, "O_NOFOLLOW", 0))
        rel = Path(os.path.abspath(folder)).relative_to(os.path.abspath(root))
    except (OSError, ValueError):
        return None
    try:
        fd = os.open(root, _DIR_FLAGS)  # DIR itself may be a link the user named
    except OSError:
        return None
    for part in rel.parts:
        try:
            nxt = os.open(part, _DIR_FLAGS | getattr(os, "O_NOFOLLOW", 0), dir_fd=fd)
        except OSError:
            os.close(fd)
            return None
        os.close(fd)
        fd = nxt
    return fd


def is_link_or_not_folder(path: Path) -> bool:
    """Whether ``path`` exists as something other than a real folder (a link, a file)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return not stat.S_ISDIR(st.st_mode)


def _unlink(p: str | Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass
