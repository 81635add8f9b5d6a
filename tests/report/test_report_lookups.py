"""What the report at a prep run's end opens to build its page (issue 28 item 4: a cold run's
per-input overhead): an image row looks for no row record (only a video's or a placeholder's
row keeps one), and a thumbnail's size comes from its JPEG header without Pillow. Run in a
subprocess (an audit or profile hook stays for the life of its interpreter)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.report.small_run import mixed_inputs, prep_small

ROOT = Path(__file__).resolve().parents[2]

# Writes the page of OUT (pictures linked) and prints every path opened while it did, and how
# many times Pillow's Image.open ran.
_WATCH = r"""
import json, sys, threading
from mediaprep.report.html import write_prep_report
out, page = sys.argv[1:3]
opened, pillow = [], [0]

def on_open(event, args):
    if event == "open" and not isinstance(args[0], int):
        opened.append(str(args[0]))

def on_call(frame, event, arg):
    code = frame.f_code
    if event == "call" and code.co_name == "open" and code.co_filename.endswith(
            ("PIL/Image.py", "PIL\\Image.py")):
        pillow[0] += 1

sys.addaudithook(on_open)
sys.setprofile(on_call)
threading.setprofile(on_call)  # the rows are made by a pool of threads
write_prep_report(out, page=page, inline_max=0)
sys.setprofile(None)
print(json.dumps({"opened": opened, "pillow_opens": pillow[0]}))
"""


def _inputs(folder: Path) -> Path:
    return mixed_inputs(folder, [(48, 64), (64, 40), (30, 30)], seed=4)


_prep = prep_small


def _watch_page(out: Path, page: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    r = subprocess.run([sys.executable, "-c", _WATCH, str(out), str(page)], env=env,
                       capture_output=True, text=True, timeout=120, check=True)
    return json.loads(r.stdout.splitlines()[-1])


def test_the_page_looks_for_records_of_video_rows_only(tmp_path: Path) -> None:
    src, out = _inputs(tmp_path / "in"), tmp_path / "out"
    _prep(src, out)
    records = sorted(p.name for p in (out / "report_files").glob("*.row.json"))
    assert len(records) == 1  # the clip's

    seen = _watch_page(out, tmp_path / "page.html")
    looked_up = sorted({Path(p).name for p in seen["opened"] if p.endswith(".row.json")})
    assert looked_up == records  # four image rows: none looked for
    text = (tmp_path / "page.html").read_text()
    assert text.count("<article") == 5 and "no preview" not in text


def test_the_page_reads_thumbnail_sizes_from_their_headers(tmp_path: Path) -> None:
    src, out = _inputs(tmp_path / "in"), tmp_path / "out"
    _prep(src, out)
    seen = _watch_page(out, tmp_path / "page.html")
    assert seen["pillow_opens"] == 0

    # and the sizes it wrote are the files' own
    text = (tmp_path / "page.html").read_text()
    imgs = re.findall(r'<img [^>]*src="([^"]+)" width="(\d+)" height="(\d+)"', text)
    assert len(imgs) >= 7  # four images, a three-frame strip
    for name, w, h in imgs:
        with Image.open(tmp_path / name) as im:
            assert im.size == (int(w), int(h))
    assert {(w, h) for _, w, h in imgs} >= {("64", "48"), ("40", "64"), ("30", "30")}


def test_a_thumbnail_cut_short_in_its_header_is_made_again(tmp_path: Path) -> None:
    src, out = _inputs(tmp_path / "in"), tmp_path / "out"
    _prep(src, out)
    _watch_page(out, tmp_path / "before.html")
    cut = []
    for p in sorted((out / "report_files").glob("*.jpg")):
        if "-" in p.name:
            continue  # a strip's frame: its row's record names it, and is kept
        p.write_bytes(p.read_bytes()[:40])  # before its frame header
        cut.append(p)
    assert len(cut) == 4
    _watch_page(out, tmp_path / "page.html")  # made again from the files (a linked page)
    for p in cut:
        with Image.open(p) as im:
            im.load()
    assert (tmp_path / "page.html").read_bytes() == (tmp_path / "before.html").read_bytes()
