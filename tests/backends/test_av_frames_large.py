"""Memory with large pictures (issue 28 item 6): a 2160p HEVC 10-bit picture is 25 MB, and
every decoder holds about ten of them, so large pictures get one decoder, and no decoded
picture is held longer than its turn."""

from __future__ import annotations

import gc
import io
import os

import av
import numpy as np
import pytest

from mediaprep.backends.av_frames import extract_frames
from tests.videogen import index_pattern, make_video, read_index

two_cores = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: one decoder")


def _clip(tmp_path, pix_fmt: str):
    # 2560x1440: 4:2:0 10-bit is 11 MB a picture (over a 1080p 10-bit one), 8-bit 5.5 MB
    return make_video(tmp_path / f"{pix_fmt}.mp4", n_frames=16, fps=2, width=2560,
                      height=1440, pix_fmt=pix_fmt, gop=4, bframes=2,
                      frame_fn=lambda i: index_pattern(i, 2560, 1440))


@two_cores
@pytest.mark.parametrize(("pix_fmt", "decoders"), [
    ("yuv420p10le", 1),  # over a 1080p 10-bit picture: one decoder with frame threads
    ("yuv420p", 2),      # the same size in 8-bit still gets two
])
def test_large_10bit_pictures_get_one_decoder_and_8bit_two(tmp_path, pix_fmt: str,
                                                           decoders: int) -> None:
    clip = _clip(tmp_path, pix_fmt)
    _, frames, info = extract_frames(str(clip), fps=2, max_side=640)
    got = list(frames)
    assert info["decoders"] == decoders
    assert [f.index for f in got] == list(range(16))
    assert [read_index(f.image) for f in got] == list(range(16))


def _noisy(i: int) -> np.ndarray:
    # lossless noise: packets far over FFmpeg's 32 KB read buffer, so reads come while decoding
    a = index_pattern(i, 320, 240)
    a[200:] = np.random.default_rng(i).integers(0, 255, size=(40, 320, 3), dtype=np.uint8)
    return a


class _CountingReader(io.RawIOBase):
    """A file whose every read counts the decoded frames alive (PyAV reads while decoding)."""

    def __init__(self, path) -> None:
        self.fh = open(path, "rb")  # noqa: SIM115 - closed with the reader
        self.peak: list[int | None] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.fh.seek(offset, whence)

    def tell(self) -> int:
        return self.fh.tell()

    def read(self, n: int = -1) -> bytes:
        live = [o.pts for o in gc.get_objects() if isinstance(o, av.VideoFrame)]
        if len(live) > len(self.peak):
            self.peak = live
        return self.fh.read(n)

    def close(self) -> None:
        self.fh.close()
        super().close()


def test_the_frame_taken_is_let_go_while_decoding_toward_the_next(tmp_path) -> None:
    clip = make_video(tmp_path / "noisy.mp4", n_frames=120, fps=30, width=320, height=240,
                      gop=60, qp=0, frame_fn=_noisy)
    gc.collect()
    gc.disable()  # a reference cycle stays counted
    try:
        with _CountingReader(clip) as fh:
            _, frames, info = extract_frames(fh, fps=3)
            got = [f.index for f in frames]
            peak = fh.peak
    finally:
        gc.enable()
    assert got == list(range(0, 120, 10)) and info["seeks"] >= 1
    # PyAV's own empty frame (pts None), the first frame (read once for the display matrix:
    # its side data ties it in a cycle) and the candidate for the next time; the frame taken
    # for the time before was held too (a stale cache)
    assert len(peak) <= 3, peak
