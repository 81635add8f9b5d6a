"""Issue 22 item 9: report.html escapes every value it shows, and a cache entry planted by
someone who can write the cache folder (its line and record rewritten, their digests made
again, as an attacker would) is checked like any other input before it reaches DIR."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mediaprep.batch.cache import Cache
from mediaprep.cli import main
from mediaprep.report.html import write_prep_report

MARKUP = '<img src=x onerror="document.title=1">'


class _Tags(HTMLParser):
    """Every start tag of a page and the attribute names it carries."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, [name for name, _ in attrs]))


def assert_no_live_markup(page: str) -> None:
    parser = _Tags()
    parser.feed(page)
    handlers = [(tag, a) for tag, attrs in parser.tags for a in attrs if a.startswith("on")]
    assert not handlers, handlers
    scripts = [tag for tag, _ in parser.tags if tag == "script"]
    assert len(scripts) == 1  # the page's own filter script, nothing planted
    imgs = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert all("onerror" not in attrs for attrs in imgs)
    assert MARKUP not in page


def _photo(folder: Path, name: str = "photo.jpg") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    path = folder / name
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(path, quality=90)
    return path


def _prep(src: Path, out: Path, cache: Path) -> None:
    r = CliRunner().invoke(main, ["prep", str(src), "-o", str(out), "-q"],
                           env={"MEDIAPREP_CACHE_DIR": str(cache)}, catch_exceptions=False)
    assert r.exit_code == 0, r.output


def _plant(cache_root: Path, rewrite) -> int:
    """Rewrite every entry's line through the cache's own API (get, then put again): a digest
    is no secret, so this is what a writer of the folder can do. Returns the entries planted."""
    cache = Cache(cache_root)
    planted = 0
    for entry_file in sorted(p for p in cache_root.glob("[0-9a-f][0-9a-f]/*") if p.is_file()):
        key = entry_file.name
        entry = cache.get(key)
        assert entry is not None
        files = {name: entry.data(name) for name in (*entry.files, *entry.inline)}
        line = json.loads(files["line.json"])
        rewrite(line)
        files["line.json"] = (json.dumps(line) + "\n").encode()
        entry_file.unlink()
        cache.put(key, entry.record, files)
        planted += 1
    return planted


def _hostile_kind(line: dict) -> None:
    line["kind"] = MARKUP


def _hostile_finding(line: dict) -> None:
    line["findings"] = [{"code": "<b>x</b>", "severity": "error", "message": MARKUP}]


@pytest.mark.parametrize("rewrite", [_hostile_kind, _hostile_finding])
@pytest.mark.parametrize("elsewhere", [False, True], ids=["same-input", "copy-elsewhere"])
def test_a_planted_cache_line_never_reaches_the_page(tmp_path, rewrite, elsewhere):
    cache = tmp_path / "cache"
    src = _photo(tmp_path / "in")
    _prep(src, tmp_path / "first", cache)
    assert _plant(cache, rewrite) >= 1
    if elsewhere:  # the same bytes under another name in another folder: a hit, rebased
        src = shutil.copyfile(src, _photo(tmp_path / "other", "copy.jpg"))
    out = tmp_path / "second"
    _prep(Path(src), out, cache)
    line = json.loads((out / "parts.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert line["kind"] == "image" and line["ok"] is True  # prepared afresh, not served
    assert line["findings"] == []  # a clean photo: the planted findings are not there
    assert_no_live_markup((out / "report.html").read_text(encoding="utf-8"))


def test_every_value_of_a_parts_line_is_escaped_on_the_page(tmp_path):
    """The page's own escaping, whatever parts.jsonl says (a line edited by hand)."""
    out = tmp_path / "out"
    out.mkdir()
    lines = [
        {"path": MARKUP, "ok": True, "kind": MARKUP, "part": {"image": "x"}, "outputs": [],
         "findings": [{"code": MARKUP, "severity": MARKUP, "message": MARKUP}],
         "fixes": [MARKUP], "changes": [MARKUP, "resized"]},
        {"path": "b.jpg", "ok": False, "kind": MARKUP, "part": None, "outputs": [],
         "findings": [{"code": "file.unreadable", "severity": "error", "message": MARKUP}]},
    ]
    (out / "parts.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    page = write_prep_report(out).read_text(encoding="utf-8")
    assert_no_live_markup(page)
    assert "&lt;img src=x onerror=" in page  # shown as text, not dropped
