"""Safe fetching of http(s) inputs, standard library only.

README.md ("Library"): a URL is not fetched unless allowed. So every call takes a
:class:`FetchPolicy` whose ``allow`` is off by default, and refuses before touching the network
when it is off.

What "safe" means here:

* Only the schemes in the policy (at most http and https).
* Server-side request forgery: every hop (the first URL and each redirect) is resolved once, the
  *resolved* addresses are checked (private, loopback, link-local, multicast, reserved,
  unspecified; IPv4 and IPv6, including IPv4 embedded in IPv6), and the connection goes to the
  exact address that was checked. Host header and TLS SNI still carry the hostname, so virtual
  hosts and certificate checks work. Checking the hostname string instead would miss DNS names
  that point inward, numeric forms like ``http://2130706433/`` and DNS rebinding.
* Size: the cap is enforced while streaming; a Content-Length above it is refused up front, but
  a missing or lying Content-Length cannot get past the cap.
* Time: one overall deadline (``read_timeout``) for the whole call, redirects, DNS, headers and
  body included, enforced by a watchdog that shuts the socket down; a server trickling one
  byte a second cannot hold the caller. ``connect_timeout`` additionally bounds each connect.
* Errors: only :class:`FetchError` with a stable ``code`` leaves this module for anything the
  network or the server does; callers map codes to findings.
"""

from __future__ import annotations

import http.client
import ipaddress
import mimetypes
import os
import re
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, quote, urljoin, urlsplit

from ..errors import MediaprepError

__all__ = [
    "CODES",
    "FetchError",
    "FetchPolicy",
    "Fetched",
    "HeadProbe",
    "address_problem",
    "fetch",
    "head_probe",
]

#: Every ``FetchError.code`` this module raises (stable; callers key on them).
CODES: dict[str, str] = {
    "url.not_allowed": "URL inputs are off; the caller did not allow network access.",
    "url.scheme": "The URL scheme is not one the policy allows (http/https at most).",
    "url.invalid": "The URL is malformed (no host, bad port, credentials, bad characters).",
    "url.private_address": "The host resolves only to addresses the policy refuses.",
    "url.too_many_redirects": "The server redirected more times than the policy allows.",
    "url.too_large": "The body is larger than the policy's max_bytes.",
    "url.timeout": "The overall deadline or a connect timeout passed.",
    "url.http_error": "The server answered with an error status (>= 400) or a bad redirect.",
    "url.unreachable": "DNS, connect, TLS or protocol failure, or a truncated body.",
}

_HTTP_SCHEMES = ("http", "https")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
#: Body bytes handed to ``FetchPolicy.cap_for_head`` (enough for any magic number).
CAP_HEAD_BYTES = 4096
# 64:ff9b::/96 is the NAT64 well-known prefix: the last 32 bits are an IPv4 address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


class FetchError(MediaprepError):
    """A URL could not be fetched; ``code`` is one of :data:`CODES`, ``message`` says why."""

    def __init__(
        self, code: str, message: str, *, url: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.url = url
        #: HTTP status for ``url.http_error``, else None.
        self.status = status

    @property
    def finding_code(self) -> str:
        """The finding this failure is for an input (the one mapping): ``file.too_large`` for
        the size cap, else ``file.unreadable`` (``code`` says which fetch step failed)."""
        return "file.too_large" if self.code == "url.too_large" else "file.unreadable"


@dataclass(frozen=True)
class FetchPolicy:
    """What the caller allows. The default allows nothing (no network I/O at all).

    ``max_bytes`` is the most any body may have (100 MiB unless set; mediaprep's own flows set
    it from the limits table, :func:`mediaprep.limits.fetch_cap`). ``cap_for_head``, when set,
    lowers the cap once the first :data:`CAP_HEAD_BYTES` of the body are in (or the whole body,
    if shorter): it is called with them and returns that body's cap (e.g. by media kind: an
    image 10 MiB, a video 2 GiB); a Content-Length above it is refused at that point, before
    the rest is read. ``read_timeout`` is the overall budget for one call (all hops, headers and
    body), not a per-read timeout. ``allow_private`` turns the address check off entirely;
    ``allow_loopback`` only lets loopback through (for tests and local servers).
    ``ssl_context`` replaces ``ssl.create_default_context()`` (e.g. a corporate CA bundle).
    """

    allow: bool = False
    max_bytes: int = 100 * 1024**2
    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    max_redirects: int = 3
    allow_private: bool = False
    allow_loopback: bool = False
    schemes: tuple[str, ...] = _HTTP_SCHEMES
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)
    user_agent: str = "mediaprep-fetch/0.1"
    cap_for_head: Callable[[bytes], int] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Bad policy values are programming errors, not network failures: plain ValueError.
        if self.max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        if not self.connect_timeout > 0 or not self.read_timeout > 0:
            raise ValueError("timeouts must be > 0")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must be >= 0")


@dataclass(frozen=True)
class Fetched:
    """A downloaded URL. ``path`` is a temp file the caller owns (and deletes)."""

    url: str
    final_url: str
    path: Path
    bytes: int
    content_type: str | None
    redirects: int


@dataclass(frozen=True)
class HeadProbe:
    """The first bytes of a URL and what the server says about it, for pass-through URLs.

    ``size`` is the total size when the server states it (Content-Range, or Content-Length of
    a full or HEAD response), else None. ``range_supported`` is True when the server answered
    the range request with 206.
    """

    url: str
    final_url: str
    head: bytes
    size: int | None
    content_type: str | None
    redirects: int
    range_supported: bool


# --------------------------------------------------------------------------- addresses


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where the network would route to it."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


#: What an address is refused as, tested in this order after loopback (which a flag allows):
#: ::1 and :: are also inside the IPv6 "reserved" ::/8.
_REFUSED_KINDS = (("is_unspecified", "unspecified"), ("is_link_local", "link-local"),
                  ("is_multicast", "multicast"), ("is_reserved", "reserved"))


def _problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> str | None:
    if ip.is_loopback:
        return None if allow_loopback else "loopback"
    why = next((why for attr, why in _REFUSED_KINDS if getattr(ip, attr)), None)
    if why is None and _is_private(ip):
        why = "private"
    return why


def _is_private(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return True
    # not is_global also catches shared (100.64/10), documentation and benchmark ranges.
    return ip.is_private or not ip.is_global


def address_problem(
    address: str | ipaddress.IPv4Address | ipaddress.IPv6Address,
    *,
    allow_private: bool = False,
    allow_loopback: bool = False,
) -> str | None:
    """Why ``address`` may not be connected to ("loopback", "private", ...), or None if it may.

    IPv6 addresses that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, 6to4, NAT64,
    Teredo) are judged by that IPv4 address too, so ``::ffff:127.0.0.1`` is loopback.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if allow_private:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        v4 = _embedded_ipv4(ip)
        if v4 is not None:
            why = _problem(v4, allow_loopback)
            # Mapped addresses are just the IPv4 address; the others must pass as IPv6 too.
            if why is not None or ip.ipv4_mapped is not None:
                return why
    return _problem(ip, allow_loopback)


# --------------------------------------------------------------------------- URLs and DNS


@dataclass(frozen=True)
class _Target:
    url: str
    scheme: str
    host: str  # ASCII (IDNA), no brackets
    port: int
    path: str  # request target: path and query


def _parse(url: str, policy: FetchPolicy) -> _Target:
    if not isinstance(url, str):
        raise FetchError("url.invalid", f"not a URL string: {type(url).__name__}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise FetchError("url.invalid", f"malformed URL: {e}", url=url) from None
    scheme = _allowed_scheme(parts.scheme, policy, url)
    host = _ascii_host(parts, url)
    return _Target(url, scheme, host, port or (443 if scheme == "https" else 80),
                   _request_path(parts))


def _allowed_scheme(scheme: str, policy: FetchPolicy, url: str) -> str:
    scheme = scheme.lower()
    allowed = {s.lower() for s in policy.schemes} & set(_HTTP_SCHEMES)
    if scheme not in allowed:
        shown = scheme or "(none)"
        raise FetchError("url.scheme", f"scheme {shown!r} is not allowed", url=url)
    return scheme


def _ascii_host(parts: SplitResult, url: str) -> str:
    """The URL's host in ASCII (IDNA); refused when missing or carrying credentials."""
    host = parts.hostname
    if not host:
        raise FetchError("url.invalid", "URL has no host", url=url)
    if parts.username is not None or parts.password is not None:
        # Credentials would be sent to every redirect target; refuse rather than leak them.
        raise FetchError("url.invalid", "credentials in URLs are not supported", url=url)
    if ":" in host:  # IPv6 literals are already ASCII
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as e:
        raise FetchError("url.invalid", f"bad host name: {e}", url=url) from None


def _request_path(parts: SplitResult) -> str:
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    # Percent-encode spaces and non-ASCII; keep existing escapes and reserved characters.
    return quote(path, safe="/%?=&;:@!$'()*+,~-._[]")


def _literal(target: _Target) -> list[tuple[int, tuple[Any, ...]]] | None:
    """The address of an IP-literal host (no DNS lookup needed), else None."""
    if "%" in target.host:  # a scoped IPv6 literal: leave its scope to getaddrinfo
        return None
    try:
        ip = ipaddress.ip_address(target.host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv4Address):
        return [(socket.AF_INET, (str(ip), target.port))]
    return [(socket.AF_INET6, (str(ip), target.port, 0, 0))]


def _resolve(target: _Target, deadline: float) -> list[tuple[int, tuple[Any, ...]]]:
    """getaddrinfo bounded by the deadline (it has no timeout of its own)."""
    literal = _literal(target)
    if literal is not None:
        return literal
    if deadline - time.monotonic() <= 0:
        raise FetchError(
            "url.timeout", f"the deadline passed before the DNS lookup of {target.host}",
            url=target.url,
        )
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["v"] = socket.getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except Exception as e:  # noqa: BLE001 - handed to the caller's thread below
            box["e"] = e

    t = threading.Thread(target=run, name="mediaprep-dns", daemon=True)
    t.start()
    t.join(max(0.0, deadline - time.monotonic()))
    if t.is_alive():  # the thread is abandoned; it ends when the resolver gives up
        raise FetchError("url.timeout", f"DNS lookup of {target.host} timed out", url=target.url)
    if "e" in box:
        raise FetchError(
            "url.unreachable", f"cannot resolve {target.host}: {box['e']}", url=target.url
        )
    seen: list[tuple[int, tuple[Any, ...]]] = []
    for family, _type, _proto, _canon, sockaddr in box["v"]:
        if family in (socket.AF_INET, socket.AF_INET6) and (family, sockaddr) not in seen:
            seen.append((family, sockaddr))
    if not seen:
        raise FetchError("url.unreachable", f"no address for {target.host}", url=target.url)
    return seen


def _checked_addresses(
    target: _Target, policy: FetchPolicy, deadline: float
) -> list[tuple[int, tuple[Any, ...]]]:
    """Resolved addresses the policy allows; refused if none is allowed."""
    addrs = _resolve(target, deadline)
    ok: list[tuple[int, tuple[Any, ...]]] = []
    refused: list[str] = []
    for family, sockaddr in addrs:
        try:
            why = address_problem(
                sockaddr[0],
                allow_private=policy.allow_private,
                allow_loopback=policy.allow_loopback,
            )
        except ValueError:
            why = "unparseable"
        if why is None:
            ok.append((family, sockaddr))
        else:
            refused.append(f"{sockaddr[0]} ({why})")
    # Filtering (rather than refusing on any bad record) is safe because we only ever connect
    # to addresses in ``ok``.
    if not ok:
        raise FetchError(
            "url.private_address",
            f"{target.host} resolves only to refused addresses: {', '.join(refused)}",
            url=target.url,
        )
    return ok


# --------------------------------------------------------------------------- connections


def _open_socket(family: int, sockaddr: tuple[Any, ...], timeout: float) -> socket.socket:
    """One TCP connect to an already checked address (a seam tests spy on)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


class _Watchdog:
    """Shuts down the call's sockets when the overall deadline passes.

    A per-recv timeout does not bound a trickling server (every byte resets it), and
    http.client reads headers through a buffered file, so the deadline is enforced from the
    side: ``shutdown`` on a dup of the socket makes any blocked or later recv return at once.
    """

    def __init__(self, deadline: float) -> None:
        self.fired = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> socket.socket:
        """Watch ``sock``; returns the dup to hand to :meth:`release` when the hop is done."""
        dup = sock.dup()  # shutdown acts on the socket, so a dup reaches the TLS wrapper too
        with self._lock:
            self._socks.append(dup)
            if self.fired:
                self._shutdown(dup)
        return dup

    def release(self, dup: socket.socket) -> None:
        # The dup holds the connection open; close it with the hop, not at the end of the call.
        with self._lock:
            if dup in self._socks:
                self._socks.remove(dup)
        dup.close()

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for s in self._socks:
                self._shutdown(s)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for s in self._socks:
                s.close()
            self._socks.clear()


class _LineWatch:
    """A response's file that remembers the last line read (to see headers cut off by EOF)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.last: bytes | None = None

    def readline(self, *args: Any) -> bytes:
        line: bytes = self.raw.readline(*args)
        self.last = line
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class _Response(http.client.HTTPResponse):
    """http.client's response, but one whose headers end at EOF is marked ``mp_cut_off``.

    http.client takes EOF as the end of the headers, so a response cut off mid-header (or by
    the watchdog's shutdown) would otherwise look complete.
    """

    mp_cut_off = False

    def begin(self) -> None:
        if self.headers is not None:
            return
        watch = _LineWatch(self.fp)
        self.fp = watch  # type: ignore[assignment]
        try:
            super().begin()
        finally:
            if self.fp is watch:
                self.fp = watch.raw
        self.mp_cut_off = watch.last == b""


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to pre-checked addresses; Host header and SNI carry the URL's host name."""

    response_class = _Response

    def __init__(
        self,
        target: _Target,
        addrs: list[tuple[int, tuple[Any, ...]]],
        policy: FetchPolicy,
        context: ssl.SSLContext | None,
        deadline: float,
        watchdog: _Watchdog,
    ) -> None:
        super().__init__(target.host, target.port, timeout=policy.connect_timeout)
        if target.scheme == "https":
            self.default_port = 443  # so the Host header omits ":443"
        self._mp_target = target
        self._mp_addrs = addrs
        self._mp_policy = policy
        self._mp_context = context
        self._mp_deadline = deadline
        self._mp_watchdog = watchdog
        #: the socket actually used; conn.sock is dropped once the response owns it
        self.mp_sock: socket.socket | None = None
        self._mp_dup: socket.socket | None = None

    def connect(self) -> None:
        last: OSError | None = None
        sock: socket.socket | None = None
        for family, sockaddr in self._mp_addrs:
            remaining = self._mp_deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("deadline passed while connecting")
            try:
                sock = _open_socket(
                    family, sockaddr, min(self._mp_policy.connect_timeout, remaining)
                )
                break
            except OSError as e:  # try the next checked address (e.g. ::1 then 127.0.0.1)
                last = e
        if sock is None:
            raise last or OSError("no address to connect to")
        try:
            self._mp_dup = self._mp_watchdog.watch(sock)
            sock.settimeout(max(0.001, self._mp_deadline - time.monotonic()))
            if self._mp_target.scheme == "https":
                context = self._mp_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self._mp_target.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.mp_sock = sock

    def mp_close(self) -> None:
        """Really close: the connection, the socket the response holds, the watchdog's dup."""
        self.close()
        if self.mp_sock is not None:
            self.mp_sock.close()
        if self._mp_dup is not None:
            self._mp_watchdog.release(self._mp_dup)
            self._mp_dup = None


@contextmanager
def _guard(url: str, watchdog: _Watchdog) -> Iterator[None]:
    """Turn whatever the network throws into a FetchError."""
    try:
        yield
    except FetchError:
        raise
    except ssl.SSLCertVerificationError as e:
        if watchdog.fired:
            raise FetchError("url.timeout", "deadline passed", url=url) from e
        raise FetchError("url.unreachable", f"TLS verification failed: {e}", url=url) from e
    except (OSError, http.client.HTTPException, ValueError) as e:
        # Also TimeoutError (an OSError): a connect or recv timeout is a timeout.
        if watchdog.fired or isinstance(e, TimeoutError):
            raise FetchError(
                "url.timeout", f"timed out ({str(e) or type(e).__name__})", url=url
            ) from e
        raise FetchError("url.unreachable", f"{type(e).__name__}: {e}", url=url) from e


@dataclass
class _Opened:
    conn: _PinnedConnection
    resp: http.client.HTTPResponse
    final_url: str
    redirects: int

    def close(self) -> None:
        # Closing without draining: the rest of the body is never read.
        self.resp.close()
        self.conn.mp_close()


def _open(
    url: str,
    policy: FetchPolicy,
    method: str,
    headers: Mapping[str, str],
    deadline: float,
    watchdog: _Watchdog,
    *,
    accept: frozenset[int] = frozenset(),
) -> _Opened:
    """Send ``method`` and follow redirects, checking every hop; return a 2xx response."""
    context = policy.ssl_context
    current = url
    redirects = 0
    while True:
        target = _parse(current, policy)
        if watchdog.fired or deadline - time.monotonic() <= 0:
            raise FetchError(
                "url.timeout",
                f"the {policy.read_timeout:g} s deadline passed before the {method} request to "
                f"{target.host}",
                url=current,
            )
        addrs = _checked_addresses(target, policy, deadline)
        if context is None and target.scheme == "https":
            # Built only when needed: loading the system CA store costs tens of milliseconds.
            context = ssl.create_default_context()
        conn = _PinnedConnection(target, addrs, policy, context, deadline, watchdog)
        resp = _send(conn, target, method, headers, policy, watchdog, current)
        opened = _Opened(conn, resp, current, redirects)
        if resp.status not in _REDIRECTS:
            return _accepted(opened, accept)
        redirects += 1
        current = _redirect_target(opened, policy, url)


def _send(conn: _PinnedConnection, target: _Target, method: str, headers: Mapping[str, str],
          policy: FetchPolicy, watchdog: _Watchdog, current: str) -> http.client.HTTPResponse:
    """The request sent and its response's headers read (the connection closed on failure)."""
    try:
        with _guard(current, watchdog):
            conn.putrequest(method, target.path, skip_accept_encoding=True)
            conn.putheader("User-Agent", policy.user_agent)
            conn.putheader("Accept", "*/*")
            conn.putheader("Accept-Encoding", "identity")  # bytes as stored, no gzip
            conn.putheader("Connection", "close")
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
        resp = _response_headers(conn, target, method, policy, watchdog, current)
        if getattr(resp, "mp_cut_off", False):
            raise FetchError(
                "url.unreachable",
                f"the {method} response from {target.host} was cut off in its headers",
                url=current,
            )
    except BaseException:
        conn.mp_close()
        raise
    return resp


def _response_headers(conn: _PinnedConnection, target: _Target, method: str,
                      policy: FetchPolicy, watchdog: _Watchdog,
                      current: str) -> http.client.HTTPResponse:
    """The response with its headers read. The deadline passing meanwhile is named as that
    phase whatever the socket saw: the watchdog's shutdown may land mid status line (a "bad
    status line" of a few bytes) or as a reset, and a recv may time out first."""
    late = FetchError(
        "url.timeout",
        f"the {policy.read_timeout:g} s deadline passed while reading the headers "
        f"of the {method} response from {target.host}",
        url=current,
    )
    try:
        with _guard(current, watchdog):
            resp = conn.getresponse()
    except FetchError as e:
        if e.code == "url.timeout":
            raise late from e
        raise
    if watchdog.fired:  # the shutdown ended the headers early
        raise late
    return resp


def _redirect_target(opened: _Opened, policy: FetchPolicy, url: str) -> str:
    """Where a redirect response (closed here) sends the next hop, ``opened.redirects + 1``
    redirects after ``url``."""
    status = opened.resp.status
    location = opened.resp.getheader("Location")
    opened.close()
    if not location:
        raise FetchError(
            "url.http_error", f"HTTP {status} without Location", url=opened.final_url,
            status=status
        )
    if opened.redirects + 1 > policy.max_redirects:
        raise FetchError(
            "url.too_many_redirects",
            f"more than {policy.max_redirects} redirects",
            url=url,
        )
    return urljoin(opened.final_url, location.strip()).split("#", 1)[0]


def _accepted(opened: _Opened, accept: frozenset[int]) -> _Opened:
    """``opened`` when its status is 2xx or accepted, else closed and an HTTP error."""
    status = opened.resp.status
    if 200 <= status < 300 or status in accept:
        return opened
    opened.close()
    raise FetchError(
        "url.http_error", f"HTTP {status} {opened.resp.reason}".rstrip(), url=opened.final_url,
        status=status
    )


def _read_some(opened: _Opened, n: int, deadline: float, watchdog: _Watchdog) -> bytes:
    """At most ``n`` bytes with a single recv; b"" at end of body."""
    remaining = deadline - time.monotonic()
    if remaining <= 0 or watchdog.fired:
        raise FetchError("url.timeout", "deadline passed while reading", url=opened.final_url)
    with _guard(opened.final_url, watchdog):
        if opened.conn.mp_sock is not None:
            opened.conn.mp_sock.settimeout(remaining)
        chunk = opened.resp.read1(n)
    if not chunk and watchdog.fired:  # the watchdog's shutdown looks like EOF
        raise FetchError("url.timeout", "deadline passed while reading", url=opened.final_url)
    return chunk


def _declared_length(resp: http.client.HTTPResponse) -> int | None:
    value = resp.getheader("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def _suffix(url: str, content_type: str | None) -> str:
    # Keep a plausible extension: downstream format sniffing and messages use the name.
    suffix = Path(urlsplit(url).path).suffix
    if _SUFFIX.match(suffix):
        return suffix.lower()
    if content_type:
        guessed = mimetypes.guess_extension(content_type.split(";")[0].strip().lower())
        if guessed:
            return guessed
    return ""


def _require_allowed(policy: FetchPolicy, url: str) -> None:
    if not isinstance(policy, FetchPolicy):
        raise TypeError("policy must be a FetchPolicy")
    if not policy.allow:
        raise FetchError(
            "url.not_allowed", "URL inputs are not allowed (no network access)", url=url
        )


# --------------------------------------------------------------------------- public API


def fetch(
    url: str, policy: FetchPolicy, *, dest_dir: str | os.PathLike[str] | None = None
) -> Fetched:
    """Download ``url`` to a new temp file (in ``dest_dir`` or the system temp dir).

    Follows up to ``policy.max_redirects`` redirects, checking the resolved address of every
    hop. Raises :class:`FetchError` for anything the network or server does; the temp file is
    removed on every failure. Local problems with ``dest_dir`` raise ``OSError``.
    """
    _require_allowed(policy, url)
    _parse(url, policy)  # scheme and syntax first: no thread, no socket for a bad URL
    deadline = time.monotonic() + policy.read_timeout
    watchdog = _Watchdog(deadline)
    path: Path | None = None
    try:
        opened = _open(url, policy, "GET", {}, deadline, watchdog)
        try:
            declared = _declared_length(opened.resp)
            _refuse_declared(declared, policy.max_bytes, opened.final_url)
            content_type = opened.resp.getheader("Content-Type")
            fd, name = tempfile.mkstemp(
                prefix="mediaprep-", suffix=_suffix(opened.final_url, content_type), dir=dest_dir
            )
            path = Path(name)
            with os.fdopen(fd, "wb") as out:
                total = _copy_body(opened, out, _BodyCap(policy, declared, opened.final_url),
                                   deadline, watchdog)
        finally:
            opened.close()
        return Fetched(
            url=url,
            final_url=opened.final_url,
            path=path,
            bytes=total,
            content_type=content_type,
            redirects=opened.redirects,
        )
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    finally:
        watchdog.close()


def _refuse_declared(declared: int | None, cap: int, url: str) -> None:
    if declared is not None and declared > cap:
        raise FetchError(
            "url.too_large",
            f"Content-Length {declared} is above the cap of {cap} bytes",
            url=url,
        )


class _BodyCap:
    """The byte cap of a download: ``policy.max_bytes``, lowered once the first
    ``CAP_HEAD_BYTES`` are in when ``policy.cap_for_head`` judges them (a format's own cap)."""

    def __init__(self, policy: FetchPolicy, declared: int | None, url: str) -> None:
        self.cap = policy.max_bytes
        self.declared = declared
        self.url = url
        self._judge = policy.cap_for_head
        self._head: bytearray | None = bytearray() if self._judge is not None else None

    def see(self, chunk: bytes) -> None:
        """Take the next chunk read (b"" at the end of the body)."""
        if self._head is None:
            return
        if chunk and len(self._head) + len(chunk) < CAP_HEAD_BYTES:
            self._head += chunk
            return
        self._head += chunk[: CAP_HEAD_BYTES - len(self._head)]
        self.cap = min(self.cap, self._judge(bytes(self._head)))  # type: ignore[misc]
        self._head = None
        _refuse_declared(self.declared, self.cap, self.url)


def _copy_body(opened: _Opened, out: Any, limit: _BodyCap, deadline: float,
               watchdog: _Watchdog) -> int:
    """Copy the response body to ``out`` within ``limit``; the bytes copied."""
    total = 0
    while True:
        # Ask for at most one byte past the cap: enough to know it is exceeded.
        chunk = _read_some(opened, min(_CHUNK, limit.cap - total + 1), deadline, watchdog)
        limit.see(chunk)
        if not chunk:
            break
        total += len(chunk)
        if total > limit.cap:
            raise FetchError(
                "url.too_large",
                f"body is above the cap of {limit.cap} bytes",
                url=opened.final_url,
            )
        out.write(chunk)
    if limit.declared is not None and total < limit.declared:
        raise FetchError(
            "url.unreachable",
            f"connection closed after {total} of {limit.declared} bytes",
            url=opened.final_url,
        )
    return total


def head_probe(url: str, policy: FetchPolicy, *, max_range: int = 65536) -> HeadProbe:
    """Check a URL that will be passed through untouched: its type, size and first bytes.

    Sends HEAD (for Content-Length and Content-Type), then ``GET`` with
    ``Range: bytes=0-{max_range - 1}``. At most ``max_range`` body bytes are read even when the
    server ignores the range; the connection is then closed, not drained. A HEAD that fails
    with an HTTP status is ignored (some servers and signed URLs allow GET only). Does not
    apply ``policy.max_bytes``: nothing is downloaded, the caller judges ``size``.
    """
    if max_range < 1:
        raise ValueError("max_range must be >= 1")
    _require_allowed(policy, url)
    _parse(url, policy)
    deadline = time.monotonic() + policy.read_timeout
    watchdog = _Watchdog(deadline)
    try:
        head_size, head_type = _head_request(url, policy, deadline, watchdog)
        opened = _open(
            url,
            policy,
            "GET",
            {"Range": f"bytes=0-{max_range - 1}"},
            deadline,
            watchdog,
            accept=frozenset({416}),  # empty resource: "bytes */0"
        )
        try:
            resp = opened.resp
            buf = b""
            if resp.status == 416:
                m = _UNSATISFIED_RANGE.match(resp.getheader("Content-Range") or "")
                size = int(m.group(1)) if m else head_size
            else:
                buf = _read_head(opened, max_range, deadline, watchdog)
                size = _ranged_size(opened, len(buf), max_range)
                if size is None:
                    size = head_size
            return HeadProbe(
                url=url,
                final_url=opened.final_url,
                head=buf,
                size=size,
                # a 416's Content-Type describes its error page, not the resource
                content_type=(
                    head_type if resp.status == 416 else resp.getheader("Content-Type") or head_type
                ),
                redirects=opened.redirects,
                range_supported=resp.status == 206,
            )
        finally:
            opened.close()
    finally:
        watchdog.close()


def _head_request(url: str, policy: FetchPolicy, deadline: float,
                  watchdog: _Watchdog) -> tuple[int | None, str | None]:
    """The size and type a HEAD request declares (None, None: it failed with an HTTP status)."""
    try:
        opened = _open(url, policy, "HEAD", {}, deadline, watchdog)
    except FetchError as e:
        if e.code != "url.http_error":
            raise
        return None, None
    size, content_type = _declared_length(opened.resp), opened.resp.getheader("Content-Type")
    opened.close()
    return size, content_type


def _read_head(opened: _Opened, max_range: int, deadline: float, watchdog: _Watchdog) -> bytes:
    """At most ``max_range`` bytes of the body, read until its end."""
    buf = bytearray()
    while len(buf) < max_range:
        chunk = _read_some(opened, min(_CHUNK, max_range - len(buf)), deadline, watchdog)
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def _ranged_size(opened: _Opened, got: int, max_range: int) -> int | None:
    """The resource's size a ranged GET's response says (None: not said); an error when the
    body ended before what it declared."""
    resp = opened.resp
    body = _declared_length(resp)
    size = body
    if resp.status == 206:
        m = _CONTENT_RANGE.match(resp.getheader("Content-Range") or "")
        size = int(m.group(3)) if m and m.group(3) != "*" else None
        if body is None and m and int(m.group(2)) >= int(m.group(1)):
            body = int(m.group(2)) - int(m.group(1)) + 1
    if body is not None and got < min(body, max_range):
        raise FetchError(
            "url.unreachable",
            f"connection closed after {got} of {min(body, max_range)} bytes",
            url=opened.final_url,
        )
    return size
