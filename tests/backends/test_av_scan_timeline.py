"""The probe's packet scan (sorted and measured in plain Python, without numpy) gives the
timeline an independent demux gives, on every real clip: the frame count, whether the rate
varies, and so which frame is on screen at each sampled time (its pts and its place among the
presented frames)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import pairwise
from pathlib import Path

import av
import pytest

import mediaprep
from mediaprep.backends.av_frames import FrameExtractionError, extract_frames
from tests.conftest import REALMEDIA, REALMEDIA_PHONES

CLIPS = sorted(p for root in (REALMEDIA, REALMEDIA_PHONES) if (root / "videos").is_dir()
               for p in (root / "videos").iterdir() if p.is_file())


def _demuxed(path: Path, stream_index: int) -> tuple[list[int], list[int]]:
    """Every packet's timestamp (its pts, else its dts) and the presented packets' pts
    (FFmpeg's discarded edit-list pre-roll left out), read with PyAV alone."""
    stamps: list[int] = []
    shown: list[int] = []
    with av.open(str(path)) as c:
        for p in c.demux(c.streams[stream_index]):
            ts = p.pts if p.pts is not None else p.dts
            if not p.size or ts is None:
                continue
            stamps.append(ts)
            if not p.is_discard:
                shown.append(ts)
    return stamps, sorted(shown)


def _rate_varies(stamps: list[int]) -> bool | None:
    """SPEC's rule: more than 10 % of the positive intervals differ from their median by more
    than 10 % (None with fewer than 3 intervals: not judged)."""
    intervals = sorted(b - a for a, b in pairwise(sorted(stamps)) if b > a)
    if len(intervals) < 3:
        return None
    med = intervals[len(intervals) // 2]
    return sum(abs(i - med) > 0.1 * med for i in intervals) / len(intervals) > 0.1


@pytest.mark.skipif(not CLIPS, reason="the real media folders are absent")
@pytest.mark.parametrize("path", CLIPS, ids=lambda p: p.name)
def test_the_scans_timeline_is_the_demuxers(path: Path) -> None:
    info = mediaprep.probe(str(path))
    scan = info.scan
    if scan is None or scan.restarts:
        pytest.skip("no whole scan kept (or joined segments, mended onto one timeline)")
    stamps, shown = _demuxed(path, scan.stream_index)
    assert info.frame_count == len(stamps)
    varies = _rate_varies(stamps)
    if varies is not None:
        assert info.fps_varies is varies
    try:
        _, frames, counts = extract_frames(str(path), fps=1.0, max_frames=8, scan=scan)
        got = list(frames)
    except FrameExtractionError as exc:
        pytest.skip(f"no frames to compare: {exc}")
    tb = float(scan.time_base)
    for f in got:
        limit = shown[0] + f.timestamp / tb + 1e-6 / tb
        want = shown[max(bisect_right(shown, limit) - 1, 0)]
        if counts["decode_errors"]:  # a picture that does not decode leaves the one before
            assert round(f.pts, 6) <= round(want * tb, 6), f.timestamp
            continue
        assert round(f.pts, 6) == round(want * tb, 6), f.timestamp
        assert f.index == bisect_left(shown, want)
