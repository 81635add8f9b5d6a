"""A prep run hands its inputs to the workers largest file first (so a long input does not
start last and keep one worker busy while the others have nothing left); its lines and results
stay in input order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from mediaprep.batch import prep_many


def test_the_largest_input_goes_first_and_the_lines_stay_in_input_order(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(7)
    sides = {"a.png": 16, "b.png": 96, "c.png": 32, "d.png": 96, "e.png": 64}
    for name, side in sides.items():  # noise: the file's size follows its side
        Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(src / name)
    by_size = sorted(sides, key=lambda n: -(src / n).stat().st_size)
    ended: list[str] = []
    result = prep_many([src], tmp_path / "out", jobs=1, cache=False,
                       on_result=lambda r: ended.append(Path(r.path).name))
    assert ended == by_size  # one worker: the order it was given them in
    lines = (tmp_path / "out" / "parts.jsonl").read_text().splitlines()
    assert [Path(json.loads(x)["path"]).name for x in lines] == sorted(sides)
    assert [Path(r.path).name for r in result.results] == sorted(sides)
