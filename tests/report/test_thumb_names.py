"""A thumbnail is named by its file's bytes (the whole file up to 8 MiB, past that its size and
first and last MiB), so the same outputs give the same page; the name is read through a raw
descriptor now, and must stay what it was."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from mediaprep.report.thumbs import HASH_WHOLE_BYTES, Thumbs


def _name(thumbs: Thumbs, path: Path) -> str:
    pic = thumbs.image(path, Image.new("RGB", (8, 6)))  # the preview: no decode of the file
    assert pic.src is not None
    return pic.src


def _variant(path: Path, base: bytes, at: int) -> Path:
    data = bytearray(base)
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def test_a_thumbnail_is_named_by_the_bytes_hashed(tmp_path: Path) -> None:
    thumbs = Thumbs(tmp_path / "report_files", prefix="report_files/")
    small = os.urandom(100_000)
    big = os.urandom(HASH_WHOLE_BYTES + (3 << 20))
    a = tmp_path / "a.bin"
    a.write_bytes(small)
    # a small file: any byte changes the name, the same bytes elsewhere give the same name
    first = _name(thumbs, a)
    assert _name(thumbs, _variant(tmp_path / "b.bin", small, 50_000)) != first
    (tmp_path / "c.bin").write_bytes(small)
    assert _name(thumbs, tmp_path / "c.bin") == first
    # a large one: its first and last MiB and its size name it, not its middle
    (tmp_path / "big.bin").write_bytes(big)
    named = _name(thumbs, tmp_path / "big.bin")
    assert _name(thumbs, _variant(tmp_path / "mid.bin", big, len(big) // 2)) == named
    assert _name(thumbs, _variant(tmp_path / "head.bin", big, 10)) != named
    assert _name(thumbs, _variant(tmp_path / "tail.bin", big, len(big) - 10)) != named
    (tmp_path / "longer.bin").write_bytes(big + b"\0")
    assert _name(thumbs, tmp_path / "longer.bin") != named
    # an empty file and a missing one
    (tmp_path / "empty.bin").write_bytes(b"")
    assert _name(thumbs, tmp_path / "empty.bin") not in (first, named)
    assert thumbs.image(tmp_path / "missing.bin").note == "file not found"
