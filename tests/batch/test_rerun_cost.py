"""A rerun over finished inputs costs each input a stat and an index lookup: no JSON parse and
no file opened per input, and what it writes and says is byte for byte what the first run did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import mediaprep
from mediaprep.batch import BatchResult, prep_many

ROOT = Path(mediaprep.__file__).resolve().parents[1]  # the child runs the same mediaprep

# Run in a child process: an audit hook cannot be removed, and json.loads is wrapped there
# before mediaprep runs. json.loads is the standard library's public function that every JSON
# parse in mediaprep goes through (json.load calls it too); counting its calls observes what
# the run parses without touching any of mediaprep's own names.
_COUNTING_RERUN = """
import json, sys
from mediaprep.batch import prep_many

calls = {"json": 0, "open": 0}
parse = json.loads

def counted(*args, **kwargs):
    calls["json"] += 1
    return parse(*args, **kwargs)

def hook(event, args):
    if event == "open":
        calls["open"] += 1

json.loads = counted
sys.addaudithook(hook)
found = []
for src, out in zip(sys.argv[1::2], sys.argv[2::2]):
    prep_many([src], out, jobs=0, cache=False, html_report=False)  # warm: lazy imports
    calls.update(json=0, open=0)
    result = prep_many([src], out, jobs=0, cache=False, html_report=False)
    found.append({**calls, "journal": result.from_journal})
print(json.dumps(found))
"""


def _images(folder: Path, n: int, names: list[str] | None = None) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(n)
    for i in range(n):
        px = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
        name = names[i] if names else f"p{i:03d}.png"
        Image.fromarray(px).save(os.path.join(os.fsencode(folder), os.fsencode(name)),
                                 format="PNG")
    return folder


def _said(result: BatchResult) -> tuple[Any, str]:
    """What a run says, less the time it took: results and counts, and its summary."""
    said = result.to_json()
    said["summary"].pop("seconds")
    summary = result.summary().split("\n")
    summary[0] = summary[0].rsplit(", ", 1)[0]  # "..., 0.2 s"
    return said, "\n".join(summary)


def _written(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (out / "parts.jsonl", out / "report.html")}


def test_a_rerun_parses_and_opens_nothing_per_input(tmp_path: Path) -> None:
    """Over 10 and over 40 finished inputs a rerun makes the same JSON parses and opens
    (those of the run: its run markers, the index headers), so none per input; each hit
    parsed its journal row, twice, before."""
    folders = []
    for n in (10, 40):
        src = _images(tmp_path / f"in{n}", n)
        out = tmp_path / f"out{n}"
        first = prep_many([src], out, jobs=0, cache=False)
        assert first.prepared_now == n and first.failed == 0
        folders.append((src, out, n, _written(out), _said(first)))
    argv = [str(p) for src, out, *_ in folders for p in (src, out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _COUNTING_RERUN, *argv], env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    small, large = json.loads(done.stdout)
    assert (small["journal"], large["journal"]) == (10, 40)
    assert large["json"] == small["json"], (small, large)
    assert large["open"] == small["open"], (small, large)
    for src, out, _n, written, said in folders:  # the rerun wrote and says the same
        again = prep_many([src], out, jobs=0, cache=False)
        assert again.from_journal == again.total
        assert _written(out) == written
        assert _said(again)[1].replace("0 prepared now, ", "") == said[1].replace(
            f"{again.total} prepared now", f"{again.total} already done (journal)")
        first_results, again_results = said[0]["results"], _said(again)[0]["results"]
        assert [{**r, "origin": "journal"} for r in first_results] == again_results


@pytest.mark.skipif(sys.platform != "linux", reason="names with any byte but / and NUL")
def test_a_record_of_any_name_reads_back_as_written(tmp_path: Path) -> None:
    """An index row holds names and messages escaped: a tab, a newline, a backslash, the list
    separator, bytes that are not UTF-8 and other scripts in a file name all read back, and
    the rerun says what the first run said."""
    names = ["tab\there.png", "new\nline.png", "back\\slash \\t.png", "unit\x1fsep.png",
             os.fsdecode(b"latin\xe9.png"), "日本 é.png", "plain.png", "-.png"]
    src = _images(tmp_path / "in", len(names), names)
    out = tmp_path / "out"
    first = prep_many([src], out, jobs=0, cache=False)
    assert first.prepared_now == len(names) and first.failed == 0
    again = prep_many([src], out, jobs=0, cache=False)
    assert again.from_journal == len(names)
    assert [{**r.to_json(), "origin": "-"} for r in again.results] == [
        {**r.to_json(), "origin": "-"} for r in first.results]
    third = prep_many([src], out, jobs=0, cache=False)  # the index written by a rerun
    assert third.from_journal == len(names)
