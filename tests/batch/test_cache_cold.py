"""What a cold run makes per input in the cache (issue 28 item 4: a cold run's overhead): one
file an entry, holding its outputs, thumbnails and record; the journal record and the
parts.jsonl line live inside the record, and a hit serves them from there."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from mediaprep.batch.cache import Cache, cache_key
from mediaprep.cli import main
from mediaprep.limits import TABLE_VERSION


def _inputs(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(4)
    for i in range(n):
        pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i}.jpg", quality=85)
    return folder


def _prep(src: Path, out: Path, cache: Path) -> None:
    r = CliRunner().invoke(main, ["prep", str(src), "-o", str(out), "-q", "-j", "0",
                                  "--cache-dir", str(cache)], catch_exceptions=False)
    assert r.exit_code == 0, r.output


def _tree(root: Path) -> tuple[list[Path], list[Path]]:
    folders, files = [], []
    for top, ds, fs in os.walk(root):
        folders += [Path(top) / d for d in ds]
        files += [Path(top) / f for f in fs]
    return folders, files


def test_a_cold_run_makes_one_file_an_entry_with_its_texts_inside(tmp_path: Path) -> None:
    src, cache = _inputs(tmp_path / "in", 6), tmp_path / "cache"
    _prep(src, tmp_path / "one", cache)
    folders, files = _tree(cache)
    # the shards and the temporary folder: no folder an entry
    assert all(f.parent == cache for f in folders)
    entries = [f for f in files if f.parent.parent == cache]
    assert len(entries) == 6 and len(files) == 7  # + CACHEDIR.TAG
    for entry in entries:
        got = Cache(cache).get(entry.name)
        assert got is not None and got.path == entry
        # in the record, not files (a long data URL's payload goes back from out/)
        assert {"meta.json", "line.json"} <= set(got.inline) <= {
            "meta.json", "line.json", "line.splices"}
        assert got.files and all(n.startswith(("out/", "thumb/")) for n in got.files)

    # a second run into another folder is served from those entries: the same parts.jsonl
    _prep(src, tmp_path / "two", cache)
    one = (tmp_path / "one" / "parts.jsonl").read_text()
    two = (tmp_path / "two" / "parts.jsonl").read_text()
    assert two == one.replace(str(tmp_path / "one"), str(tmp_path / "two"))
    assert _tree(cache)[1] == files  # no entry stored again


def test_small_texts_are_kept_in_the_record_and_large_ones_as_files(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    key = cache_key(b"input", {}, TABLE_VERSION)
    big = b"x" * (1 << 17)
    (tmp_path / "out.jpg").write_bytes(b"JPEG" * 100)
    stored = {"line.json": b'{"ok": true}\n', "big.txt": big, "binary": b"\xff\xfe\x00",
              "out/a.jpg": tmp_path / "out.jpg"}
    cache.put(key, {"stem": "a"}, stored)
    entry = Cache(tmp_path / "cache").get(key)
    assert entry is not None
    assert set(entry.inline) == {"line.json"}
    assert set(entry.files) == {"big.txt", "binary", "out/a.jpg"}
    for name, src in stored.items():
        want = src if isinstance(src, bytes) else src.read_bytes()
        assert entry.has(name) and entry.data(name) == want
    dest = tmp_path / "dest"
    got = entry.materialise(dest, {"line.json": "l.json", "out/a.jpg": "x/a.jpg"})
    assert [p.read_bytes() for p in got] == [b'{"ok": true}\n', b"JPEG" * 100]
    assert entry.path.is_file() and list((tmp_path / "cache" / "tmp").iterdir()) == []
