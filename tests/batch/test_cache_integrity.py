"""A damaged cache entry is never served, and no output shares its data with the cache
(issue 17 item 7): `mediaprep prep` through click's CliRunner, the cache in a temporary folder."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mediaprep.cli import main


def _prep(src: Path, out: Path, cache: Path | None, *extra: str) -> None:
    args = ["prep", str(src), "-o", str(out), "-q", *extra]
    if cache is None:
        args.append("--no-cache")
    env = {"MEDIAPREP_CACHE_DIR": str(cache or out.parent / "unused-cache")}
    r = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.output


def _inputs(tmp_path: Path) -> Path:
    """A thin PNG (padded: an encode of prep's own) and a noisy JPEG."""
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(17)
    Image.fromarray(rng.integers(0, 255, (8, 600, 3), dtype=np.uint8)).save(src / "thin.png")
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(
        src / "photo.jpg", quality=90)
    return src


def _outputs(out: Path) -> dict[str, bytes]:
    """Every output named in parts.jsonl, by name, and the parts lines (paths made relative)."""
    got: dict[str, bytes] = {}
    for line in (out / "parts.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        for rel in rec["outputs"]:
            got[rel] = (out / rel).read_bytes()
        got["line:" + Path(rec["path"]).name] = json.dumps(rec["part"]).encode()
    assert len(got) >= 4
    return got


def _entry_files(cache: Path) -> list[Path]:
    """Every entry: one file each (its stored files' bytes, then its record)."""
    files = sorted(p for p in cache.glob("[0-9a-f][0-9a-f]/*") if p.is_file())
    assert files, f"nothing stored in {cache}"
    return files


def _stored_outputs(entry_file: Path) -> list[tuple[int, int]]:
    """Where an entry keeps the outputs it hands out (offset, size), from its record: the
    JSON before the last line, which is the record's length."""
    raw = entry_file.read_bytes()
    length = int(raw[-13:-1])
    files = json.loads(raw[-13 - length:-13])["files"]
    return [(f["offset"], f["size"]) for name, f in files.items() if name.startswith("out/")]


def _corrupt(path: Path, at: int = 0) -> None:
    """Overwrite 64 bytes in place, keeping the size and the modification time."""
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(min(at, max(st.st_size - 64, 0)))
        fh.write(bytes(range(64))[: st.st_size])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def _snapshot(paths: list[Path]) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in paths}


def test_a_damaged_cache_entry_is_a_miss_and_prepared_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src, cache = _inputs(tmp_path), tmp_path / "cache"
    _prep(src, tmp_path / "fresh", None)
    fresh = _outputs(tmp_path / "fresh")
    _prep(src, tmp_path / "one", cache)
    assert _outputs(tmp_path / "one") == fresh
    stored = _entry_files(cache)
    assert len(stored) == 2
    for p in stored:  # the cached outputs, the ones handed to the next run
        (offset, size), = _stored_outputs(p)
        _corrupt(p, at=offset + size // 2)
    with caplog.at_level(logging.WARNING, logger="mediaprep"):
        _prep(src, tmp_path / "two", cache, "-j", "0")  # in-process: the log is seen here
    assert _outputs(tmp_path / "two") == fresh
    assert sum("damaged" in r.getMessage() for r in caplog.records) == 2
    # The damaged entries were dropped and stored again by run 2: run 3 is served whole.
    assert all(p.is_file() for p in stored)
    _prep(src, tmp_path / "three", cache)
    assert _outputs(tmp_path / "three") == fresh


@pytest.mark.parametrize("which", ['"meta.json":', '"line.json":', '"record":'])
def test_a_damaged_record_or_line_is_a_miss(tmp_path: Path, which: str) -> None:
    """Damage in an entry's record: in the journal record or the parts.jsonl line it keeps
    (small texts live inside it), or in its own fields."""
    src, cache = _inputs(tmp_path), tmp_path / "cache"
    _prep(src, tmp_path / "fresh", None)
    _prep(src, tmp_path / "one", cache)
    targets = _entry_files(cache)
    assert len(targets) == 2
    for p in targets:
        at = p.read_bytes().rindex(which.encode()) + len(which) + 8
        _corrupt(p, at=at)
    _prep(src, tmp_path / "two", cache)
    assert _outputs(tmp_path / "two") == _outputs(tmp_path / "fresh")
    assert (tmp_path / "two" / "parts.jsonl").read_bytes() == (
        tmp_path / "fresh" / "parts.jsonl").read_bytes().replace(
        str(tmp_path / "fresh").encode(), str(tmp_path / "two").encode())


def test_outputs_and_the_cache_share_no_data(tmp_path: Path) -> None:
    """Editing run 1's outputs in place leaves the cache as stored, and damage in the cache
    leaves the outputs (and journal records) of the runs it served as they were."""
    src, cache = _inputs(tmp_path), tmp_path / "cache"
    _prep(src, tmp_path / "fresh", None)
    fresh = _outputs(tmp_path / "fresh")
    one = tmp_path / "one"
    _prep(src, one, cache)
    stored = _snapshot(_entry_files(cache))
    ones = [one / rel for rel in fresh if not rel.startswith("line:")]
    for p in ones:
        _corrupt(p, at=50)
    for p in (one / ".mediaprep" / "journal").iterdir():
        _corrupt(p, at=10)
    assert _snapshot(list(stored)) == stored  # the cache did not change with them

    two = tmp_path / "two"
    _prep(src, two, cache)  # served by the cache
    assert _outputs(two) == fresh
    mine = sorted(p for p in two.rglob("*") if p.is_file() and p.name != "lock")
    before = _snapshot(mine)
    for p in stored:
        _corrupt(p, at=20)
    assert _snapshot(mine) == before  # nothing of run 2 is the cache's data
    _prep(src, two, cache)  # the journal's rerun: its records are its own copies
    assert _outputs(two) == fresh
