"""Issue 25 item 4: an AVIF Pillow's libavif refuses but the bundled FFmpeg (dav1d) decodes is
read and converted through FFmpeg; a JPEG XL gets file.unsupported_format."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mediaprep

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg CLI")


def _refused_avif(tmp_path: Path, *, alpha: bool) -> Path:
    """An AVIF (AV1 by libaom, 10-bit PQ or with a full alpha plane) whose image-spatial-extent
    property is gone: libavif refuses it ("cannot identify"), FFmpeg's demuxer reads the size
    from the AV1 sequence header."""
    arr = np.zeros((96, 128, 4), np.uint8)
    arr[..., 0] = (np.arange(128) * 2)[None, :]
    arr[..., 1] = 100
    arr[..., 3] = (np.arange(96) * 2)[:, None]
    src = tmp_path / "in.png"
    Image.fromarray(arr if alpha else arr[..., :3].copy()).save(src)
    out = tmp_path / "made.avif"
    if alpha:
        args = ["-filter_complex", "[0:v]format=yuva420p,split[a][b];[b]alphaextract[c]",
                "-map", "[a]", "-map", "[c]"]
    else:
        args = ["-pix_fmt", "yuv420p10le", "-color_primaries", "bt2020",
                "-color_trc", "smpte2084", "-colorspace", "bt2020nc"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *args, "-c:v", "libaom-av1",
                    "-still-picture", "1", str(out)], check=True, timeout=120)
    data = out.read_bytes()
    assert data.count(b"ispe") >= 1
    path = tmp_path / ("alpha.avif" if alpha else "hdr10.avif")
    path.write_bytes(data.replace(b"ispe", b"free"))
    with pytest.raises(Exception):  # noqa: B017  (the premise: Pillow refuses it)
        Image.open(path).load()
    return path


@pytest.mark.parametrize("alpha", [False, True])
def test_avif_pillow_refuses_is_decoded_by_ffmpeg(tmp_path: Path, alpha: bool) -> None:
    path = _refused_avif(tmp_path, alpha=alpha)
    rep = mediaprep.check(path)
    assert (rep.info.width, rep.info.height) == (128, 96)
    assert rep.info.decoder == "ffmpeg"
    assert "file.unreadable" not in rep.codes()
    p = mediaprep.prepare(path)
    assert p.ok, p.findings
    out = Image.open(io.BytesIO(p.data or b""))
    assert out.size == (128, 96) and out.format in ("PNG", "JPEG")
    if alpha:  # the alpha plane came along: flattened onto the white background, the clear
        # top rows are white and the nearly opaque bottom rows keep their colour
        rgb = np.asarray(out.convert("RGB")).astype(int)
        assert rgb[0].min() > 230 and rgb[-1][..., 1].mean() < 160
    else:
        red = np.asarray(out.convert("RGB"))[48, :, 0].astype(int)
        assert red[-1] - red[0] > 100  # the gradient is there, not a blank frame


def test_moonshot_gets_a_converted_file_not_the_refused_one(tmp_path: Path) -> None:
    path = _refused_avif(tmp_path, alpha=False)
    p = mediaprep.prepare(path, target="moonshot")
    assert p.ok and p.changes and p.mime != "image/avif"


def test_jpeg_xl_is_an_unsupported_format(tmp_path: Path) -> None:
    path = tmp_path / "photo.jxl"
    path.write_bytes(b"\xff\x0a" + bytes(200))  # a bare JPEG XL codestream signature
    rep = mediaprep.check(path)
    assert rep.codes() == ["file.unsupported_format"], rep.findings
    assert "JPEG XL" in rep.findings[0].message and "photo.jxl" in rep.findings[0].message
