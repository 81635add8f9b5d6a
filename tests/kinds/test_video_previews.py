"""What prepare(preview=True) keeps of a video sent as a file: the probe's first frame stands
for the output only when the output holds the same pictures (copied or remuxed)."""

from __future__ import annotations

from pathlib import Path, PurePath

import mediaprep
from tests.videogen import make_video


def test_a_transcoded_video_keeps_no_preview_of_its_input_as_its_output_s(
        tmp_path: Path) -> None:
    # above the (lowered) recommended box: transcoded to 160x120, other pictures than the
    # 320x240 input's, so the report must decode the output, not show the input's frame
    clip = make_video(tmp_path / "clip.mp4", n_frames=40, fps=20, width=320, height=240)
    r = mediaprep.prepare(clip, out_dir=tmp_path / "out", stem=PurePath("clip"), preview=True,
                          limit_overrides={"video.recommended_box": [160, 120]})
    assert r.ok and r.change_kinds() == ["transcoded"]
    assert (r.output_info.width, r.output_info.height) == (160, 120)
    assert set(r.previews) == {"input"}
    assert r.previews["input"].size == (256, 192)  # the input's own picture, kept as such


def test_a_copied_video_s_preview_is_the_probe_s_first_frame(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4", n_frames=40, fps=20, width=320, height=240)
    r = mediaprep.prepare(clip, out_dir=tmp_path / "out", stem=PurePath("clip"), preview=True)
    assert r.ok and r.changes == []
    assert r.previews[0] is r.previews["input"]
