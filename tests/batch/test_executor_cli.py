"""The CLI's --executor / --scheduler / --manifest options (issue: beyond one machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mediaprep.cli import main


def _parts(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "parts.jsonl").read_text().splitlines()]


def _manifest(tmp_path: Path, generated: dict[str, Path], names: list[str]) -> Path:
    m = tmp_path / "inputs.txt"
    lines = ["# media for the cluster job", ""]
    for n in names:
        lines.append(str(generated[n]))
    m.write_text("\n".join(lines) + "\n")
    return m


NAMES = ["jpeg", "jpeg_exif6", "png_10x400", "gif_animated", "png_2211x11", "video_ts"]


def test_manifest_lists_inputs_like_paths(generated, tmp_path):
    m = _manifest(tmp_path, generated, NAMES)
    by_manifest = CliRunner().invoke(main, ["check", "--manifest", str(m), "-j", "0",
                                            "--format", "json"])
    by_paths = CliRunner().invoke(main, ["check", *[str(generated[n]) for n in NAMES], "-j", "0",
                                         "--format", "json"])
    assert by_manifest.exit_code == by_paths.exit_code == 1
    a = json.loads(by_manifest.stdout)["files"]
    b = json.loads(by_paths.stdout)["files"]
    assert [f["path"] for f in a] == [f["path"] for f in b] and len(a) == len(NAMES)
    assert [f["findings"] for f in a] == [f["findings"] for f in b]


def test_bad_manifest_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(main, ["check", "--manifest", str(tmp_path / "missing.txt")])
    assert res.exit_code == 2


def test_prep_on_dask_matches_local(generated, tmp_path):
    pytest.importorskip("distributed")
    m = _manifest(tmp_path, generated, NAMES)
    local, dask = tmp_path / "local", tmp_path / "dask"
    r1 = CliRunner().invoke(main, ["prep", "--manifest", str(m), "-o", str(local), "-j", "2",
                                   "--no-cache", "-q"])
    r2 = CliRunner().invoke(main, ["prep", "--manifest", str(m), "-o", str(dask), "-j", "2",
                                   "--no-cache", "-q", "--executor", "dask"])
    assert r1.exit_code == r2.exit_code == 1, (r1.output, r2.output)  # the 201:1 image fails
    a, b = _parts(local), _parts(dask)
    assert a == b
    for line in a:
        for rel in line["outputs"]:
            assert (local / rel).read_bytes() == (dask / rel).read_bytes()


def test_unknown_executor_is_a_usage_error(generated):
    res = CliRunner().invoke(main, ["check", str(generated["jpeg"]), "--executor", "ray"])
    assert res.exit_code == 2


def test_cache_serves_a_dask_run(generated, tmp_path):
    pytest.importorskip("distributed")
    m = _manifest(tmp_path, generated, ["jpeg_exif6", "png_10x400", "gif_animated"])
    cache = tmp_path / "cache"
    first, second = tmp_path / "one", tmp_path / "two"
    base = ["prep", "--manifest", str(m), "-j", "2", "-q", "--executor", "dask",
            "--cache-dir", str(cache)]
    assert CliRunner().invoke(main, [*base, "-o", str(first)]).exit_code == 0
    assert CliRunner().invoke(main, [*base, "-o", str(second)]).exit_code == 0
    a, b = _parts(first), _parts(second)
    assert [x["part"] for x in a] == [x["part"] for x in b]
    for x, y in zip(a, b, strict=True):
        for r1, r2 in zip(x["outputs"], y["outputs"], strict=True):
            assert (first / r1).read_bytes() == (second / r2).read_bytes()
    # the second run's records are copies of the cache's (what the first run stored), and
    # like its outputs share no data with the first run's (issue 17: no hard links)
    # (each line is kept once in DIR: in parts.jsonl, the journal's line files are dropped)
    assert (first / "parts.jsonl").read_bytes() == (second / "parts.jsonl").read_bytes()
    assert not list((second / ".mediaprep" / "journal").glob("*.line"))
    assert all(p.stat().st_nlink == 1 for d in (first, second) for p in d.rglob("*")
               if p.is_file())
