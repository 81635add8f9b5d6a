"""Inputs in every shape the library takes, as one :class:`Resource`.

A path, bytes, a binary file object, a PIL image, a list of frames (paths or images), or an
http(s) URL (fetched only when the caller allows it). Nothing here decodes pixels.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Union

from PIL import Image

from .errors import MediaprepError, blank_path_problem

ResourceLike = Union[str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], Image.Image,
                   Sequence[Any], "Resource"]

FRAME_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "heic",
                              "heif", "gif", "avif"})


class ResourceError(MediaprepError, ValueError):
    """An input mediaprep cannot take at all (wrong type, an empty path, URL not allowed)."""


@dataclass
class Resource:
    """One input, read once: what it is, where its bytes are, and how a URL may be read.

    Exactly one of ``path``, ``data``, ``image``, ``frames``, ``url`` is set (a folder of frames
    has ``path`` and ``frames``). :meth:`access` applies the URL policy, :meth:`local` hands
    out a local copy of a URL and removes it afterwards, :meth:`head_read` reads a URL's first
    bytes. Build one with :func:`to_resource`.
    """

    name: str
    path: Path | None = None
    data: bytes | None = None
    image: Image.Image | None = None
    frames: list[Resource] | None = None
    url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        if self.path is not None:
            return self.path.stat().st_size
        if self.data is not None:
            return len(self.data)
        return 0

    @property
    def extension(self) -> str | None:
        suffix = Path(self.name).suffix
        return suffix[1:].lower() if suffix else None

    def open(self) -> IO[bytes]:
        """A fresh binary stream positioned at the start (caller closes it)."""
        if self.path is not None:
            return open(self.path, "rb")
        if self.data is not None:
            return io.BytesIO(self.data)
        raise ResourceError(f"{self.name}: no bytes to read")

    def head(self, n: int) -> bytes:
        if self.path is not None:
            with open(self.path, "rb") as fh:
                return fh.read(n)
        if self.data is not None:
            return self.data[:n]
        return b""

    def tail(self, n: int) -> bytes:
        if self.path is not None:
            with open(self.path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                end = fh.tell()
                fh.seek(max(0, end - n))
                return fh.read()
        if self.data is not None:
            return self.data[-n:]
        return b""

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is not None:
            return self.path.read_bytes()
        raise ResourceError(f"{self.name}: no bytes to read")

    @contextmanager
    def as_path(self, suffix: str = "") -> Iterator[Path]:
        """A path to this input's bytes, for a backend that reads only files: the input's own
        path, or a private temp copy of its bytes removed when the block ends."""
        if self.path is not None:
            yield self.path
            return
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix="mediaprep-in-", suffix=suffix)
        path = Path(tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(self.read_bytes())
            yield path
        finally:
            _unlink_quietly(path)

    # The URL policy (see "URL inputs" below): decided here, once, for every entry point.

    def access(self, settings: Any) -> Access:
        """How this input may be read under ``settings`` (see :class:`Access`)."""
        if self.url is None:
            return Access("local")
        if not settings.allow_url:
            if settings.transport == "url":
                return Access("unverified", not_verified_finding(
                    self.name, "URL fetching is off; --allow-url checks it from its first bytes"))
            return Access("refused", url_off_finding(self.name))
        return Access("head" if settings.transport == "url" else "fetch")

    @contextmanager
    def local(self, settings: Any) -> Iterator[Resource]:
        """This input as local bytes or a path: a URL is fetched into a temp file (raises
        :class:`~mediaprep.net.fetch.FetchError`), removed when the block ends."""
        if self.url is None:
            yield self
            return
        fetched = fetch_resource(self, settings)
        try:
            yield fetched
        finally:
            release(fetched)

    def head_read(self, settings: Any) -> HeadRead:
        """A URL's first :data:`HEAD_RANGE` bytes, from a HEAD and one Range read."""
        from .net.fetch import head_probe

        hp = head_probe(self.url, fetch_policy(settings), max_range=HEAD_RANGE)
        return HeadRead(Resource(name=self.name, data=hp.head), hp.size)


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def to_resource(value: ResourceLike, *, name: str | None = None) -> Resource:
    """Normalise any accepted input into a :class:`Resource` (no I/O beyond stat for paths)."""
    if isinstance(value, Resource):
        return value
    in_memory = _memory_resource(value, name)
    if in_memory is not None:
        return in_memory
    if is_url(value):
        return Resource(name=name or str(value), url=str(value))
    if isinstance(value, str | os.PathLike):
        return _path_resource(value, name)
    if hasattr(value, "read"):
        return stream_resource(value, name=name)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return _frames_resource(value, name)
    raise ResourceError(f"cannot take an input of type {type(value).__name__}")


def _memory_resource(value: Any, name: str | None) -> Resource | None:
    """A PIL image or bytes already in memory (None: ``value`` is neither)."""
    if isinstance(value, Image.Image):
        label = name or getattr(value, "filename", "") or "<image>"
        return Resource(name=str(label), image=value)
    if isinstance(value, bytes | bytearray | memoryview):
        return Resource(name=name or "<bytes>", data=bytes(value))
    return None


def _path_resource(value: str | os.PathLike[str], name: str | None) -> Resource:
    """A file, or a folder of frames (its members in order)."""
    why = blank_path_problem(value)
    if why is not None:
        raise ResourceError(why)
    p = Path(value)
    if p.is_dir():
        return Resource(name=name or str(value), path=p,
                        frames=[to_resource(m) for m in frame_files(p)])
    return Resource(name=name or str(value), path=p)


def _frames_resource(value: Sequence[Any], name: str | None) -> Resource:
    """A list of frames; an unnamed one is called ``name[i]`` (``frames[i]``)."""
    frames = [to_resource(v) if _named(v) else to_resource(v, name=f"{name or 'frames'}[{i}]")
              for i, v in enumerate(value)]
    return Resource(name=name or "<frames>", frames=frames)


# ------------------------------------------------------------------------------ file objects
#
# A file object is read from its current position to its end, always: those bytes are the input.
# Its ``.name`` is only a display name and a format hint (a mismatch is the usual
# file.extension_mismatch warning); it is never opened, since an upload handler that copies the
# client's file name into ``.name`` would otherwise send a local file. The one shortcut: a real
# file at position 0 whose descriptor is the very file (same device and inode) its name names
# now is read through that path, so a big video is not copied. Anything else is spooled: held
# in memory up to SPOOL_MEMORY bytes, past that copied in chunks to a private temp file that is
# removed when the Resource is garbage (or by :func:`release`), so memory stays bounded.

SPOOL_MEMORY = 4 * 1024 * 1024
_SPOOL_CHUNK = 1024 * 1024


def stream_resource(value: Any, *, name: str | None = None) -> Resource:
    """A :class:`Resource` for the bytes of file object ``value`` from its current position."""
    fname = getattr(value, "name", None)
    if isinstance(fname, bytes):
        fname = os.fsdecode(fname)
    label = name or (fname if isinstance(fname, str) and fname else None) or "<stream>"
    same = _same_file_at_start(value, fname)
    if same is not None:
        return Resource(name=str(label), path=same)
    return _spool(value, str(label))


def _same_file_at_start(value: Any, fname: Any) -> Path | None:
    """``fname`` as a Path when ``value`` is that very regular file, positioned at its start."""
    if not isinstance(fname, str) or not fname:
        return None
    try:
        if not value.seekable() or value.tell() != 0:
            return None
        fd_stat = os.fstat(value.fileno())
        path_stat = os.stat(fname)
    except (AttributeError, OSError, ValueError):
        return None
    import stat

    if not stat.S_ISREG(fd_stat.st_mode):
        return None
    if (fd_stat.st_dev, fd_stat.st_ino) != (path_stat.st_dev, path_stat.st_ino):
        return None
    return Path(fname)


def _read_chunk(value: Any, n: int) -> bytes:
    chunk = value.read(n)
    if chunk is None:  # a non-blocking raw stream with nothing ready yet
        return b""
    if not isinstance(chunk, bytes | bytearray | memoryview):
        raise ResourceError(f"the stream gave {type(chunk).__name__}, not bytes "
                            "(open it with 'rb')")
    return bytes(chunk)


def _spool(value: Any, label: str) -> Resource:
    import tempfile
    import weakref

    held = bytearray()
    while len(held) <= SPOOL_MEMORY:
        chunk = _read_chunk(value, _SPOOL_CHUNK)
        if not chunk:
            return Resource(name=label, data=bytes(held))
        held += chunk
    suffix = Path(label).suffix
    suffix = suffix.lower() if suffix[1:].isalnum() and len(suffix) <= 9 else ""
    fd, tmp = tempfile.mkstemp(prefix="mediaprep-stream-", suffix=suffix)
    path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(held)
            del held
            while True:
                chunk = _read_chunk(value, _SPOOL_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
    except BaseException:
        _unlink_quietly(path)
        raise
    src = Resource(name=label, path=path, extra={"spooled": True})
    src.extra["_cleanup"] = weakref.finalize(src, _unlink_quietly, path)
    return src


def _named(v: Any) -> bool:
    return isinstance(v, str | os.PathLike) or (isinstance(v, Image.Image)
                                                and bool(getattr(v, "filename", "")))


def frame_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (frame_2 before frame_10)."""
    files = [p for p in folder.iterdir()
             if p.is_file() and p.suffix[1:].lower() in FRAME_EXTENSIONS]
    return sorted(files, key=_natural_key)


def _natural_key(p: Path) -> list[Any]:
    import re

    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


# ------------------------------------------------------------------------------ URL inputs
#
# The URL policy, decided in one place (Resource.access): a URL is fetched only when the settings
# allow it (``Settings.allow_url``), with :mod:`mediaprep.net.fetch` (http(s) only, size cap from
# the limits table, connect and overall timeouts, at most 3 redirects, private and loopback
# addresses refused unless allowed) into a temp file that is then read like a path and removed
# when the work is done (Resource.local). Under the url transport, a URL that needs no change
# passes through untouched: it is judged from a HEAD and a bounded Range read when fetching is
# allowed (Resource.head_read), and passed with a ``url.not_verified`` info finding when not.
# Fetch errors become findings: ``file.too_large`` for the size cap, else ``file.unreadable``;
# the fetch error code (``url.timeout``, ``url.private_address`` ...) is the finding's ``actual``.

HEAD_RANGE = 64 * 1024  # bytes read to validate a pass-through URL
_URL_IMAGE_EXTS = frozenset({"jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff", "heic",
                             "heif"})
_URL_VIDEO_EXTS = frozenset({"mp4", "mov", "mkv", "avi", "flv", "wmv", "webm", "mpg", "mpeg",
                             "3gp", "m4v"})


@dataclass(frozen=True)
class Access:
    """How a resource may be read under some settings: the URL policy's one decision.

    ``mode`` is ``"local"`` (not a URL: read it), ``"fetch"`` (download it, then read it like a
    path), ``"head"`` (url transport: judge it from its first bytes, fetch only if they cannot
    say enough), ``"unverified"`` (url transport, fetching off: pass the URL through unchecked,
    with ``finding``) or ``"refused"`` (fetching off: ``finding`` says how to allow it).
    """

    mode: str
    finding: Any = None


@dataclass(frozen=True)
class HeadRead:
    """The first bytes of a URL as a Resource, with the size the server gave (if any)."""

    head: Resource
    size: int | None

    @property
    def partial(self) -> bool:
        data = self.head.data or b""
        return self.size is None or len(data) < self.size



#
# A URL input is fetched only when the settings allow it (``Settings.allow_url``). Then it is
# downloaded with :mod:`mediaprep.net.fetch` (http(s) only, size cap, connect and overall timeouts,
# at most 3 redirects, private and loopback addresses refused unless allowed) into a temp file
# and handled like a path; the temp file is removed when the work is done. Under the url
# transport, a URL that needs no change passes through untouched: it is validated from a HEAD
# and a bounded Range read when allowed, and passed with a ``url.not_verified`` info finding
# when not. Fetch errors become findings: ``file.too_large`` for the size cap, else
# ``file.unreadable``; the fetch error code (``url.timeout``, ``url.private_address`` ...) is
# the finding's ``actual``.





def fetch_policy(settings: Any) -> Any:
    """The :class:`~mediaprep.net.fetch.FetchPolicy` that ``settings`` asks for.

    The download cap comes from the limits table (:func:`mediaprep.limits.fetch_cap`): the
    largest any kind may have until the first bytes say what the body is, then that kind's.
    """
    from .backends.sniff import sniff
    from .limits import fetch_cap
    from .net.fetch import FetchPolicy

    limits = settings.limits

    def cap_for_head(head: bytes) -> int:
        kind = sniff(head).kind
        return fetch_cap(limits, kind if kind in ("image", "video") else None)

    return FetchPolicy(allow=bool(settings.allow_url), max_bytes=fetch_cap(limits, None),
                       cap_for_head=cap_for_head,
                       allow_private=bool(getattr(settings, "allow_private_urls", False)),
                       allow_loopback=bool(getattr(settings, "allow_loopback_urls", False)))


def url_extension(url: str) -> str | None:
    from urllib.parse import urlsplit

    suffix = Path(urlsplit(url).path).suffix
    return suffix[1:].lower() if suffix else None


def fetch_error_finding(name: str, exc: Any) -> Any:
    """A fetch failure as a finding (code ``file.too_large`` or ``file.unreadable``)."""
    from .types import Finding

    hint = {"url.private_address": " (a private or loopback address; allow it with "
                                   "--allow-private-urls or --allow-loopback-urls)",
            "url.scheme": " (only http and https are fetched)"}.get(exc.code, "")
    return Finding(exc.finding_code, "error", f"{name}: cannot fetch the URL: {exc.message}{hint}",
                   None, exc.code)


def url_off_finding(name: str) -> Any:
    from .types import Finding

    return Finding("file.unreadable", "error",
                   f"{name}: URL inputs are not fetched unless allowed; pass --allow-url "
                   "(Settings(allow_url=True)) to fetch it, or download it first",
                   None, "url.not_allowed")


def not_verified_finding(name: str, why: str) -> Any:
    from .types import Finding

    return Finding("url.not_verified", "info", f"{name}: passed through as given, not checked "
                                               f"({why})")


def fetch_resource(src: Resource, settings: Any) -> Resource:
    """Download ``src.url`` to a temp file; a path Resource named by the URL (raises FetchError).

    The temp file is removed by :func:`release` or, at the latest, when the Resource is garbage.
    """
    import weakref

    from .net.fetch import fetch

    got = fetch(src.url, fetch_policy(settings))
    fetched = Resource(name=src.name, path=got.path,
                     extra={**src.extra, "url": src.url, "final_url": got.final_url,
                            "fetched": True})
    fetched.extra["_cleanup"] = weakref.finalize(fetched, _unlink_quietly, got.path)
    return fetched


def release(src: Resource) -> None:
    """Remove the temp file behind a fetched Resource now."""
    cleanup = src.extra.get("_cleanup")
    if cleanup is not None:
        cleanup()


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def kind_from_extension(url: str) -> str:
    ext = url_extension(url)
    return "image" if ext in _URL_IMAGE_EXTS else "video" if ext in _URL_VIDEO_EXTS else "other"
