"""Issue 14 item 9: the path and url transports point at written files, so without an output
folder a video (file or frames) is refused with the same SettingsError images get, never a
dangling file:// URI or an empty frame list."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import mediaprep
from mediaprep.settings import SettingsError
from tests.fixtures.generate import encode_video

TRANSPORTS = [
    {"transport": "path", "dialect": "dashscope"},
    {"transport": "url", "url_prefix": "https://cdn.example.com/m/"},
]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("noout") / "clip.mp4"
    encode_video(path, n_frames=40, fps=10)  # 4 s: goes as a file in auto mode
    return path


@pytest.mark.parametrize("options", TRANSPORTS, ids=lambda o: o["transport"])
@pytest.mark.parametrize("mode", ["auto", "file", "frames"])
def test_video_without_out_dir_raises_like_an_image(clip: Path, options, mode) -> None:
    with pytest.raises(SettingsError, match="needs an output folder") as video_err:
        mediaprep.prepare(clip, video_mode=mode, **options)
    with pytest.raises(SettingsError) as image_err:
        mediaprep.prepare(Image.new("RGB", (64, 64)), **options)
    assert str(video_err.value) == str(image_err.value)


@pytest.mark.parametrize("options", TRANSPORTS, ids=lambda o: o["transport"])
@pytest.mark.parametrize("mode", ["file", "frames"])
def test_video_with_out_dir_points_at_written_files(clip: Path, tmp_path: Path, options,
                                                    mode) -> None:
    prepared = mediaprep.prepare(clip, video_mode=mode, out_dir=tmp_path / "out", **options)
    assert prepared.ok, prepared.findings
    assert prepared.outputs and all(p.is_file() for p in prepared.outputs)
    urls = mediaprep.emit.parts.urls_in(prepared.part)
    assert urls and all(u for u in urls)
    if options["transport"] == "path":
        assert all(Path(u.removeprefix("file://")).is_file() for u in urls)


@pytest.mark.parametrize("mode", ["file", "frames"])
def test_base64_needs_no_out_dir(clip: Path, mode) -> None:
    prepared = mediaprep.prepare(clip, video_mode=mode)
    assert prepared.ok and prepared.outputs == []
    assert all(u.startswith("data:") for u in mediaprep.emit.parts.urls_in(prepared.part))
