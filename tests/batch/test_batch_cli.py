"""check/prep over folders: -j workers, --timeout, crash isolation, --quiet and the summary,
the prep cache (--cache-dir, --no-cache), the journal, --batch-requests, --allow-url."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

import mediaprep.batch.journal as batch
from mediaprep.batch.executors import LocalExecutor
from mediaprep.cli import main

# A test double for the per-file work, plugged in through the public executor seam
# (``--executor double:TroubleExecutor``): the local executor, with each input's work run
# through troubled(): files named hang* sleep 30 s, crash* kill their worker with SIGSEGV, and
# full* meet a full disk in prep. Workers import it by name (the runner pickles the work).
DOUBLE = textwrap.dedent('''
    import errno, functools, os, signal, time
    from pathlib import Path
    from mediaprep.batch.executors import LocalExecutor

    def troubled(fn, item):
        task = getattr(item, "task", item)  # a prep job carries its task; a check is the task
        name = Path(task.source).name
        if name.startswith("hang"):
            time.sleep(30)
        if name.startswith("crash"):
            os.kill(os.getpid(), signal.SIGSEGV)
        if name.startswith("full") and item is not task:  # its output meets a full disk
            raise OSError(errno.ENOSPC, "No space left on device", task.out_dir)
        return fn(item)

    class TroubleExecutor(LocalExecutor):
        def run(self, tasks, fn, **options):
            return super().run(tasks, functools.partial(troubled, fn), **options)
''')


SEEN: list[tuple[str, bool]] = []


class SpyExecutor(LocalExecutor):
    """In-process (-j 0) executor that records what each check task was given, then checks it
    with fetching off (the test has no server)."""

    def run(self, tasks: Any, fn: Any, **options: Any) -> Any:
        SEEN.extend((t.source, t.settings.allow_url) for t in tasks)
        offline = [t.__class__(t.source, t.display, t.settings.replace(allow_url=False))
                   for t in tasks]
        return super().run(offline, fn, **options)


def run(*args: Any) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def make_folder(root: Path, generated: dict[str, Path], names: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for new, key in names.items():
        shutil.copy(generated[key], root / new)
    return root


@pytest.fixture()
def troubled(tmp_path: Path, generated: dict[str, Path]) -> tuple[Path, Path]:
    """A folder with good files, one that hangs and one that crashes; and the double's dir."""
    media = make_folder(tmp_path / "in", generated, {
        "a.png": "png", "b.jpg": "jpeg", "hang.png": "png", "crash.png": "png",
        "small.png": "png_10x400"})
    dbl = tmp_path / "double"
    dbl.mkdir()
    (dbl / "double.py").write_text(DOUBLE)
    return media, dbl


def run_double(dbl: Path, *args: Any, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(dbl), str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "mediaprep", *map(str, args),
                           "--executor", "double:TroubleExecutor"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


# --- jobs, timeout, crash isolation ----------------------------------------------------------


def test_hanging_and_crashing_files_cost_only_themselves_in_check(troubled, tmp_path) -> None:
    media, dbl = troubled
    # --timeout 10, not 1: on a loaded machine a good input's worker (its first import of
    # Pillow included) took over a second and failed as "took too long"; the hang is 30 s,
    # and "took too long" below says the timeout cut it (no wall-clock assertion)
    proc = run_double(dbl, "check", media, "-j", "2", "--timeout", "10", "--format", "json",
                      cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    files = {Path(f["path"]).name: f for f in json.loads(proc.stdout)["files"]}
    assert set(files) == {"a.png", "b.jpg", "hang.png", "crash.png", "small.png"}
    for name in ("hang.png", "crash.png"):
        assert not files[name]["ok"]
        assert [x["code"] for x in files[name]["findings"]] == ["file.unreadable"]
    assert "took too long" in files["hang.png"]["findings"][0]["message"]
    assert "crash" in files["crash.png"]["findings"][0]["message"]
    assert files["a.png"]["ok"] and files["b.jpg"]["ok"]
    assert "image.too_small" in [x["code"] for x in files["small.png"]["findings"]]


@pytest.mark.parametrize("jobs", ["2", "0"])
def test_a_full_disk_stops_prep_with_a_message_and_a_rerun_finishes(generated, tmp_path,
                                                                     jobs) -> None:
    """A full disk is the machine's fault, not each input's: the run stops at the first one
    (exit 2, no traceback) instead of marking every remaining input unreadable; a rerun once
    there is room finishes the job."""
    names = {f"{c}.png": "png" for c in "abcdefgh"}
    media = make_folder(tmp_path / "in", generated, {**names, "full.png": "png"})
    dbl = tmp_path / "double"
    dbl.mkdir()
    (dbl / "double.py").write_text(DOUBLE)
    out = tmp_path / "out"
    proc = run_double(dbl, "prep", media, "-o", out, "-j", jobs, "--no-cache", "-q",
                      cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "stopped" in proc.stderr and "No space left on device" in proc.stderr
    assert "full.png" in proc.stderr and "run the same command again" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "parts.jsonl").exists()
    assert [p for p in out.rglob("*") if p.is_file() and p.name.startswith(".")] == []
    (media / "full.png").rename(media / "room.png")  # the disk has room again
    r = run("prep", media, "-o", out, "--no-cache", "-q")
    assert r.exit_code == 0, r.stderr
    lines = [json.loads(x) for x in (out / "parts.jsonl").read_text().splitlines()]
    assert len(lines) == 9 and all(x["ok"] for x in lines)


def test_a_full_disk_while_writing_parts_jsonl_stops_prep(generated, tmp_path,
                                                          monkeypatch) -> None:
    import mediaprep.batch.parts_file as parts_file

    def full(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(parts_file, "_sendfile", full)
    media = make_folder(tmp_path / "in", generated, {"a.png": "png", "b.jpg": "jpeg"})
    out = tmp_path / "out"
    r = run("prep", media, "-o", out, "--no-cache", "-q", "-j", "1")
    assert r.exit_code == 2
    assert "stopped: [Errno 28] No space left on device" in r.stderr
    assert not (out / "parts.jsonl").exists()
    assert [p for p in out.iterdir() if p.name.startswith(".mp-tmp-")] == []


def test_hanging_file_in_prep_gets_an_unreadable_line(troubled, tmp_path) -> None:
    media, dbl = troubled
    out = tmp_path / "out"
    # --timeout 10, not 1 or 3: on a loaded machine (load 14) a real input's worker took over
    # 3 s (a good input failed as "took too long"); the hang is 30 s either way, and its line
    # says it was cut by the timeout (no wall-clock assertion: the machine's load is not the
    # code's)
    proc = run_double(dbl, "prep", media, "-o", out, "-j", "2", "--timeout", "10", "--no-cache",
                      cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(x) for x in (out / "parts.jsonl").read_text().splitlines()]
    by_name = {Path(x["path"]).name: x for x in lines}
    assert [Path(x["path"]).name for x in lines] == sorted(by_name)  # input order
    for name in ("hang.png", "crash.png"):
        assert not by_name[name]["ok"] and by_name[name]["part"] is None
        assert by_name[name]["findings"][0]["code"] == "file.unreadable"
    assert "took too long" in by_name["hang.png"]["findings"][0]["message"]
    assert by_name["a.png"]["ok"] and by_name["small.png"]["ok"]  # padded
    assert not [p for p in out.rglob(".*") if p.is_file() and p.parent == out], list(out.iterdir())


def test_jobs_give_the_same_report_as_in_process(generated, tmp_path) -> None:
    media = make_folder(tmp_path / "in", generated, {
        f"{i}_{k}.png" if "png" in k else f"{i}_{k}.jpg": k
        for i, k in enumerate(["png", "jpeg", "png_10x400", "png_7681x4320", "jpeg_truncated",
                               "jpeg_exif6"])})
    r0 = run("check", media, "-j", "0", "--format", "json")
    r2 = run("check", media, "-j", "2", "--format", "json")
    assert r0.exit_code == r2.exit_code == 1
    assert json.loads(r0.stdout) == json.loads(r2.stdout)


def test_jobs_and_timeout_are_validated(generated) -> None:
    assert run("check", generated["png"], "-j", "-1").exit_code == 2
    assert run("check", generated["png"], "--timeout", "-3").exit_code == 2
    assert run("check", generated["png"], "--timeout", "0", "-j", "1").exit_code == 0


# --- quiet, progress, summary ----------------------------------------------------------------


def test_prep_summary_and_quiet(generated, tmp_path) -> None:
    media = make_folder(tmp_path / "in", generated, {
        "a.png": "png", "b.jpg": "jpeg_exif6", "c.png": "png_10x400", "d.jpg": "jpeg_truncated"})
    loud = run("prep", media, "-o", tmp_path / "o1", "--no-cache", "-j", "2")
    assert loud.exit_code == 1
    assert "c.png: fixed: padded" in loud.stdout and "d.jpg: FAILED" in loud.stdout
    assert "b.jpg: fixed: rotated" in loud.stdout
    summary = loud.stderr.strip().splitlines()[0]
    assert summary.startswith("prep: 4 files, ")
    # a change counts as fixed: exif6 was rotated (no error finding), the 10 px image padded
    assert "1 passed, 2 fixed, 1 failed" in summary, summary
    assert " in → " in summary and " out" in summary and summary.count(" s") >= 1
    assert "\r" not in loud.stderr  # no bar when stderr is not a terminal
    quiet = run("prep", media, "-o", tmp_path / "o2", "--no-cache", "-q")
    assert quiet.exit_code == 1
    assert quiet.stdout == ""
    assert quiet.stderr.strip().startswith("prep: 4 files, 1 passed, 2 fixed, 1 failed")


def test_progress_bar_on_a_terminal_only(generated, tmp_path) -> None:
    media = make_folder(tmp_path / "in", generated, {f"{i}.png": "png" for i in range(6)})

    def stderr_on_pty(*extra: str) -> str:
        master, slave = pty.openpty()
        # a terminal 100 columns wide (a fresh pty says 0, and a 0-column bar is empty)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        proc = subprocess.Popen([sys.executable, "-c", "from mediaprep.cli import main; main()",
                                 "check", str(media),
                                 "-j", "1", *extra], stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed its side
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(30)
        os.close(master)
        return b"".join(chunks).decode("utf-8", "replace")

    shown = stderr_on_pty()
    assert "check" in shown and "file" in shown and "\r" in shown, shown
    assert stderr_on_pty("--quiet") == ""


# --- cache ----------------------------------------------------------------------------------


def _work(r: Any) -> dict[str, int]:
    """How a ``prep --format json`` run got its inputs: prepared now, from the cache, from
    the journal (the run's own public account)."""
    s = json.loads(r.stdout)["summary"]
    return {k: s[k] for k in ("prepared_now", "from_cache", "from_journal")}


def _tree(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and ".mediaprep" not in p.parts}


def test_cache_hit_does_no_media_work(generated, tmp_path) -> None:
    media = make_folder(tmp_path / "in", generated, {
        "a.png": "png", "b.jpg": "jpeg_exif6", "c.png": "png_10x400", "d.jpg": "jpeg_truncated",
        "v.mp4": "video_audio"})
    cache = tmp_path / "cache"
    first = run("prep", media, "-o", tmp_path / "o1", "--cache-dir", cache, "-j", "0")
    assert first.exit_code == 1
    assert any(cache.iterdir())
    again = run("prep", media, "-o", tmp_path / "o2", "--cache-dir", cache, "-j", "0",
                "--format", "json")
    assert again.exit_code == 1, again.output
    assert _work(again) == {"prepared_now": 0, "from_cache": 5, "from_journal": 0}
    assert (tmp_path / "o2" / "parts.jsonl").read_bytes() == \
        (tmp_path / "o1" / "parts.jsonl").read_bytes()
    assert _tree(tmp_path / "o2") == _tree(tmp_path / "o1")
    # the outputs are o2's own files: editing one in place (as Image.save over its own path
    # does) changes nothing in o1
    a1, a2 = tmp_path / "o1" / "a.png", tmp_path / "o2" / "a.png"
    assert a1.stat().st_ino != a2.stat().st_ino
    before = a1.read_bytes()
    with open(a2, "r+b") as fh:
        fh.write(b"edited")
    assert a1.read_bytes() == before


def test_cache_key_covers_bytes_and_options(generated, tmp_path) -> None:
    media = make_folder(tmp_path / "in", generated, {"a.jpg": "jpeg_exif6"})
    cache = tmp_path / "cache"
    assert run("prep", media, "-o", tmp_path / "o1", "--cache-dir", cache, "-j", "0").exit_code \
        == 0
    fresh = {"prepared_now": 1, "from_cache": 0, "from_journal": 0}

    def prep(*args: Any) -> Any:
        return run("prep", *args, "-j", "0", "--format", "json")

    # the same input and options: a hit
    assert _work(prep(media, "-o", tmp_path / "o0", "--cache-dir", cache))["from_cache"] == 1
    # an option that changes the output: a miss
    r = prep(media, "-o", tmp_path / "o2", "--cache-dir", cache, "--max-side", "32")
    assert r.exit_code == 0 and _work(r) == fresh
    # other bytes under the same name: a miss
    Image.open(generated["jpeg"]).save(media / "a.jpg", quality=50)
    r = prep(media, "-o", tmp_path / "o3", "--cache-dir", cache)
    assert r.exit_code == 0 and _work(r) == fresh
    # the same bytes under another extension: a miss (the name is part of what is probed)
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    shutil.copy(media / "a.jpg", renamed / "a.png")
    r = prep(renamed, "-o", tmp_path / "o5", "--cache-dir", cache)
    assert _work(r) == fresh
    assert "file.extension_mismatch" in (tmp_path / "o5" / "parts.jsonl").read_text()
    # --no-cache: always prepared, and nothing is written to the cache folder
    other = tmp_path / "cache2"
    r = prep(media, "-o", tmp_path / "o4", "--cache-dir", other, "--no-cache")
    assert r.exit_code == 0 and _work(r) == fresh and not other.exists()


def test_cache_hit_for_a_copy_under_another_name(generated, tmp_path) -> None:
    """Content-addressed: a renamed copy hits, and its line names the new input and outputs
    (file:// URLs included)."""
    cache = tmp_path / "cache"
    a = make_folder(tmp_path / "a", generated, {"one.png": "png_10x400"})
    b = make_folder(tmp_path / "b", generated, {"two.png": "png_10x400"})
    common = ["--cache-dir", cache, "-j", "0", "--transport", "path", "--dialect", "dashscope"]
    assert run("prep", a / "one.png", "-o", tmp_path / "o1", *common).exit_code == 0
    hit = run("prep", b / "two.png", "-o", tmp_path / "o2", *common, "--format", "json")
    assert hit.exit_code == 0
    assert _work(hit) == {"prepared_now": 0, "from_cache": 1, "from_journal": 0}
    line = json.loads((tmp_path / "o2" / "parts.jsonl").read_text())
    assert line["path"].endswith("two.png") and line["outputs"] == ["two.png"]
    assert line["part"]["image"] == (tmp_path / "o2" / "two.png").resolve().as_uri()
    assert (tmp_path / "o2" / "two.png").read_bytes() == (tmp_path / "o1" / "one.png").read_bytes()


def test_journal_resumes_without_the_cache(generated, tmp_path) -> None:
    media = make_folder(tmp_path / "in", generated, {"a.png": "png", "b.jpg": "jpeg_exif6"})
    out = tmp_path / "out"
    assert run("prep", media, "-o", out, "--no-cache", "-j", "0").exit_code == 0
    before = (out / "parts.jsonl").read_bytes()
    # nothing changed: parts.jsonl is left as it is (not even rewritten)
    ino = (out / "parts.jsonl").stat().st_ino
    assert run("prep", media, "-o", out, "--no-cache", "-j", "0").exit_code == 0
    assert (out / "parts.jsonl").stat().st_ino == ino
    # parts.jsonl rebuilt from the journal (its signature gone): no media work, same bytes
    (out / ".mediaprep" / "parts.sig").unlink()
    r = run("prep", media, "-o", out, "--no-cache", "-j", "0", "--format", "json")
    assert r.exit_code == 0
    assert _work(r) == {"prepared_now": 0, "from_cache": 0, "from_journal": 2}
    assert (out / "parts.jsonl").read_bytes() == before
    # parts.jsonl removed: it held the only copy of the lines, so they are made again, the same
    (out / "parts.jsonl").unlink()
    assert run("prep", media, "-o", out, "--no-cache", "-j", "0").exit_code == 0
    assert (out / "parts.jsonl").read_bytes() == before
    # an output removed behind its back: that input (only) is prepared again
    (out / "b.jpg").unlink()
    r = run("prep", media, "-o", out, "--no-cache", "-j", "0", "--format", "json")
    assert r.exit_code == 0
    assert [(Path(x["path"]).name, x["origin"]) for x in json.loads(r.stdout)["results"]] == [
        ("a.png", "journal"), ("b.jpg", "prepared")]
    assert (out / "b.jpg").exists() and (out / "parts.jsonl").read_bytes() == before


def test_second_run_into_a_locked_folder_is_refused(generated, tmp_path) -> None:
    out = tmp_path / "out"
    with batch.run_lock(out) as locked:
        assert locked
        r = run("prep", generated["png"], "-o", out, "--no-cache")
        assert r.exit_code == 2 and "another mediaprep prep run" in r.output
    assert run("prep", generated["png"], "-o", out, "--no-cache").exit_code == 0


def test_files_named_like_temporaries_are_not_swept(generated, tmp_path) -> None:
    """Only the atomic-write helper's own temporaries of dead runs are swept (issue 17; a
    killed run's: test_output_safety_links): a user's lookalikes stay."""
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    mine = [out / ".a.jpg.x1y2.part", out / "sub" / ".clip.abc.part.mp4",
            out / ".mediaprep-q1w2.mp4", out / ".b.png.zz.tmp", out / "notes.txt"]
    for j in mine:
        j.write_bytes(b"mine")
    assert run("prep", generated["png"], "-o", out, "--no-cache", "-j", "0").exit_code == 0
    assert all(j.read_bytes() == b"mine" for j in mine)


# --- batch requests ----------------------------------------------------------------------


def _requests(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_batch_requests_one_per_input_and_grouped(generated, tmp_path, ordinary_mode) -> None:
    media = make_folder(tmp_path / "in", generated, {
        "a.png": "png", "b.jpg": "jpeg", "c.png": "png_10x400", "d.jpg": "jpeg_truncated",
        "e.jpg": "jpeg_exif6"})
    reqs = tmp_path / "batch.jsonl"
    r = run("prep", media, "-o", tmp_path / "out", "--no-cache", "--batch-requests", reqs,
            "--prompt", "Describe.", "--model", "kimi-k2.6")
    assert r.exit_code == 1  # d.jpg cannot be prepared
    lines = _requests(reqs)
    assert [Path(x["custom_id"]).name for x in lines] == ["a.png", "b.jpg", "c.png", "e.jpg"]
    for x in lines:
        assert x["method"] == "POST" and x["url"] == "/v1/chat/completions"
        assert x["body"]["model"] == "kimi-k2.6"
        content = x["body"]["messages"][0]["content"]
        assert content[0]["type"] == "image_url"
        assert content[0]["image_url"]["url"].startswith("data:image/")
        assert content[-1] == {"type": "text", "text": "Describe."}
    assert "1 failed input left out" in r.stderr  # grammar: 1 input
    for written in (reqs, tmp_path / "out" / "parts.jsonl"):
        assert written.stat().st_mode & 0o777 == ordinary_mode  # not mkstemp's 0600
    parts = [json.loads(x) for x in (tmp_path / "out" / "parts.jsonl").read_text().splitlines()]
    assert lines[0]["body"]["messages"][0]["content"][0] == parts[0]["part"]

    grouped = tmp_path / "g.jsonl"
    run("prep", media, "-o", tmp_path / "out", "--no-cache", "--batch-requests", grouped,
        "--prompt", "Compare.", "--group", "3")
    lines = _requests(grouped)
    assert [len(x["body"]["messages"][0]["content"]) - 1 for x in lines] == [3, 1]
    assert len({x["custom_id"] for x in lines}) == 2


def test_batch_groups_split_at_request_limits(generated, tmp_path) -> None:
    media = make_folder(tmp_path / "in", generated, {f"{i}.png": "png" for i in range(5)})
    reqs = tmp_path / "b.jsonl"
    r = run("prep", media, "-o", tmp_path / "out", "--no-cache", "--batch-requests", reqs,
            "--prompt", "x", "--group", "10", "--limit", "request.max_data_urls=2")
    assert r.exit_code == 0, r.output
    assert [len(x["body"]["messages"][0]["content"]) - 1 for x in _requests(reqs)] == [2, 2, 1]
    one = json.loads((tmp_path / "out" / "parts.jsonl").read_text().splitlines()[0])
    part_bytes = len(json.dumps(one["part"], separators=(",", ":")))
    r = run("prep", media, "-o", tmp_path / "out2", "--no-cache", "--batch-requests", reqs,
            "--prompt", "x", "--group", "10", "--target", "moonshot",
            "--limit", f"request.max_body_bytes={int(part_bytes * 3.5)}")
    assert r.exit_code == 0, r.output
    bodies = [x["body"] for x in _requests(reqs)]
    assert [len(b["messages"][0]["content"]) - 1 for b in bodies] == [3, 2]
    assert all(len(json.dumps(b, separators=(",", ":"))) <= part_bytes * 3.5 for b in bodies)


@pytest.mark.parametrize("args", [
    [],  # no --prompt
    ["--prompt", "x", "--dialect", "dashscope"],
    ["--prompt", "x", "--dialect", "dashscope", "--transport", "path"],
])
def test_batch_request_usage_errors(generated, tmp_path, args) -> None:
    r = run("prep", generated["png"], "-o", tmp_path / "o", "--batch-requests",
            tmp_path / "b.jsonl", *args)
    assert r.exit_code == 2, r.output


# --- URLs -----------------------------------------------------------------------------------


def test_allow_url_reaches_the_settings() -> None:
    SEEN.clear()
    url = "https://example.invalid/a.jpg"
    spy = ["--executor", f"{__name__}:SpyExecutor"]
    r = run("check", url, "-j", "0", "--format", "json", *spy)
    assert SEEN == [(url, False)]
    assert json.loads(r.stdout)["files"][0]["path"] == url  # kept as a URL, not a path
    run("check", url, "-j", "0", "--allow-url", *spy)
    assert SEEN[-1] == (url, True)


def test_a_folder_without_media_passes_with_a_warning(tmp_path) -> None:
    empty = tmp_path / "assets"
    empty.mkdir()
    (empty / "notes.txt").write_text("no media here")
    r = run("check", empty, "--format", "json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["summary"]["files"] == 0  # stdout stays clean JSON
    assert "warning: no images or videos found" in r.stderr
    p = run("prep", empty, "-o", tmp_path / "out", "--no-cache")
    assert p.exit_code == 0 and "no images or videos found" in p.stderr
    assert (tmp_path / "out" / "parts.jsonl").read_text() == ""


def test_a_video_sent_as_frames_to_pass_counts_as_fixed(generated, tmp_path) -> None:
    """Too short to send as a file: sent as frames, which is a fix (the summary's "fixed"), and
    its finding keeps its severity, as a fixed image's does, with the fix said in the message."""
    media = make_folder(tmp_path / "in", generated, {"short.mp4": "video_1_9s", "ok.png": "png"})
    r = run("prep", media, "-o", tmp_path / "out", "--no-cache")
    assert r.exit_code == 0, r.stderr
    assert "2 files, 1 passed, 1 fixed, 0 failed" in r.stderr
    lines = [json.loads(x) for x in (tmp_path / "out" / "parts.jsonl").read_text().splitlines()]
    [line] = [x for x in lines if x["path"].endswith("short.mp4")]
    assert line["ok"] and line["part"]["type"] == "video"  # a frame list
    [f] = [f for f in line["findings"] if f["code"] == "video.too_short"]
    assert f["severity"] == "error" and f["message"].endswith("(resolved: sent as frames)")


def test_prep_of_a_folder_holding_its_output_folder_reruns(generated, tmp_path,
                                                          monkeypatch) -> None:
    """`prep . -o out`, the natural call, run twice: the second run must not take the first
    run's outputs for inputs (it used to stop with "input out/... is inside the output
    folder"). Inputs named inside DIR, or DIR itself, are still refused."""
    make_folder(tmp_path / "assets", generated, {"a.png": "png", "b.jpg": "jpeg_exif6"})
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        r = run("prep", ".", "-o", "out", "--no-cache", "-q")
        assert r.exit_code == 0, r.stderr
        lines = (tmp_path / "out" / "parts.jsonl").read_text().splitlines()
        assert sorted(Path(json.loads(x)["path"]).name for x in lines) == ["a.png", "b.jpg"]
    before = (tmp_path / "out" / "parts.jsonl").read_bytes()
    for named in ("out", "out/a.png"):
        r = run("prep", named, "-o", "out", "--no-cache", "-q")
        assert r.exit_code == 2 and "inside the output folder" in r.output
    assert (tmp_path / "out" / "parts.jsonl").read_bytes() == before  # untouched
    (tmp_path / "link").symlink_to(tmp_path / "out")  # the same folder by another name
    r = run("prep", ".", "-o", "link", "--no-cache", "-q")
    assert r.exit_code == 0, r.stderr
    assert len((tmp_path / "out" / "parts.jsonl").read_text().splitlines()) == 2


def test_walks_leave_out_hidden_names_and_installed_packages(generated, tmp_path) -> None:
    """`check .` at a repository's root: Git LFS objects under .git, a virtualenv's package
    icons, node_modules and macOS "._x.jpg" resource forks are not the project's media."""
    root = make_folder(tmp_path / "repo", generated, {"a.png": "png"})
    tiny = generated["png_10x400"]  # fails the min side: it would fail the run if taken
    for rel in (".git/lfs/objects/ab/cdef0123", ".venv/lib/site-packages/pkg/icon.png",
                "node_modules/pkg/logo.png", "venv/share/icon.png", "assets/.thumbs/a.png",
                "assets/.hidden.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny, root / rel)
    (root / "assets" / "._photo.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    r = run("check", root, "--format", "json")
    assert r.exit_code == 0, r.stdout
    assert [Path(f["path"]).name for f in json.loads(r.stdout)["files"]] == ["a.png"]
    # named on the command line, they are taken
    r = run("check", root / "assets" / ".thumbs", root / "node_modules" / "pkg" / "logo.png",
            "--format", "json")
    assert r.exit_code == 1
    assert len(json.loads(r.stdout)["files"]) == 2


def test_a_file_name_that_is_not_utf8_goes_through_prep(generated, tmp_path) -> None:
    """A name with a byte that is not UTF-8 (from an old archive, say): its parts.jsonl line
    escapes it (\\udcff) instead of failing to encode (it made prep end in a traceback)."""
    media = tmp_path / "in"
    media.mkdir()
    raw = os.fsencode(media) + b"/bad\xff name.png"
    try:
        shutil.copy(generated["png"], raw)
    except OSError:
        pytest.skip("this file system takes UTF-8 names only")
    reqs = tmp_path / "reqs.jsonl"
    r = run("prep", media, "-o", tmp_path / "out", "--no-cache", "--batch-requests", reqs,
            "--prompt", "hi")
    assert r.exit_code == 0, r.output
    [line] = [json.loads(x) for x in (tmp_path / "out" / "parts.jsonl").read_text().splitlines()]
    assert line["ok"] and os.fsencode(line["path"]).endswith(b"bad\xff name.png")
    assert len(reqs.read_text().splitlines()) == 1
    for cmd in (["probe"], ["check", "-v"]):  # printed escaped, not a UnicodeEncodeError
        r = run(*cmd, os.fsdecode(raw))
        assert r.exit_code == 0 and "bad\\udcff name.png" in r.stdout, r.output
