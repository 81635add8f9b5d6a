"""Where a prepared input's bytes go, and the URL the part carries for them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath

from ..output import atomic_write, inside, safe_relative
from ..settings import Settings, SettingsError
from .parts import DataURL, data_url, file_uri, prefixed_url

EXTENSION = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "bmp": "bmp",
             "tiff": "tif", "heic": "heic", "mp4": "mp4", "mov": "mov", "mkv": "mkv",
             "avi": "avi", "flv": "flv", "wmv": "wmv", "webm": "webm", "3gp": "3gp",
             "mpeg": "mpg"}


@dataclass
class Sink:
    """The output folder (None: keep results in memory) and this input's output stem;
    ``keep_preview``: also keep a preview of what is sent when its pixels come free."""

    out_dir: Path | None = None
    stem: PurePath | None = None
    keep_preview: bool = False

    def path_for(self, name: str, fmt: str, *, suffix: str = "") -> Path:
        if self.out_dir is None:
            raise SettingsError("this transport needs an output folder (out_dir / -o DIR)")
        stem = self.stem or safe_relative(name).with_suffix("")
        rel = stem.with_name(stem.name + suffix + "." + EXTENSION.get(fmt, fmt))
        path = inside(self.out_dir, rel)
        path.parent.mkdir(parents=True, exist_ok=True)  # writers (PyAV) need the folder to exist
        return path

    def relative(self, path: Path) -> str:
        assert self.out_dir is not None
        return path.resolve().relative_to(self.out_dir.resolve()).as_posix()


def require_out_dir(sink: Sink, settings: Settings) -> None:
    """The path and url transports point at written files: without an output folder there
    is nothing to point at, so refuse (never a dangling file:// or an empty frame list)."""
    if sink.out_dir is None and settings.transport != "base64":
        raise SettingsError(f"the {settings.transport} transport needs an output folder "
                            "(out_dir / -o DIR)")
    if settings.transport == "path" and sink.out_dir is not None:
        _under_local_media_path(Path(sink.out_dir), settings)


def _under_local_media_path(path: Path, settings: Settings) -> None:
    """A server that reads file:// parts only from one folder (vLLM's
    --allowed-local-media-path) refuses any other: so does mediaprep, before writing."""
    root = settings.allowed_local_media_path
    if root is None:
        return
    if not Path(path).resolve().is_relative_to(Path(root).resolve()):
        raise SettingsError(f"{path} is not under --allowed-local-media-path {root}: the "
                            "server would refuse its file:// parts; write the outputs there")


def url_for_file(sink: Sink, path: Path, data_mime: tuple[bytes, str] | None,
                 settings: Settings) -> str:
    """The URL the part carries for a file written to ``path``."""
    if settings.transport == "path":
        _under_local_media_path(path, settings)
        return file_uri(path)
    if settings.transport == "upload":
        # the written file's own URI until mediaprep.upload puts it in the provider's storage
        # and swaps in the reference (oss://, ms://)
        return file_uri(path)
    if settings.transport == "url":
        if not settings.url_prefix:
            raise SettingsError("the url transport needs --url-prefix (where the outputs are "
                                "hosted)")
        return prefixed_url(settings.url_prefix, sink.relative(path))
    assert data_mime is not None
    url = data_url(*data_mime)
    if isinstance(url, DataURL):
        url.path = path  # what a cache entry stores once, not again inside the line
    return url


def emit_url(sink: Sink, name: str, data: bytes, fmt: str, mime: str,
             settings: Settings) -> tuple[str, list[Path]]:
    """Write ``data`` (when there is an output folder) and give the URL for the part."""
    if sink.out_dir is None:
        require_out_dir(sink, settings)
        return data_url(data, mime), []
    path = sink.path_for(name, fmt)
    atomic_write(path, data)
    return url_for_file(sink, path, (data, mime), settings), [path]
