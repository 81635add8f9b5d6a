"""A small mixed folder (JPEGs, a PNG, a clip) prepared with small outputs, for the report tests
that look at what a run writes and reads per input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from mediaprep.cli import main
from tests.videogen import make_video


def mixed_inputs(folder: Path, photo_sizes: list[tuple[int, int]], seed: int) -> Path:
    """JPEGs of ``photo_sizes`` (height, width) of noise, a 96x128 PNG and a 3 s clip."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i, (h, w) in enumerate(photo_sizes):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
            folder / f"photo{i}.jpg", quality=85)
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(folder / "big.png")
    make_video(folder / "clip.mp4", n_frames=30, fps=10)
    return folder


def prep_small(src: Path, out: Path) -> None:
    """``prep`` in process, without the cache, every output at most 64 px a side."""
    r = CliRunner().invoke(main, ["prep", str(src), "-o", str(out), "-q", "-j", "0",
                                  "--no-cache", "--max-side", "64"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
