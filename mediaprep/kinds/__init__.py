"""Media kinds: each kind module (image, video, frames) holds its probe -> check -> plan ->
prepare strategy; this module picks the kind of an input and routes to it.

A kind's module (and its backend: PyAV, Pillow, numpy) is imported when an input of that kind
comes: ``mediaprep frames`` never loads the image kind, and ``check_params`` (kinds.common)
loads none.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ..backends.sniff import HEAD_BYTES, Sniffed, extension_matches, sniff
from ..limits import Limits, limits_for
from ..settings import Settings
from ..types import MediaInfo, Report
from .common import report_for

if TYPE_CHECKING:
    from ..resource import Resource

__all__ = ["KINDS", "check_info", "probe_resource"]


def probe_resource(src: Resource, *, limits: Limits | None = None, deep: bool = False,
                   preview: bool = False) -> MediaInfo:
    """What ``src`` is. What the decoders warn about on the way (Pillow's "Corrupt EXIF
    data") becomes a note on the info, which names the file, instead of a bare line on stderr."""
    with noted_warnings() as said:
        info = _probe(src, limits=limits, deep=deep, preview=preview)
    add_notes(info, said)
    return info


@contextlib.contextmanager
def noted_warnings() -> Iterator[list[str]]:
    """Collect the Python warnings raised inside (each said once) as notes to keep."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        said: list[str] = []
        yield said
    for w in caught:
        if not issubclass(w.category, UserWarning | RuntimeWarning):
            # about code (a deprecation), not about this input: the usual filters decide
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            continue
        package = w.filename.split(os.sep + "site-packages" + os.sep)[-1].split(os.sep)[0]
        note = f"{_WARNING_ORIGINS.get(package, '')}{' '.join(str(w.message).split())}"
        if note not in said:
            said.append(note)


def add_notes(info: MediaInfo | None, notes: list[str]) -> None:
    if info is not None:
        info.notes += [n for n in notes if n not in info.notes]


# a warning's package, named in its note ("Pillow: Corrupt EXIF data ...")
_WARNING_ORIGINS = {"PIL": "Pillow: ", "av": "PyAV: ", "pillow_heif": "pillow-heif: ",
                    "numpy": "numpy: "}


def _probe(src: Resource, *, limits: Limits | None, deep: bool, preview: bool) -> MediaInfo:
    limits = limits or limits_for()
    if src.frames is not None:
        return KINDS["frames"].probe_frames(src, lambda m: _probe(m, limits=limits, deep=deep,
                                                                  preview=False))
    if src.url is not None:  # the URL policy is Resource.access; the api reads URLs locally
        from ..resource import ResourceError

        raise ResourceError(f"{src.name}: a URL is read through Resource.local, not probed")
    if src.image is not None:
        return KINDS["image"].probe(src, limits)
    if src.path is not None:
        problem = _path_problem(src.path)
        if problem:
            return MediaInfo(path=src.name, kind="other", error=problem,
                             error_code="file.unreadable")
    return _probe_bytes(src, limits, deep=deep, preview=preview)


def _probe_bytes(src: Resource, limits: Limits, *, deep: bool, preview: bool) -> MediaInfo:
    """What ``src``'s bytes are, by their magic number (then by the decoders)."""
    try:
        head = src.head(HEAD_BYTES)
    except OSError as exc:
        return MediaInfo(path=src.name, kind="other", error=f"cannot read: {exc.strerror}",
                         error_code="file.unreadable")
    sniffed = sniff(head)
    if sniffed.kind == "empty":
        return MediaInfo(path=src.name, kind="other", bytes=0, extension=src.extension,
                         error="the file is empty (0 bytes)", error_code="file.unreadable")
    if sniffed.kind == "image":
        return KINDS["image"].probe(src, limits, deep=deep, sniffed=sniffed)
    if sniffed.kind == "video":
        return KINDS["video"].probe(src, sniffed=sniffed, deep=deep, preview=preview,
                                          limits=limits)
    info = _unknown(src, sniffed, limits)
    info.extension = src.extension
    info.extension_matches = extension_matches(src.extension, info.format)
    return info


def _path_problem(path: Path) -> str | None:
    try:
        if not path.exists():
            if path.is_symlink():
                return "a symbolic link that leads nowhere (dangling, or a loop)"
            return "no such file"
        if path.is_dir():
            return "a folder, not a file"
        if not path.is_file():
            # FIFOs and devices never end; reading them would hang the batch
            return "not a regular file (device, pipe or socket)"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    return None


def _unknown(src: Resource, sniffed: Sniffed, limits: Limits) -> MediaInfo:
    """Bytes no magic number matched: try the decoders before giving up (e.g. TGA, raw MPEG)."""
    from ..backends.pillow import probe_image
    from ..backends.sniff import EXTENSIONS, IMAGE_FORMATS, SHARED_EXTENSIONS, VIDEO_FORMATS

    claimed = EXTENSIONS.get(src.extension or "")
    what = "text" if sniffed.detail == "text" else "data"
    if sniffed.detail != "text":
        info = probe_image(src, Sniffed("image", None), max_pixels=None)
        if info.error_code is None:
            return info
        from ..backends.av import probe_video  # PyAV: imported only when it is asked

        vinfo = probe_video(src, Sniffed("video", None),
                            bounds=KINDS["video"].video_bounds(limits))
        if vinfo.error_code is None:
            return vinfo
    info = MediaInfo(path=src.name, kind="other", bytes=src.size)
    if what == "text" and src.extension in SHARED_EXTENSIONS:
        # a TypeScript source named on the command line: not damaged media, not media at all
        info.error_code = "file.unsupported_format"
        info.error = (f"not an image or a video: text named .{src.extension} (TypeScript?), "
                      f"not an MPEG transport stream")
    elif claimed in IMAGE_FORMATS or claimed in VIDEO_FORMATS:
        info.error_code = "file.unreadable"
        info.error = f"named .{src.extension} but the bytes are not a {claimed} file ({what})"
    else:
        info.error_code = "file.unsupported_format"
        info.error = f"not an image or a video (looks like {what})"
    return info


# kind name -> the module holding its strategy: probe(...), check(info, settings) -> Report,
# and its prepare function
_KIND_MODULES = {"image": ".image", "video": ".video", "frames": ".frames"}


def _kind_module(kind: str) -> ModuleType | None:
    """The module of ``kind`` (imported now if it was not), or None: no such kind."""
    name = _KIND_MODULES.get(kind)
    return None if name is None else importlib.import_module(name, __name__)


class _Kinds(Mapping[str, ModuleType]):
    """:data:`KINDS`: kind name -> its module, each imported on first look-up."""

    def __getitem__(self, kind: str) -> ModuleType:
        module = _kind_module(kind)
        if module is None:
            raise KeyError(kind)
        return module

    def __iter__(self) -> Iterator[str]:
        return iter(_KIND_MODULES)

    def __len__(self) -> int:
        return len(_KIND_MODULES)


KINDS: Mapping[str, ModuleType] = _Kinds()


def check_info(info: MediaInfo, settings: Settings) -> Report:
    """Findings for a probed input under ``settings`` (its kind's check)."""
    kind = _kind_module(info.kind)
    if kind is None or (info.error_code is not None and info.kind != "frames"):
        return report_for(info, settings, list)
    return kind.check(info, settings)
