"""Frame extraction by presentation time (mediaprep.backends.av_frames)."""

from __future__ import annotations

import csv
import io
import math
from fractions import Fraction

import pytest
from PIL import Image

from mediaprep.backends.av_frames import (
    FrameExtractionError,
    NoFrames,
    NoVideoStream,
    SamplingPlan,
    extract_frames,
    iter_frames,
    plan_sampling,
    video_timeline,
)
from tests.conftest import REALMEDIA
from tests.videogen import (
    corrupt_packets,
    index_pattern,
    make_audio_only,
    make_empty_video,
    make_video,
    read_index,
    truncate,
)


def expected_indices(pts_s: list[float], times: list[float]) -> list[int]:
    """Reference rule: the last frame with pts <= t, else the first frame."""
    out = []
    for t in times:
        cands = [i for i, p in enumerate(pts_s) if p <= t + 1e-9]
        out.append(cands[-1] if cands else 0)
    return out


def taken(path, **kw):
    plan, it, info = extract_frames(path, **kw)
    frames = list(it)
    return plan, frames, info


# ------------------------------------------------------------------------------ plan_sampling


def test_plan_plain():
    plan = plan_sampling(10.0, 2.0, 2000)
    assert plan.timestamps == [k / 2 for k in range(20)]
    assert (plan.fps, plan.requested_fps, plan.capped) == (2.0, 2.0, False)


def test_plan_boundaries():
    assert len(plan_sampling(2.0, 5.0, 100).timestamps) == 10  # 2.0 s at 5 fps: k = 0..9
    assert len(plan_sampling(0.3, 10.0, 100).timestamps) == 3  # float noise must not add one
    assert len(plan_sampling(2.01, 5.0, 100).timestamps) == 11
    assert plan_sampling(0.04, 2.0, 100).timestamps == [0.0]  # short clip: one frame
    assert plan_sampling(0.0, 2.0, 100).timestamps == []


def test_plan_capped_reports_real_fps():
    plan = plan_sampling(3600.0, 2.0, 2000)
    assert plan.capped and len(plan.timestamps) == 2000
    assert math.isclose(plan.fps, 2000 / 3600)
    assert plan.timestamps[1] == pytest.approx(1.8)
    assert plan.timestamps[-1] < 3600


@pytest.mark.parametrize(
    "args", [(10, 0, 5), (10, -1, 5), (10, 2, 0), (-1, 2, 5), (math.nan, 2, 5), (10, math.inf, 5)]
)
def test_plan_rejects_bad_args(args):
    with pytest.raises(ValueError):
        plan_sampling(*args)


# ------------------------------------------------------------------------------ which frames


def test_fps2_takes_frames_by_time(tmp_path):
    path = make_video(tmp_path / "a.mp4", n_frames=50, fps=10)  # 5 s
    plan, frames, info = taken(path, fps=2.0)
    assert plan.duration == pytest.approx(5.0)
    assert [f.timestamp for f in frames] == [k / 2 for k in range(10)]
    assert [f.index for f in frames] == list(range(0, 50, 5))
    assert [read_index(f.image) for f in frames] == list(range(0, 50, 5))
    assert frames[3].pts == pytest.approx(1.5)
    assert info["decode_errors"] == 0 and info["rotation"] == 0


def test_max_frames_cap(tmp_path):
    path = make_video(tmp_path / "a.mp4", n_frames=50, fps=10)
    plan, frames, _ = taken(path, fps=2.0, max_frames=4)
    assert plan.capped and plan.fps == pytest.approx(4 / 5.0) and plan.requested_fps == 2.0
    assert [f.timestamp for f in frames] == pytest.approx([0, 1.25, 2.5, 3.75])
    # frame on screen at t: 1.25 s -> frame 12, 3.75 s -> frame 37
    assert [read_index(f.image) for f in frames] == [0, 12, 25, 37]


def test_vfr_clip(tmp_path):
    pts_ms = [0, 40, 80, 500, 520, 1400, 1450, 1460, 2300, 2990]
    path = make_video(tmp_path / "vfr.mkv", pts=pts_ms, time_base=Fraction(1, 1000), fps=10)
    plan, frames, _ = taken(path, fps=4.0)
    pts_s = [p / 1000 for p in pts_ms]
    want = expected_indices(pts_s, plan.timestamps)
    assert [f.index for f in frames] == want
    assert [read_index(f.image) for f in frames] == want
    ts = [f.timestamp for f in frames]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)


def test_stream_not_starting_at_zero(tmp_path):
    path = make_video(tmp_path / "late.mkv", n_frames=20, fps=10, start_pts=53)  # starts 5.3 s
    start, duration, rot = video_timeline(path)
    assert start == pytest.approx(5.3) and duration == pytest.approx(2.0) and rot == 0
    _, frames, info = taken(path, fps=2.0)
    assert [f.timestamp for f in frames] == [0, 0.5, 1.0, 1.5]
    assert [read_index(f.image) for f in frames] == [0, 5, 10, 15]
    assert [f.index for f in frames] == [0, 5, 10, 15]
    assert frames[1].pts == pytest.approx(5.8)
    assert info["start_time"] == pytest.approx(5.3)


def test_short_clip(tmp_path):
    path = make_video(tmp_path / "short.mp4", n_frames=2, fps=25)  # 0.08 s
    plan, frames, _ = taken(path, fps=2.0)
    assert len(frames) == 1 and frames[0].index == 0 and read_index(frames[0].image) == 0


def test_rotated_clip_comes_out_upright(tmp_path):
    # Stored pixels are the upright picture turned 90 degrees clockwise; the display matrix
    # says "turn 90 counter-clockwise to show" (PyAV's convention, as VideoFrame.rotation).
    def stored(i):
        return Image.fromarray(index_pattern(i, 64, 48)).transpose(Image.Transpose.ROTATE_270)

    path = make_video(tmp_path / "rot.mp4", n_frames=20, fps=10, width=48, height=64,
                      frame_fn=stored, rotation=90)  # fmt: skip
    assert video_timeline(path)[2] == 90
    _, frames, info = taken(path, fps=2.0)
    assert info["rotation"] == 90
    assert all(f.image.size == (64, 48) for f in frames)
    assert [read_index(f.image) for f in frames] == [0, 5, 10, 15]


def test_rotation_180(tmp_path):
    def stored(i):
        return Image.fromarray(index_pattern(i, 64, 48)).transpose(Image.Transpose.ROTATE_180)

    path = make_video(tmp_path / "r180.mp4", n_frames=10, fps=10, frame_fn=stored, rotation=180)
    _, frames, _ = taken(path, fps=2.0)
    assert frames[0].image.size == (64, 48)
    assert [read_index(f.image) for f in frames] == [0, 5]


def test_sar_2_to_1_gives_square_pixels(tmp_path):
    def squeezed(i):  # the picture squeezed to half width, to be shown 2:1
        return Image.fromarray(index_pattern(i, 128, 48)).resize((64, 48), Image.NEAREST)

    path = make_video(tmp_path / "sar.mp4", n_frames=10, fps=10, frame_fn=squeezed,
                      sar=Fraction(2, 1))  # fmt: skip
    _, frames, info = taken(path, fps=2.0)
    assert info["sar"] == 2.0
    assert frames[0].image.size == (128, 48)
    assert [read_index(f.image) for f in frames] == [0, 5]


def test_max_side_scales_in_swscale(tmp_path):
    path = make_video(tmp_path / "big.mp4", n_frames=4, fps=10, width=128, height=96)
    _, frames, _ = taken(path, fps=10.0, max_side=32)
    assert all(f.image.size == (32, 24) for f in frames)
    assert [read_index(f.image) for f in frames] == [0, 1, 2, 3]
    _, frames, _ = taken(path, fps=10.0, max_side=1000)  # never upscales
    assert frames[0].image.size == (128, 96)


def test_file_object_source(tmp_path):
    path = make_video(tmp_path / "a.mp4", n_frames=20, fps=10)
    buf = io.BytesIO(path.read_bytes())
    plan, it, _ = extract_frames(buf, fps=2.0)
    assert [read_index(f.image) for f in it] == [0, 5, 10, 15]
    with open(path, "rb") as fh:
        frames = list(iter_frames(fh, plan_sampling(2.0, 1.0, 10)))
    assert [f.index for f in frames] == [0, 10]


# ------------------------------------------------------------------------------ seeking


@pytest.mark.parametrize("bframes", [0, 3])
def test_long_gop_seek_equals_decode_forward(tmp_path, bframes):
    path = make_video(
        tmp_path / f"gop{bframes}.mp4", n_frames=300, fps=30, gop=45, bframes=bframes
    )  # fmt: skip  10 s, keyframe every 1.5 s
    plan = plan_sampling(10.0, 0.35, 2000)
    seek_stats: dict = {}
    fwd_stats: dict = {}
    seeked = list(iter_frames(path, plan, stats=seek_stats))
    forward = list(iter_frames(path, plan, seek=False, stats=fwd_stats))
    assert [f.index for f in seeked] == [f.index for f in forward]
    assert [read_index(f.image) for f in seeked] == [f.index for f in forward]
    assert [f.index for f in seeked] == expected_indices(
        [i / 30 for i in range(300)], plan.timestamps
    )
    assert seek_stats["seeks"] > 0 and fwd_stats["seeks"] == 0
    assert seek_stats["decoded"] < fwd_stats["decoded"]


def test_plan_starting_late_and_dense_targets(tmp_path):
    path = make_video(tmp_path / "g.mp4", n_frames=120, fps=30, gop=30, bframes=2)
    times = [0.5, 0.51, 1.0, 1.02, 2.9, 3.99, 4.5]  # 4.5 s is past the end (4 s)
    plan = SamplingPlan(1.0, 1.0, 3.5, times, False)
    frames = list(iter_frames(path, plan))
    want = expected_indices([i / 30 for i in range(120)], times[:-1])
    assert [f.index for f in frames] == want
    assert [read_index(f.image) for f in frames] == want


# ------------------------------------------------------------------------------ robustness


def test_no_video_stream(tmp_path):
    for p in (make_audio_only(tmp_path / "a.m4a"), make_audio_only(tmp_path / "a.wav",
              codec="pcm_s16le")):  # fmt: skip
        with pytest.raises(NoVideoStream):
            extract_frames(p)
        with pytest.raises(NoVideoStream):
            video_timeline(p)


def test_zero_frames(tmp_path):
    path = make_empty_video(tmp_path / "empty.mkv")
    with pytest.raises(NoFrames):
        extract_frames(path)


def test_not_a_video(tmp_path):
    p = tmp_path / "x.mp4"
    p.write_bytes(b"\x00\x01 definitely not a container" * 10)
    with pytest.raises(FrameExtractionError):
        extract_frames(p)


def test_corrupt_packets_are_skipped_and_counted(tmp_path):
    path = make_video(tmp_path / "c.mp4", n_frames=40, fps=10, gop=10)
    corrupt_packets(path, [13, 14])
    _, frames, info = taken(path, fps=2.0)
    assert len(frames) == 8
    assert info["decode_errors"] >= 1
    # frames before the damage and after the next keyframe are exact
    assert [read_index(f.image) for f in frames][:2] == [0, 5]
    assert [read_index(f.image) for f in frames][4:] == [20, 25, 30, 35]


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_truncated_file_no_hang(tmp_path, ext):
    path = make_video(tmp_path / f"t.{ext}", n_frames=60, fps=10, gop=10)
    cut = truncate(path, tmp_path / f"cut.{ext}", 0.5)
    try:
        _, frames, _ = taken(cut, fps=2.0)
    except FrameExtractionError:
        return
    assert frames and [read_index(f.image) for f in frames][0] == 0


def test_lying_header_duration_stops_at_real_end(tmp_path):
    path = make_video(tmp_path / "a.mkv", n_frames=20, fps=10)  # 2 s of frames
    plan = plan_sampling(3900.0, 2.0, 100000)  # a plan from a header that claims 65 minutes
    frames = list(iter_frames(path, plan))
    assert [f.index for f in frames] == [0, 5, 10, 15]
    assert video_timeline(path)[1] == pytest.approx(2.0)


# ------------------------------------------------------------------------------ real media


def _real_videos():
    manifest = REALMEDIA / "MANIFEST.tsv"
    if not manifest.exists():
        return []
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [
        r["relpath"] for r in rows if r["relpath"].startswith("videos/") and r["kind"] == "video"
    ]


@pytest.mark.skipif(not REALMEDIA.exists(), reason=f"no real media at {REALMEDIA}")
@pytest.mark.parametrize("relpath", _real_videos())
def test_real_media(relpath):
    path = REALMEDIA / relpath
    name = path.name
    try:
        plan, it, info = extract_frames(path, fps=2.0, max_side=256)
        frames = list(it)
    except FrameExtractionError:
        assert name not in {"mb_rotate-buck-bunny.mp4", "mb_cursed-vfr.mp4", "mb_sar_2x1.mp4"}
        return
    assert frames, name
    assert len(frames) <= len(plan.timestamps)
    ts = [f.timestamp for f in frames]
    assert ts == sorted(ts)
    if name in {"mb_rotate-buck-bunny.mp4", "dec_video_90.mov"}:
        assert info["rotation"] in (90, 270)
        assert all(f.image.height > f.image.width for f in frames)  # landscape coded, portrait
    if name == "mpy_fire2.mp4":
        assert info["rotation"] == 180 and frames[0].image.width > frames[0].image.height
    if name == "mb_cursed-vfr.mp4":
        assert len(set(ts)) == len(ts)
        pts = [f.pts for f in frames]
        assert pts == sorted(pts) and len(set(pts)) > 5
    if name == "mb_sar_2x1.mp4":
        plan, it, info = extract_frames(path, fps=1.0)
        img = next(it).image
        assert info["sar"] == 2.0 and img.size == (1280, 360)
    if name == "mp4ff_v300_multiple_segments.mp4":  # header says 3900 s
        assert plan.duration < 10


# ------------------------------------------------------------------------- exact, decoding less


def _full_decode(path, skip_nonref=False):
    """Every presented frame of ``path`` by pts (plain PyAV, every picture decoded)."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        if skip_nonref:
            s.codec_context.skip_frame = "NONREF"
        return {f.pts: f.to_image() for f in c.decode(s)}


@pytest.mark.parametrize("fps", [30.0, 7.0, 2.0, 0.7, 0.2])
def test_frames_equal_full_decode_on_b_frame_clip(tmp_path, fps):
    """Pixel-identical to a full decode at the same pts, also where the target is a
    non-reference B-picture (which the decoder otherwise skips), with less decoded."""
    import numpy as np

    path = tmp_path / "b.mp4"
    if not path.exists():
        make_video(path, n_frames=240, fps=30, gop=48, bframes=3, width=96, height=64)
    ref = _full_decode(path)
    refs_only = set(_full_decode(path, skip_nonref=True))
    nonref = set(ref) - refs_only
    assert nonref, "the clip must have non-reference B-pictures"
    order = sorted(ref)
    plan = plan_sampling(8.0, fps, 2000)
    stats: dict = {}
    frames = list(iter_frames(path, plan, stats=stats))
    want = expected_indices([i / 30 for i in range(len(order))], plan.timestamps)
    assert [f.index for f in frames] == want
    assert [read_index(f.image) for f in frames] == want
    for f in frames:
        a = np.asarray(f.image)
        b = np.asarray(ref[order[f.index]])
        assert np.array_equal(a, b), (fps, f.index)
    if 1 < fps < 30:
        assert any(order[f.index] in nonref for f in frames)
    # only reference pictures and the targets themselves are reconstructed
    assert stats["decoded"] <= len(refs_only | {order[f.index] for f in frames})


def test_fps_targets_on_non_reference_pictures(tmp_path):
    """Times chosen to land on non-reference B-pictures only, seeking across GOPs."""
    path = make_video(tmp_path / "b.mp4", n_frames=240, fps=30, gop=30, bframes=3)
    ref = _full_decode(path)
    nonref = sorted(set(ref) - set(_full_decode(path, skip_nonref=True)))
    order = sorted(ref)
    picks = nonref[1::7][:8]
    assert len(picks) >= 4
    times = [order.index(p) / 30 for p in picks]
    plan = SamplingPlan(1.0, 1.0, 8.0, times, False)
    stats: dict = {}
    frames = list(iter_frames(path, plan, stats=stats))
    assert [order[f.index] for f in frames] == picks
    assert [read_index(f.image) for f in frames] == [order.index(p) for p in picks]
    assert stats["seeks"] > 0
