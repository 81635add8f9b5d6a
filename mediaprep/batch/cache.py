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
the package version. An entry is one file ``root/ab/abcdef...`` (:mod:`.cache_pack`): the stored
files' bytes, then its record (JSON: the caller's record, each file's offset, size and SHA-256,
and the small texts given as bytes, :data:`~mediaprep.tuning.CACHE_INLINE_BYTES`, such as a
journal record and a parts.jsonl line). A cold put creates that one file (no folder, no file per
output) and a hit opens one. It is written whole to a temporary file under ``root/tmp/`` and
renamed into place in one step, so readers see a whole entry or none: a crash mid-put leaves
only a stray temporary (swept later). An entry of an earlier layout (a folder) is never looked
up: the layout is part of the key.

A cache root is mediaprep's when it holds mediaprep's ``CACHEDIR.TAG`` (the Cache Directory
Tagging spec, https://bford.info/cachedir/: backup tools skip the folder). The tag is written
when the cache makes its root, or finds it empty; a folder that is neither tagged nor empty
(``--cache-dir ~``) is never read, written or swept. The sweep removes only the temporaries
the cache names itself, never through a link.

Every stored file is a copy (never a link to the file it was stored from) with its SHA-256 in
the record, taken while it is copied; the record carries a digest of itself (and so of the
texts kept in it). A hit is served only after its files hash to what was recorded: an entry
damaged on disk (bit rot, an edit in place, a torn copy from outside) is dropped, logged on the
``mediaprep`` logger, and is a miss. Files handed out of the cache are copies too, so no two
folders share data.
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
import secrets
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from .. import tuning
from ..errors import MediaprepError
from ..output import TempFile, atomic_write, inside, is_link_or_not_folder, temp_run_id
from .cache_pack import (
    buffer_size,
    check_file,
    read_range,
    read_record,
    write_all,
    write_file,
    write_record,
)

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

# bump when the entry layout or the key recipe changes (2: sha256 per file; 3: one file an
# entry, small texts inside its record)
CACHE_FORMAT = 3
CHUNK = 1 << 20  # 1 MiB reads: large enough that hashing runs at sha256 speed
TMP = "tmp"
STALE_TMP_SECONDS = 3600.0  # a temporary folder this old belongs to a put that died
CACHEDIR_TAG = "CACHEDIR.TAG"
_TAG_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"  # the spec's first line
_TAG_TEXT = (_TAG_SIGNATURE + b"\n"
             b"# This file is a cache directory tag created by mediaprep (its prep cache).\n"
             b"# For information about cache directory tags, see:\n"
             b"#\thttps://bford.info/cachedir/\n")
_TAG_READ = 512  # bytes of a tag read to judge it: the signature and mediaprep's comment
# The temporaries put (a file) and _drop (a folder) make in ROOT/tmp (mkstemp, mkdtemp: prefix +
# 8 random characters): the only names the sweep removes.
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
    readinto = getattr(fh, "readinto", None)
    if readinto is None:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
        return h.hexdigest()
    view = memoryview(bytearray(_buffer_for(fh)))
    while True:
        n = readinto(view)
        if not n:
            break
        h.update(view[:n])
    return h.hexdigest()


def _buffer_for(fh: Any) -> int:
    """CHUNK, or a smaller buffer for a small file (:func:`~.cache_pack.buffer_size`)."""
    try:
        return buffer_size(fh.fileno())
    except (AttributeError, OSError, ValueError):  # a file object without a descriptor
        return CHUNK


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


# A name of plain parts as it stands (letters, digits, "_", "-", "."; no "." or ".." part, no
# empty one): what _check_name accepts unchanged. Such names are judged without a path object
# (a put is given four or five, a hit reads as many).
_PLAIN_NAME = re.compile(r"(?!\.\.?(?:/|\Z))[\w.-]+(?:/(?!\.\.?(?:/|\Z))[\w.-]+)*\Z", re.ASCII)


def _judge_name(name: str) -> None:
    """:func:`_check_name`, for a name that is only judged (its path not needed)."""
    if _PLAIN_NAME.match(name) is None:
        _check_name(name)


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


_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_NONBLOCK", 0))  # a FIFO planted as an entry does not block


@dataclass(frozen=True)
class CacheEntry:
    """A complete entry: the stored ``record``, its ``files`` (name → offset and size in the
    entry's file ``path``) and the small texts kept in its record (``inline``: name → bytes).
    :meth:`data`, :meth:`has` and :meth:`materialise` take a name of either kind. ``inode``: of
    the file that was verified; a read finding another file there (an entry put again since)
    raises ``OSError``."""

    key: str
    path: Path
    record: dict[str, Any]
    files: dict[str, tuple[int, int]]
    inline: dict[str, bytes] = dataclasses.field(default_factory=dict)
    inode: int = 0

    def has(self, name: str) -> bool:
        return name in self.files or name in self.inline

    def data(self, name: str) -> bytes:
        """The bytes stored under ``name`` (``KeyError`` when there are none)."""
        if name in self.inline:
            return self.inline[name]
        offset, size = self.files[name]
        with self._open() as fd:
            return b"".join(read_range(fd, offset, size))

    @contextlib.contextmanager
    def _open(self) -> Iterator[int]:
        fd = os.open(self.path, _READ_FLAGS)
        try:
            if self.inode and os.fstat(fd).st_ino != self.inode:
                raise OSError(errno.ESTALE, "the cache entry changed since it was verified",
                              str(self.path))
            yield fd
        finally:
            os.close(fd)

    def materialise(
        self,
        dest_dir: str | os.PathLike[str],
        names: Sequence[str] | Mapping[str, str] | None = None,
    ) -> list[Path]:
        """Put copies of stored files into ``dest_dir``; return their paths (in the order asked).

        ``names``: stored names to take under the same name, or a mapping stored name → name
        to write (the same content may be cached under one name for inputs with different
        names); ``None`` takes every file. Each file is copied (never linked: an edit in
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
        dests = [_destination(dest_root, _check_name(wanted)) for _, wanted in pairs]
        out: list[Path] = []
        for (stored, _), dest in zip(pairs, dests, strict=True):
            if not self.has(stored):
                raise KeyError(f"cache entry {self.key[:12]} has no file {stored!r}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if stored in self.inline:
                atomic_write(dest, self.inline[stored])
            else:
                self._place(self.files[stored], dest)
            out.append(dest)
        return out

    def _place(self, where: tuple[int, int], dest: Path) -> None:
        """Copy one stored file into DIR through the one atomic-write helper (its temp name is
        the one prep's sweep knows, so a run killed mid-copy leaves nothing behind after a
        rerun)."""
        out = TempFile(dest)
        try:
            with self._open() as fd:
                for piece in read_range(fd, *where):
                    write_all(out.fd, piece)
        except BaseException:
            out.discard()
            raise
        out.commit()


def _destination(root: Path, name: PurePosixPath) -> Path:
    """Where ``name`` goes below ``root``: its folders may not lead out of ``root`` (a frames
    folder that is a link to a user's folder is refused before anything is written); the file
    itself, when a link, is replaced by the rename, never written through."""
    inside(root, name.parent)  # raises when they would
    return root.joinpath(*name.parts)


def _meta_digest(meta: Mapping[str, Any]) -> str:
    """The digest the record carries of itself (of everything but that field)."""
    body = {k: v for k, v in meta.items() if k != "sha256"}
    return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()


class _Damaged(MediaprepError):
    """An entry whose files are not what its record says."""


def _inline_of(texts: Mapping[str, Any]) -> dict[str, bytes]:
    """The texts a record keeps (name → UTF-8 bytes), their names checked as a file's are."""
    out: dict[str, bytes] = {}
    for name, text in texts.items():
        _judge_name(name)
        if not isinstance(text, str):
            raise _Damaged(f"the record's {name} is not a text")
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


def _entry_of(key: str, path: Path, fd: int) -> CacheEntry | None:
    """The entry in the file open as ``fd``, its files verified; None for an entry of another
    layout (not ours to judge: put replaces it). Raises for a damaged one."""
    meta, data_end = read_record(fd)
    if meta.get("format") != CACHE_FORMAT:
        return None
    if meta.get("sha256") != _meta_digest(meta) or meta.get("key") != key:
        raise _Damaged("the record does not match its digest")
    files: dict[str, tuple[int, int]] = {}
    for name, want in meta["files"].items():
        _judge_name(name)  # a record names no "../x"
        files[name] = check_file(fd, name, want, data_end)
    return CacheEntry(key, path, meta["record"], files, _inline_of(meta["inline"]),
                      os.fstat(fd).st_ino)


def _write_entry(fd: int, key: str, record: Mapping[str, Any], inline: Mapping[str, str],
                 stored: Mapping[str, str | os.PathLike[str] | bytes]) -> dict[str, Any]:
    """Write a whole entry to the new file ``fd``: each stored file (hashed while it is
    copied), then the record; return the record as ``get`` will read it."""
    stats: dict[str, dict[str, Any]] = {}
    offset = 0
    for name, src in stored.items():
        digest, size = write_file(fd, src)
        stats[name] = {"offset": offset, "size": size, "sha256": digest}
        offset += size
    meta: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "key": key,
        "created": time.time(),
        # as get will read it back (tuples as lists, keys as strings): the only part whose
        # text could change when it is read and written again, so the rest is encoded once
        "record": json.loads(canonical_json(dict(record))),
        "files": stats,
        "inline": dict(inline),
    }
    write_record(fd, _with_digest(canonical_json(meta)))
    return meta


def _with_digest(body: str) -> str:
    """The record's text with its digest (:func:`_meta_digest`) added: ``body`` is the
    canonical text of everything else, so the digest is taken of it as it stands, and
    ``"sha256"`` sorts after every other field (``created``, ..., ``record``), so it goes last
    as :func:`canonical_json` of the whole record would put it."""
    digest = hashlib.sha256(body.encode("ascii")).hexdigest()
    return f'{body[:-1]},"sha256":"{digest}"}}'


_NEW_FILE_FLAGS = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                   | getattr(os, "O_CLOEXEC", 0))


def _new_temporary(tmp_root: Path, key: str) -> tuple[int, str]:
    """A new empty file in ``ROOT/tmp`` for the entry of ``key``, named as the sweep knows a
    put's (:data:`_OWN_TMP`: 16 digits of the key, 8 random ones), made exclusively and never
    through a link, mode 0600 (as ``mkstemp`` makes it, without its name machinery)."""
    for _ in range(100):
        name = os.path.join(tmp_root, f"{key[:16]}.{secrets.token_hex(4)}")
        try:
            return os.open(name, _NEW_FILE_FLAGS, 0o600), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(tmp_root))


@contextlib.contextmanager
def _shard(root: Path, key: str, *, make: bool) -> Iterator[int | None]:
    """The shard folder of ``key`` (``ROOT/ab``) as a descriptor opened without following a
    link, made the first time a put needs it (None: missing, and not made). A shard that is a
    link or not a folder raises OSError: nothing is read, written or moved through it."""
    flags = _DIR_FLAGS | _NOFOLLOW
    where = os.path.join(root, key[:2])
    try:
        fd = os.open(where, flags)
    except FileNotFoundError:
        if not make:
            yield None
            return
        with contextlib.suppress(FileExistsError):
            os.mkdir(where)
        fd = os.open(where, flags)
    try:
        yield fd
    finally:
        os.close(fd)


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
        if CACHEDIR_TAG in names and _has_own_tag(root):
            # another process tagged it between the two looks (and may have stored entries)
            return None
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

    def entry_path(self, key: str) -> Path:
        """The file the entry for ``key`` is (``ROOT/ab/abcdef...``)."""
        _check_key(key)
        return self.root / key[:2] / key

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` if a complete, intact one is stored, else ``None``.

        Intact: its record matches its own digest, and every stored file has the SHA-256
        recorded when it was stored (read once, in 1 MiB pieces). An entry that fails is
        dropped (and logged on the ``mediaprep`` logger): a miss, and the next :meth:`put`
        stores a good one.
        """
        _check_key(key)
        if self._refused is None and not os.path.lexists(self.root):
            return None  # no cache yet: a miss, and nothing made for it
        if self.claim() is not None:
            return None  # not mediaprep's folder: nothing in it is an entry
        try:
            with _shard(self.root, key, make=False) as shard:
                return None if shard is None else self._read(key, shard)
        except OSError:
            return None  # the shard is a link or not a folder: nothing in it is an entry

    def _read(self, key: str, shard: int) -> CacheEntry | None:
        try:
            fd = os.open(key, _READ_FLAGS, dir_fd=shard)
        except FileNotFoundError:
            return None  # the usual miss
        except OSError as exc:  # a link, a folder: not an entry put made
            return self._drop(key, shard, f"unreadable: {exc.strerror or exc}")
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _Damaged("not a file")
            return _entry_of(key, self.entry_path(key), fd)  # its path made for a hit only
        except (_Damaged, OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            return self._drop(key, shard, str(exc))
        finally:
            os.close(fd)

    def discard(self, key: str, why: str) -> None:
        """Drop the entry for ``key`` (one its reader found unusable: ``why``), as a damaged
        one is dropped: moved aside in one rename, removed, logged."""
        _check_key(key)
        with contextlib.suppress(OSError), _shard(self.root, key, make=False) as shard:
            if shard is not None:
                self._drop(key, shard, why)

    def _drop(self, key: str, shard: int, why: str) -> None:
        """Move a damaged entry (``key`` in the shard open as ``shard``) aside in one rename
        and remove it; log it."""
        log.warning("mediaprep cache: entry %s in %s is damaged (%s): dropped, a miss",
                    key[:12], self.root, why)
        try:
            self._move_aside(shard, key)
        except OSError:
            pass
        return None

    def _move_aside(self, shard: int, key: str) -> None:
        """Rename what is at ``key`` in the shard open as ``shard`` into a new folder of
        ROOT/tmp and remove it there (never through a link: a link is moved, not followed)."""
        trash = Path(tempfile.mkdtemp(prefix="broken.", dir=self._tmp_root()))
        try:
            os.rename(key, trash / "entry", src_dir_fd=shard)
        except OSError:
            pass  # gone already (another reader dropped it), or not ours to move
        finally:
            shutil.rmtree(trash, ignore_errors=True)

    def put(
        self,
        key: str,
        record: Mapping[str, Any],
        files: Mapping[str, str | os.PathLike[str] | bytes] | None = None,
    ) -> CacheEntry:
        """Store ``record`` (JSON-able) and copies of ``files`` (name → path, or the bytes to
        store) under ``key``.

        Copies, never links: the stored files are the user's outputs, free to be edited
        later, and an edit must not reach the cache (nor damage in the cache the outputs).
        Each file is hashed while it is copied (one read) and its SHA-256 recorded; a small
        text given as bytes is kept in the record itself.

        Atomic: the entry is written whole to a temporary file in the cache root, then renamed
        into place. An intact entry there already is kept and returned; of two processes
        putting the same key at once, the later rename stands (each entry is whole). Names are
        relative paths (``"frames/f_0001.jpg"`` is fine).
        """
        final = self.entry_path(key)
        existing = self.get(key)
        if existing is not None:
            return existing
        files = dict(files or {})
        for name in files:
            _judge_name(name)
        refused = self.claim()
        if refused is not None:
            raise CacheRootRefused(errno.EPERM, refused, str(self.root))
        tmp_root = self._tmp_root()
        self._sweep()
        inline, stored = _split_inline(files)
        fd, tmp = _new_temporary(tmp_root, key)
        try:
            try:
                os.fchmod(fd, 0o644)  # mkstemp's 0600 would follow the file into place
                meta = _write_entry(fd, key, record, inline, stored)
                inode = os.fstat(fd).st_ino
            finally:
                os.close(fd)
            self._install(tmp, key)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return CacheEntry(key, final, meta["record"],  # what we just wrote: no second read
                          {n: (f["offset"], f["size"]) for n, f in meta["files"].items()},
                          {n: text.encode("utf-8") for n, text in inline.items()}, inode)

    def _install(self, tmp: str, key: str) -> None:
        """Rename the entry file ``tmp`` to ``key`` in its shard (never through a link: a shard
        that is one refuses the put). Something that is not a file there (a folder: planted,
        or not put's) is moved aside first."""
        with _shard(self.root, key, make=True) as shard:
            try:
                os.rename(tmp, key, dst_dir_fd=shard)  # atomic; replaces a file, not a folder
                return
            except OSError as exc:
                if exc.errno not in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                    raise
            self._move_aside(shard, key)
            os.rename(tmp, key, dst_dir_fd=shard)

    def _sweep(self) -> None:
        """Remove the temporaries of puts that died long ago (once per Cache object).

        Only the names put and _drop give them (:data:`_OWN_TMP`), only plain files (a put's
        entry file) and real folders (a drop's, or an earlier mediaprep's put), only in a
        ``ROOT/tmp`` that is not a link: each is reached below a descriptor opened without
        following links, so nothing outside the cache is ever reached."""
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
                stale = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries
                         if _OWN_TMP.match(e.name) and _stale(e, cutoff)]
            for name, folder in stale:
                if folder:
                    shutil.rmtree(name, dir_fd=fd, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=fd)
        except OSError:
            pass
        finally:
            os.close(fd)


def _stale(entry: os.DirEntry[str], cutoff: float) -> bool:
    """A real folder or plain file (never a link) last changed before ``cutoff``."""
    st = entry.stat(follow_symlinks=False)
    return (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)) and st.st_mtime < cutoff


@functools.lru_cache(maxsize=4)
def cache_for_run(root: str, run_id: str | None) -> Cache:
    """The one :class:`Cache` of ``root`` for the run ``run_id`` in this process: a prep
    worker's inputs share it, so the root is judged and its stale temporaries swept once a run,
    not once an input (a new run, even in the same process, gets a new one)."""
    return Cache(root)

