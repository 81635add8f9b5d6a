"""Issue 25 items 12-13: token estimates follow the open Kimi K2.5 processor's arithmetic
(written out here from its ``navit_resize_video`` / ``split_video_chunks``): a video is sampled
at min(sample fps, the video's own fps), and each 4-frame chunk of a frame list is sized by its
first frame."""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image

import mediaprep
from tests.videogen import make_video

#: the text before each 4-frame chunk: an HH:MM:SS.fff timestamp (7 tokens) and the
#: <|media_begin|>video<|media_content|>…<|media_end|> wrapper (4)
CHUNK_PROMPT = 7 + 4


def processor_chunk_tokens(w: int, h: int, patch_limit: int = 4096) -> int:
    """navit_resize_video for one chunk: patch 14, merge 2, 512 patches a side."""
    s = min(1.0, math.sqrt(patch_limit / (max(1, w // 14) * max(1, h // 14))),
            7168 / w, 7168 / h)
    nw, nh = min(max(1, int(w * s)), 7168), min(max(1, int(h * s)), 7168)
    return math.ceil(nw / 28) * math.ceil(nh / 28)


def processor_video_frames(n_source: int, video_fps: float, sample_fps: float) -> int:
    return max(round(n_source * min(sample_fps, video_fps) / video_fps), 1)


def test_video_file_sampled_no_faster_than_its_own_fps(tmp_path: Path) -> None:
    """A 60 s clip at 1 fps: the processor takes 60 frames at fps 2, not 120."""
    path = make_video(tmp_path / "slow.mp4", n_frames=60, fps=1, width=64, height=48)
    rep = mediaprep.check(path, fps=2)
    n = processor_video_frames(60, 1.0, 2.0)
    assert n == 60
    expected = math.ceil(n / 4) * (processor_chunk_tokens(64, 48) + CHUNK_PROMPT)
    assert rep.tokens is not None and rep.tokens["estimate"] == expected


def _frame(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGB", size, (90, 120, 150)).save(path, quality=60)
    return path


def test_mixed_frame_list_chunks_sized_by_their_first_frame(tmp_path: Path) -> None:
    """Sixteen 720p frames then one 4K frame: four chunks at 720p and one at 4K (mediaprep
    used the 4K size for every chunk)."""
    small = _frame(tmp_path / "small.jpg", (1280, 720))
    big = _frame(tmp_path / "big.jpg", (3840, 2160))
    frames = [small] * 16 + [big]
    expected = (4 * processor_chunk_tokens(1280, 720) + processor_chunk_tokens(3840, 2160)
                + 5 * CHUNK_PROMPT)
    rep = mediaprep.check(frames, fps=2)
    assert rep.tokens is not None and rep.tokens["estimate"] == expected, rep.tokens
    # and a large frame that opens a chunk sizes that whole chunk
    frames = [small] * 4 + [big] + [small] * 3
    expected = (processor_chunk_tokens(1280, 720) + processor_chunk_tokens(3840, 2160)
                + 2 * CHUNK_PROMPT)
    rep = mediaprep.check(frames, fps=2)
    assert rep.tokens is not None and rep.tokens["estimate"] == expected, rep.tokens


def test_prepared_mixed_frame_list_tokens(tmp_path: Path) -> None:
    small = _frame(tmp_path / "small.jpg", (640, 360))
    big = _frame(tmp_path / "big.jpg", (1920, 1080))
    p = mediaprep.prepare([small] * 4 + [big], fps=2)
    assert p.ok, p.findings
    expected = (processor_chunk_tokens(640, 360) + processor_chunk_tokens(1920, 1080)
                + 2 * CHUNK_PROMPT)
    assert p.tokens is not None and p.tokens["estimate"] == expected
