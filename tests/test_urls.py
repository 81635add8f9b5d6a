"""URL inputs through check, probe and prepare (mediaprep.resource URL section).

Off by default; when allowed: fetched with mediaprep.net.fetch (http(s) only, size cap, timeouts,
at most 3 redirects, private and loopback addresses refused unless allowed) and handled like a
path. Under the url transport a URL that needs no change passes through untouched, validated
from HEAD and a bounded Range read. The tests serve their own files on loopback, so they allow
loopback (``allow_loopback_urls``) where they fetch.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mediaprep
from mediaprep.resource import HEAD_RANGE
from mediaprep.settings import Settings
from mediaprep.types import CODES

FILES: dict[str, bytes] = {}
LOG: list[tuple[str, str, str | None]] = []  # (method, path, Range header)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self, body: bool) -> None:
        LOG.append((self.command, self.path, self.headers.get("Range")))
        path = self.path.split("?")[0]
        if path.startswith("/redirect/"):
            n = int(path.split("/")[2])
            self.send_response(302)
            self.send_header("Location", f"/redirect/{n - 1}" if n > 1 else "/files/plain.jpg")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        name = path.removeprefix("/files/")
        data = FILES.get(name)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        rng = self.headers.get("Range")
        status, chunk = 200, data
        if rng and rng.startswith("bytes=0-"):
            end = min(len(data) - 1, int(rng.split("-")[1]))
            status, chunk = 206, data[: end + 1]
        self.send_response(status)
        self.send_header("Content-Length", str(len(chunk)))
        if status == 206:
            self.send_header("Content-Range", f"bytes 0-{len(chunk) - 1}/{len(data)}")
        self.end_headers()
        if body:
            self.wfile.write(chunk)

    def do_GET(self) -> None:
        self._serve(True)

    def do_HEAD(self) -> None:
        self._serve(False)


@pytest.fixture(scope="module")
def server(generated: dict[str, Path]) -> Iterator[str]:
    for key in ("jpeg", "png", "png_7681x4320", "video_2s", "video_mkv", "gif_animated",
                "jpeg_truncated", "jpeg_bomb"):
        FILES[generated[key].name] = generated[key].read_bytes()
    FILES["big.jpg"] = generated["jpeg"].read_bytes() + b"\0" * (300 * 1024)  # past HEAD_RANGE
    import numpy as np

    from tests.videogen import make_video

    rng = np.random.default_rng(1)
    noise = make_video(generated["jpeg"].parent / "noise_url.mp4", n_frames=25, fps=10,
                       width=160, height=120,
                       frame_fn=lambda i: rng.integers(0, 255, (120, 160, 3), np.uint8))
    FILES["noise.mp4"] = noise.read_bytes()  # index (moov) at the end, past HEAD_RANGE
    assert len(FILES["noise.mp4"]) > 2 * HEAD_RANGE
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


ALLOW = {"allow_url": True, "allow_loopback_urls": True}


def _codes(findings) -> list[str]:
    assert all(f.code in CODES for f in findings)
    return [f.code for f in findings]


# ------------------------------------------------------------------------ off by default


def test_urls_are_off_by_default(server: str) -> None:
    url = f"{server}/files/plain.jpg"
    LOG.clear()
    report = mediaprep.check(url)
    assert not report.ok and _codes(report.findings) == ["file.unreadable"]
    assert "--allow-url" in report.findings[0].message
    assert report.findings[0].actual == "url.not_allowed"
    prepared = mediaprep.prepare(url)
    assert not prepared.ok and "--allow-url" in prepared.findings[0].message
    assert mediaprep.probe(url).error_code == "url.not_verified"
    assert LOG == []  # nothing touched the network


def test_url_transport_passes_unverified_urls_with_an_info(server: str, tmp_path: Path) -> None:
    LOG.clear()
    s = Settings(transport="url", url_prefix="https://cdn.example.com/")
    report = mediaprep.check(f"{server}/files/plain.jpg", settings=s)
    assert report.ok and _codes(report.findings) == ["url.not_verified"]
    p = mediaprep.prepare(f"{server}/files/video_2s.mp4", settings=s, out_dir=tmp_path)
    assert p.ok and p.part == {"type": "video_url", "video_url":
                               {"url": f"{server}/files/video_2s.mp4"}, "fps": 2.0}
    assert _codes(p.findings) == ["url.not_verified"] and p.outputs == []
    # no extension: cannot even say image or video without looking
    q = mediaprep.prepare(f"{server}/files/blob", settings=s, out_dir=tmp_path)
    assert not q.ok and _codes(q.findings) == ["file.unsupported_format"]
    assert LOG == []


# ------------------------------------------------------------------------ allowed


def test_allowed_url_is_fetched_and_checked_like_a_file(server: str) -> None:
    ok = mediaprep.check(f"{server}/files/plain.jpg", **ALLOW)
    assert ok.ok and ok.info.width == 64 and ok.path.endswith("/files/plain.jpg")
    cut = mediaprep.check(f"{server}/files/truncated.jpg", **ALLOW)
    assert "file.unreadable" in _codes(cut.findings)
    bomb = mediaprep.check(f"{server}/files/bomb_65000.jpg", **ALLOW)
    assert "image.decompression_bomb" in _codes(bomb.findings)
    info = mediaprep.probe(f"{server}/files/video_2s.mp4", **ALLOW)
    assert info.kind == "video" and abs(info.duration - 2.0) < 0.05


def test_allowed_url_is_prepared_and_temp_files_are_removed(server: str, tmp_path: Path,
                                                            monkeypatch) -> None:
    import tempfile

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    out = tmp_path / "out"
    p = mediaprep.prepare(f"{server}/files/animated.gif", out_dir=out, **ALLOW)
    assert p.ok and p.path.endswith("animated.gif")
    assert [o.parent for o in p.outputs] == [out.resolve()]  # named after the URL, inside out
    assert p.part["image_url"]["url"].startswith("data:image/")
    v = mediaprep.prepare(f"{server}/files/video.mkv", out_dir=out, **ALLOW)
    assert v.ok and [o.suffix for o in v.outputs] == [".mkv"]  # MKV is accepted: copied
    assert v.outputs[0].read_bytes() == FILES["video.mkv"]
    assert list(tmp.iterdir()) == []  # the downloads are gone


def test_loopback_and_private_addresses_are_refused_unless_allowed(server: str) -> None:
    LOG.clear()
    report = mediaprep.check(f"{server}/files/plain.jpg", allow_url=True)
    assert not report.ok and _codes(report.findings) == ["file.unreadable"]
    assert report.findings[0].actual == "url.private_address"
    assert "--allow-loopback-urls" in report.findings[0].message
    for url in ("http://10.0.0.1/x.jpg", "http://169.254.169.254/latest/meta-data",
                "http://[::1]/x.jpg", "http://0x7f000001/x.jpg"):
        r = mediaprep.check(url, **ALLOW) if "::1" not in url and "0x7f" not in url else (
            mediaprep.check(url, allow_url=True))
        assert r.findings[0].actual == "url.private_address", (url, r.findings)
    assert LOG == []  # refused before connecting
    everything = mediaprep.check(f"{server}/files/plain.jpg", allow_url=True,
                                 allow_private_urls=True)
    assert everything.ok


def test_scheme_redirects_and_errors_map_to_findings(server: str) -> None:
    ftp = mediaprep.check("ftp://example.com/x.jpg", **ALLOW)  # not a URL input at all
    assert not ftp.ok
    ok = mediaprep.check(f"{server}/redirect/3", **ALLOW)
    assert ok.ok, ok.findings
    four = mediaprep.check(f"{server}/redirect/4", **ALLOW)
    assert four.findings[0].actual == "url.too_many_redirects"
    missing = mediaprep.check(f"{server}/files/nothing.jpg", **ALLOW)
    assert _codes(missing.findings) == ["file.unreadable"]
    assert missing.findings[0].actual == "url.http_error"


def _patch_policy(monkeypatch, **changes) -> None:
    import dataclasses

    from mediaprep import resource as sources

    real = sources.fetch_policy
    monkeypatch.setattr(sources, "fetch_policy",
                        lambda settings: dataclasses.replace(real(settings), **changes))


def test_size_cap_is_a_file_too_large_finding(server: str, monkeypatch) -> None:
    _patch_policy(monkeypatch, max_bytes=1000)
    r = mediaprep.check(f"{server}/files/plain.png", **ALLOW)
    assert _codes(r.findings) == ["file.too_large"] and r.findings[0].actual == "url.too_large"
    p = mediaprep.prepare(f"{server}/files/plain.png", **ALLOW)
    assert not p.ok and _codes(p.findings) == ["file.too_large"]


def test_timeouts_are_findings(server: str, monkeypatch) -> None:
    """A server that accepts and never answers costs the read timeout, then a finding."""
    import socket

    sink = socket.socket()
    sink.bind(("127.0.0.1", 0))
    sink.listen(1)
    _patch_policy(monkeypatch, read_timeout=0.5, connect_timeout=0.5)
    try:
        r = mediaprep.check(f"http://127.0.0.1:{sink.getsockname()[1]}/x.jpg", **ALLOW)
    finally:
        sink.close()
    assert _codes(r.findings) == ["file.unreadable"] and r.findings[0].actual == "url.timeout"


# ------------------------------------------------------------------------ url transport


def test_pass_through_is_validated_with_head_and_a_bounded_range(server: str,
                                                                 tmp_path: Path) -> None:
    s = Settings(transport="url", url_prefix="https://cdn.example.com/p", **ALLOW)
    LOG.clear()
    url = f"{server}/files/big.jpg"
    p = mediaprep.prepare(url, settings=s, out_dir=tmp_path)
    assert p.ok and p.part == {"type": "image_url", "image_url": {"url": url}}
    assert p.outputs == [] and "url.not_verified" not in _codes(p.findings)
    methods = [(m, r) for m, path, r in LOG if path == "/files/big.jpg"]
    assert methods == [("HEAD", None), ("GET", f"bytes=0-{HEAD_RANGE - 1}")]  # no full GET
    report = mediaprep.check(url, settings=s)
    assert report.ok and report.info.bytes == len(FILES["big.jpg"])


def test_url_that_needs_a_change_is_fetched_and_prepared(server: str, tmp_path: Path) -> None:
    """An 8K+ PNG (resolution warning) is downloaded, scaled and hosted under --url-prefix."""
    s = Settings(transport="url", url_prefix="https://cdn.example.com/p", **ALLOW)
    LOG.clear()
    p = mediaprep.prepare(f"{server}/files/png_7681x4320.png", settings=s, out_dir=tmp_path)
    assert p.ok and p.outputs
    assert p.part["image_url"]["url"].startswith("https://cdn.example.com/p/")
    assert any(m == "GET" and r is None for m, _, r in LOG)  # the whole file was needed
    bad = mediaprep.prepare(f"{server}/files/truncated.jpg", settings=s, out_dir=tmp_path)
    assert not bad.ok and "file.unreadable" in _codes(bad.findings)


def test_video_pass_through_reads_the_file_when_the_range_cannot_tell(server: str,
                                                                      tmp_path: Path) -> None:
    s = Settings(transport="url", url_prefix="https://cdn.example.com/p", **ALLOW)
    url = f"{server}/files/noise.mp4"
    LOG.clear()
    p = mediaprep.prepare(url, settings=s, out_dir=tmp_path)
    assert p.ok and p.part["video_url"]["url"] == url and p.outputs == []
    assert abs(p.info.duration - 2.5) < 0.05  # measured from the whole file
    assert [(m, r) for m, _, r in LOG] == [("HEAD", None), ("GET", f"bytes=0-{HEAD_RANGE - 1}"),
                                           ("GET", None)]
