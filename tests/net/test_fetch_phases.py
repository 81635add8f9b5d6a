"""head_probe and fetch: a timeout names the phase it hit, and cut-off responses are refused.

Issue 17 item 10: a trickling HEAD was reported as "DNS lookup of 127.0.0.1 timed out" (an IP
literal needs no lookup; the HEAD had used the deadline up), and a HEAD whose headers were cut
off, or a range read shorter than its Content-Length, was taken as complete. The server is a
local http.server on 127.0.0.1, allowed with ``allow_loopback``.
"""

from __future__ import annotations

import http.server
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import mediaprep
from mediaprep.net.fetch import FetchError, FetchPolicy, fetch, head_probe
from mediaprep.settings import Settings


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            pass

    def _trickle(self) -> None:
        """Headers a byte at a time, for as long as the client listens: they never end, so
        only the client's overall deadline can stop it (each byte resets a recv timeout)."""
        for b in itertools.chain(b"HTTP/1.0 200 OK\r\nX-Slow: ", itertools.repeat(ord("y"))):
            try:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.05)

    def _stall_after(self, data: bytes) -> None:
        """``data``, then nothing until the client hangs up (its deadline lands right there)."""
        self._write(data)
        try:
            self.rfile.read(1)  # b"" once the client shuts its socket
        except OSError:
            pass

    def do_HEAD(self) -> None:
        if self.path.startswith("/trickle-head"):  # the HEAD's headers a byte at a time
            self._trickle()
        elif self.path.startswith("/stall-status"):  # the status line cut short
            self._stall_after(b"HTTP/1.0 2")
        elif self.path.startswith("/stall-header"):  # mid header line
            self._stall_after(b"HTTP/1.0 200 OK\r\nX-Slow: y")
        elif self.path.startswith("/cut-head"):  # headers cut off mid-line, then close
            self._write(b"HTTP/1.0 200 OK\r\nContent-Length: 1000\r\nContent-Ty")
        else:
            self._write(b"HTTP/1.0 200 OK\r\nContent-Length: 5000\r\n\r\n")

    def do_GET(self) -> None:
        if self.path.startswith("/cut-range."):  # a 206 that ends 900 bytes short
            self._write(b"HTTP/1.0 206 Partial Content\r\nContent-Range: bytes 0-999/5000\r\n"
                        b"Content-Length: 1000\r\n\r\n" + b"x" * 100)
        elif self.path.startswith("/cut-range-nolen"):  # no Content-Length: the range says 1000
            self._write(b"HTTP/1.0 206 Partial Content\r\nContent-Range: bytes 0-999/5000\r\n"
                        b"\r\n" + b"x" * 100)
        elif self.path.startswith("/cut-200"):  # a 200 (range ignored) shorter than it says
            self._write(b"HTTP/1.0 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 100)
        elif self.path.startswith("/cut-get-head"):
            self._write(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nX-Cu")
        else:
            self._write(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc")


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


def _policy(read_timeout: float = 10.0) -> FetchPolicy:
    return FetchPolicy(allow=True, allow_loopback=True, connect_timeout=5.0,
                       read_timeout=read_timeout)


def _error(fn: Any, *args: Any) -> FetchError:
    with pytest.raises(FetchError) as got:
        fn(*args)
    return got.value


#: The overall deadline of the slow-HEAD cases: the responses never end, so this only has to
#: leave room for connecting and sending the request on a loaded machine.
HEAD_DEADLINE = 1.5


@pytest.mark.parametrize("path", ["/trickle-head.jpg", "/stall-status.jpg", "/stall-header.jpg"])
def test_slow_head_says_the_head_timed_out_not_dns(base: str, path: str) -> None:
    """Wherever in the HEAD's headers the deadline lands (mid status line, mid header, or a
    recv timing out before the watchdog shuts the socket), the message names that phase."""
    e = _error(head_probe, base + path, _policy(HEAD_DEADLINE))
    assert e.code == "url.timeout"
    assert "DNS" not in e.message
    assert e.message == (f"the {HEAD_DEADLINE:g} s deadline passed while reading the headers "
                         "of the HEAD response from 127.0.0.1"), e.message


def test_head_cut_off_in_its_headers_is_refused(base: str) -> None:
    e = _error(head_probe, f"{base}/cut-head.jpg", _policy())
    assert e.code == "url.unreachable"
    assert "cut off" in e.message and "HEAD" in e.message, e.message


def test_get_cut_off_in_its_headers_is_refused(base: str, tmp_path) -> None:
    with pytest.raises(FetchError) as got:
        fetch(f"{base}/cut-get-head.jpg", _policy(), dest_dir=tmp_path)
    e = got.value
    assert e.code == "url.unreachable"
    assert "cut off" in e.message, e.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("path", "want"), [("/cut-range.jpg", 1000),
                                           ("/cut-range-nolen.jpg", 1000),
                                           ("/cut-200.jpg", 5000)])
def test_range_read_shorter_than_declared_is_refused(base: str, path: str, want: int) -> None:
    e = _error(head_probe, base + path, _policy())
    assert e.code == "url.unreachable"
    assert f"100 of {want} bytes" in e.message, e.message


def test_a_whole_short_response_is_still_fine(base: str) -> None:
    hp = head_probe(f"{base}/ok.jpg", _policy())
    assert hp.head == b"abc"


def test_library_check_reports_the_truncated_head_as_unreadable(base: str) -> None:
    s = Settings(allow_url=True, allow_loopback_urls=True, transport="url")
    report = mediaprep.check(f"{base}/cut-head.jpg", settings=s)
    assert not report.ok
    (f,) = [f for f in report.findings if f.severity == "error"]
    assert f.code == "file.unreadable" and f.actual == "url.unreachable"
    assert "cut off" in f.message
