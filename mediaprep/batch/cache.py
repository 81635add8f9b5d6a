"""Content-addressed cache of ``prep`` results, so an unchanged input is not prepared twice.

    key = cache_key(path, {"target": "dashscope", "fps": 2.0}, TABLE_VERSION)
    cache = Cache(default_cache_dir())
    entry = cache.get(key)
    if entry is None:
        record, outputs = prepare_one(path)            # the expensive part
        cache.put(key, record, {"image.jpg": outputs[0]})
    else:
        entry.materialise(out_dir, {"image.jpg": "photo.jpg"})

The key covers everything the output depends on: the input's bytes (not its name or mtime, so a
moved or copied file still hits), every output-changing option, the limits table version and
the package version. An entry is one folder ``root/ab/abcdef.../`` holding ``record.json`` and
one file per stored file (``f-`` and its name, ``/`` spelt ``%2F``); a small stored text (a
journal record, a parts.jsonl line: :data:`~mediaprep.tuning.CACHE_INLINE_BYTES`) is kept inside
``record.json`` instead. It is written in a temporary folder under ``root/tmp/`` and renamed into
place in one step, so readers see a whole entry or none: a crash mid-put leaves only a stray
temporary folder (swept later), and of two processes putting the same key one wins the rename
and the other drops its copy. An entry of an earlier layout is never looked up (the layout is
part of the key).

A cache root is mediaprep's when it holds mediaprep's ``CACHEDIR.TAG`` (the Cache Directory
Tagging spec, https://bford.info/cachedir/: backup tools skip the folder). The tag is written
when the cache makes its root, or finds it empty; a folder that is neither tagged nor empty
(``--cache-dir ~``) is never read, written or swept. The sweep removes only the temporary
folders the cache names itself, never through a link.

Every stored file is a copy (never a hard link to the file it was stored from) with its SHA-256
in ``record.json``, taken while it is copied; ``record.json`` carries a digest of itself (and
so of the texts kept in it). A hit
is served only after its files hash to what was recorded: an entry damaged on disk (bit rot, an
edit in place, a torn copy from outside) is dropped, logged on the ``mediaprep`` logger, and is
a miss. Files handed out of the cache are copies too, so no two folders share data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from .. import tuning
from ..errors import MediaprepError
from ..output import atomic_write, is_link_or_not_folder, temp_path_for, temp_run_id

__all__ = [
    "CACHE_FORMAT",
    "CACHEDIR_TAG",
    "Cache",
    "CacheEntry",
    "CacheRootRefused",
    "cache_for_run",
    "cache_key",
    "canonical_json",
    "default_cache_dir",
    "hash_input",
    "package_version",
]

# bump when the entry layout or the key recipe changes (2: sha256 per file; 3: one folder an
# entry, small texts inside record.json)
CACHE_FORMAT = 3
CHUNK = 1 << 20  # 1 MiB reads: large enough that hashing runs at sha256 speed
RECORD = "record.json"
_STORED_PREFIX = "f-"  # a stored file's name in its entry: this and its name, "/" as "%2F"
TMP = "tmp"
STALE_TMP_SECONDS = 3600.0  # a temporary folder this old belongs to a put that died
CACHEDIR_TAG = "CACHEDIR.TAG"
_TAG_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"  # the spec's first line
_TAG_TEXT = (_TAG_SIGNATURE + b"\n"
             b"# This file is a cache directory tag created by mediaprep (its prep cache).\n"
             b"# For information about cache directory tags, see:\n"
             b"#\thttps://bford.info/cachedir/\n")
_TAG_READ = 512  # bytes of a tag read to judge it: the signature and mediaprep's comment
# The temporary folders put and _drop make in ROOT/tmp (mkdtemp: prefix + 8 random characters):
# the only names the sweep removes.
_OWN_TMP = re.compile(r"^(?:[0-9a-f]{16}|broken)\.[a-z0-9_]{8}\Z")

_HEX = frozenset("0123456789abcdef")

log = logging.getLogger("mediaprep")


def default_cache_dir() -> Path:
    """``$MEDIAPREP_CACHE_DIR``, else ``$XDG_CACHE_HOME/mediaprep``, else ``~/.cache/mediaprep``."""
    explicit = os.environ.get("MEDIAPREP_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec says to ignore relative values
        return Path(xdg) / "mediaprep"
    return Path.home() / ".cache" / "mediaprep"


@functools.lru_cache(maxsize=1)
def package_version() -> str:
    """The installed mediaprep version plus a fingerprint of its code: part of every key, so
    new code gives new outputs even between releases (a checkout, an editable install, a build
    of main). Read once per process: about 5 ms, a cache hit not much more."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("mediaprep")
    except PackageNotFoundError:
        release = "0+unknown"
    return f"{release}+{_code_fingerprint()}"


def _code_fingerprint(root: Path | None = None) -> str:
    """12 hex digits over the package's Python files (names and bytes)."""
    root = root or Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def hash_input(source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO) -> str:
    """SHA-256 hex digest of a file's bytes (streamed), of bytes, or of a binary file object."""
    if isinstance(source, bytes | bytearray | memoryview):
        return hashlib.sha256(source).hexdigest()
    if isinstance(source, str | os.PathLike):
        with open(source, "rb", buffering=0) as fh:
            return _digest_stream(fh)
    return _digest_stream(source)


def _digest_stream(fh: Any) -> str:
    h = hashlib.sha256()
    # readinto one reused buffer: no allocation per chunk; sha256 releases the GIL on big
    # updates, so workers hashing in threads would overlap too.
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    readinto = getattr(fh, "readinto", None)
    if readinto is None:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
        return h.hexdigest()
    while True:
        n = readinto(view)
        if not n:
            break
        h.update(view[:n])
    return h.hexdigest()


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, ASCII; sets sorted, tuples as lists.

    Paths become strings, dataclasses their fields. Anything else that JSON cannot say raises
    ``TypeError`` rather than falling back to ``repr`` (which may hold a memory address and so
    never hit again, or hide a difference).
    """
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
        default=_jsonable,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=canonical_json)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, bytes):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot use {type(value).__name__} in a cache key")


def cache_key(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
    options: Mapping[str, Any],
    table_version: str,
) -> str:
    """The cache key (64 hex digits) of preparing ``source`` with ``options``.

    ``options`` should hold every option that changes the output (target, dialect, transport,
    fps, sizes, ...); an option that does not only costs hit rate, a missing one serves stale
    outputs. ``table_version`` is :data:`mediaprep.limits.TABLE_VERSION`.
    """
    header = canonical_json(
        {
            "format": CACHE_FORMAT,
            "package": package_version(),
            "table": table_version,
            "options": dict(options),
            "input": hash_input(source),
        }
    )
    return hashlib.sha256(header.encode("ascii")).hexdigest()


def _check_key(key: str) -> None:
    # The key becomes a path: only our own hex keys, never "../x".
    if len(key) != 64 or not _HEX.issuperset(key):
        raise ValueError(f"not a cache key: {key!r}")


def _check_name(name: str) -> PurePosixPath:
    p = PurePosixPath(name)
    if (
        not name
        or p.is_absolute()
        or any(part in ("", ".", "..") for part in p.parts)
        or "\\" in name
        or p.as_posix() != name
    ):
        raise ValueError(f"output name must be a plain relative path: {name!r}")
    return p


def _stored_name(name: str) -> str:
    """The file a stored name is kept in, inside its entry's folder (no subfolders to make)."""
    return _STORED_PREFIX + name.replace("%", "%25").replace("/", "%2F")


@dataclass(frozen=True)
class CacheEntry:
    """A complete entry: the stored ``record``, its ``files`` (name → path in cache) and the
    small texts kept in its record (``inline``: name → bytes). :meth:`data` and :meth:`has`
    take a name of either kind."""

    key: str
    path: Path
    record: dict[str, Any]
    files: dict[str, Path]
    inline: dict[str, bytes] = dataclasses.field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.files or name in self.inline

    def data(self, name: str) -> bytes:
        """The bytes stored under ``name`` (``KeyError`` when there are none)."""
        if name in self.inline:
            return self.inline[name]
        return self.files[name].read_bytes()

    def materialise(
        self,
        dest_dir: str | os.PathLike[str],
        names: Sequence[str] | Mapping[str, str] | None = None,
    ) -> list[Path]:
        """Put copies of stored files into ``dest_dir``; return their paths (in the order asked).

        ``names``: stored names to take under the same name, or a mapping stored name → name
        to write (the same content may be cached under one name for inputs with different
        names); ``None`` takes every file. Each file is copied (never hard-linked: an edit in
        place of the copy must not change the cache, nor the cache's damage the copy) into a
        temporary name in the destination folder, then renamed over the final name: a reader
        never sees a partial file. The files were verified by :meth:`Cache.get`.
        """
        if names is None:
            pairs = [(n, n) for n in (*self.files, *self.inline)]
        elif isinstance(names, Mapping):
            pairs = list(names.items())
        else:
            pairs = [(n, n) for n in names]
        dest_root = Path(dest_dir)
        out: list[Path] = []
        for stored, wanted in pairs:
            if not self.has(stored):
                raise KeyError(f"cache entry {self.key[:12]} has no file {stored!r}")
            dest = dest_root.joinpath(*_check_name(wanted).parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if stored in self.inline:
                atomic_write(dest, self.inline[stored])
            else:
                _place(self.files[stored], dest)
            out.append(dest)
        return out


def _place(src: Path, dest: Path) -> None:
    """Copy a cached file into DIR through the one atomic-write helper (its temp name is the
    one prep's sweep knows, so a run killed mid-copy leaves nothing behind after a rerun)."""
    tmp = temp_path_for(dest)
    try:
        shutil.copyfile(src, tmp)  # in the kernel (sendfile), no pass through Python
        shutil.copymode(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _copy_hashing(src: str | os.PathLike[str] | bytes, dest: Path) -> tuple[str, int]:
    """Copy ``src`` (a file, or bytes) to the new file ``dest`` and return the SHA-256 and size
    of what was written: one read of ``src`` in CHUNK pieces through one reused buffer (bounded
    memory), each piece hashed, then written."""
    if isinstance(src, bytes):
        with open(dest, "xb") as fout:
            fout.write(src)
        return hashlib.sha256(src).hexdigest(), len(src)
    h = hashlib.sha256()
    view = memoryview(bytearray(CHUNK))
    size = 0
    with open(src, "rb", buffering=0) as fin, open(dest, "xb", buffering=0) as fout:
        while True:
            n = fin.readinto(view)
            if not n:
                break
            piece = view[:n]
            h.update(piece)
            while piece:  # a raw write may take less than asked
                piece = piece[fout.write(piece) :]
            size += n
    return h.hexdigest(), size


def _meta_digest(meta: Mapping[str, Any]) -> str:
    """The digest ``record.json`` carries of itself (of everything but that field)."""
    body = {k: v for k, v in meta.items() if k != "sha256"}
    return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()


class _Damaged(MediaprepError):
    """An entry whose files are not what its record says."""


def _verified(path: Path, listed: Mapping[str, Any]) -> dict[str, Path]:
    """The entry's files (name → path) when each has its recorded size and SHA-256."""
    files: dict[str, Path] = {}
    for name, want in listed.items():
        _check_name(name)  # a record names no "../x"
        f = path / _stored_name(name)
        try:
            size = f.stat().st_size
        except OSError as exc:
            raise _Damaged(f"{name}: {exc.strerror or exc}") from None
        if size != want["size"]:  # a cheap first look: a size that changed needs no read
            raise _Damaged(f"{name}: {size} bytes, {want['size']} stored")
        try:
            digest = hash_input(f)
        except OSError as exc:
            raise _Damaged(f"{name}: {exc.strerror or exc}") from None
        if digest != want["sha256"]:
            raise _Damaged(f"{name}: content does not match its SHA-256")
        files[name] = f
    return files


def _inline_of(texts: Mapping[str, Any]) -> dict[str, bytes]:
    """The texts a record keeps (name → UTF-8 bytes), their names checked as a file's are."""
    out: dict[str, bytes] = {}
    for name, text in texts.items():
        _check_name(name)
        if not isinstance(text, str):
            raise _Damaged(f"{RECORD}: {name} is not a text")
        out[name] = text.encode("utf-8")
    return out


def _split_inline(files: Mapping[str, str | os.PathLike[str] | bytes]
                  ) -> tuple[dict[str, str], dict[str, str | os.PathLike[str] | bytes]]:
    """The files to keep in the record (small UTF-8 texts given as bytes) and those to store."""
    inline: dict[str, str] = {}
    stored: dict[str, str | os.PathLike[str] | bytes] = {}
    for name, src in files.items():
        text = _small_text(src)
        if text is None:
            stored[name] = src
        else:
            inline[name] = text
    return inline, stored


def _small_text(src: str | os.PathLike[str] | bytes) -> str | None:
    if not isinstance(src, bytes) or len(src) > tuning.CACHE_INLINE_BYTES:
        return None
    try:
        return src.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _entry_of(key: str, path: Path, text: str) -> CacheEntry | None:
    """The entry whose ``record.json`` is ``text``, its files verified; None for an entry of
    another layout (not ours to judge: put replaces it). Raises for a damaged one."""
    meta = json.loads(text)
    if not isinstance(meta, dict):
        raise _Damaged(f"{RECORD} is not an object")
    if meta.get("format") != CACHE_FORMAT:
        return None
    if meta.get("sha256") != _meta_digest(meta) or meta.get("key") != key:
        raise _Damaged(f"{RECORD} does not match its digest")
    return CacheEntry(key, path, meta["record"], _verified(path, meta["files"]),
                      _inline_of(meta["inline"]))


def _written_entry(tmp: Path, key: str, record: Mapping[str, Any], inline: Mapping[str, str],
                   stored: Mapping[str, str | os.PathLike[str] | bytes]) -> dict[str, Any]:
    """Write an entry into the new folder ``tmp``: a copy of each stored file (hashed while it
    is copied) and ``record.json``; return the record as ``get`` will read it."""
    stats: dict[str, dict[str, Any]] = {}
    for name, src in stored.items():
        digest, size = _copy_hashing(src, tmp / _stored_name(name))
        stats[name] = {"size": size, "sha256": digest}
    meta: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "key": key,
        "created": time.time(),
        "record": dict(record),
        "files": stats,
        "inline": dict(inline),
    }
    meta = json.loads(canonical_json(meta))  # the digest is of what get will read
    meta["sha256"] = _meta_digest(meta)
    (tmp / RECORD).write_text(canonical_json(meta), encoding="utf-8")
    return meta


def _rename_into_shard(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``, making its shard folder (``ab/``) the first time only."""
    try:
        os.rename(tmp, final)
    except FileNotFoundError:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, final)


class CacheRootRefused(MediaprepError, OSError):
    """A cache root mediaprep may not use: not its own (no mediaprep ``CACHEDIR.TAG``) and not
    empty, one it cannot make or mark, or one whose ``tmp`` is a link or not a folder."""


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _has_own_tag(root: Path) -> bool:
    """Whether ``root`` holds mediaprep's CACHEDIR.TAG: a plain file (not a link, not a FIFO
    that would block the read) opening with the spec's signature and naming mediaprep."""
    flags = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(root / CACHEDIR_TAG, flags)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, _TAG_READ)
    except OSError:
        return False
    finally:
        os.close(fd)
    return head.startswith(_TAG_SIGNATURE) and b"mediaprep" in head


def _old_cache_layout(root: Path, names: list[str]) -> bool:
    """Whether an untagged root is a cache of a mediaprep from before the tag: only ``tmp`` and
    ``ab/`` folders holding only ``ab...`` entry names (64 hex digits), at least one of them.
    Nothing else a user keeps looks like this; such a root is tagged and used as before."""
    if any(is_link_or_not_folder(root / name) for name in names):
        return False
    shards = [name for name in names if name != TMP]
    return bool(shards) and all(_old_shard(root, name) for name in shards)


def _old_shard(root: Path, name: str) -> bool:
    """Whether ``root/name`` is a shard of an old cache: ``ab/`` holding only ``ab...`` names."""
    if len(name) != 2 or not _HEX.issuperset(name):
        return False
    try:
        inner = os.listdir(root / name)
    except OSError:
        return False
    return all(len(n) == 64 and n.startswith(name) and _HEX.issuperset(n) for n in inner)


def _names_besides_tag_writes(root: Path) -> list[str]:
    """The names in ``root``, less a tag another process is writing at this moment (which does
    not make the root "used")."""
    return [n for n in os.listdir(root)
            if not (temp_run_id(n) is not None and n.endswith(CACHEDIR_TAG))]


class Cache:
    """A cache folder. Safe for many processes at once (threads too) without locks."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self._swept = False
        self._refused: str | None = None  # why the root is not ours ("": it is); see claim

    def claim(self) -> str | None:
        """None when the root is mediaprep's cache, else why it is not (and then the cache
        reads nothing, writes nothing and sweeps nothing there).

        Ours: it holds mediaprep's ``CACHEDIR.TAG``, or it is missing or empty (or a cache of
        an earlier mediaprep, untagged), and is then made and tagged now. Judged once per
        Cache object."""
        if self._refused is None:
            self._refused = self._judge_root() or ""
        return self._refused or None

    def _judge_root(self) -> str | None:
        root = self.root
        if _has_own_tag(root):
            return None
        try:
            root.mkdir(parents=True, exist_ok=True)
            names = _names_besides_tag_writes(root)
        except OSError as exc:
            return f"cannot use {root} as the cache: {exc.strerror or exc}"
        if names == [CACHEDIR_TAG] and _has_own_tag(root):
            return None  # another process tagged it between the two looks
        if names and not _old_cache_layout(root, names):
            return (f"{root} is not a mediaprep cache (it holds no mediaprep {CACHEDIR_TAG}) "
                    f"and is not empty")
        try:
            atomic_write(root / CACHEDIR_TAG, _TAG_TEXT)
        except OSError as exc:
            return f"cannot mark {root} as mediaprep's cache: {exc.strerror or exc}"
        return None

    def _tmp_root(self) -> Path:
        """``ROOT/tmp``, made if missing; refused when it is a link or not a folder, so
        nothing is written, moved or removed through it."""
        tmp_root = self.root / TMP
        try:
            st = os.lstat(tmp_root)  # one look on the usual path: it is there
        except FileNotFoundError:
            with contextlib.suppress(FileExistsError):
                tmp_root.mkdir()
            st = os.lstat(tmp_root)
        if not stat.S_ISDIR(st.st_mode):  # a link (lstat does not follow it) or a file
            raise CacheRootRefused(errno.ENOTDIR,
                                   "the cache's temporary folder is a link or not a folder",
                                   str(tmp_root))
        return tmp_root

    def entry_dir(self, key: str) -> Path:
        _check_key(key)
        return self.root / key[:2] / key

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` if a complete, intact one is stored, else ``None``.

        Intact: ``record.json`` matches its own digest, and every file has the size and the
        SHA-256 recorded when it was stored (each file is read once, in 1 MiB pieces). An
        entry that fails is dropped (and logged on the ``mediaprep`` logger): a miss, and
        the next :meth:`put` stores a good one.
        """
        path = self.entry_dir(key)
        if self._refused is None and not os.path.lexists(self.root):
            return None  # no cache yet: a miss, and nothing made for it
        if self.claim() is not None:
            return None  # not mediaprep's folder: nothing in it is an entry
        try:
            text = (path / RECORD).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None  # the usual miss
        except (OSError, ValueError) as exc:
            return self._drop(key, path, f"{RECORD} unreadable: {exc}")
        try:
            return _entry_of(key, path, text)
        except (_Damaged, ValueError, TypeError, KeyError, AttributeError) as exc:
            return self._drop(key, path, str(exc))

    def discard(self, key: str, why: str) -> None:
        """Drop the entry for ``key`` (one its reader found unusable: ``why``), as a damaged
        one is dropped: moved aside in one rename, removed, logged."""
        self._drop(key, self.entry_dir(key), why)

    def _drop(self, key: str, path: Path, why: str) -> None:
        """Move a damaged entry aside in one rename and remove it; log it."""
        log.warning("mediaprep cache: entry %s in %s is damaged (%s): dropped, a miss",
                    key[:12], self.root, why)
        try:
            trash = Path(tempfile.mkdtemp(prefix="broken.", dir=self._tmp_root()))
        except OSError:
            return None
        try:
            os.rename(path, trash / "entry")
        except OSError:
            pass  # gone already (another reader dropped it), or not ours to move
        shutil.rmtree(trash, ignore_errors=True)
        return None

    def put(
        self,
        key: str,
        record: Mapping[str, Any],
        files: Mapping[str, str | os.PathLike[str] | bytes] | None = None,
    ) -> CacheEntry:
        """Store ``record`` (JSON-able) and copies of ``files`` (name → path, or the bytes to
        store) under ``key``.

        Copies, never hard links: the stored files are the user's outputs, free to be edited
        later, and an edit must not reach the cache (nor damage in the cache the outputs).
        Each file is hashed while it is copied (one read) and its SHA-256 recorded.

        Atomic: everything is written in a temporary folder in the cache root, then renamed
        into place. If an intact entry is there already (another process won), it is kept and
        returned. Names are relative paths (``"frames/f_0001.jpg"`` is fine).
        """
        final = self.entry_dir(key)
        existing = self.get(key)
        if existing is not None:
            return existing
        files = dict(files or {})
        for name in files:
            _check_name(name)
        refused = self.claim()
        if refused is not None:
            raise CacheRootRefused(errno.EPERM, refused, str(self.root))
        tmp_root = self._tmp_root()
        self._sweep()
        inline, stored = _split_inline(files)
        tmp = Path(tempfile.mkdtemp(prefix=f"{key[:16]}.", dir=tmp_root))
        ours = False
        try:
            os.chmod(tmp, 0o755)  # mkdtemp's 0700 would follow the folder into place
            meta = _written_entry(tmp, key, record, inline, stored)
            ours = self._install(tmp, final)
        finally:
            if not ours:
                shutil.rmtree(tmp, ignore_errors=True)
        if ours:  # what we just wrote and hashed: no second read
            return CacheEntry(key, final, meta["record"],
                              {name: final / _stored_name(name) for name in stored},
                              {name: text.encode("utf-8") for name, text in inline.items()})
        entry = self.get(key)
        if entry is None:  # should not happen: the rename succeeded or a good entry was there
            raise OSError(f"cache entry {key[:12]} could not be stored in {self.root}")
        return entry

    def _install(self, tmp: Path, final: Path) -> bool:
        """Rename ``tmp`` to ``final``; False when an intact entry of another process is
        there (ours is then dropped by the caller)."""
        try:
            _rename_into_shard(tmp, final)  # atomic; fails if a non-empty folder is there
            return True
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if self.get(final.name) is not None:
            return False  # another process stored it first
        # What is there is broken (a torn copy from outside, an old format): move it aside in
        # one rename, then put ours in its place.
        trash = Path(tempfile.mkdtemp(prefix="broken.", dir=self.root / TMP))
        try:
            os.rename(final, trash / "entry")
        except FileNotFoundError:
            pass
        try:
            os.rename(tmp, final)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            return False  # a third process got there in between: theirs stands
        finally:
            shutil.rmtree(trash, ignore_errors=True)
        return True

    def _sweep(self) -> None:
        """Remove temporary folders of puts that died long ago (once per Cache object).

        Only the names put and _drop give them (:data:`_OWN_TMP`), only real folders, only in
        a ``ROOT/tmp`` that is not a link: each is opened without following links and removed
        below that descriptor, so nothing outside the cache is ever reached."""
        if self._swept:
            return
        self._swept = True
        cutoff = time.time() - STALE_TMP_SECONDS
        try:
            root_fd = os.open(self.root, _DIR_FLAGS)
        except OSError:
            return
        try:
            fd = os.open(TMP, _DIR_FLAGS | _NOFOLLOW, dir_fd=root_fd)
        except OSError:
            return
        finally:
            os.close(root_fd)
        try:
            with os.scandir(fd) as entries:
                stale = [e.name for e in entries
                         if _OWN_TMP.match(e.name) and e.is_dir(follow_symlinks=False)
                         and e.stat(follow_symlinks=False).st_mtime < cutoff]
            for name in stale:
                shutil.rmtree(name, dir_fd=fd, ignore_errors=True)
        except OSError:
            pass
        finally:
            os.close(fd)


@functools.lru_cache(maxsize=4)
def cache_for_run(root: str, run_id: str | None) -> Cache:
    """The one :class:`Cache` of ``root`` for the run ``run_id`` in this process: a prep
    worker's inputs share it, so the root is judged and its stale temporaries swept once a run,
    not once an input (a new run, even in the same process, gets a new one)."""
    return Cache(root)

