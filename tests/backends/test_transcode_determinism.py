"""Transcodes are deterministic: the same input and options give the same bytes (issue 14
item 8), so a resumed or --no-cache run matches an uninterrupted one."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from mediaprep.backends.av_encode import transcode_to_fit
from tests.conftest import REALMEDIA


def _noisy_vfr_clip(path: Path, n: int = 90, size: tuple[int, int] = (640, 360)) -> Path:
    """A VFR clip of moving noise (x264's threads differ on detail, not on flat frames)."""
    rng = np.random.default_rng(14)
    w, h = size
    base = rng.integers(0, 256, (h, w + n * 4, 3), dtype=np.uint8)
    tb = Fraction(1, 30)
    pts = 0
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=30)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.time_base = tb
        vs.options = {"preset": "ultrafast", "crf": "18"}
        for i in range(n):
            arr = np.ascontiguousarray(base[:, i * 4:i * 4 + w])
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts, frame.time_base = pts, tb
            pts += 1 if i % 3 else 3  # irregular intervals: variable frame rate
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
    return path


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_two_transcodes_of_one_clip_are_identical(tmp_path: Path) -> None:
    src = _noisy_vfr_clip(tmp_path / "vfr.mp4")
    budget = src.stat().st_size // 3  # a real squeeze: the bitrate is planned, VBV-capped
    a = transcode_to_fit(src, tmp_path / "a.mp4", max_bytes=budget)
    b = transcode_to_fit(src, tmp_path / "b.mp4", max_bytes=budget)
    assert a.bytes == b.bytes
    assert _digest(Path(a.path)) == _digest(Path(b.path))


def test_two_preps_of_the_real_vfr_file_are_identical(tmp_path: Path) -> None:
    src = REALMEDIA / "videos" / "mb_cursed-vfr.mp4"
    if not src.exists():
        pytest.skip("real media absent")
    import mediaprep

    outs = []
    for run in ("one", "two"):
        p = mediaprep.prepare(src, out_dir=tmp_path / run)
        assert p.ok, p.findings
        assert "transcoded" in p.change_kinds()
        outs.append(_digest(p.outputs[0]))
    assert outs[0] == outs[1]
