"""Tests for mediaprep.batch.cache (content-addressed, atomic cache of prep results)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import pytest

import mediaprep.batch.cache as cache_mod
from mediaprep.batch.cache import Cache, cache_key, canonical_json, default_cache_dir, hash_input
from mediaprep.limits import TABLE_VERSION

OPTS: dict[str, Any] = {"target": "dashscope", "dialect": "openai", "fps": 2.0, "max_side": None}


def _outputs(tmp_path: Path, tag: str = "a") -> dict[str, Path]:
    out = tmp_path / f"out-{tag}"
    (out / "frames").mkdir(parents=True, exist_ok=True)
    (out / "image.jpg").write_bytes(b"JPEG-" + tag.encode() * 1000)
    (out / "frames" / "f_0001.jpg").write_bytes(b"FRAME-" + tag.encode() * 10)
    return {"image.jpg": out / "image.jpg", "frames/f_0001.jpg": out / "frames" / "f_0001.jpg"}


# --- keys -----------------------------------------------------------------------------------


def test_same_bytes_and_options_give_the_same_key(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # crosses the 1 MiB chunk boundaries
    a, b = tmp_path / "a.jpg", tmp_path / "sub" / "renamed.png"
    b.parent.mkdir()
    a.write_bytes(data)
    b.write_bytes(data)
    key = cache_key(a, OPTS, TABLE_VERSION)
    assert len(key) == 64
    assert cache_key(str(b), dict(reversed(list(OPTS.items()))), TABLE_VERSION) == key
    assert cache_key(data, OPTS, TABLE_VERSION) == key  # bytes and a path of them agree
    assert cache_key(io.BytesIO(data), OPTS, TABLE_VERSION) == key
    assert hash_input(a) == hashlib.sha256(data).hexdigest()


def test_any_change_gives_a_different_key(monkeypatch: pytest.MonkeyPatch) -> None:
    base = cache_key(b"pixels", OPTS, TABLE_VERSION)
    changed = [
        cache_key(b"pixels!", OPTS, TABLE_VERSION),
        cache_key(b"pixels", {**OPTS, "fps": 2.5}, TABLE_VERSION),
        cache_key(b"pixels", {**OPTS, "max_side": 1024}, TABLE_VERSION),
        cache_key(b"pixels", {**OPTS, "extra": True}, TABLE_VERSION),
        cache_key(b"pixels", OPTS, TABLE_VERSION + ".1"),
    ]
    monkeypatch.setattr(cache_mod, "package_version", lambda: "99.0")
    changed.append(cache_key(b"pixels", OPTS, TABLE_VERSION))
    assert base not in changed and len(set(changed)) == len(changed)


def test_keys_change_with_the_code_not_only_the_release(tmp_path: Path) -> None:
    """A build of main, an editable install: same version string, different code, so a
    different key (else the cache serves what older code made)."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    before = cache_mod._code_fingerprint(tmp_path)
    assert before == cache_mod._code_fingerprint(tmp_path)  # stable
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    assert cache_mod._code_fingerprint(tmp_path) != before
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    (tmp_path / "sub" / "b.py").rename(tmp_path / "sub" / "c.py")  # same bytes, new name
    assert cache_mod._code_fingerprint(tmp_path) != before
    release, _, code = cache_mod.package_version().partition("+")
    assert release and code == cache_mod._code_fingerprint()


def test_canonical_json() -> None:
    assert canonical_json({"b": (1, 2), "a": frozenset({"y", "x"}), "p": Path("/x")}) == (
        '{"a":["x","y"],"b":[1,2],"p":"/x"}'
    )
    with pytest.raises(TypeError):
        canonical_json({"f": object()})
    with pytest.raises(ValueError):
        canonical_json({"f": float("nan")})


def test_default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDIAPREP_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("MEDIAPREP_CACHE_DIR")
    assert default_cache_dir() == tmp_path / "xdg" / "mediaprep"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "mediaprep"
    assert Cache().root == Path.home() / ".cache" / "mediaprep"


# --- put / get ------------------------------------------------------------------------------


def test_put_get_round_trip(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    key = cache_key(b"input", OPTS, TABLE_VERSION)
    assert cache.get(key) is None
    record = {"ok": True, "kind": "image", "part": {"type": "image_url"}, "findings": []}
    files = _outputs(tmp_path)
    cache.put(key, record, files)
    entry = cache.get(key)
    assert entry is not None
    assert entry.path == tmp_path / "cache" / key[:2] / key
    assert entry.path.is_file()  # one file an entry
    assert entry.record == record
    assert set(entry.files) == set(files)
    for name, src in files.items():
        assert entry.data(name) == src.read_bytes()
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []  # nothing left behind
    # A second put of a stored key keeps the stored entry.
    again = cache.put(key, {"ok": False}, {})
    assert again.record == record


def test_keys_and_names_cannot_escape(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    with pytest.raises(ValueError):
        cache.get("../../etc")
    key = "0" * 64
    for bad in ("../x", "/abs", "a/../b", "", "a//b"):
        with pytest.raises(ValueError):
            cache.put(key, {}, {bad: tmp_path / "x"})


def test_crash_mid_put_leaves_no_entry(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    key = cache_key(b"input", OPTS, TABLE_VERSION)
    files = _outputs(tmp_path)
    gone = files["frames/f_0001.jpg"]
    gone.rename(gone.with_suffix(".away"))  # the first file is copied, then the second fails
    with pytest.raises(FileNotFoundError):
        cache.put(key, {"ok": True}, files)
    assert cache.get(key) is None
    assert not cache.entry_path(key).exists()
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []
    gone.with_suffix(".away").rename(gone)
    cache.put(key, {"ok": True}, files)
    entry = cache.get(key)
    assert entry is not None and entry.record == {"ok": True}


def _put(root: str, key: str, files: dict[str, Path]) -> None:
    Cache(root).put(key, {"ok": True}, files)


def test_killed_mid_put_leaves_no_entry_and_stale_temp_is_swept(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    key = cache_key(b"input", OPTS, TABLE_VERSION)
    files = _outputs(tmp_path)
    fifo = tmp_path / "pipe.jpg"  # the second file: the put blocks reading it, and is killed
    os.mkfifo(fifo)
    p = mp.get_context("spawn").Process(
        target=_put, args=(str(root), key, {"image.jpg": files["image.jpg"], "fifo.jpg": fifo})
    )
    p.start()
    with open(fifo, "wb") as writer:  # opens once the child reads: the first file is stored
        writer.write(b"half a file")
        writer.flush()
        p.kill()
        p.join(60)
    assert p.exitcode == -9
    cache = Cache(root)
    assert cache.get(key) is None and not cache.entry_path(key).exists()
    leftovers = list((root / "tmp").iterdir())
    assert len(leftovers) == 1  # the dead put's folder, invisible to readers
    old = 1_000_000_000  # make it look long dead
    os.utime(leftovers[0], (old, old))
    cache.put(key, {"ok": True}, _outputs(tmp_path))
    assert cache.get(key) is not None
    assert list((root / "tmp").iterdir()) == []


def _record(entry_file: Path) -> dict[str, Any]:
    """The record at the end of an entry file (its JSON, then its length: 12 digits)."""
    raw = entry_file.read_bytes()
    length = int(raw[-13:-1])
    return json.loads(raw[-13 - length:-13])


def _overwrite_keeping_size_and_mtime(path: Path, at: int = 0) -> None:
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(at)
        fh.write(b"\xa5" * min(64, st.st_size - at))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("how", ["append", "overwrite", "record", "cut", "garbage"])
def test_damaged_entry_is_a_miss_and_is_replaced(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = Cache(tmp_path / "cache")
    key = cache_key(b"input", OPTS, TABLE_VERSION)
    entry = cache.put(key, {"ok": True}, _outputs(tmp_path))
    assert cache.get(key) is not None
    if how == "append":
        with open(entry.path, "ab") as fh:
            fh.write(b"!")
    elif how == "overwrite":  # 64 bytes, size and time kept: only the content hash tells
        _overwrite_keeping_size_and_mtime(entry.path, at=entry.files["image.jpg"][0] + 100)
    elif how == "record":  # the record's own text, e.g. a file's recorded digest
        raw = entry.path.read_bytes()
        digest = _record(entry.path)["files"]["image.jpg"]["sha256"].encode()
        entry.path.write_bytes(raw.replace(digest, hash_input(b"something else").encode()))
    elif how == "cut":
        os.truncate(entry.path, entry.path.stat().st_size // 2)
    else:
        entry.path.write_bytes(b"\xff\xfe not json")
    with caplog.at_level(logging.WARNING, logger="mediaprep"):
        assert cache.get(key) is None
    assert any(key[:12] in r.getMessage() and "damaged" in r.getMessage()
               for r in caplog.records)
    assert not entry.path.exists()  # dropped, not left to fail every later run
    assert cache.get(key) is None
    cache.put(key, {"ok": True, "v": 2}, _outputs(tmp_path))
    fresh = cache.get(key)
    assert fresh is not None and fresh.record["v"] == 2
    assert fresh.data("image.jpg") == (tmp_path / "out-a" / "image.jpg").read_bytes()


def _racer(root: str, keys: list[str], tag: str, src_dir: str, barrier: Any) -> None:
    src = Path(src_dir)
    files = {"image.jpg": src / "image.jpg", "frames/f_0001.jpg": src / "frames" / "f_0001.jpg"}
    cache = Cache(root)
    for key in keys:
        barrier.wait()
        cache.put(key, {"writer": tag}, files)


def test_concurrent_puts_of_one_key_end_with_one_valid_entry(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    keys = [cache_key(str(i).encode(), OPTS, TABLE_VERSION) for i in range(15)]
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = []
    for tag in ("a", "b"):
        src = _outputs(tmp_path, tag)["image.jpg"].parent
        procs.append(ctx.Process(target=_racer, args=(str(root), keys, tag, str(src), barrier)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)  # spawned interpreters start slowly on a loaded machine
        assert p.exitcode == 0
    cache = Cache(root)
    for key in keys:
        entry = cache.get(key)
        assert entry is not None
        tag = entry.record["writer"]
        # One writer's files, whole, never a mix of the two.
        assert entry.data("image.jpg") == b"JPEG-" + tag.encode() * 1000
        assert entry.data("frames/f_0001.jpg") == b"FRAME-" + tag.encode() * 10
        assert entry.path.is_file()
    assert list((root / "tmp").iterdir()) == []


# --- materialise ----------------------------------------------------------------------------


def test_put_stores_copies_hashed_once(tmp_path: Path) -> None:
    """The stored files are copies of the outputs (an edit of either leaves the other), and
    their recorded digests are the SHA-256 of their bytes."""
    cache = Cache(tmp_path / "cache")
    key = cache_key(b"input", OPTS, TABLE_VERSION)
    files = _outputs(tmp_path)
    entry = cache.put(key, {}, files)
    recorded = _record(entry.path)["files"]
    assert os.stat(entry.path).st_nlink == 1
    for name, src in files.items():
        assert recorded[name]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        _overwrite_keeping_size_and_mtime(src)
    again = cache.get(key)
    assert again is not None
    assert again.data("image.jpg") == b"JPEG-" + b"a" * 1000


def test_materialise_copies_whole_files(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    key = cache_key(b"input", OPTS, TABLE_VERSION)
    cache.put(key, {}, _outputs(tmp_path))
    entry = cache.get(key)
    assert entry is not None
    dest = tmp_path / "run"
    (dest).mkdir()
    (dest / "photo.jpg").write_bytes(b"old output")
    paths = entry.materialise(dest, {"image.jpg": "photo.jpg", "frames/f_0001.jpg": "fr/1.jpg"})
    assert paths == [dest / "photo.jpg", dest / "fr" / "1.jpg"]
    assert paths[0].read_bytes() == entry.data("image.jpg")
    assert paths[1].read_bytes() == entry.data("frames/f_0001.jpg")
    for p in paths:  # copies, not links: the same filesystem, yet no shared data
        assert os.stat(p).st_nlink == 1
        _overwrite_keeping_size_and_mtime(p)
    assert cache.get(key) is not None  # the edits in place did not reach the cache
    assert sorted(p.name for p in dest.iterdir()) == ["fr", "photo.jpg"]  # no temp files
    with pytest.raises(KeyError):
        entry.materialise(dest, ["missing.jpg"])
    assert cache.get(key) is not None  # still intact after all that


def test_materialise_failure_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(tmp_path / "cache")
    key = cache_key(b"input", OPTS, TABLE_VERSION)
    entry = cache.put(key, {}, _outputs(tmp_path))
    dest = tmp_path / "run"
    dest.mkdir()
    (dest / "image.jpg").write_bytes(b"previous run")

    def torn_copy(fd: int, data: Any) -> None:
        os.write(fd, b"half")
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod, "write_all", torn_copy)
    with pytest.raises(OSError, match="disk full"):
        entry.materialise(dest, ["image.jpg"])
    assert (dest / "image.jpg").read_bytes() == b"previous run"
    assert [p.name for p in dest.iterdir()] == ["image.jpg"]


def test_a_shard_that_is_a_link_is_never_written_read_or_emptied_through(tmp_path: Path) -> None:
    """ROOT/ab replaced by a link to a user's folder: a put there fails (nothing lands in the
    user's folder), and a user's file of an entry's name behind it is neither read as an entry
    nor moved aside as a damaged one."""
    root = tmp_path / "cache"
    cache = Cache(root)
    first = "aa" + "0" * 62  # a key is 64 hex digits; its first two name its shard
    cache.put(first, {"ok": True}, {"out.jpg": b"stored"})
    user = tmp_path / "user"
    user.mkdir()
    key = "bb" + "1" * 62
    (root / key[:2]).symlink_to(user, target_is_directory=True)
    (user / key).write_bytes(b"the user's own file")
    (user / "notes.txt").write_bytes(b"the user's notes")
    assert Cache(root).get(key) is None
    with pytest.raises(OSError):
        Cache(root).put(key, {"ok": True}, {"out.jpg": b"stored"})
    assert sorted(p.name for p in user.iterdir()) == sorted([key, "notes.txt"])
    assert (user / key).read_bytes() == b"the user's own file"
    Cache(root).discard(key, "a reader found it unusable")
    assert (user / key).read_bytes() == b"the user's own file"
    assert Cache(root).get(first) is not None  # the other shards serve as before
