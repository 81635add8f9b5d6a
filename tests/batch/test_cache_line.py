"""A cache entry stores a line's data URLs as the outputs it already stores, not a second
time in base64 (issue 28: a cold run wrote and hashed every prepared image twice more); a hit
gives the line byte for byte."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mediaprep.batch.cache_line import put_back_payloads, take_out_payloads


def _url(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@settings(max_examples=200, deadline=None)
@given(files=st.dictionaries(st.sampled_from(["out/s.jpg", "out/s.png", "out/s/f1.jpg"]),
                             st.binary(max_size=300), max_size=3),
       extra=st.lists(st.binary(max_size=60), max_size=2), name=st.text(max_size=20))
def test_taking_out_and_putting_back_gives_the_same_line(files, extra, name):
    urls = [_url(d) for d in [*files.values(), *extra]]
    line = json.dumps({"path": name, "part": {"video": urls}, "note": ";base64,\"x"}).encode()
    short, splices = take_out_payloads(line, files)
    assert put_back_payloads(short, splices, files.__getitem__) == line
    # only payloads that are a stored file's base64 are taken out, and every such one is
    assert len(splices) == sum(any(base64.b64encode(f) == base64.b64encode(d)
                                   for f in files.values()) for d in [*files.values(), *extra])
    assert len(short) == len(line) - sum(len(base64.b64encode(files[n])) for _, n in splices)


@pytest.mark.parametrize("splices", [
    "not a list", [[5]], [[-1, "a"]], [[10**9, "a"]], [[4, "a"], [2, "a"]], [["4", "a"]],
    [[True, "a"]],
])
def test_planted_splices_are_refused(splices):
    with pytest.raises(ValueError):
        put_back_payloads(b'{"x": "data:image/png;base64,"}', splices, lambda n: b"abc")


def _prep(src: Path, out: Path, cache: Path) -> None:
    subprocess.run([sys.executable, "-m", "mediaprep", "prep", str(src), "-o", str(out),
                    "--cache-dir", str(cache), "--no-report", "-q"], check=True,
                   capture_output=True)


def test_an_entry_is_smaller_by_the_data_urls_and_a_hit_writes_the_same_parts(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (900, 1200, 3), dtype=np.uint8)).save(
        src / "noise.png")  # converted: about 3 MB of JPEG, 4 MB of data URL
    Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(
        src / "small.jpg", quality=80)  # passed through: its copy is the output
    cache = tmp_path / "cache"
    _prep(src, tmp_path / "a", cache)
    parts = (tmp_path / "a" / "parts.jsonl").read_bytes()
    entries = [p for p in cache.rglob("*") if p.is_file() and len(p.name) == 64]
    assert len(entries) == 2
    stored = sum(p.stat().st_size for p in entries)
    outputs = sum(p.stat().st_size for p in (tmp_path / "a").iterdir() if p.is_file()
                  and p.suffix in (".jpg", ".png"))
    # outputs, a short line and a record each; the data URLs (4/3 of the outputs) not again
    assert stored < outputs + 40_000, (stored, outputs)
    _prep(src, tmp_path / "b", cache)  # all hits: the same lines, byte for byte
    assert (tmp_path / "b" / "parts.jsonl").read_bytes() == parts
    line = json.loads(parts.splitlines()[0])
    url = line["part"]["image_url"]["url"]
    out = (tmp_path / "b" / line["outputs"][0]).read_bytes()
    assert url == _url(out, url[5:url.index(";")])
