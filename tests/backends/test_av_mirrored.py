"""Issue 25 item 7: a display matrix that rotates and reflects is applied with its reflection
(the frames are what FFmpeg's autorotate shows), not as a rotation only."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mediaprep
from tests.videogen import make_video

ONE = 1 << 16  # 1.0 in the matrix's 16.16 fixed point
W = 1 << 30  # the w entry (2.30)


def _source(i: int) -> np.ndarray:
    """Blue, with a red block in the top-left corner: every turn and mirror looks different."""
    a = np.zeros((48, 96, 3), np.uint8)
    a[..., 2] = 200
    a[:16, :24] = (230, 20, 20)
    return a


def _red_box(img: Image.Image) -> tuple[int, int, int, int]:
    a = np.asarray(img.convert("RGB")).astype(int)
    ys, xs = np.nonzero((a[..., 0] > 150) & (a[..., 2] < 100))
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


@pytest.mark.parametrize(("matrix", "turn"), [
    # av_display_rotation_set(90): a plain rotation
    ([0, -ONE, 0, ONE, 0, 0, 0, 0, W], Image.Transpose.ROTATE_90),
    # the same, mirrored (av_display_matrix_flip(hflip=1) negates the first column)
    ([0, -ONE, 0, -ONE, 0, 0, 0, 0, W], Image.Transpose.TRANSVERSE),
    ([0, ONE, 0, ONE, 0, 0, 0, 0, W], Image.Transpose.TRANSPOSE),
    ([-ONE, 0, 0, 0, ONE, 0, 0, 0, W], Image.Transpose.FLIP_LEFT_RIGHT),
])
def test_frames_follow_the_whole_display_matrix(tmp_path: Path, matrix: list[int],
                                                turn: Image.Transpose) -> None:
    path = make_video(tmp_path / "clip.mp4", n_frames=20, fps=10, width=96, height=48,
                      frame_fn=_source, display_matrix=matrix)
    p = mediaprep.prepare(path, video_mode="frames", fps=2)
    assert p.ok, p.findings
    url = p.part["video"][0] if "video" in p.part else p.part["video_url"]["url"]
    got = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    want = Image.fromarray(_source(0)).transpose(turn)
    assert got.size == want.size
    gx0, gy0, gx1, gy1 = _red_box(got)
    wx0, wy0, wx1, wy1 = _red_box(want)
    assert abs(gx0 - wx0) <= 2 and abs(gy0 - wy0) <= 2 and abs(gx1 - wx1) <= 2 \
        and abs(gy1 - wy1) <= 2, (_red_box(got), _red_box(want))
