"""README's "Sending" section, run as written (issue 27, item 10).

The code blocks are taken from README itself and run against a server on 127.0.0.1 with the
real ``openai`` and ``dashscope`` SDKs and curl; the only change made to them is the provider's
host, replaced by the loopback server's. The server records what it receives: the body must
carry the parts mediaprep made, unchanged.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import mediaprep
from tests.emit import test_sdk_clients as sdk
from tests.emit.test_sdk_clients import DASHSCOPE_PATH, LOOPBACK, OPENAI_PATH

# The loopback server (and its no-egress guard) of the SDK tests, as this module's fixtures.
no_egress = sdk.no_egress
server = sdk.server

dashscope = pytest.importorskip("dashscope")
pytest.importorskip("openai")

README = Path(__file__).resolve().parents[2] / "README.md"
# The provider's endpoints in README, and where the loopback server answers them.
ENDPOINTS = {"https://dashscope-intl.aliyuncs.com/compatible-mode/v1": "/v1",
             "https://dashscope-intl.aliyuncs.com/api/v1": "/api/v1"}
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def sending_blocks() -> list[tuple[str, str]]:
    """``(language, code)`` of each fenced block in README's "## Sending" section, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Sending\n")
    end = text.index("\n## ", start + 1)
    return BLOCK.findall(text[start:end])


def local(code: str, port: int) -> str:
    """The snippet sent to the loopback server instead of the provider."""
    assert any(url in code for url in ENDPOINTS)  # the snippet names the real provider
    for url, path in ENDPOINTS.items():
        code = code.replace(url, f"http://{LOOPBACK}:{port}{path}")
    return code


def run_python(code: str) -> None:
    exec(compile(code, str(README), "exec"), {"__name__": "readme_snippet"})  # noqa: S102


def authorization(record: dict[str, Any]) -> str | None:
    return {k.lower(): v for k, v in record["headers"].items()}.get("authorization")


def decoded(url: str) -> tuple[str, bytes]:
    head, payload = url.split(",", 1)
    return head[len("data:"):-len(";base64")], base64.b64decode(payload, validate=True)


@pytest.fixture
def workdir(generated, tmp_path, monkeypatch):
    """A folder holding the snippets' ``photo.jpg`` and ``clip.mp4``, as the current folder,
    with a key in the environment and the dashscope module's endpoint restored afterwards."""
    shutil.copyfile(generated["jpeg"], tmp_path / "photo.jpg")
    shutil.copyfile(generated["video_2s"], tmp_path / "clip.mp4")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-readme")
    monkeypatch.setattr(dashscope, "base_http_api_url", dashscope.base_http_api_url)
    monkeypatch.setattr(dashscope, "api_key", None)
    return tmp_path


def test_sending_section_has_both_sdks_and_curl():
    blocks = sending_blocks()
    assert [lang for lang, _ in blocks] == ["python", "python", "python", "sh"]
    openai_code, native_code, body_code, curl_code = (code for _, code in blocks)
    assert "client.chat.completions.create(" in openai_code and "prepared.part" in openai_code
    assert "dashscope.MultiModalConversation.call(" in native_code
    assert "request_body(" in body_code and curl_code.count("curl ") == 2


def test_openai_sdk_snippet_sends_the_prepared_part(workdir, server, capsys):
    run_python(local(sending_blocks()[0][1], server.port))

    got = server.only(OPENAI_PATH)
    assert capsys.readouterr().out == "ok\n"  # the reply was read as the snippet says
    settings = mediaprep.Settings(target="dashscope", model="kimi-k2.5")
    expected = mediaprep.prepare(workdir / "photo.jpg", settings=settings).part
    assert got["model"] == "kimi-k2.5"
    assert got["messages"] == [{"role": "user", "content": [
        expected, {"type": "text", "text": "What is in this picture?"}]}]
    mime, data = decoded(got["messages"][0]["content"][0]["image_url"]["url"])
    assert (mime, data) == ("image/jpeg", (workdir / "photo.jpg").read_bytes())
    assert authorization(server.requests[0]) == "Bearer sk-readme"


def test_dashscope_sdk_snippet_sends_the_prepared_video(workdir, server, capsys):
    run_python(local(sending_blocks()[1][1], server.port))

    got = server.only(DASHSCOPE_PATH)
    assert capsys.readouterr().out == "[{'text': 'ok'}]\n"
    headers = {k.lower(): v for k, v in server.requests[0]["headers"].items()}
    assert "x-dashscope-ossresourceresolve" not in headers  # nothing uploaded first
    assert authorization(server.requests[0]) == "Bearer sk-readme"
    assert got["model"] == "kimi-k2.5"
    assert got["parameters"] == {"result_format": "message"}
    part, text = got["input"]["messages"][0]["content"]
    assert text == {"text": "What happens?"}
    assert set(part) == {"video", "fps"} and part["fps"] == 2.0
    (made,) = [p for p in (workdir / "out").iterdir() if p.suffix == ".mp4"]
    assert decoded(part["video"]) == ("video/mp4", made.read_bytes())


def test_request_body_snippet_and_curl_send_the_saved_bodies(workdir, server):
    blocks = sending_blocks()
    run_python(blocks[2][1])  # writes openai.json and dashscope.json; sends nothing
    assert server.requests == []
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    done = subprocess.run(["bash", "-euc", local(blocks[3][1], server.port)], cwd=workdir,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr

    assert [(r["method"], r["path"]) for r in server.requests] == [
        ("POST", OPENAI_PATH), ("POST", DASHSCOPE_PATH)]
    sent_openai, sent_native = (r["body"] for r in server.requests)
    assert sent_openai == json.loads((workdir / "openai.json").read_text())
    assert sent_native == json.loads((workdir / "dashscope.json").read_text())
    photo = (workdir / "photo.jpg").read_bytes()
    image_url = sent_openai["messages"][0]["content"][0]["image_url"]["url"]
    assert decoded(image_url) == ("image/jpeg", photo)
    native: dict[str, Any] = sent_native["input"]["messages"][0]["content"][0]
    assert decoded(native["image"]) == ("image/jpeg", photo)
    assert sent_native["parameters"] == {"result_format": "message"}
    for record in server.requests:
        assert authorization(record) == "Bearer sk-readme"
