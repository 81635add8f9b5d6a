"""Issue 22 item 7: an input rewritten while prep reads it (a file being saved or synced) is
never cached under a key made from other bytes, and its line says so (``file.changed``).

The rewrite happens at a deterministic moment through Python's own audit hooks (PEP 578): the
first time the input is opened after it was opened to be hashed, it is replaced by another
picture, as a writer saving over it would."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image

import mediaprep.batch as batch

_REWRITE: dict[str, object] = {}  # path -> bytes to write at its second open (one-shot)
_OPENS: dict[str, int] = {}


def _rewrite_on_second_open(event: str, args: tuple) -> None:
    if event != "open" or not args or not _REWRITE:
        return
    path = str(args[0])
    if path not in _REWRITE:
        return
    _OPENS[path] = _OPENS.get(path, 0) + 1
    if _OPENS[path] == 2:
        data = _REWRITE.pop(path)  # first: the write below opens it again
        Path(path).write_bytes(data)  # type: ignore[arg-type]


sys.addaudithook(_rewrite_on_second_open)  # an audit hook cannot be removed: idle when empty


def _png(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path.read_bytes()


def _line(out: Path) -> dict:
    return json.loads((out / "parts.jsonl").read_text(encoding="utf-8").splitlines()[0])


def test_an_input_rewritten_mid_prep_is_not_cached_and_says_so(tmp_path):
    cache = tmp_path / "cache"
    red = _png(tmp_path / "a" / "photo.png", (64, 48), (255, 0, 0))
    blue = _png(tmp_path / "scratch.png", (80, 60), (0, 0, 255))
    src = tmp_path / "a" / "photo.png"
    _REWRITE.clear()
    _OPENS.clear()
    _REWRITE[str(src)] = blue
    try:
        batch.prep_many([src], tmp_path / "out1", jobs=0, cache=cache, html_report=False)
    finally:
        _REWRITE.clear()
    assert _OPENS.get(str(src), 0) >= 2  # the rewrite happened between the hash and prepare
    line = _line(tmp_path / "out1")
    changed = [f for f in line["findings"] if f["code"] == "file.changed"]
    assert changed and changed[0]["severity"] == "warning"
    assert str(src) in changed[0]["message"]

    # the first version's bytes, unchanged, in another folder: prepared from its own bytes
    other = tmp_path / "b" / "copy.png"
    other.parent.mkdir()
    other.write_bytes(red)
    batch.prep_many([other], tmp_path / "out2", jobs=0, cache=cache, html_report=False)
    line = _line(tmp_path / "out2")
    assert not [f for f in line["findings"] if f["code"] == "file.changed"]
    with Image.open(tmp_path / "out2" / line["outputs"][0]) as im:
        assert im.size == (64, 48)
        assert im.convert("RGB").getpixel((5, 5)) == (255, 0, 0)

    # and a file that stays still is cached as before: a third run is a cache hit
    result = batch.prep_many([other], tmp_path / "out3", jobs=0, cache=cache,
                             html_report=False)
    assert [r.origin for r in result.results] == ["cache"]
