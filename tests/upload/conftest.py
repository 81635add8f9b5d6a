"""Fixtures of the upload tests: keys in the environment, a private records folder, the two
servers on 127.0.0.1, and a compliant video above the base64 limit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.upload.servers import DashScopeServer, MoonshotServer

DS_KEY = "sk-ds-test-0123456789abcdef"
MS_KEY = "sk-ms-test-fedcba9876543210"


@pytest.fixture(autouse=True)
def _upload_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    records = tmp_path / "upload-records"
    monkeypatch.setenv("MEDIAPREP_UPLOADS_DIR", str(records))
    monkeypatch.setenv("DASHSCOPE_API_KEY", DS_KEY)
    monkeypatch.setenv("MOONSHOT_API_KEY", MS_KEY)
    monkeypatch.delenv("MEDIAPREP_API_BASE", raising=False)
    return records


@pytest.fixture
def dashscope_server(tmp_path: Path):
    with DashScopeServer(DS_KEY, tmp_path / "oss") as server:
        yield server


@pytest.fixture
def moonshot_server(tmp_path: Path):
    with MoonshotServer(MS_KEY, tmp_path / "files") as server:
        yield server


@pytest.fixture(scope="session")
def big_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compliant H.264 MP4 of about 15 MB: above the 10 MB a data URL may carry, so base64
    would transcode it, well within what the upload transport takes."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    out = tmp_path_factory.mktemp("upload-media") / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=640x360:rate=30", "-t", "2.5", "-vf", "noise=alls=30:allf=t",
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "8", "-pix_fmt",
                    "yuv420p", "-profile:v", "high", "-movflags", "+faststart", str(out)],
                   check=True, timeout=120)
    assert out.stat().st_size > 10 * 1024 * 1024
    return out
