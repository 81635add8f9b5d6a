"""One home per helper and number (issue 13 items 5 and 6): the data-URL inverse, the model
list, the MIME table, the fetch cap from the limits table, one base exception, and errors
turned into fallbacks are logged on the "mediaprep" logger."""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mediaprep
from mediaprep import MediaprepError, Settings
from mediaprep.backends import av_encode, av_frames, pillow, pillow_encode, sniff
from mediaprep.backends.sniff import (
    data_url_size,
    data_url_sizer,
    identity_size,
    largest_fitting,
    largest_payload,
)
from mediaprep.batch.executors import ExecutorUnavailable
from mediaprep.batch.folder import BatchError
from mediaprep.batch.inputs import ManifestError
from mediaprep.batch.pool import WorkerStartError
from mediaprep.batch.requests import BatchRequestError
from mediaprep.config import ConfigError
from mediaprep.kinds import check_info
from mediaprep.limits import GiB, LimitError, fetch_cap, limits_for
from mediaprep.net.fetch import FetchError
from mediaprep.resource import ResourceError
from mediaprep.settings import SettingsError
from mediaprep.tokens import VISION_MODELS_WITH_ESTIMATE
from mediaprep.types import MediaInfo

MiB = 1 << 20

# --------------------------------------------------------------------------- errors


PUBLIC_ERRORS = [
    SettingsError, ResourceError, LimitError, ConfigError, FetchError,
    pillow_encode.BudgetError, pillow.BombError, pillow.DecodeTimeout,
    av_encode.VideoEncodeError, av_encode.RemuxNotPossible, av_encode.DoesNotFit,
    av_encode.VerifyError, av_frames.FrameExtractionError, av_frames.NoVideoStream,
    av_frames.NoFrames, av_frames.UnreadableVideo,
    ManifestError, ExecutorUnavailable, WorkerStartError, BatchError, BatchRequestError,
]


@pytest.mark.parametrize("exc", PUBLIC_ERRORS, ids=lambda e: e.__name__)
def test_each_public_exception_is_a_mediaprep_error(exc: type[Exception]) -> None:
    assert issubclass(exc, MediaprepError)


def test_errors_keep_their_other_bases() -> None:
    for exc in (SettingsError, ResourceError, LimitError, ConfigError, pillow_encode.BudgetError):
        assert issubclass(exc, ValueError)
    assert issubclass(pillow.DecodeTimeout, OSError)
    assert "MediaprepError" in mediaprep.__all__
    assert mediaprep.MediaprepError is MediaprepError


def test_a_bad_option_is_caught_as_mediaprep_error() -> None:
    with pytest.raises(MediaprepError):
        Settings(target="nowhere")


# --------------------------------------------------------------------------- one home


@pytest.mark.parametrize("mime", ["image/jpeg", "image/png", "video/mp4", "video/quicktime"])
def test_largest_payload_inverts_data_url_size(mime: str) -> None:
    prefix = len(f"data:{mime};base64,")
    for budget in [0, prefix - 1, prefix, prefix + 3, prefix + 4, prefix + 5, 1000, 10 * MiB,
                   10 * MiB - 1, 10_485_759.6]:
        n = largest_payload(budget, mime)
        if budget < prefix:
            assert n == 0
            continue
        assert data_url_size(n, mime) <= budget < data_url_size(n + 1, mime)
        assert largest_fitting(data_url_sizer(mime), budget) == n
        # the bisection any other counting rule gets agrees with the closed form
        assert largest_fitting(lambda k, m=mime: data_url_size(k, m), budget) == n
    assert largest_fitting(identity_size, 1234.9) == 1234


def test_model_list_has_one_source() -> None:
    for target in ("dashscope", "moonshot"):
        assert limits_for(target).value("models.vision") == frozenset(VISION_MODELS_WITH_ESTIMATE)


def test_mime_table_has_one_home() -> None:
    assert not hasattr(pillow_encode, "MIME") or pillow_encode.MIME is sniff.MIME
    assert all(sniff.MIME[f] for f in pillow_encode.ENCODABLE)


def test_fetch_cap_comes_from_the_limits_table() -> None:
    ds = limits_for("dashscope")
    assert fetch_cap(ds, "video") == 2 * GiB
    assert fetch_cap(ds, "image") == 10 * MiB
    assert fetch_cap(ds, None) == 2 * GiB
    assert fetch_cap(limits_for("dashscope", {"image.max_bytes.url": 5000}), "image") == 5000


# --------------------------------------------------------------------------- fetch cap by kind

PNG_HEAD = b"\x89PNG\r\n\x1a\n"
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        # /<kind>/<size>: a body of that many bytes starting with the kind's magic number
        _, kind, size = self.path.split("/")[:3]
        n = int(size.split(".")[0])
        head = PNG_HEAD if kind == "image" else MP4_HEAD
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        try:
            self.wfile.write(head)
            left = n - len(head)
            block = bytes(64 * 1024)
            while left > 0:
                self.wfile.write(block[:left])
                left -= len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading at its cap


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def _url_check(url: str, **limits: int) -> mediaprep.Report:
    return mediaprep.check(url, allow_url=True, allow_loopback_urls=True, limits=limits)


def _refused_as_too_large(report: mediaprep.Report) -> bool:
    return any(f.code == "file.too_large" and f.actual == "url.too_large"
               for f in report.findings)


def test_image_url_above_the_image_cap_is_refused(base: str) -> None:
    report = _url_check(f"{base}/image/{10 * MiB + 1}.png")
    assert _refused_as_too_large(report), report.findings


def test_video_url_gets_the_video_allowance(base: str) -> None:
    # above the image cap, far below the video URL row (2 GiB): downloaded, then judged
    report = _url_check(f"{base}/video/{12 * MiB}.mp4")
    assert not _refused_as_too_large(report), report.findings


def test_the_kind_rows_are_the_caps(base: str) -> None:
    small = {"image.max_bytes.url": 300_000, "video.max_bytes.url": 100_000}
    assert not _refused_as_too_large(_url_check(f"{base}/image/200000.png", **small))
    assert _refused_as_too_large(_url_check(f"{base}/video/200000.mp4", **small))
    assert _refused_as_too_large(_url_check(f"{base}/image/400000.png", **small))


# --------------------------------------------------------------------------- fallbacks logged


def test_token_estimate_failure_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    info = MediaInfo(path="huge.png", kind="image", format="png", width=2**64, height=1,
                     bytes=100)
    with caplog.at_level(logging.WARNING, logger="mediaprep"):
        report = check_info(info, Settings())
    assert report.tokens is None
    assert any(r.name == "mediaprep" and "huge.png" in r.getMessage()
               and "token estimate" in r.getMessage() for r in caplog.records)


def test_transcode_failure_before_frames_fallback_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.videogen import make_video

    clip = make_video(tmp_path / "clip.mp4", n_frames=30, fps=10, width=96, height=64)
    with caplog.at_level(logging.INFO, logger="mediaprep"):
        # a file budget no MP4 of 30 frames can meet: the transcode fails, frames go instead
        result = mediaprep.prepare(clip, limits={"video.max_data_url_bytes": 600})
    assert result.ok and any("sent as frames" in f for f in result.fixes), result.findings
    assert any(r.name == "mediaprep" and "clip.mp4" in r.getMessage()
               and "transcode" in r.getMessage() for r in caplog.records)


# --- one registry each: encodable formats, report formats, fetch-error codes, the token dict ---

PKG = Path(mediaprep.__file__).parent


def _literal_sites(predicate) -> list[str]:
    import ast

    sites = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if predicate(node):
                sites.append(f"{path.relative_to(PKG)}:{node.lineno}")
    return sites


def test_the_encodable_formats_and_report_formats_are_written_once():
    import ast

    def tuple_of(values):
        def pred(node):
            return (isinstance(node, ast.Tuple | ast.List)
                    and [getattr(e, "value", None) for e in node.elts] == list(values))
        return pred

    assert _literal_sites(tuple_of(pillow.ENCODABLE)) == ["backends/pillow.py:"
                                                          + _line_of("backends/pillow.py",
                                                                     "ENCODABLE = (")]
    from mediaprep.report import FORMATS

    assert len(_literal_sites(tuple_of(FORMATS))) == 1


def _line_of(rel: str, text: str) -> str:
    for i, line in enumerate((PKG / rel).read_text().splitlines(), 1):
        if line.startswith(text):
            return str(i)
    raise AssertionError(text)


def test_fetch_errors_map_to_finding_codes_in_one_place():
    from mediaprep.net.fetch import FetchError

    assert FetchError("url.too_large", "big").finding_code == "file.too_large"
    assert FetchError("url.timeout", "slow").finding_code == "file.unreadable"
    texts = [p.read_text() for p in PKG.rglob("*.py")]
    assert sum(t.count('== "url.too_large"') for t in texts) == 1


def test_the_token_dict_is_built_in_one_place():
    import ast

    def builds_token_dict(node):
        return (isinstance(node, ast.Dict)
                and {getattr(k, "value", None) for k in node.keys} >= {"estimate", "model"}
                and len(node.keys) == 3)

    assert _literal_sites(builds_token_dict) == ["tokens.py:"
                                                 + _line_of("tokens.py",
                                                            '        return {"estimate"')]
