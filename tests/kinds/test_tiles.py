"""Issue 25 item 9: a tall capture the model would shrink to less than half gets
image.downscaled (info) with what --tiles costs; with tiles it goes as overlapping tiles in
reading order, each within the box and kept by the model as it is."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

import mediaprep
from mediaprep.cli import main
from mediaprep.emit.request import user_message
from mediaprep.tokens import MEDIA_PROMPT_IMAGE, image_tokens, model_resize


def _capture(path: Path, size: tuple[int, int] = (1920, 8503)) -> Path:
    """A full-page screenshot: rows whose grey level gives their y (to check reading order)."""
    w, h = size
    rows = (np.arange(h) * 255 // (h - 1)).astype(np.uint8)
    Image.fromarray(np.repeat(rows[:, None], w, axis=1), "L").convert("RGB").save(path)
    return path


def _decode(part: dict) -> Image.Image:
    import base64

    url = part["image_url"]["url"]
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_tall_capture_gets_downscaled_finding(tmp_path: Path) -> None:
    rep = mediaprep.check(_capture(tmp_path / "page.png"))
    found = [f for f in rep.findings if f.code == "image.downscaled"]
    assert len(found) == 1 and found[0].severity == "info" and rep.ok
    assert "--tiles" in found[0].message and "tokens" in found[0].message
    assert "page.png" in found[0].message


def test_tiles_in_reading_order_each_kept_whole(tmp_path: Path) -> None:
    path = _capture(tmp_path / "page.png")
    p = mediaprep.prepare(path, tiles=True, target="moonshot")
    assert p.ok, p.findings
    assert p.part is None and len(p.parts) >= 2
    assert [c.kind for c in p.changes][-1] == "tiled"
    tiles = [_decode(part) for part in p.parts]
    tops = []
    total = 0
    for t in tiles:
        assert model_resize(*t.size) == t.size  # the model does not shrink a tile
        assert max(t.size) <= 4096 and min(t.size) <= 4096  # within Moonshot's box
        tops.append(np.asarray(t.convert("L"))[0, 0])
        total += image_tokens(*t.size) + MEDIA_PROMPT_IMAGE
    assert tops == sorted(tops) and tops[0] < 10  # top to bottom, from the top
    bottom = np.asarray(tiles[-1].convert("L"))[-1, 0]
    assert bottom > 245  # down to the bottom
    # neighbours overlap: each tile starts above where the one before it ends
    assert p.tokens is not None and p.tokens["estimate"] == total
    # a request carries every tile, in order
    content = user_message([p, "read the page"])["content"]
    assert [c for c in content if c.get("type") == "image_url"] == p.parts


def test_an_ordinary_photo_is_not_tiled(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (1600, 1200), (10, 20, 30)).save(path)
    p = mediaprep.prepare(path, tiles=True)
    assert p.ok and p.part is not None and not p.parts


def test_cli_tiles_writes_every_tile(tmp_path: Path) -> None:
    path = _capture(tmp_path / "page.png", (1200, 6000))
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["prep", str(path), "-o", str(out), "--tiles",
                                    "--no-cache"])
    assert res.exit_code == 0, res.output
    written = sorted(p.name for p in out.rglob("*_tile*"))
    assert len(written) >= 2, written
