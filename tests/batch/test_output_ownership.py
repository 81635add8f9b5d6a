"""``prep -o DIR`` replaces only what a mediaprep run made (the brief: mediaprep writes, renames
and deletes only what it made itself, recorded as such).

- A user's file or folder where an input's output would go is left as it is; that input is
  refused (``output.not_ours``) and the others are prepared; once it is moved away the input
  is prepared.
- DIR's own names (``parts.jsonl``, ``report.html``, ``report_files/``) in a folder no run has
  written to stop the run before anything is written.
- What a run made is still replaced: an output whose input changed, and an output a killed
  run renamed into place before it could record it (the run's claim says it is ours), so
  the rerun ends as an uninterrupted run does.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from mediaprep.cli import main

USER = b"the user's own bytes, not an image\n"


def _inputs(root: Path) -> Path:
    root.mkdir()
    Image.new("RGB", (60, 40), (200, 10, 10)).save(root / "a.png")
    Image.new("RGB", (50, 30), (10, 10, 200)).save(root / "b.jpg")
    return root


def _prep(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["prep", *args, "--no-cache", "-j", "0", "-q"])
    return r.exit_code, r.output


def _lines(out: Path) -> dict[str, dict]:
    lines = [json.loads(x) for x in (out / "parts.jsonl").read_text().splitlines()]
    return {Path(x["path"]).name: x for x in lines}


def _tree(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and ".mediaprep" not in p.parts}


def test_a_users_file_at_an_output_name_is_left_alone_and_only_its_input_refused(tmp_path):
    src = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(USER)

    for _ in range(2):  # a rerun refuses it again: the file is still not ours
        code, text = _prep(str(src), "-o", str(out))
        assert code == 1, text
        assert (out / "a.png").read_bytes() == USER
        lines = _lines(out)
        assert not lines["a.png"]["ok"]
        [finding] = lines["a.png"]["findings"]
        assert finding["code"] == "output.not_ours" and finding["severity"] == "error"
        assert finding["actual"] == str(out / "a.png")
        assert "a.png" in finding["message"]
        assert lines["b.jpg"]["ok"] and (out / "b.jpg").is_file()

    (out / "a.png").unlink()  # moved away: now the input is prepared
    code, text = _prep(str(src), "-o", str(out))
    assert code == 0, text
    assert _lines(out)["a.png"]["ok"]
    with Image.open(out / "a.png") as im:
        assert im.size == (60, 40)


def test_another_extension_or_a_folder_named_as_the_stem_is_not_ours_either(tmp_path):
    """The output's extension is known only once prepared (a PNG may become a JPEG), and a
    video's frames go to ``DIR/<stem>/``: every name the input could take is looked at."""
    src = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    (out / "b").mkdir(parents=True)
    (out / "b" / "frame_000000.jpg").write_bytes(USER)
    (out / "a.webp").write_bytes(USER)
    code, _ = _prep(str(src), "-o", str(out))
    assert code == 1
    lines = _lines(out)
    assert [f["code"] for f in lines["a.png"]["findings"]] == ["output.not_ours"]
    assert [f["code"] for f in lines["b.jpg"]["findings"]] == ["output.not_ours"]
    assert (out / "a.webp").read_bytes() == USER
    assert (out / "b" / "frame_000000.jpg").read_bytes() == USER
    assert sorted(p.name for p in (out / "b").iterdir()) == ["frame_000000.jpg"]


def test_an_animations_frames_never_go_into_a_users_folder(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    frames = [Image.new("RGB", (40, 30), (i * 60, 0, 0)) for i in range(4)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=500)
    out = tmp_path / "out"
    (out / "anim").mkdir(parents=True)
    (out / "anim" / "frame_000000.jpg").write_bytes(USER)
    code, _ = _prep(str(src), "-o", str(out), "--animation", "frames")
    assert code == 1
    assert (out / "anim" / "frame_000000.jpg").read_bytes() == USER
    assert [p.name for p in (out / "anim").iterdir()] == ["frame_000000.jpg"]

    (out / "anim" / "frame_000000.jpg").unlink()
    (out / "anim").rmdir()
    code, text = _prep(str(src), "-o", str(out), "--animation", "frames")
    assert code == 0, text
    assert (out / "anim" / "frame_000000.jpg").read_bytes() != USER


@pytest.mark.parametrize("name", ["parts.jsonl", "report.html", "report_files"])
def test_dirs_own_names_made_by_no_run_stop_the_run_before_anything_is_written(tmp_path, name):
    src = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / name
    if name == "report_files":
        theirs.mkdir()
        (theirs / "style.css").write_bytes(USER)
    else:
        theirs.write_bytes(USER)
    before = _tree(out)

    code, text = _prep(str(src), "-o", str(out))
    assert code == 2
    assert str(theirs) in text and "no mediaprep run made it" in text
    assert _tree(out) == before
    assert not (out / ".mediaprep").exists()


@pytest.mark.parametrize("name", ["report.html", "report_files"])
def test_without_the_report_its_names_are_not_in_the_way(tmp_path, name):
    src = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_bytes(USER)
    code, text = _prep(str(src), "-o", str(out), "--no-report")
    assert code == 0, text
    assert (out / name).read_bytes() == USER


def test_a_second_run_replaces_what_the_first_made(tmp_path):
    """DIR's own files and an output whose input changed are mediaprep's: replaced."""
    src = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    assert _prep(str(src), "-o", str(out))[0] == 0
    first = _tree(out)
    Image.new("RGB", (70, 20), (0, 200, 0)).save(src / "a.png")
    code, text = _prep(str(src), "-o", str(out))
    assert code == 0, text
    assert _lines(out)["a.png"]["ok"]
    with Image.open(out / "a.png") as im:
        assert im.size == (70, 20)
    assert _tree(out)["parts.jsonl"] != first["parts.jsonl"]


_KILL_AFTER_RENAME = """
import os, sys
target = sys.argv[1]
def hook(event, args):
    # the output renamed into place, then the process dies before its journal record
    if event == "os.rename" and os.fspath(args[1]) == target and not hook.done:
        hook.done = True
        os.replace(args[0], args[1])
        os._exit(9)
hook.done = False
sys.addaudithook(hook)
from mediaprep.cli import main
sys.argv = ["mediaprep", *sys.argv[2:]]
main()
"""


def test_an_output_a_killed_run_renamed_but_never_recorded_is_replaced_by_the_rerun(tmp_path):
    src = _inputs(tmp_path / "in")
    ref = tmp_path / "ref"
    assert _prep(str(src), "-o", str(ref))[0] == 0

    out = tmp_path / "out"
    args = ["prep", str(src), "-o", str(out), "--no-cache", "-j", "0", "-q"]
    killed = subprocess.run([sys.executable, "-c", _KILL_AFTER_RENAME, str(out / "a.png"),
                             *args], capture_output=True, text=True, timeout=120)
    assert killed.returncode == 9, killed.stderr
    assert (out / "a.png").is_file() and not (out / "parts.jsonl").exists()

    code, text = _prep(str(src), "-o", str(out))
    assert code == 0, text
    assert _tree(out) == _tree(ref)
    assert not list((out / ".mediaprep").glob("claims-*"))  # a finished run keeps no claim
