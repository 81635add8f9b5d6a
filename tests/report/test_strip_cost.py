"""A video's report pictures are the same pixels however cheaply they are made."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from mediaprep.backends.av import frame_preview
from mediaprep.backends.pillow import PREVIEW_SIDE
from tests.videogen import make_video


def _noise(j: int, w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(j)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(("w", "h", "pix_fmt"), [(64, 48, "yuv420p"), (642, 362, "yuv420p"),
                                                 (330, 250, "yuv444p"),
                                                 (400, 226, "yuv420p10le")])
def test_a_frames_preview_is_the_picture_a_fresh_scaler_gives(tmp_path: Path, w: int, h: int,
                                                              pix_fmt: str) -> None:
    """Guard for the kept scaler (one per thread, one slice thread): every frame's preview is
    pixel for pixel what FFmpeg's scaler made anew for that frame gives, at the same size."""
    clip = make_video(tmp_path / "c.mp4", n_frames=6, width=w, height=h, pix_fmt=pix_fmt,
                      frame_fn=lambda j: _noise(j, w, h),
                      codec="libx264" if pix_fmt != "yuv420p10le" else "libx265")
    with av.open(str(clip)) as c:
        for frame in c.decode(video=0):
            got = frame_preview(frame)
            scale = min(1.0, PREVIEW_SIDE / max(w, h))
            want = frame.to_image(width=max(1, round(w * scale)), height=max(1, round(h * scale)))
            assert got.size == want.size and got.mode == "RGB"
            assert got.tobytes() == want.tobytes()
