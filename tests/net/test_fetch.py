"""Tests for mediaprep.net.fetch against a local http.server on 127.0.0.1 (never another address).

Addresses such as 10.0.0.1 or ::1 appear only as URLs that must be refused before any connect;
a spy on ``fetch._open_socket`` proves no connection to them is attempted.
"""

from __future__ import annotations

import gc
import http.server
import shutil
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mediaprep.net import fetch as fetch_mod
from mediaprep.net.fetch import CODES, FetchError, FetchPolicy, address_problem, fetch, head_probe

SMALL = bytes(range(256)) * 4  # 1024 bytes
BIG = b"B" * 200_000
MB = b"M" * (1024 * 1024)
CAP = 100_000


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0 responses: the connection closes after each one, bodies may end at close.
    protocol_version = "HTTP/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/octet-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self) -> None:
        if self.path == "/head-refused":
            self._send(405, b"")
            return
        self.do_GET()

    def do_GET(self) -> None:  # noqa: C901 - one switch over the test endpoints
        self.server.requests.append((self.command, self.path, dict(self.headers)))
        path = self.path
        try:
            if path == "/small.png":
                self._send(200, SMALL, "image/png")
            elif path == "/big":
                self._send(200, BIG)
            elif path == "/big-nolen":  # no Content-Length: only the streaming cap can stop it
                self.send_response(200)
                self.end_headers()
                for _ in range(4):
                    self.wfile.write(BIG)
            elif path == "/big-chunked":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for _ in range(10):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(BIG), BIG))
                self.wfile.write(b"0\r\n\r\n")
            elif path.startswith("/redir/"):
                n = int(path.rsplit("/", 1)[1])
                self._redirect(f"/redir/{n - 1}" if n > 0 else "/small.png")
            elif path == "/to-private":
                self._redirect("http://10.0.0.1/secret")
            elif path == "/to-ftp":
                self._redirect("ftp://127.0.0.1/x")
            elif path == "/trickle":  # valid headers, then one byte every 0.1 s
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(100):  # bounded: at most 10 s even if nobody stops it
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            elif path == "/trickle-headers":  # status line and headers one byte at a time
                for b in b"HTTP/1.0 200 OK\r\nX-Slow: " + b"y" * 200:
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    time.sleep(0.05)
            elif path == "/404":
                self._send(404, b"nope", "text/plain")
            elif path == "/lie-long":  # claims more than it sends, then closes
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"z" * 10)
            elif path == "/lie-short":  # claims 10 bytes (under the cap), sends 500 kB
                self.send_response(200)
                self.send_header("Content-Length", "10")
                self.end_headers()
                self.wfile.write(b"s" * 500_000)
            elif path == "/norange":  # ignores Range, sends 1 MB
                self._send(200, MB, "video/mp4")
            elif path in ("/range.mp4", "/head-refused"):
                rng = self.headers.get("Range", "")
                if rng.startswith("bytes=0-"):
                    end = min(int(rng.split("-")[1]), len(MB) - 1)
                    body = MB[: end + 1]
                    self.send_response(206)
                    self.send_header("Content-Type", "video/mp4")
                    self.send_header("Content-Range", f"bytes 0-{end}/{len(MB)}")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self._send(200, MB, "video/mp4")
            elif path == "/empty":
                if self.headers.get("Range"):
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */0")
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._send(200, b"", "image/jpeg")
            else:
                self._send(404, b"unknown", "text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up, which several tests want


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    requests: list[tuple[str, str, dict[str, str]]]


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


@pytest.fixture
def base(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def port(server: _Server) -> int:
    return server.server_address[1]


@pytest.fixture
def policy() -> FetchPolicy:
    return FetchPolicy(
        allow=True, allow_loopback=True, max_bytes=CAP, connect_timeout=2.0, read_timeout=5.0
    )


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "dl"
    d.mkdir()
    return d


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every address fetch connects to."""
    seen: list[tuple[Any, ...]] = []
    real = fetch_mod._open_socket

    def spy(family: int, sockaddr: tuple[Any, ...], timeout: float) -> socket.socket:
        seen.append(sockaddr)
        assert sockaddr[0] in ("127.0.0.1", "::1"), f"tests must stay on loopback: {sockaddr}"
        return real(family, sockaddr, timeout)

    monkeypatch.setattr(fetch_mod, "_open_socket", spy)
    return seen


def _fail(code: str, fn: Any, *args: Any, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, info.value
    assert code in CODES
    return info.value


# ----------------------------------------------------------------------------- happy paths


def test_small_file(base: str, policy: FetchPolicy, dest: Path) -> None:
    got = fetch(f"{base}/small.png", policy, dest_dir=dest)
    assert got.path.read_bytes() == SMALL
    assert got.bytes == len(SMALL)
    assert got.content_type == "image/png"
    assert got.redirects == 0
    assert got.final_url == got.url == f"{base}/small.png"
    assert got.path.parent == dest and got.path.suffix == ".png"


def test_default_dest_is_system_temp(base: str, policy: FetchPolicy) -> None:
    got = fetch(f"{base}/small.png", policy)
    try:
        assert got.path.read_bytes() == SMALL
    finally:
        got.path.unlink()


def test_redirect_chain_of_two(base: str, policy: FetchPolicy, dest: Path) -> None:
    got = fetch(f"{base}/redir/1", policy, dest_dir=dest)  # /redir/1 -> /redir/0 -> file
    assert got.redirects == 2
    assert got.final_url == f"{base}/small.png"
    assert got.path.read_bytes() == SMALL


def test_content_length_framing_is_respected(base: str, policy: FetchPolicy, dest: Path) -> None:
    # The server says 10 bytes and sends 500 kB: exactly 10 are read, the rest never is.
    got = fetch(f"{base}/lie-short", policy, dest_dir=dest)
    assert got.bytes == 10 and got.path.read_bytes() == b"s" * 10


def test_host_header_keeps_name_while_connecting_to_checked_ip(
    server: _Server, port: int, policy: FetchPolicy, dest: Path, connects: list[Any]
) -> None:
    server.requests.clear()
    fetch(f"http://localhost:{port}/small.png", policy, dest_dir=dest)
    assert server.requests[-1][2]["Host"] == f"localhost:{port}"
    assert connects[-1] == ("127.0.0.1", port)


def test_dns_answer_is_checked_and_pinned(
    monkeypatch: pytest.MonkeyPatch,
    server: _Server,
    port: int,
    policy: FetchPolicy,
    dest: Path,
    connects: list[Any],
) -> None:
    # A name resolving to a private and a loopback address: only the allowed one is used, and
    # it is resolved once per hop (no second lookup a rebinding DNS could answer differently).
    lookups: list[str] = []

    def fake(host: str, p: int, *a: Any, **k: Any) -> list[Any]:
        lookups.append(host)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", p)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    server.requests.clear()
    got = fetch(f"http://media.example:{port}/small.png", policy, dest_dir=dest)
    assert got.path.read_bytes() == SMALL
    assert lookups == ["media.example"]
    assert connects == [("127.0.0.1", port)]
    assert server.requests[-1][2]["Host"] == f"media.example:{port}"


# ----------------------------------------------------------------------------- refusals


def test_not_allowed_does_no_network_io(monkeypatch: pytest.MonkeyPatch, dest: Path) -> None:
    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("network I/O with allow=False")

    monkeypatch.setattr(socket, "getaddrinfo", boom)
    monkeypatch.setattr(socket, "socket", boom)
    monkeypatch.setattr(socket, "create_connection", boom)
    for fn in (fetch, head_probe):
        _fail("url.not_allowed", fn, "http://127.0.0.1:9/x", FetchPolicy())
    _fail("url.not_allowed", fetch, "https://example.com/a.png", FetchPolicy(), dest_dir=dest)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/a.png", "file:///etc/passwd", "data:image/png;base64,AA", "a.png"]
)
def test_other_schemes_refused(url: str, policy: FetchPolicy, connects: list[Any]) -> None:
    _fail("url.scheme", fetch, url, policy)
    _fail("url.scheme", head_probe, url, policy)
    assert connects == []


def test_policy_can_narrow_schemes(base: str, policy: FetchPolicy) -> None:
    https_only = FetchPolicy(allow=True, allow_loopback=True, schemes=("https",))
    _fail("url.scheme", fetch, f"{base}/small.png", https_only)
    # Schemes beyond http(s) cannot be switched on.
    _fail("url.scheme", fetch, "ftp://127.0.0.1/x", FetchPolicy(allow=True, schemes=("ftp",)))


@pytest.mark.parametrize(
    "url",
    ["http:///nohost", "http://127.0.0.1:99999/x", "http://user:pw@127.0.0.1/x", "http://[::1/"],
)
def test_malformed_urls(url: str, policy: FetchPolicy, connects: list[Any]) -> None:
    _fail("url.invalid", fetch, url, policy)
    assert connects == []


def test_loopback_refused_unless_allowed(
    base: str, port: int, dest: Path, connects: list[Any]
) -> None:
    strict = FetchPolicy(allow=True, read_timeout=2.0)
    urls = [
        f"{base}/small.png",
        f"http://localhost:{port}/small.png",
        f"http://[::1]:{port}/small.png",  # IPv6 loopback
        f"http://[::ffff:127.0.0.1]:{port}/small.png",  # IPv4-mapped IPv6 loopback
        f"http://2130706433:{port}/small.png",  # 127.0.0.1 as one decimal number
        f"http://127.1:{port}/small.png",  # short form
    ]
    for url in urls:
        err = _fail("url.private_address", fetch, url, strict, dest_dir=dest)
        assert "loopback" in err.message
        _fail("url.private_address", head_probe, url, strict)
    assert connects == []
    assert list(dest.iterdir()) == []


def test_private_literals_refused(dest: Path, connects: list[Any]) -> None:
    pol = FetchPolicy(allow=True, allow_loopback=True, read_timeout=2.0)
    for url in ["http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data/", "http://0/x",
                "http://[fe80::1]/x", "http://[fd00::1]/x", "http://224.0.0.1/x"]:  # fmt: skip
        _fail("url.private_address", fetch, url, pol, dest_dir=dest)
    assert connects == []


def test_redirect_to_private_address_refused_without_connecting(
    base: str, policy: FetchPolicy, dest: Path, connects: list[Any]
) -> None:
    err = _fail("url.private_address", fetch, f"{base}/to-private", policy, dest_dir=dest)
    assert "10.0.0.1" in err.message
    assert all(addr[0] == "127.0.0.1" for addr in connects) and len(connects) == 1
    assert list(dest.iterdir()) == []


def test_redirect_to_other_scheme_refused(base: str, policy: FetchPolicy, dest: Path) -> None:
    _fail("url.scheme", fetch, f"{base}/to-ftp", policy, dest_dir=dest)


def test_too_many_redirects(base: str, policy: FetchPolicy, dest: Path) -> None:
    fetch(f"{base}/redir/2", policy, dest_dir=dest).path.unlink()  # 3 redirects: the limit
    _fail("url.too_many_redirects", fetch, f"{base}/redir/3", policy, dest_dir=dest)  # 4
    no_redirects = FetchPolicy(allow=True, allow_loopback=True, max_redirects=0)
    _fail("url.too_many_redirects", fetch, f"{base}/redir/0", no_redirects, dest_dir=dest)
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize("path", ["/big", "/big-nolen", "/big-chunked"])
def test_too_large(base: str, policy: FetchPolicy, dest: Path, path: str) -> None:
    err = _fail("url.too_large", fetch, base + path, policy, dest_dir=dest)
    assert str(CAP) in err.message
    assert list(dest.iterdir()) == []


def test_too_large_refused_from_content_length_before_reading(
    base: str, policy: FetchPolicy, dest: Path
) -> None:
    err = _fail("url.too_large", fetch, f"{base}/big", policy, dest_dir=dest)
    assert "Content-Length" in err.message


def test_truncated_body(base: str, policy: FetchPolicy, dest: Path) -> None:
    err = _fail("url.unreachable", fetch, f"{base}/lie-long", policy, dest_dir=dest)
    assert "10 of 1000" in err.message
    assert list(dest.iterdir()) == []


def test_http_error(base: str, policy: FetchPolicy, dest: Path) -> None:
    err = _fail("url.http_error", fetch, f"{base}/404", policy, dest_dir=dest)
    assert err.status == 404 and "404" in err.message
    assert list(dest.iterdir()) == []
    _fail("url.http_error", head_probe, f"{base}/404", policy)


@pytest.mark.parametrize("path", ["/trickle", "/trickle-headers"])
def test_trickle_hits_overall_deadline(base: str, dest: Path, path: str) -> None:
    pol = FetchPolicy(allow=True, allow_loopback=True, read_timeout=0.7)
    t0 = time.monotonic()
    _fail("url.timeout", fetch, base + path, pol, dest_dir=dest)
    elapsed = time.monotonic() - t0
    # the trickle alone lasts 10 s: well under that means the deadline cut it (loose bounds:
    # a loaded machine is slow to wake the reader, and this is not a timing benchmark)
    assert 0.6 < elapsed < 8, elapsed
    assert list(dest.iterdir()) == []
    t0 = time.monotonic()
    _fail("url.timeout", head_probe, base + path, pol)
    assert time.monotonic() - t0 < 8


def test_unreachable(dest: Path) -> None:
    # A loopback port nobody listens on: bind, note the port, close.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    free = s.getsockname()[1]
    s.close()
    pol = FetchPolicy(allow=True, allow_loopback=True, read_timeout=2.0)
    _fail("url.unreachable", fetch, f"http://127.0.0.1:{free}/x", pol, dest_dir=dest)
    assert list(dest.iterdir()) == []


def test_dns_failure_is_fetch_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def nx(*a: Any, **k: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", nx)
    _fail("url.unreachable", fetch, "http://nx.example/x", FetchPolicy(allow=True))


def test_dns_hang_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def slow(*a: Any, **k: Any) -> Any:
        release.wait(5)
        raise socket.gaierror("late")

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    t0 = time.monotonic()
    try:
        _fail(
            "url.timeout", fetch, "http://slow.example/x", FetchPolicy(allow=True, read_timeout=0.5)
        )
    finally:
        release.set()
    assert time.monotonic() - t0 < 2


# ----------------------------------------------------------------------------- head_probe


def test_head_probe_server_ignoring_range_reads_at_most_max_range(
    base: str, policy: FetchPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = [0]

    class Counting(socket.socket):
        def recv_into(self, buf: Any, nbytes: int = 0, flags: int = 0) -> int:
            n = super().recv_into(buf, nbytes, flags)
            received[0] += n
            return n

    real = fetch_mod._open_socket

    def counting(family: int, sockaddr: tuple[Any, ...], timeout: float) -> socket.socket:
        s = real(family, sockaddr, timeout)
        c = Counting(s.family, s.type, s.proto, fileno=s.detach())
        c.settimeout(timeout)
        return c

    monkeypatch.setattr(fetch_mod, "_open_socket", counting)
    got = head_probe(f"{base}/norange", policy, max_range=4096)
    assert got.head == MB[:4096]
    assert got.size == len(MB)  # from the 200's Content-Length
    assert got.range_supported is False
    assert got.content_type == "video/mp4"
    # Two responses' headers plus one buffered read at most, nowhere near the 1 MB sent.
    assert received[0] < 4096 + 2 * 8192, received[0]


def test_head_probe_with_range(base: str, policy: FetchPolicy, server: _Server) -> None:
    server.requests.clear()
    got = head_probe(f"{base}/range.mp4", policy)
    assert got.head == MB[:65536]
    assert got.size == len(MB)
    assert got.range_supported is True
    assert got.content_type == "video/mp4"
    methods = [(m, h.get("Range")) for m, _p, h in server.requests]
    assert methods == [("HEAD", None), ("GET", "bytes=0-65535")]


def test_head_probe_small_file_and_redirects(base: str, policy: FetchPolicy) -> None:
    got = head_probe(f"{base}/redir/1", policy)
    assert got.head == SMALL and got.size == len(SMALL)
    assert got.redirects == 2 and got.final_url.endswith("/small.png")


def test_head_probe_survives_refused_head(base: str, policy: FetchPolicy) -> None:
    got = head_probe(f"{base}/head-refused", policy, max_range=100)
    assert got.head == MB[:100] and got.size == len(MB) and got.range_supported


def test_head_probe_empty_resource(base: str, policy: FetchPolicy) -> None:
    got = head_probe(f"{base}/empty", policy)
    assert got.head == b"" and got.size == 0 and got.content_type == "image/jpeg"


def test_head_probe_redirect_to_private(
    base: str, policy: FetchPolicy, connects: list[Any]
) -> None:
    _fail("url.private_address", head_probe, f"{base}/to-private", policy)
    assert all(a[0] == "127.0.0.1" for a in connects)


# ----------------------------------------------------------------------------- address rules


@pytest.mark.parametrize(
    ("addr", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:7f00:1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("::ffff:169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("2002:a00:1::", "private"),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 wrapping 10.0.0.1
        ("8.8.8.8", None),
        ("::ffff:8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("2002:808:808::", None),  # 6to4 wrapping 8.8.8.8
    ],
)
def test_address_problem(addr: str, why: str | None) -> None:
    assert address_problem(addr) == why
    assert address_problem(addr, allow_private=True) is None


@pytest.mark.parametrize("addr", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_allow_loopback_only_lets_loopback_through(addr: str) -> None:
    assert address_problem(addr, allow_loopback=True) is None
    assert address_problem("10.0.0.1", allow_loopback=True) == "private"


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        FetchPolicy(max_bytes=-1)
    with pytest.raises(ValueError):
        FetchPolicy(read_timeout=0)
    with pytest.raises(ValueError):
        FetchPolicy(max_redirects=-1)
    assert FetchPolicy().allow is False and FetchPolicy().max_bytes == 100 * 1024**2


# ----------------------------------------------------------------------------- https


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path, list[str]]]:
    """An https server on 127.0.0.1 with a self-signed cert for "localhost"; records SNI."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not available to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    sni: list[str] = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.sni_callback = lambda sock, name, c: sni.append(name)  # type: ignore[assignment]
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.requests = []
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield srv.server_address[1], cert, sni
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def test_https_sends_sni_and_verifies(tls_server: tuple[int, Path, list[str]], dest: Path) -> None:
    port, cert, sni = tls_server
    trusting = FetchPolicy(
        allow=True,
        allow_loopback=True,
        read_timeout=5.0,
        ssl_context=ssl.create_default_context(cafile=str(cert)),
    )
    got = fetch(f"https://localhost:{port}/small.png", trusting, dest_dir=dest)
    assert got.path.read_bytes() == SMALL
    assert "localhost" in sni
    # The default context does not trust a self-signed certificate.
    default = FetchPolicy(allow=True, allow_loopback=True, read_timeout=5.0)
    err = _fail("url.unreachable", fetch, f"https://localhost:{port}/small.png", default)
    assert "TLS" in err.message
    # The certificate names localhost, not 127.0.0.1: hostname checking is on.
    _fail("url.unreachable", fetch, f"https://127.0.0.1:{port}/small.png", trusting)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_no_socket_left_open(base: str, policy: FetchPolicy, dest: Path) -> None:
    def open_fds() -> int:
        return len(list(Path("/proc/self/fd").iterdir()))

    fetch(f"{base}/small.png", policy, dest_dir=dest).path.unlink()  # warm up lazy imports
    gc.collect()  # what earlier tests in this worker left is not fetch's: collect it first
    before = open_fds()
    # Sockets left for the garbage collector to close would warn (and hold connections open).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(2):
            fetch(f"{base}/redir/2", policy, dest_dir=dest).path.unlink()
            head_probe(f"{base}/norange", policy, max_range=10)
            for path in ("/big", "/404", "/lie-long", "/redir/3", "/trickle"):
                with pytest.raises(FetchError):
                    fetch(base + path, replace(policy, read_timeout=0.2), dest_dir=dest)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    # The in-process server's handler threads may still hold their ends for a moment.
    for _ in range(40):
        if open_fds() <= before:
            break
        time.sleep(0.05)
    assert open_fds() <= before
