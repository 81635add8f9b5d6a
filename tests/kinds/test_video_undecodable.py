"""Video that cannot become pictures is video.undecodable (issue 14 item 6), and a header that
lies about the duration is remuxed so it tells the truth (item 7)."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

import mediaprep
from mediaprep.settings import Settings
from tests.conftest import REALMEDIA
from tests.fixtures.generate import encode_video

VIDEOS = REALMEDIA / "videos"


def _real(name: str) -> Path:
    p = VIDEOS / name
    if not p.exists():
        pytest.skip("real media absent")
    return p


def _codes(path: Path, **kw) -> dict[str, mediaprep.Finding]:
    return {f.code: f for f in mediaprep.check(path, settings=Settings(**kw)).findings}


def _retagged(tmp_path: Path, fourcc: bytes) -> Path:
    """A generated H.264 MP4 whose sample entry 'avc1' is renamed (same size, no offsets move)."""
    src = tmp_path / "clip.mp4"
    encode_video(src, n_frames=20, fps=10)
    data = src.read_bytes()
    assert data.count(b"avc1") >= 1
    i = data.index(b"avc1", data.index(b"stsd"))
    out = tmp_path / f"{fourcc.decode()}.mp4"
    out.write_bytes(data[:i] + fourcc + data[i + 4:])
    return out


def test_encrypted_real_file_is_undecodable_without_deep() -> None:
    f = _codes(_real("mp4ff_cbcs.mp4"))["video.undecodable"]
    assert f.severity == "error" and not f.fixable
    assert "encrypted" in f.message and "cbcs" in f.message
    assert "mp4ff_cbcs.mp4" in f.message


def test_encrypted_sample_entry_is_undecodable(tmp_path: Path) -> None:
    f = _codes(_retagged(tmp_path, b"encv"))["video.undecodable"]
    assert f.severity == "error" and "encrypted" in f.message


def test_codec_without_decoder_is_undecodable(tmp_path: Path) -> None:
    codes = _codes(_retagged(tmp_path, b"zzzz"))
    assert "video.undecodable" in codes and "file.unreadable" not in codes
    assert "no decoder" in codes["video.undecodable"].message


def test_vvc_follows_the_bundled_decoder() -> None:
    try:
        av.codec.Codec("vvc", "r")
        has_decoder = True
    except (av.codec.codec.UnknownCodecError, ValueError):
        has_decoder = False
    codes = _codes(_real("mp4ff_vvc_400kbps_2s.mp4"))
    assert ("video.undecodable" in codes) is not has_decoder


def test_damaged_middle_fails_deep_only() -> None:
    path = _real("dec_corrupted.mp4")
    assert "video.undecodable" not in _codes(path)
    f = _codes(path, deep=True)["video.undecodable"]
    assert f.severity == "error" and "cannot be decoded" in f.message


def test_deep_passes_a_clean_clip(tmp_path: Path) -> None:
    src = tmp_path / "ok.mp4"
    encode_video(src, n_frames=30, fps=10)
    assert not [f for f in mediaprep.check(src, settings=Settings(deep=True)).findings
                if f.severity == "error"]


def test_undecodable_is_not_prepared(tmp_path: Path) -> None:
    p = mediaprep.prepare(_real("mp4ff_cbcs.mp4"), out_dir=tmp_path)
    assert not p.ok and not p.outputs
    assert any(f.code == "video.undecodable" for f in p.findings)


def test_lying_header_is_remuxed_to_the_truth(tmp_path: Path) -> None:
    src = _real("mp4ff_v300_multiple_segments.mp4")
    before = src.read_bytes()
    assert mediaprep.probe(src).declared_duration > 3000
    p = mediaprep.prepare(src, out_dir=tmp_path)
    assert p.ok
    assert "remuxed" in p.change_kinds() and "transcoded" not in p.change_kinds()
    assert any("header" in x and "remuxed" in x for x in p.fixes)
    out = mediaprep.probe(p.outputs[0])
    assert out.declared_duration == pytest.approx(8.0, abs=0.5)
    assert out.duration == pytest.approx(8.0, abs=0.5)
    assert src.read_bytes() == before  # the input is never modified


def test_truthful_header_is_passed_through(tmp_path: Path) -> None:
    src = tmp_path / "ok.mp4"
    encode_video(src, n_frames=30, fps=10)
    p = mediaprep.prepare(src, out_dir=tmp_path / "out")
    assert p.ok and "remuxed" not in p.change_kinds()
    assert p.fixes == ["passed through unchanged"]
