"""The prep cache touches only its own folder: a root is mediaprep's by its CACHEDIR.TAG (made
when the cache makes or finds an empty root), a folder that is neither tagged nor empty is
never written or swept, and the sweep removes only the cache's own temporaries, never through
a link (issue 22, item 1)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mediaprep.batch import prep_many
from mediaprep.cli import main

SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"
LONG_AGO = 1_000_000_000  # 2001: far older than the sweep's hour


def run(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _inputs(root: Path, generated: dict[str, Path], *names: str) -> Path:
    """Copies of the generated pictures, each with other bytes (so another cache key)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        key = {"a.png": "png", "b.jpg": "jpeg"}[name]
        shutil.copy(generated[key], root / name)
    return root


def _old_folder(path: Path, content: str = "user's work") -> Path:
    path.mkdir(parents=True)
    (path / "file.txt").write_text(content)
    os.utime(path, (LONG_AGO, LONG_AGO))
    return path


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_cache_dir_named_on_a_users_folder_is_refused_and_left_untouched(
        generated: dict[str, Path], tmp_path: Path) -> None:
    home = tmp_path / "home"
    work = _old_folder(home / "tmp" / "project")
    (home / "notes.txt").write_text("mine")
    before = _tree(home)
    media = _inputs(tmp_path / "in", generated, "a.png")
    res = run("prep", media, "-o", tmp_path / "out", "--cache-dir", home, "-j", "0")
    assert res.exit_code == 2, res.output
    assert "not a mediaprep cache" in res.output and str(home) in res.output
    assert (work / "file.txt").read_text() == "user's work"
    assert _tree(home) == before  # no tag, no tmp folder, no entry: nothing written
    assert not (tmp_path / "out").exists()  # a usage error before any work


def test_default_cache_on_a_users_folder_is_skipped_with_a_warning(
        generated: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "home"
    work = _old_folder(home / "tmp" / "project")
    before = _tree(home)
    monkeypatch.setenv("MEDIAPREP_CACHE_DIR", str(home))  # e.g. MEDIAPREP_CACHE_DIR=~
    media = _inputs(tmp_path / "in", generated, "a.png", "b.jpg")
    with caplog.at_level(logging.WARNING, logger="mediaprep"):
        result = prep_many([media], tmp_path / "out", jobs=0, html_report=False)
    assert result.passed + result.fixed == 2 and not result.failed
    assert any("not a mediaprep cache" in r.getMessage() and "without the cache" in
               r.getMessage() for r in caplog.records)
    assert (work / "file.txt").read_text() == "user's work"
    assert _tree(home) == before


def test_a_new_or_empty_cache_folder_gets_a_cachedir_tag(generated: dict[str, Path],
                                                         tmp_path: Path) -> None:
    media = _inputs(tmp_path / "in", generated, "a.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    for n, cache in enumerate((tmp_path / "new" / "cache", empty)):
        assert run("prep", media, "-o", tmp_path / f"o{n}", "--cache-dir", cache, "-j", "0",
                   "-q").exit_code == 0
        tag = (cache / "CACHEDIR.TAG").read_text()
        assert tag.split("\n")[0] == SIGNATURE
        assert "mediaprep" in tag.split("\n", 1)[1]
        # the tagged folder is a working cache: the next run is served from it
        again = run("prep", media, "-o", tmp_path / f"again{n}", "--cache-dir", cache,
                    "-j", "0", "-q", "--format", "json")
        assert '"from_cache": 1' in again.output


def test_a_cache_of_an_earlier_mediaprep_without_the_tag_is_still_used(
        generated: dict[str, Path], tmp_path: Path) -> None:
    media = _inputs(tmp_path / "in", generated, "a.png")
    cache = tmp_path / "cache"
    assert run("prep", media, "-o", tmp_path / "o1", "--cache-dir", cache, "-j", "0",
               "-q").exit_code == 0
    (cache / "CACHEDIR.TAG").unlink()  # as an earlier mediaprep left it
    again = run("prep", media, "-o", tmp_path / "o2", "--cache-dir", cache, "-j", "0", "-q",
                "--format", "json")
    assert again.exit_code == 0 and '"from_cache": 1' in again.output
    assert (cache / "CACHEDIR.TAG").read_text().startswith(SIGNATURE)


def test_a_link_where_the_cache_keeps_its_temporaries_is_never_followed(
        generated: dict[str, Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    media = _inputs(tmp_path / "in", generated, "a.png")
    assert run("prep", media, "-o", tmp_path / "o1", "--cache-dir", cache, "-j", "0",
               "-q").exit_code == 0
    projects = tmp_path / "projects"  # someone planted cache/tmp -> ~/projects
    _old_folder(projects / "thesis")
    _old_folder(projects / "0123456789abcdef.abcd1234")  # even a name the cache gives
    before = _tree(projects)
    shutil.rmtree(cache / "tmp")
    (cache / "tmp").symlink_to(projects, target_is_directory=True)
    _inputs(media, generated, "b.jpg")  # a miss: the run stores an entry
    res = run("prep", media, "-o", tmp_path / "o2", "--cache-dir", cache, "-j", "0", "-q")
    assert res.exit_code == 0, res.output
    assert _tree(projects) == before  # nothing removed, nothing written through the link
    assert (projects / "thesis" / "file.txt").read_text() == "user's work"


def test_a_tagged_caches_own_stale_temporaries_are_swept_and_nothing_else(
        generated: dict[str, Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    media = _inputs(tmp_path / "in", generated, "a.png")
    assert run("prep", media, "-o", tmp_path / "o1", "--cache-dir", cache, "-j", "0",
               "-q").exit_code == 0
    tmp = cache / "tmp"
    dead_put = _old_folder(tmp / "0123456789abcdef.k2x_9qzt")  # a put killed long ago
    dead_drop = _old_folder(tmp / "broken.abcdefgh")
    live_put = tmp / "fedcba9876543210.abcdefgh"  # another run's put, under way
    live_put.mkdir()
    foreign = _old_folder(tmp / "keep-me")  # not a name the cache gives
    outside = _old_folder(tmp_path / "outside")
    (tmp / "0000000000000000.linklink").symlink_to(outside, target_is_directory=True)
    os.utime(tmp / "0000000000000000.linklink", (LONG_AGO, LONG_AGO), follow_symlinks=False)
    _inputs(media, generated, "b.jpg")  # a miss: the run stores an entry, and sweeps
    assert run("prep", media, "-o", tmp_path / "o2", "--cache-dir", cache, "-j", "0",
               "-q").exit_code == 0
    assert not dead_put.exists() and not dead_drop.exists()
    assert live_put.is_dir() and (foreign / "file.txt").is_file()
    assert (outside / "file.txt").read_text() == "user's work"
