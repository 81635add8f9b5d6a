"""Folder runs as library calls: mediaprep.batch.prep_many and check_many, as the CLI runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mediaprep.batch import BatchError, InputResult, check_many, prep_many
from mediaprep.batch.summary import input_failed
from mediaprep.cli import main
from mediaprep.settings import make_settings


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def media(tmp_path: Path, generated: dict[str, Path]) -> Path:
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    for new, key in {"a.png": "png", "b.jpg": "jpeg", "sub/small.png": "png_10x400"}.items():
        shutil.copy(generated[key], root / new)
    (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def test_prep_many_writes_the_parts_file_prep_writes(media, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = run("prep", media, "-o", tmp_path / "cli", "--no-cache", "-q", "-j", "1")
    assert r.exit_code == 1, r.output  # bad.png fails
    seen: list[InputResult] = []
    result = prep_many([media], tmp_path / "lib", make_settings(None), jobs=1, cache=False,
                       on_result=seen.append)
    assert ((tmp_path / "lib" / "parts.jsonl").read_bytes()
            == (tmp_path / "cli" / "parts.jsonl").read_bytes())
    assert (tmp_path / "lib" / "report.html").is_file()
    assert sorted(r.index for r in seen) == [0, 1, 2, 3]
    assert (result.total, result.failed, result.prepared) == (4, 1, 3)
    assert result.fixed == 1  # the 10 px image is padded
    assert [x["path"] for x in result.lines()] == [r.path for r in result.results]
    assert [input_failed(x) for x in result.lines()] == [not r.ok for r in result.results]
    assert "4 files, 2 passed, 1 fixed, 1 failed" in result.summary()
    assert "4 files, 2 passed, 1 fixed, 1 failed" in r.stderr


def test_a_rerun_comes_from_the_journal_and_another_folder_from_the_cache(media,
                                                                        tmp_path) -> None:
    cache = tmp_path / "cache"
    first = prep_many([media], tmp_path / "out", jobs=0, cache=cache)
    assert first.from_journal == first.from_cache == 0
    again = prep_many([media], tmp_path / "out", jobs=0, cache=cache)
    assert again.from_journal == 4 and again.failed == 1
    other = prep_many([media], tmp_path / "out2", jobs=0, cache=cache)
    assert other.from_cache == 4 and other.failed == 1  # a bad input's finding is cached too
    assert ((tmp_path / "out2" / "parts.jsonl").read_bytes()
            == (tmp_path / "out" / "parts.jsonl").read_bytes())


def test_check_many_gives_the_report_of_check_format_json(media, tmp_path,
                                                          monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = run("check", media, "--format", "json", "-j", "0", "--strict")
    assert r.exit_code == 1
    result = check_many([media], make_settings(None), jobs=0, strict=True)
    assert result.report == json.loads(r.stdout)
    assert result.failed == result.summary["failed"] >= 1
    assert [f["path"] for f in result.files] == [f["path"] for f in json.loads(r.stdout)["files"]]


def test_prep_many_refuses_what_prep_refuses(media, tmp_path) -> None:
    with pytest.raises(BatchError, match="needs --prompt"):
        prep_many([media], tmp_path / "out", jobs=0, batch_requests=tmp_path / "b.jsonl")
    with pytest.raises(BatchError, match="inside the output folder"):
        prep_many([media / "a.png"], media, jobs=0, cache=False)
    with pytest.raises(BatchError, match="is an input"):
        prep_many([media], tmp_path / "out", jobs=0, batch_requests=media / "a.png",
                  prompt="Describe.")
    assert not (tmp_path / "out" / "parts.jsonl").exists()


def test_prep_many_writes_batch_requests(media, tmp_path) -> None:
    dest = tmp_path / "batch.jsonl"
    result = prep_many([media], tmp_path / "out", jobs=0, cache=False, batch_requests=dest,
                       prompt="Describe.", group=2)
    assert (result.requests, result.requests_left_out) == (2, 1)
    bodies = [json.loads(x) for x in dest.read_text().splitlines()]
    assert [b["url"] for b in bodies] == ["/v1/chat/completions"] * 2


def test_the_failure_predicate() -> None:
    fixed = {"ok": True, "findings": [{"severity": "error", "code": "image.too_small"}]}
    warned = {"ok": True, "findings": [{"severity": "warning", "code": "x"}]}
    assert not input_failed(fixed)  # a prep line whose error was fixed
    assert not input_failed(warned) and input_failed(warned, strict=True)
    assert input_failed({"ok": False, "findings": []})
    assert input_failed({"findings": [{"severity": "error"}]})  # no "ok": by its findings


def test_importing_the_batch_api_leaves_media_libraries_for_later() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, mediaprep.batch\n"
         "print(sorted(m for m in ('av', 'numpy', 'PIL', 'pillow_heif') if m in sys.modules))"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_prep_many_takes_an_options_object(tmp_path):
    from PIL import Image

    from mediaprep.batch import PrepOptions

    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(src / "a.png")
    seen = []
    options = PrepOptions(jobs=0, cache=False, html_report=False, on_result=seen.append)
    result = prep_many([src], tmp_path / "out", None, options)
    assert [r.ok for r in seen] == [True] and result.prepared == 1
    assert not (tmp_path / "out" / "report.html").exists()
    # keyword changes apply on top of the object; an unknown one is a TypeError
    again = prep_many([src], tmp_path / "out2", None, options, html_report=True)
    assert again.report_path is not None and (tmp_path / "out2" / "report.html").is_file()
    with pytest.raises(TypeError):
        prep_many([src], tmp_path / "out3", None, options, job=2)


def test_every_parts_line_has_the_same_keys_and_json_results_say_codes_and_outputs(tmp_path):
    """parts.jsonl lines have the same keys every time (null where a value does not apply);
    prep --format json gives each input its finding codes, outputs and changes."""
    import json

    from click.testing import CliRunner
    from PIL import Image

    from mediaprep.cli import main
    from mediaprep.types import LINE_KEYS

    src = tmp_path / "in"
    src.mkdir()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(src / "plain.png")
    Image.new("RGB", (300, 8), (9, 9, 9)).save(src / "banner.png")  # padded: image.too_small
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["prep", str(src), "-o", str(out), "--no-cache", "-j", "0",
                                  "--format", "json"])
    assert r.exit_code == 1, r.output
    lines = [json.loads(x) for x in (out / "parts.jsonl").read_text().splitlines()]
    assert [tuple(line) for line in lines] == [LINE_KEYS] * 3
    by = {line["path"].rsplit("/", 1)[-1]: line for line in lines}
    assert by["plain.png"]["fps"] is None and by["plain.png"]["changes"] == []
    results = {x["path"].rsplit("/", 1)[-1]: x for x in json.loads(r.stdout)["results"]}
    assert "image.too_small" in results["banner.png"]["codes"]
    assert results["banner.png"]["outputs"] == by["banner.png"]["outputs"] != []
    assert results["banner.png"]["changes"] == ["padded", "re-encoded"]
    assert results["broken.jpg"]["codes"] and not results["broken.jpg"]["ok"]
