"""URL inputs through the CLI: off by default, fetched with --allow-url (loopback only here)."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest
from click.testing import CliRunner

from mediaprep.cli import main


@pytest.fixture()
def server(generated):
    folder = generated["jpeg"].parent
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_not_fetched_by_default(server, generated):
    url = f"{server}/{generated['jpeg'].name}"
    res = CliRunner().invoke(main, ["check", url, "-j", "0", "--format", "json"])
    assert res.exit_code == 1
    codes = [f["code"] for f in json.loads(res.stdout)["files"][0]["findings"]]
    assert codes == ["file.unreadable"]


def test_loopback_refused_unless_allowed(server, generated):
    url = f"{server}/{generated['jpeg_exif6'].name}"
    refused = CliRunner().invoke(main, ["check", url, "-j", "0", "--allow-url"])
    assert refused.exit_code == 1
    ok = CliRunner().invoke(main, ["check", url, "-j", "0", "--allow-url",
                                   "--allow-loopback-urls", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    info = json.loads(ok.stdout)["files"][0]["info"]
    assert info["format"] == "jpeg" and info["orientation"] == 6


def test_probe_url(server, generated):
    url = f"{server}/{generated['png_10x400'].name}"
    off = CliRunner().invoke(main, ["probe", url, "--json"])
    assert off.exit_code == 1
    on = CliRunner().invoke(main, ["probe", url, "--json", "--allow-url", "--allow-loopback-urls"])
    assert on.exit_code == 0, on.output
    info = json.loads(on.stdout)[0]["info"]
    assert (info["format"], info["width"], info["height"]) == ("png", 10, 400)
