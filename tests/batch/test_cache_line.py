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

from mediaprep.batch.cache_line import line_bytes, put_back_payloads, take_out_payloads
from mediaprep.emit.parts import DataURL, data_url
from mediaprep.output import json_line


def _url(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _made(data: bytes, path: str | None, mime: str = "image/jpeg") -> DataURL:
    url = data_url(data, mime)
    assert isinstance(url, DataURL)
    url.path = Path(path) if path else None
    return url


@settings(max_examples=300, deadline=None)
@given(payloads=st.lists(st.tuples(st.binary(min_size=3100, max_size=3600), st.booleans()),
                         max_size=3),
       name=st.text(max_size=12), plain=st.text(max_size=12), small=st.binary(max_size=40),
       collide=st.booleans())
def test_a_line_is_the_json_text_and_says_where_each_payload_is(payloads, name, plain, small,
                                                                collide):
    # each written file has its own path (a file written twice would be two outputs)
    payloads = [(d, f"/o/{i}.jpg" if written else None)
                for i, (d, written) in enumerate(payloads)]
    urls = [_made(d, p) for d, p in payloads]
    line = {"path": name, "ok": True,
            "part": {"type": "video", "video": [*urls, _made(small, "/o/s.jpg"), plain]},
            "parts": [{"image": u} for u in urls],
            "note": "\x00data-url-0\x00" if collide else plain}
    text, carried = line_bytes(line)
    assert text == (json_line(line) + "\n").encode("utf-8")
    want = [(u.split(",", 1)[1], u.path) for u in [*urls, *urls] if u.path is not None]
    if collide and urls:  # a text that reads as a mark: the line is encoded whole
        assert carried == []
        return
    assert [(text[c.start:c.end].decode(), c.path) for c in carried] == want
    # a cache entry storing a.jpg and b.jpg keeps the line without their payloads, and gives
    # it back whole
    files = {p: d for d, p in payloads if p}
    stored = {Path(p): (f"out/s{p[3:]}", len(d)) for p, d in files.items()}
    short, splices = take_out_payloads(text, carried, stored)
    assert len(splices) == len(want)
    data = {stored[Path(p)][0]: d for p, d in files.items()}
    assert put_back_payloads(short, splices, data.__getitem__) == text


def test_a_payload_whose_file_changed_size_is_kept_in_the_line():
    url = _made(b"x" * 5000, "/o/a.jpg")
    text, carried = line_bytes({"part": {"url": url}})
    short, splices = take_out_payloads(text, carried, {Path("/o/a.jpg"): ("out/s.jpg", 4000)})
    assert (short, splices) == (text, [])


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
