"""What the end of a ``prep`` run says (issue 15 items 3 and 4): changes by kind, where the
results came from, the report's place, stale outputs and ``--clean``, ``--format json``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from mediaprep.batch import prep_many
from mediaprep.cli import main


def run(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def folder(root: Path, generated: dict[str, Path], names: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for new, key in names.items():
        shutil.copy(generated[key], root / new)
    return root


def test_summary_names_changes_origins_and_report(generated, tmp_path) -> None:
    media = folder(tmp_path / "in", generated,
                   {"a.png": "png", "b.jpg": "jpeg_exif6", "c.png": "png_10x400"})
    out = tmp_path / "out"
    r = run("prep", media, "-o", out, "--no-cache", "-j", "0")
    assert r.exit_code == 0, r.output
    err = r.stderr.splitlines()
    # a rotation is a change: fixed, not passed
    assert err[0].startswith("prep: 3 files, 1 passed, 2 fixed, 0 failed"), err
    assert any(line.startswith("prep: changes: ") and "1 rotated" in line
               and "1 padded" in line for line in err), err
    assert "prep: 3 prepared now" in err
    assert f"prep: report: {out / 'report.html'}" in err
    # status lines say what changed, without the encoder's arithmetic
    assert "counted" not in r.stdout and "passed through unchanged" not in r.stdout
    assert f"{media / 'b.jpg'}: fixed: rotated" in r.stdout
    assert f"{media / 'a.png'}: ok, unchanged" in r.stdout
    again = run("prep", media, "-o", out, "--no-cache", "-j", "0")
    assert "prep: 0 prepared now, 3 already done (journal)" in again.stderr.splitlines()
    assert again.stderr.splitlines()[0].startswith("prep: 3 files, 1 passed, 2 fixed, 0 failed")


def test_summary_counts_the_cache(generated, tmp_path) -> None:
    media = folder(tmp_path / "in", generated, {"a.png": "png", "b.jpg": "jpeg_exif6"})
    cache = tmp_path / "cache"
    first = prep_many([media], tmp_path / "o1", cache=cache, jobs=0, html_report=False)
    assert (first.prepared_now, first.from_cache) == (2, 0)
    second = prep_many([media], tmp_path / "o2", cache=cache, jobs=0, html_report=False)
    assert (second.prepared_now, second.from_cache, second.from_journal) == (0, 2, 0)
    assert "0 prepared now, 2 from the cache" in second.summary().splitlines()
    assert second.change_counts() == {"rotated": 1, "re-encoded": 1}
    assert second.report_path is None and "report:" not in second.summary()


def test_prep_format_json_is_one_object_on_stdout(generated, tmp_path) -> None:
    media = folder(tmp_path / "in", generated, {"a.png": "png", "b.jpg": "jpeg_exif6",
                                                "d.jpg": "jpeg_truncated"})
    r = run("prep", media, "-o", tmp_path / "out", "--no-cache", "-j", "0", "--format", "json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)  # nothing else on stdout: not the status lines
    s = doc["summary"]
    assert (s["files"], s["passed"], s["fixed"], s["failed"]) == (3, 1, 1, 1)
    assert s["changes"]["rotated"] == 1 and s["prepared_now"] == 3
    assert doc["report"] == str(tmp_path / "out" / "report.html")
    by_name = {Path(x["path"]).name: x for x in doc["results"]}
    assert by_name["b.jpg"]["changes"][0] == "rotated" and by_name["b.jpg"]["fixed"]
    assert not by_name["d.jpg"]["ok"]
    assert "prep: 3 files, 1 passed, 1 fixed, 1 failed" in r.stderr  # text on stderr
    assert "b.jpg: fixed: rotated" in r.stderr  # and the status lines


def test_stale_outputs_are_named_then_cleaned(generated, tmp_path) -> None:
    media = folder(tmp_path / "in", generated,
                   {"a.png": "png", "b.jpg": "jpeg_exif6", "c.png": "png_10x400"})
    out = tmp_path / "out"
    assert run("prep", media, "-o", out, "--no-cache", "-j", "0").exit_code == 0
    outputs = {p.name for p in out.iterdir() if p.is_file()}
    (out / "notes.txt").write_text("mine")  # the user's file: never counted or removed
    (media / "b.jpg").unlink()
    (media / "c.png").unlink()
    second = run("prep", media, "-o", out, "--no-cache", "-j", "0")
    assert ("prep: 2 outputs from earlier runs are not in parts.jsonl (--clean removes them)"
            in second.stderr.splitlines()), second.stderr
    # the records are gone now; a third run still knows the outputs
    third = run("prep", media, "-o", out, "--no-cache", "-j", "0", "--clean")
    assert "prep: removed 2 outputs from earlier runs (--clean)" in third.stderr.splitlines()
    left = {p.name for p in out.iterdir() if p.is_file()}
    assert left == (outputs - {"b.jpg", "c.png"}) | {"notes.txt"}
    assert {"a.png", "parts.jsonl", "report.html"} <= left
    assert (out / "report_files").is_dir()
    fourth = run("prep", media, "-o", out, "--no-cache", "-j", "0")
    assert "earlier runs" not in fourth.stderr


def test_stale_output_changed_by_the_user_is_left(generated, tmp_path) -> None:
    media = folder(tmp_path / "in", generated, {"a.png": "png", "b.png": "png"})
    out = tmp_path / "out"
    prep_many([media], out, cache=False, jobs=0, html_report=False)
    (media / "b.png").unlink()
    (out / "b.png").write_bytes(b"edited by me")  # no longer the file mediaprep wrote
    result = prep_many([media], out, cache=False, jobs=0, html_report=False, clean=True)
    assert result.stale == [] and result.cleaned == []
    assert (out / "b.png").read_bytes() == b"edited by me"


def test_each_data_url_is_stored_once_and_resume_is_byte_identical(generated, tmp_path) -> None:
    media = folder(tmp_path / "in", generated, {"a.png": "png", "b.jpg": "jpeg_exif6",
                                                "c.png": "png_10x400"})
    out = tmp_path / "out"
    first = prep_many([media], out, cache=False, jobs=0, html_report=False)
    parts = (out / "parts.jsonl").read_bytes()
    urls = [json.loads(x)["part"]["image_url"]["url"] for x in parts.splitlines()]
    assert all(u.startswith("data:") for u in urls)
    # no copy of any data URL elsewhere in DIR (the journal used to keep one per input)
    for p in out.rglob("*"):
        if p.is_file() and p.name != "parts.jsonl":
            blob = p.read_bytes()
            assert not any(u[-200:].encode() in blob for u in urls), p
    # a rerun that must rebuild parts.jsonl (its signature gone) takes the lines from it
    (out / ".mediaprep" / "parts.sig").unlink()
    again = prep_many([media], out, cache=False, jobs=0, html_report=False)
    assert again.from_journal == 3 and again.prepared_now == 0
    assert (out / "parts.jsonl").read_bytes() == parts
    assert [r.status for r in again.results] == [r.status for r in first.results]
    # a parts.jsonl edited by hand is not trusted: those inputs are prepared again
    (out / "parts.jsonl").write_bytes(parts.replace(b"data:", b"DATA:", 1))
    third = prep_many([media], out, cache=False, jobs=0, html_report=False)
    assert third.prepared_now == 3
    assert (out / "parts.jsonl").read_bytes() == parts
