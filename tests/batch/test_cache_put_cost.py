"""What a cold put costs beyond the bytes it stores (issue 28 item 4: a cold run's per-input
overhead): its record is encoded once, and a small file is read through a buffer of its size.
The entry stays the same bytes: its record is the canonical text of itself, as get reads it."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from mediaprep.batch.cache import Cache, canonical_json, hash_input
from mediaprep.batch.cache_pack import read_record

KEY = "ab" * 32


def _counting(monkeypatch: pytest.MonkeyPatch, marker: str) -> dict[str, int]:
    """Counts of the standard library's json.dumps results and json.loads inputs that hold
    ``marker`` (the public entries: no mediaprep name is patched)."""
    seen = {"dumps": 0, "loads": 0}
    dumps, loads = json.dumps, json.loads

    def counted_dumps(*args: Any, **kwargs: Any) -> str:
        text = dumps(*args, **kwargs)
        seen["dumps"] += marker in text
        return text

    def counted_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes | bytearray) else text
        seen["loads"] += marker in raw
        return loads(text, *args, **kwargs)

    monkeypatch.setattr(json, "dumps", counted_dumps)
    monkeypatch.setattr(json, "loads", counted_loads)
    return seen


def test_a_put_encodes_its_record_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a parts.jsonl line of 20 KB kept in the record, as prep keeps each input's
    marker = "unique-line-" + "x" * 20_000
    out = tmp_path / "a.jpg"
    out.write_bytes(b"JPEG" * 500)
    seen = _counting(monkeypatch, marker)
    Cache(tmp_path / "cache").put(KEY, {"stem": "a"},
                                  {"out/a.jpg": out, "line.json": marker.encode()})
    # main encoded the whole record three times and parsed it once in between
    assert seen == {"dumps": 1, "loads": 0}
    monkeypatch.undo()
    entry = Cache(tmp_path / "cache").get(KEY)
    assert entry is not None and entry.data("line.json") == marker.encode()


def test_the_record_is_the_canonical_text_of_itself_as_get_reads_it(tmp_path: Path) -> None:
    """Encoded once, the record is still what canonical_json of the record read back gives (so
    its digest is of what get reads), with tuples, number keys, floats and other scripts in
    what the caller gave."""
    record = {"stem": "vidéo/帧", "pair": (1, 2), "by_number": {10: "a", 2: "b"}, "f": 0.1,
              "nested": [{"z": None, "a": [True, 1e-300]}]}
    out = tmp_path / "a.bin"
    out.write_bytes(bytes(range(256)) * 3)
    cache = Cache(tmp_path / "cache")
    put = cache.put(KEY, record, {"out/a.bin": out, "meta.json": '{"ü": 1}\n'.encode()})
    fd = os.open(cache.entry_path(KEY), os.O_RDONLY)
    try:
        meta, _ = read_record(fd)
        size = os.fstat(fd).st_size
        raw = os.pread(fd, size, 0)
    finally:
        os.close(fd)
    text = raw[raw.rindex(b"{\"created\""):raw.rindex(b"\n", 0, -1)].decode("ascii")
    assert text == canonical_json(json.loads(text))
    body = {k: v for k, v in meta.items() if k != "sha256"}
    assert meta["sha256"] == hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()
    got = cache.get(KEY)
    assert got is not None and got.record == put.record == json.loads(canonical_json(record))
    assert got.data("out/a.bin") == out.read_bytes()


@pytest.mark.parametrize("size", [0, 1, 4096, (1 << 20) - 1, 1 << 20, (1 << 20) + 5])
def test_a_file_of_any_size_is_stored_and_hashed_whole(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    assert hash_input(src) == hashlib.sha256(data).hexdigest()
    cache = Cache(tmp_path / "cache")
    cache.put(KEY, {}, {"out/f.bin": src})
    got = Cache(tmp_path / "cache").get(KEY)  # verified: its bytes hash to what was recorded
    assert got is not None and got.data("out/f.bin") == data


def test_a_small_file_is_hashed_and_stored_without_a_megabyte_buffer(tmp_path: Path) -> None:
    src = tmp_path / "thumb.jpg"
    src.write_bytes(os.urandom(6000))  # a thumbnail's or a small output's size
    cache = Cache(tmp_path / "cache")
    cache.claim()
    tracemalloc.start()
    try:
        hash_input(src)
        cache.put(KEY, {"stem": "t"}, {"out/t.jpg": src, "thumb/t.jpg": src})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # main set a 1 MiB buffer to zero for each file read (three here: 3 MiB an input)
    assert peak < 256 * 1024, peak


def test_a_pipe_is_still_read_to_its_end(tmp_path: Path) -> None:
    """A file object with no size to go by (a pipe) is read in full chunks to its end."""
    data = os.urandom(3 * 65536 + 11)
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as fh:
            fh.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    with os.fdopen(r, "rb", buffering=0) as fh:
        assert hash_input(fh) == hashlib.sha256(data).hexdigest()
    writer.join()


@pytest.mark.parametrize("name", ["../x", "/abs", "a//b", "a/./b", "a/", "a\\b", "", "a/../b"])
def test_a_name_that_is_not_plain_is_refused_before_anything_is_written(
        tmp_path: Path, name: str) -> None:
    cache = Cache(tmp_path / "cache")
    with pytest.raises(ValueError):
        cache.put(KEY, {}, {name: b"data"})
    assert cache.get(KEY) is None
