"""Issue 17 item 10: bidi and control characters are printed escaped; URL inputs count bytes in.

A file named ``a<U+202E>gpj.png`` shows as "a" + "png.jpg" reversed in a terminal: every text
report line and status line prints it as ``a\\u202egpj.png`` instead. A URL input's bytes are
the bytes fetched (or the HEAD's size when it is passed through), not "0 B in".
"""

from __future__ import annotations

import functools
import http.server
import io
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from mediaprep.batch.progress import Progress, human_bytes
from mediaprep.cli import main

RLO = "\u202e"
NASTY = f"a{RLO}gpj\u2066x\u2028y\x9b31m.png"  # RLO, an isolate, a line separator, C1 CSI
RAW = (RLO, "\u2066", "\u2028", "\x9b")


def _clean(text: str) -> None:
    for ch in RAW:
        assert ch not in text, f"U+{ord(ch):04X} printed raw: {text!r}"


@pytest.fixture
def nasty(tmp_path: Path, generated: dict[str, Path]) -> Path:
    folder = tmp_path / f"in{RLO}"
    folder.mkdir()
    p = folder / NASTY
    shutil.copyfile(generated["png_10x400"], p)  # image.too_small: a finding line to print
    return p


def test_check_text_report_escapes_bidi(nasty: Path) -> None:
    res = CliRunner().invoke(main, ["check", str(nasty), "-j", "0"])
    assert res.exit_code == 1, res.output
    _clean(res.output)
    assert "a\\u202egpj\\u2066x\\u2028y\\x9b31m.png" in res.output
    assert "image.too_small" in res.output


def test_prep_status_and_summary_lines_escape_bidi(nasty: Path, tmp_path: Path) -> None:
    out = tmp_path / f"out{RLO}"
    res = CliRunner().invoke(main, ["prep", str(nasty), "-o", str(out), "-j", "0"])
    assert res.exit_code == 0, res.output
    _clean(res.output)
    assert "a\\u202egpj" in res.output  # the status line
    assert "out\\u202e" in res.output  # the summary's "-> DIR"


def test_probe_lines_escape_bidi(nasty: Path) -> None:
    res = CliRunner().invoke(main, ["probe", str(nasty)])
    assert res.exit_code == 0, res.output
    _clean(res.output)
    assert "a\\u202egpj" in res.output


def test_progress_write_escapes() -> None:
    stream = io.StringIO()
    with Progress(1, enabled=False, stream=stream) as progress:
        progress.write(f"{NASTY}: ok")
    _clean(stream.getvalue())
    assert stream.getvalue() == "a\\u202egpj\\u2066x\\u2028y\\x9b31m.png: ok\n"


@pytest.fixture
def server(generated: dict[str, Path]) -> Iterator[str]:
    folder = generated["jpeg"].parent
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    t.join(5)


@pytest.mark.parametrize("transport", ["base64", "url"])
def test_url_inputs_count_their_bytes_in(server: str, generated: dict[str, Path],
                                         tmp_path: Path, transport: str) -> None:
    """base64: the image is fetched and its bytes count; url: passed through, the HEAD's size."""
    a, b = generated["jpeg"], generated["jpeg_exif6"]
    args = ["prep", f"{server}/{a.name}", f"{server}/{b.name}", "-o", str(tmp_path / "out"),
            "-j", "0", "--allow-url", "--allow-loopback-urls", "--transport", transport]
    if transport == "url":
        args += ["--url-prefix", "https://cdn.example/"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    summary = [line for line in res.output.splitlines() if line.startswith("prep: ")][0]
    assert "0 B in" not in summary
    want = human_bytes(a.stat().st_size + b.stat().st_size)
    assert f"{want} in" in summary, summary
