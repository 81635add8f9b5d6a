"""Bodies built by mediaprep, sent through the official ``openai`` and ``dashscope`` SDKs.

Each test starts a threaded HTTP server on 127.0.0.1 (port 0), points the SDK at it, and
asserts on the body the server received: the content parts must arrive exactly in the SPEC
section 2 shapes (nothing rewritten or dropped by the SDK), within the SPEC section 1 data-URL
limits, and carrying the prepared bytes. Nothing leaves the machine: proxies are cleared, and
any socket connect to an address other than 127.0.0.1 fails the test.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import mediaprep
from mediaprep.api import prepare
from mediaprep.emit import check_request, request_body, urls_in

openai = pytest.importorskip("openai")
dashscope = pytest.importorskip("dashscope")

LOOPBACK = "127.0.0.1"
OPENAI_PATH = "/v1/chat/completions"
# dashscope/api_entities/api_request_factory.py: base_http_api_url + "/services/" + task_group
# + "/" + task + "/" + function, with MultiModalConversation's task and function.
DASHSCOPE_PATH = "/api/v1/services/aigc/multimodal-generation/generation"
MAX_DATA_URL_BYTES = 10_485_760  # SPEC 1: "Exceeded limit on max bytes per data-uri item"
MAX_DATA_URLS = 250  # SPEC 1: "max data-uri per request: 250"


# --- loopback server -------------------------------------------------------------------------


def _openai_response(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "m"),
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _dashscope_response(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": "req-test",
        "output": {
            "choices": [
                {
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": [{"text": "ok"}]},
                }
            ]
        },
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        raw = self._read_body()
        body = json.loads(raw)
        self.server.requests.append(
            {
                "method": "POST",
                "path": self.path,
                "body": body,
                "headers": dict(self.headers),
                "raw_bytes": len(raw),
            }
        )
        if self.path == OPENAI_PATH:
            self._answer(200, _openai_response(body))
        elif self.path == DASHSCOPE_PATH:
            self._answer(200, _dashscope_response(body))
        else:
            self._answer(404, {"code": "NotFound", "message": self.path})

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append(
            {
                "method": "GET",
                "path": self.path,
                "body": None,
                "headers": dict(self.headers),
                "raw_bytes": 0,
            }
        )
        self._answer(404, {"code": "NotFound", "message": self.path})

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.requests: list[dict[str, Any]] = []

    @property
    def port(self) -> int:
        return self.server_address[1]

    def only(self, path: str) -> dict[str, Any]:
        """The one request the test made (and check it went where the SDK should send it)."""
        assert [(r["method"], r["path"]) for r in self.requests] == [("POST", path)]
        return self.requests[0]["body"]


@pytest.fixture
def no_egress(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxies, and any connect to a non-loopback address is refused."""
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "OPENAI_BASE_URL",
        "DASHSCOPE_HTTP_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def _check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] != LOOPBACK:
            raise AssertionError(f"test tried to connect to {address!r} (loopback only)")

    def connect(sock: socket.socket, address: Any) -> None:
        _check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        _check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def server(no_egress: None) -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def openai_client(server: _Server) -> Iterator[Any]:
    client = openai.OpenAI(
        api_key="test", base_url=f"http://{LOOPBACK}:{server.port}/v1", max_retries=0, timeout=10
    )
    yield client
    client.close()


@pytest.fixture
def native(server: _Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(dashscope, "base_http_api_url", f"http://{LOOPBACK}:{server.port}/api/v1")
    monkeypatch.setattr(dashscope, "api_key", "test")
    yield dashscope
    close = getattr(dashscope, "close_shared_sync_session", None)
    if close is not None:
        close()


# --- helpers ---------------------------------------------------------------------------------


def _send_openai(client: Any, body: dict[str, Any]) -> Any:
    """Send a mediaprep openai-dialect body as a user would: model and messages as the SDK's
    own arguments, anything else through ``extra_body``."""
    rest = {k: v for k, v in body.items() if k not in ("model", "messages")}
    return client.chat.completions.create(
        model=body["model"], messages=body["messages"], extra_body=rest or None
    )


def _send_native(body: dict[str, Any]) -> Any:
    """Send a mediaprep native body through MultiModalConversation.call."""
    return dashscope.MultiModalConversation.call(
        model=body["model"],
        messages=body["input"]["messages"],
        api_key="test",
        **body["parameters"],
    )


def _decode(url: str) -> tuple[str, bytes]:
    head, payload = url.split(",", 1)
    assert head.startswith("data:") and head.endswith(";base64"), head[:60]
    return head[5:-7], base64.b64decode(payload, validate=True)


def _assert_limits(received: dict[str, Any]) -> list[str]:
    """SPEC 1 data-URL limits on what reached the server; returns the data URLs."""
    messages = received.get("messages") or received["input"]["messages"]
    urls = [
        u
        for m in messages
        if isinstance(m["content"], list)
        for p in m["content"]
        for u in urls_in(p)
    ]
    data_urls = [u for u in urls if u.startswith("data:")]
    assert data_urls == urls  # base64 transport only here
    assert len(data_urls) <= MAX_DATA_URLS
    for u in data_urls:
        assert len(u.encode()) <= MAX_DATA_URL_BYTES
    return data_urls


def _ok(p: Any) -> Any:
    assert p.ok, p.findings
    return p


# --- OpenAI-compatible dialect ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["jpeg", "jpeg_exif6"])
def test_openai_image_and_text(generated, server, openai_client, name):
    settings = mediaprep.Settings(model="kimi-k2.5")
    img = _ok(prepare(generated[name], settings=settings))
    body = request_body([img, "what is this?"], settings, system="be brief")
    assert check_request(body, settings) == []

    resp = _send_openai(openai_client, body)
    assert resp.choices[0].message.content == "ok"

    got = server.only(OPENAI_PATH)
    assert got == body  # the SDK sent our body unchanged
    assert got["model"] == "kimi-k2.5"
    assert got["messages"][0] == {"role": "system", "content": "be brief"}
    content = got["messages"][1]["content"]
    assert content == [
        {"type": "image_url", "image_url": {"url": img.part["image_url"]["url"]}},
        {"type": "text", "text": "what is this?"},
    ]
    (url,) = _assert_limits(got)
    mime, data = _decode(url)
    assert mime == "image/jpeg" and data == img.data
    if name == "jpeg":
        assert data == generated["jpeg"].read_bytes()  # passed through byte-identical


def test_openai_video_file_keeps_fps(generated, server, openai_client, tmp_path):
    settings = mediaprep.Settings()
    vid = _ok(prepare(generated["video_2s"], settings=settings, out_dir=tmp_path))
    body = request_body([vid, "describe"], settings)
    _send_openai(openai_client, body)

    got = server.only(OPENAI_PATH)
    assert got == body
    part, text = got["messages"][0]["content"]
    assert set(part) == {"type", "video_url", "fps"}  # fps is not a field of the SDK's types
    assert part["type"] == "video_url" and set(part["video_url"]) == {"url"}
    assert part["fps"] == 2.0 and isinstance(part["fps"], float)
    assert text == {"type": "text", "text": "describe"}
    (url,) = _assert_limits(got)
    mime, data = _decode(url)
    assert mime == "video/mp4" and data == vid.outputs[0].read_bytes()


@pytest.mark.parametrize(
    ("name", "options", "count", "fps"),
    [
        ("frames_4", {}, 4, 2.0),
        ("video_2s", {"video_mode": "frames", "fps": 5.0}, 10, 5.0),
        ("video_2s", {"video_mode": "frames", "fps": 10.0, "max_frames": 5}, 5, 2.5),
    ],
)
def test_openai_frames(generated, server, openai_client, tmp_path, name, options, count, fps):
    settings = mediaprep.Settings(**options)
    frames = _ok(prepare(generated[name], settings=settings, out_dir=tmp_path))
    body = request_body([frames, "what happens?"], settings)
    _send_openai(openai_client, body)

    got = server.only(OPENAI_PATH)
    assert got == body
    part, text = got["messages"][0]["content"]
    assert set(part) == {"type", "video", "fps"} and part["type"] == "video"
    assert part["fps"] == pytest.approx(fps, rel=0.05)
    assert text == {"type": "text", "text": "what happens?"}
    urls = _assert_limits(got)
    assert urls == part["video"] and len(urls) == count
    decoded = [_decode(u) for u in urls]
    assert [m for m, _ in decoded] == ["image/jpeg"] * count
    assert [d for _, d in decoded] == [p.read_bytes() for p in frames.outputs[:count]]


def test_openai_body_extra_keys_go_through_extra_body(generated, server, openai_client):
    settings = mediaprep.Settings()
    img = _ok(prepare(generated["jpeg"], settings=settings))
    body = request_body([img], settings, max_tokens=16, vl_high_resolution_images=True)
    _send_openai(openai_client, body)
    got = server.only(OPENAI_PATH)
    assert got == body
    assert got["max_tokens"] == 16 and got["vl_high_resolution_images"] is True


def test_openai_250_data_urls_arrive_intact(generated, server, openai_client):
    settings = mediaprep.Settings()
    img = _ok(prepare(generated["jpeg"], settings=settings))
    body = request_body([img] * MAX_DATA_URLS, settings)
    assert check_request(body, settings) == []
    _send_openai(openai_client, body)
    got = server.only(OPENAI_PATH)
    assert got == body
    assert len(_assert_limits(got)) == MAX_DATA_URLS


def test_moonshot_target_openai_body(generated, server, openai_client, tmp_path):
    settings = mediaprep.Settings(target="moonshot")
    assert settings.dialect == "openai"
    img = _ok(prepare(generated["jpeg_exif6"], settings=settings))
    vid = _ok(prepare(generated["video_2s"], settings=settings, out_dir=tmp_path))
    body = mediaprep.emit.request_body([img, vid, "compare them"], settings)
    assert check_request(body, settings) == []
    _send_openai(openai_client, body)

    got = server.only(OPENAI_PATH)
    assert got == body
    assert got["model"] == settings.model
    image, video, text = got["messages"][0]["content"]
    assert image == {"type": "image_url", "image_url": {"url": img.part["image_url"]["url"]}}
    assert video == {
        "type": "video_url",
        "video_url": {"url": vid.part["video_url"]["url"]},
        "fps": 2.0,
    }
    assert text == {"type": "text", "text": "compare them"}
    urls = _assert_limits(got)
    assert [_decode(u) for u in urls] == [
        ("image/jpeg", img.data),
        ("video/mp4", vid.outputs[0].read_bytes()),
    ]


# --- DashScope native dialect ----------------------------------------------------------------


def _native_settings(**options: Any) -> Any:
    return mediaprep.Settings(dialect="dashscope", model="kimi-k2.5", **options)


def _assert_no_upload(server: _Server) -> None:
    # The SDK adds this header only when it uploaded a local file to OSS first.
    headers = {k.lower() for k in server.requests[0]["headers"]}
    assert "x-dashscope-ossresourceresolve" not in headers


@pytest.mark.parametrize("name", ["jpeg", "jpeg_exif6"])
def test_native_image_and_text(generated, server, native, name):
    settings = _native_settings()
    img = _ok(prepare(generated[name], settings=settings))
    body = request_body(
        [img, "what is this?"], settings, system="be brief", result_format="message"
    )
    assert check_request(body, settings) == []

    resp = _send_native(body)
    assert resp.status_code == 200
    assert resp.output.choices[0].message.content == [{"text": "ok"}]

    got = server.only(DASHSCOPE_PATH)
    _assert_no_upload(server)
    assert got["model"] == "kimi-k2.5"
    assert got["input"] == body["input"]  # messages unchanged by the SDK
    assert got["parameters"] == {"result_format": "message"}
    assert got["input"]["messages"][0] == {"role": "system", "content": [{"text": "be brief"}]}
    content = got["input"]["messages"][1]["content"]
    assert content == [{"image": img.part["image"]}, {"text": "what is this?"}]
    (url,) = _assert_limits(got)
    assert _decode(url) == ("image/jpeg", img.data)


@pytest.mark.parametrize("max_frames", [None, 100])
def test_native_video_file(generated, server, native, tmp_path, max_frames):
    options = {"video_mode": "file"}
    if max_frames is not None:
        options.update(max_frames=max_frames, max_frames_set=True)
    settings = _native_settings(**options)
    vid = _ok(prepare(generated["video_2s"], settings=settings, out_dir=tmp_path))
    body = request_body([vid, "describe"], settings)
    _send_native(body)

    got = server.only(DASHSCOPE_PATH)
    _assert_no_upload(server)
    assert got["input"] == body["input"] and got["model"] == "kimi-k2.5"
    part, text = got["input"]["messages"][0]["content"]
    expected = {"video": vid.part["video"], "fps": 2.0}
    if max_frames is not None:
        expected["max_frames"] = max_frames
    assert part == expected and text == {"text": "describe"}
    (url,) = _assert_limits(got)
    assert _decode(url) == ("video/mp4", vid.outputs[0].read_bytes())


@pytest.mark.parametrize(
    ("name", "options", "count", "fps"),
    [
        ("frames_4", {}, 4, 2.0),
        ("video_2s", {"video_mode": "frames", "fps": 5.0}, 10, 5.0),
    ],
)
def test_native_frames(generated, server, native, tmp_path, name, options, count, fps):
    settings = _native_settings(**options)
    frames = _ok(prepare(generated[name], settings=settings, out_dir=tmp_path))
    body = request_body([frames, "what happens?"], settings)
    _send_native(body)

    got = server.only(DASHSCOPE_PATH)
    _assert_no_upload(server)
    assert got["input"] == body["input"]
    part, text = got["input"]["messages"][0]["content"]
    assert set(part) == {"video", "fps"} and part["fps"] == pytest.approx(fps)
    assert text == {"text": "what happens?"}
    urls = _assert_limits(got)
    assert urls == part["video"] and len(urls) == count
    assert [_decode(u)[1] for u in urls] == [p.read_bytes() for p in frames.outputs[:count]]


def test_native_250_data_urls_arrive_intact(generated, server, native):
    settings = _native_settings()
    img = _ok(prepare(generated["jpeg"], settings=settings))
    body = request_body([img] * MAX_DATA_URLS, settings)
    assert check_request(body, settings) == []
    _send_native(body)
    got = server.only(DASHSCOPE_PATH)
    assert got["input"] == body["input"]
    assert len(_assert_limits(got)) == MAX_DATA_URLS


def test_native_body_is_what_the_http_api_receives(generated, server, native):
    """mediaprep's native body (model/input/parameters) equals what the SDK itself posts."""
    settings = _native_settings()
    img = _ok(prepare(generated["jpeg"], settings=settings))
    body = request_body([img, "hi"], settings, result_format="message", max_tokens=8)
    _send_native(body)
    got = server.only(DASHSCOPE_PATH)
    assert {k: got[k] for k in body} == body
    assert set(got) - set(body) <= {"resources"}, sorted(got)


def test_no_egress_guard_refuses_other_addresses(no_egress):
    with pytest.raises(AssertionError, match="loopback only"):
        socket.create_connection(("192.0.2.1", 9), timeout=0.1)  # TEST-NET-1, never sent


def test_native_sdk_treats_text_naming_a_file_as_an_upload(server, native, tmp_path):
    """Finding (dashscope SDK, oss_utils.check_and_upload): the SDK checks every "image",
    "video", "audio" *and "text"* value of a user message; a value that names an existing
    local file is uploaded to OSS before the call. A text part that is exactly a path is
    therefore not sent as text: the SDK first asks for an upload policy (here it reaches only
    the loopback server, which refuses, so the call fails and no POST is made)."""
    from dashscope.common.error import UploadFileException

    path = tmp_path / "notes.txt"
    path.write_text("x")
    settings = _native_settings()
    body = request_body([str(path)], settings)
    assert body["input"]["messages"][0]["content"] == [{"text": str(path)}]
    with pytest.raises(UploadFileException, match="upload certificate"):
        _send_native(body)
    assert [(r["method"], r["path"].split("?")[0]) for r in server.requests] == [
        ("GET", "/api/v1/uploads")
    ]
