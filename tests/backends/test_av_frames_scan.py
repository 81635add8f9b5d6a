"""One packet scan for frames: a frames-mode prepare opens its input twice (the probe's scan,
then the decode), and frames.json's duration is the probe's (one duration rule)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import pytest

import mediaprep
from mediaprep.backends.av_frames import extract_frames
from tests.conftest import REALMEDIA
from tests.videogen import make_video, read_index

ROOT = Path(__file__).resolve().parents[2]

# Clips whose header and packets disagree a little (the probe takes the header within a
# tolerance), plus ordinary ones: the frames' duration must be the probe's on all of them.
REAL = ["mb_no-correct-videoframe-format.mov", "ft_fixture2.mpg", "mb_edit-list-discard.mp4",
        "ft_fixture.wmv.asf", "mb_rotate-buck-bunny.mp4", "mb_hevc.ts", "mb_test-mkv-ass.mkv",
        "mpy_no_duration.webm", "mp4ff_v300_multiple_segments.mp4"]


def _count_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    opens: list[str] = []
    real = av.open

    def counting(file, *args, **kwargs):
        name = os.path.abspath(os.fspath(file)) if isinstance(file, str | os.PathLike) else "<io>"
        opens.append(name)
        return real(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting)
    return opens


def _clips() -> list[Path]:
    out = [ROOT / "examples" / "short_clip.mp4", ROOT / "examples" / "clip.ts"]
    out += [REALMEDIA / "videos" / n for n in REAL if (REALMEDIA / "videos" / n).exists()]
    return out


def test_a_frames_prepare_opens_the_input_twice(tmp_path, monkeypatch):
    src = ROOT / "examples" / "short_clip.mp4"
    opens = _count_opens(monkeypatch)
    res = mediaprep.prepare(src, out_dir=tmp_path, video_mode="frames")
    assert res.ok and "sent as frames" in res.change_kinds()
    assert opens.count(os.path.abspath(src)) == 2  # the probe's scan, then the decode


def test_extract_frames_opens_once_with_the_probes_scan(tmp_path, monkeypatch):
    path = make_video(tmp_path / "a.mp4", n_frames=20, fps=10)
    info = mediaprep.probe(path)
    opens = _count_opens(monkeypatch)
    plan, frames, _ = extract_frames(str(path), fps=2.0, scan=info.scan)
    assert [read_index(f.image) for f in frames] == [0, 5, 10, 15]
    assert opens == [os.path.abspath(path)]
    opens.clear()
    plan2, frames2, _ = extract_frames(str(path), fps=2.0)  # no scan given: scan, then decode
    assert [f.index for f in frames2] == [0, 5, 10, 15]
    assert len(opens) == 2 and plan2.timestamps == plan.timestamps


@pytest.mark.parametrize("clip", _clips(), ids=lambda p: p.name)
def test_frames_duration_is_the_probes(clip):
    info = mediaprep.probe(clip)
    assert info.error_code is None and info.duration
    plan, _, _ = extract_frames(str(clip), fps=2.0)  # standalone: its own scan, same rule
    assert plan.duration == pytest.approx(info.duration, abs=1e-9)
    if info.scan is not None:
        plan, _, _ = extract_frames(str(clip), fps=2.0, scan=info.scan)
        assert plan.duration == pytest.approx(info.duration, abs=1e-9)


@pytest.mark.parametrize("clip", [c for c in _clips() if c.name in (
    "short_clip.mp4", "clip.ts", "mb_edit-list-discard.mp4", "ft_fixture2.mpg")],
    ids=lambda p: p.name)
def test_frames_json_duration_is_the_probes(clip, tmp_path):
    res = mediaprep.prepare(clip, out_dir=tmp_path, video_mode="frames")
    assert res.ok, res.findings
    manifest = json.loads(next(tmp_path.rglob("frames.json")).read_text())
    assert manifest["duration"] == round(mediaprep.probe(clip).duration, 6)
    assert len(manifest["frames"]) == len(res.timestamps)
