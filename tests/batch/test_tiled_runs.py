"""An input sent as tiles (--tiles) over a whole run: its batch request carries every tile in
one user message, and a cache entry reused under another name or folder moves every tile's URL
(not only ``part``'s, which is null for a tiled input)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mediaprep.batch import prep_many
from mediaprep.batch.requests import BatchRequestError
from mediaprep.cli import main
from mediaprep.emit.parts import urls_in
from mediaprep.emit.request import request_headers
from mediaprep.settings import make_settings
from mediaprep.types import Prepared


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1920x8503 full-page screenshot (grey rows), which Moonshot's box would shrink."""
    path = tmp_path_factory.mktemp("capture") / "page.png"
    rows = (np.arange(8503) * 255 // 8502).astype(np.uint8)
    Image.fromarray(np.repeat(rows[:, None], 1920, axis=1), "L").convert("RGB").save(path)
    return path


def _inputs(tmp_path: Path, capture: Path) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    page = folder / "page.png"
    shutil.copyfile(capture, page)
    photo = folder / "photo.jpg"
    Image.new("RGB", (800, 600), (10, 20, 30)).save(photo)
    return [page, photo]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _content(request: dict[str, Any]) -> list[dict[str, Any]]:
    return request["body"]["messages"][0]["content"]


TILED = make_settings(target="moonshot", tiles=True)


def test_a_tiled_input_goes_whole_into_its_own_request(tmp_path, capture) -> None:
    page, photo = _inputs(tmp_path, capture)
    dest = tmp_path / "requests.jsonl"
    result = prep_many([page, photo], tmp_path / "out", TILED, jobs=0, cache=False,
                       batch_requests=dest, prompt="Read the page.")
    assert (result.requests, result.requests_left_out) == (2, 0)
    tiled, single = _lines(tmp_path / "out" / "parts.jsonl")
    assert tiled["part"] is None and len(tiled["parts"]) >= 2
    first, second = _lines(dest)
    assert first["custom_id"] == tiled["path"]
    # one user message: every tile in reading order, then the prompt
    assert len(first["body"]["messages"]) == 1
    assert _content(first) == [*tiled["parts"], {"type": "text", "text": "Read the page."}]
    assert _content(second) == [single["part"], {"type": "text", "text": "Read the page."}]


def test_grouped_requests_count_a_tiled_input_once_and_keep_its_tiles_together(
        tmp_path, capture) -> None:
    page, photo = _inputs(tmp_path, capture)
    dest = tmp_path / "requests.jsonl"
    result = prep_many([page, photo], tmp_path / "out", TILED, jobs=0, cache=False,
                       batch_requests=dest, prompt="Compare.", group=2)
    tiled, single = _lines(tmp_path / "out" / "parts.jsonl")
    assert result.requests == 1
    (request,) = _lines(dest)
    assert request["custom_id"] == f"{tiled['path']}+1"
    assert _content(request)[:-1] == [*tiled["parts"], single["part"]]

    # room for the tiles but not one more data URL: the photo goes to a request of its own
    # (a DashScope limit; the capture is tiled for it too)
    n = len(tiled["parts"])
    limited = make_settings(TILED, target="dashscope", limits={"request.max_data_urls": n})
    result = prep_many([page, photo], tmp_path / "out2", limited, jobs=0, cache=False,
                       batch_requests=dest, prompt="Compare.", group=2)
    assert result.requests == 2
    tiled = _lines(tmp_path / "out2" / "parts.jsonl")[0]
    assert len(tiled["parts"]) == n  # the capture makes as many tiles for either box
    assert [len(_content(r)) - 1 for r in _lines(dest)] == [len(tiled["parts"]), 1]


def test_a_tiled_input_above_the_request_limits_is_refused_with_its_name(tmp_path,
                                                                        capture) -> None:
    page, _ = _inputs(tmp_path, capture)
    limited = make_settings(TILED, target="dashscope", limits={"request.max_data_urls": 2})
    with pytest.raises(BatchRequestError, match=r"page\.png: the request carries \d+ data URLs"):
        prep_many([page], tmp_path / "out", limited, jobs=0, cache=False,
                  batch_requests=tmp_path / "requests.jsonl", prompt="Read.")


def test_cli_batch_requests_carry_the_tiles(tmp_path, capture) -> None:
    page, _ = _inputs(tmp_path, capture)
    dest = tmp_path / "requests.jsonl"
    res = CliRunner().invoke(main, ["prep", str(page), "-o", str(tmp_path / "out"), "--tiles",
                                    "--target", "moonshot", "--no-cache", "--batch-requests",
                                    str(dest), "--prompt", "Read the page."])
    assert res.exit_code == 0, res.output
    assert "left out" not in res.output
    (line,) = _lines(tmp_path / "out" / "parts.jsonl")
    (request,) = _lines(dest)
    images = [c for c in _content(request) if c.get("type") == "image_url"]
    assert len(images) == len(line["outputs"]) >= 2
    assert images == line["parts"]


def test_request_headers_see_uploaded_tiles() -> None:
    tiles = Prepared(path="page.png", kind="image", ok=True,
                     parts=[{"image": "oss://bucket/page_tile01.jpg"},
                            {"image": "oss://bucket/page_tile02.jpg"}])
    settings = make_settings(target="dashscope", dialect="dashscope")
    assert request_headers([tiles, "Read."], settings) == {
        "X-DashScope-OssResourceResolve": "enable"}


# --- journal and cache -----------------------------------------------------------------------


def _tile_urls(line: dict[str, Any]) -> list[str]:
    return [u for part in line["parts"] for u in urls_in(part)]


def test_a_new_url_prefix_moves_every_tile_url(tmp_path, capture) -> None:
    page, _ = _inputs(tmp_path, capture)
    out, cache = tmp_path / "out", tmp_path / "cache"
    for prefix in ("https://old.example/media", "https://new.example/m"):
        settings = make_settings(TILED, target="dashscope", transport="url", url_prefix=prefix)
        prep_many([page], out, settings, jobs=0, cache=cache)
        (line,) = _lines(out / "parts.jsonl")
        assert _tile_urls(line) == [f"{prefix}/{name}" for name in line["outputs"]]
        assert len(line["outputs"]) >= 2


def test_a_cached_tiled_line_reused_for_a_copy_names_the_copys_tiles(tmp_path,
                                                                    capture) -> None:
    page, _ = _inputs(tmp_path, capture)
    copy = page.with_name("copy.png")
    shutil.copyfile(page, copy)
    settings = make_settings(TILED, target="dashscope", transport="url",
                             url_prefix="https://cdn.example/x")
    result = prep_many([page, copy], tmp_path / "out", settings, jobs=0,
                       cache=tmp_path / "cache")
    assert (result.prepared_now, result.from_cache) == (1, 1)
    first, second = _lines(tmp_path / "out" / "parts.jsonl")
    assert second["outputs"] == [n.replace("page", "copy") for n in first["outputs"]]
    assert _tile_urls(second) == [f"https://cdn.example/x/{n}" for n in second["outputs"]]


def test_a_moved_output_folder_names_its_own_tiles(tmp_path, capture) -> None:
    page, _ = _inputs(tmp_path, capture)
    settings = make_settings(target="dashscope", dialect="dashscope", transport="path",
                             tiles=True)
    prep_many([page], tmp_path / "one", settings, jobs=0, cache=tmp_path / "cache")
    result = prep_many([page], tmp_path / "two", settings, jobs=0, cache=tmp_path / "cache")
    assert result.from_cache == 1
    (line,) = _lines(tmp_path / "two" / "parts.jsonl")
    assert len(line["outputs"]) >= 2
    assert _tile_urls(line) == [(tmp_path / "two" / n).resolve().as_uri()
                                for n in line["outputs"]]
