"""File objects are read from their current position, never from the path their ``.name`` names.

The name only hints at the format and the display name (issue 17 item 4): an upload handler that
copies the client's file name into ``.name`` must not make mediaprep send a local file.
"""

from __future__ import annotations

import base64
import gc
import io
import os
import tempfile
from pathlib import Path

import pytest
from PIL import Image

import mediaprep
from mediaprep.api import prepare

JUNK = b"J" * 60


def _png(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


DISK = _png((64, 64), (255, 0, 0))  # what photo.png on disk holds: red, 64x64
STREAM = _png((80, 60), (0, 0, 255))  # what the stream holds: blue, 80x60


def _decoded(prepared) -> bytes:
    part = prepared.part
    url = part["image_url"]["url"] if "image_url" in part else part["image"]
    head, payload = url.split(",", 1)
    assert head.startswith("data:image/")
    return base64.b64decode(payload)


def _is_stream_image(data: bytes) -> None:
    im = Image.open(io.BytesIO(data))
    assert im.size == (80, 60)
    assert im.convert("RGB").getpixel((5, 5)) == (0, 0, 255)


@pytest.fixture
def on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A different photo.png in the working directory, the file a name-trusting reader opens."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photo.png").write_bytes(DISK)
    return tmp_path / "photo.png"


class _OneWay(io.RawIOBase):
    """A non-seekable stream (a pipe, a socket, an upload body) with a misleading name."""

    def __init__(self, data: bytes, name: str) -> None:
        self._data = io.BytesIO(data)
        self.name = name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b) -> int:  # type: ignore[override]
        chunk = self._data.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)

    def seek(self, *a, **k):  # noqa: ANN002, ANN003 - io.UnsupportedOperation like a pipe
        raise io.UnsupportedOperation("seek")

    def tell(self) -> int:
        raise io.UnsupportedOperation("tell")


@pytest.mark.parametrize("name", ["photo.png", "{abs}"])
def test_bytesio_named_like_a_disk_file_is_read_from_the_stream(on_disk: Path, name: str) -> None:
    def stream() -> io.BytesIO:
        s = io.BytesIO(STREAM)
        s.name = name.format(abs=str(on_disk))  # type: ignore[attr-defined]
        return s

    info = mediaprep.probe(stream())
    assert (info.width, info.height) == (80, 60)
    assert info.bytes == len(STREAM)
    report = mediaprep.check(stream())
    assert (report.info.width, report.info.height) == (80, 60)
    p = prepare(stream())
    assert p.ok, p.findings
    data = _decoded(p)
    assert data != DISK
    _is_stream_image(data)
    assert on_disk.read_bytes() == DISK


def test_bytesio_is_read_from_its_current_position(on_disk: Path) -> None:
    s = io.BytesIO(JUNK + STREAM)
    s.name = "photo.png"  # type: ignore[attr-defined]
    s.seek(len(JUNK))
    p = prepare(s)
    assert p.ok, p.findings
    _is_stream_image(_decoded(p))


def test_real_file_seeked_past_junk_is_read_from_there(tmp_path: Path) -> None:
    f = tmp_path / "junk_then.png"
    f.write_bytes(JUNK + STREAM)
    with open(f, "rb") as fh:
        fh.seek(len(JUNK))
        info = mediaprep.probe(fh)
    assert (info.format, info.width, info.height) == ("png", 80, 60)
    assert info.bytes == len(STREAM)
    with open(f, "rb") as fh:
        fh.seek(len(JUNK))
        assert mediaprep.check(fh).ok
    with open(f, "rb") as fh:
        fh.seek(len(JUNK))
        p = prepare(fh)
    assert p.ok, p.findings
    assert _decoded(p) == STREAM  # passed through: exactly the bytes from the offset on
    assert f.read_bytes() == JUNK + STREAM  # the input is not modified


def test_real_file_at_start_still_works_and_keeps_its_name(tmp_path: Path) -> None:
    f = tmp_path / "plain.png"
    f.write_bytes(STREAM)
    with open(f, "rb") as fh:
        info = mediaprep.probe(fh)
        assert info.path == str(f)
        assert (info.width, info.height) == (80, 60)


def test_real_file_whose_name_now_names_another_file(tmp_path: Path) -> None:
    """The file was replaced on disk after it was opened: the open stream is what goes."""
    f = tmp_path / "photo.png"
    f.write_bytes(STREAM)
    with open(f, "rb") as fh:
        f.unlink()
        f.write_bytes(DISK)
        p = prepare(fh)
    assert p.ok, p.findings
    _is_stream_image(_decoded(p))


def test_non_seekable_stream_named_like_a_disk_file(on_disk: Path) -> None:
    info = mediaprep.probe(io.BufferedReader(_OneWay(STREAM, "photo.png")))
    assert (info.width, info.height) == (80, 60)
    assert mediaprep.check(io.BufferedReader(_OneWay(STREAM, "photo.png"))).ok
    p = prepare(io.BufferedReader(_OneWay(STREAM, "photo.png")))
    assert p.ok, p.findings
    _is_stream_image(_decoded(p))


def test_name_only_hints_the_format(on_disk: Path) -> None:
    """A JPEG stream named photo.png: read as the JPEG it is, with the mismatch warning."""
    s = io.BytesIO(_jpeg((80, 60), (0, 0, 255)))
    s.name = "photo.png"  # type: ignore[attr-defined]
    report = mediaprep.check(s)
    assert report.info.format == "jpeg"
    assert (report.info.width, report.info.height) == (80, 60)
    assert "file.extension_mismatch" in {f.code for f in report.findings}


def test_file_objects_in_a_frame_list_are_read_from_the_streams(on_disk: Path) -> None:
    frames = []
    for _ in range(4):
        s = io.BytesIO(JUNK + _jpeg((80, 60), (0, 0, 255)))
        s.name = "photo.png"  # type: ignore[attr-defined]
        s.seek(len(JUNK))
        frames.append(s)
    info = mediaprep.probe(frames)
    assert info.kind == "frames", info
    assert info.error is None, info.error
    assert (info.width, info.height) == (80, 60)


def test_a_large_stream_is_spooled_not_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    """A stream past the in-memory spool goes through a temp file that is removed afterwards."""
    spool_dir = tmp_path / "tmp"
    spool_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))
    big = Image.effect_noise((2400, 2400), 64).convert("RGB")
    buf = io.BytesIO()
    big.save(buf, "PNG")
    data = buf.getvalue()
    assert len(data) > 4 * 1024 * 1024
    f = tmp_path / "big.bin"
    f.write_bytes(JUNK + data)
    before = set(os.listdir(tmp_path))
    with open(f, "rb") as fh:
        fh.seek(len(JUNK))
        info = mediaprep.probe(fh)
    assert (info.format, info.width, info.height, info.bytes) == ("png", 2400, 2400, len(data))
    with open(f, "rb") as fh:
        fh.seek(len(JUNK))
        p = prepare(fh)
    assert p.ok, p.findings
    out = Image.open(io.BytesIO(_decoded(p)))
    assert out.width == out.height  # the noise image, maybe scaled to fit the budget
    gc.collect()
    assert set(os.listdir(tmp_path)) == before
    assert list(spool_dir.iterdir()) == []
