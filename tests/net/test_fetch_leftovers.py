"""Issue 22 item 15: a URL whose worker is killed at its timeout leaves no download behind
(a 127.0.0.1 server trickles a large AVI; prep runs as a subprocess with its own TMPDIR)."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

BODY_BYTES = 64 << 20  # declared; far more than is sent before the worker is killed


class _Trickle(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.send_response(200)
        self.send_header("Content-Type", "video/x-msvideo")
        self.send_header("Content-Length", str(BODY_BYTES))
        self.end_headers()
        # an AVI's RIFF header, then padding, a piece at a time until the client goes away
        head = b"RIFF" + (BODY_BYTES - 8).to_bytes(4, "little") + b"AVI LIST"
        try:
            self.wfile.write(head + b"\0" * (65536 - len(head)))
            for _ in range(BODY_BYTES // 65536 - 1):
                self.wfile.write(b"\0" * 65536)
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass  # the worker was killed: the connection is gone

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def trickle_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    # server_close joins the handlers (each ends once its client is gone), so no socket of
    # theirs is left for the garbage collector to warn about in a later test
    httpd.daemon_threads = False
    httpd.block_on_close = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _ours_under(folder: Path) -> list[str]:
    """mediaprep's own leftovers (downloads, run folders), not Python's (multiprocessing's
    pymp-* folder, which its own exit handler removes)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if "mediaprep" in p.name)


@pytest.mark.parametrize("command", ["prep", "check"])
def test_a_killed_workers_download_is_removed(tmp_path, trickle_server, command):
    # a short TMPDIR of its own: multiprocessing's fork server puts a socket there, whose path
    # must fit AF_UNIX's 108 bytes (pytest's tmp_path under xdist may not)
    tmp = Path(tempfile.mkdtemp(prefix="mp-", dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        _run_and_look(tmp, tmp_path, trickle_server, command)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_and_look(tmp: Path, tmp_path: Path, trickle_server: str, command: str) -> None:
    env = {**os.environ, "TMPDIR": str(tmp),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "MEDIAPREP_CACHE_DIR": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "mediaprep", command, f"{trickle_server}/clip.avi",
            "--allow-url", "--allow-loopback-urls", "--timeout", "2", "-j", "1"]
    if command == "prep":
        args += ["-o", str(tmp_path / "out")]
    else:
        args += ["--deep"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in done.stderr
    assert "timed out" in done.stdout + done.stderr, done.stdout + done.stderr
    assert _ours_under(tmp) == []
