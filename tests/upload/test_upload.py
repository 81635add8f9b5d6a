"""--transport upload against storage servers on 127.0.0.1 (tests/upload/servers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import mediaprep
from mediaprep.batch import prep_many
from mediaprep.cli import main
from mediaprep.settings import Settings, SettingsError
from tests.upload.conftest import DS_KEY, MS_KEY


def _ds(server) -> dict:
    return {"transport": "upload", "api_base": server.base + "/api/v1"}


def _ms(server) -> dict:
    return {"transport": "upload", "target": "moonshot", "api_base": server.base + "/v1"}


# --- check: the upload transport's own limits ------------------------------------------------

def test_check_judges_a_big_compliant_video_by_the_upload_limits(big_video):
    assert [f.code for f in mediaprep.check(big_video).findings] == ["base64.too_large"]
    assert mediaprep.check(big_video, transport="upload").findings == []
    assert mediaprep.check(big_video, transport="upload", target="moonshot").findings == []
    tight = mediaprep.check(big_video, transport="upload", target="moonshot",
                            limits={"video.max_bytes.upload": 1024 * 1024})
    assert [f.code for f in tight.findings] == ["file.too_large"]


def test_the_limits_table_has_the_upload_rows_with_sources():
    ds = mediaprep.limits.limits_for("dashscope").to_json()
    assert ds["video.max_bytes.upload"]["value"] == 1024 ** 3
    assert ds["upload.expires_seconds"]["value"] == 48 * 3600
    assert ds["upload.policy_qps"]["value"] == 100
    assert "temporary" in ds["upload.max_file_bytes"]["source"]["title"]
    ms = mediaprep.limits.limits_for("moonshot").to_json()
    assert ms["upload.max_file_bytes"]["value"] == 100 * 1024 ** 2
    assert ms["upload.max_files"]["value"] == 1000
    assert ms["upload.max_total_bytes"]["value"] == 10 * 1024 ** 3
    assert "files" in ms["upload.max_files"]["source"]["url"]
    with pytest.raises(SettingsError, match="upload transport"):
        Settings(target="vllm", transport="upload")


# --- prepare: uploaded once, byte-identical, referenced --------------------------------------

def test_a_big_video_goes_unchanged_to_dashscope_storage(big_video, dashscope_server, tmp_path):
    r = mediaprep.prepare(big_video, out_dir=tmp_path / "out", **_ds(dashscope_server))
    assert r.ok and not r.changes  # not transcoded: the upload limits took it as it is
    ref = r.part["video_url"]["url"]
    assert ref.startswith("oss://dashscope-instant/")
    assert dashscope_server.stored(ref) == big_video.read_bytes() == r.outputs[0].read_bytes()
    form = dashscope_server.forms[-1]
    assert form["success_action_status"] == "200"
    assert form["x-oss-forbid-overwrite"] == "true"
    assert r.uploads[0]["uploaded"] is True and r.uploads[0]["expires"].endswith("Z")
    # the native dialect carries the same reference
    r2 = mediaprep.prepare(big_video, out_dir=tmp_path / "out2", dialect="dashscope",
                           **_ds(dashscope_server))
    assert r2.part["video"] == ref and r2.uploads[0]["uploaded"] is False


def test_a_big_video_goes_to_moonshot_files(big_video, moonshot_server, tmp_path):
    r = mediaprep.prepare(big_video, out_dir=tmp_path / "out", **_ms(moonshot_server))
    assert r.ok and not r.changes
    ref = r.part["video_url"]["url"]
    assert ref.startswith("ms://")
    assert moonshot_server.stored(ref) == big_video.read_bytes()
    (meta,) = moonshot_server.files.values()
    assert meta["purpose"] == "video"


def test_an_image_is_uploaded_as_prepared_bytes(generated, moonshot_server, tmp_path):
    r = mediaprep.prepare(generated["jpeg_exif6"], out_dir=tmp_path / "o",
                          **_ms(moonshot_server))
    assert r.ok and r.changes  # rotated: what is stored is the prepared output, not the input
    ref = r.part["image_url"]["url"]
    assert moonshot_server.stored(ref) == r.outputs[0].read_bytes()
    assert moonshot_server.stored(ref) != generated["jpeg_exif6"].read_bytes()
    assert next(iter(moonshot_server.files.values()))["purpose"] == "image"


def test_same_bytes_under_another_name_are_not_uploaded_again(big_video, dashscope_server,
                                                              tmp_path):
    other = tmp_path / "renamed.mp4"
    other.write_bytes(big_video.read_bytes())
    a = mediaprep.prepare(big_video, out_dir=tmp_path / "a", **_ds(dashscope_server))
    b = mediaprep.prepare(other, out_dir=tmp_path / "b", **_ds(dashscope_server))
    assert a.part == b.part
    assert len(dashscope_server.objects) == 1
    # one policy call served both (and would serve many more while it is valid)
    assert sum(1 for m, p in dashscope_server.requests if p.startswith("/api/v1/uploads")) == 1


def test_an_expired_record_is_uploaded_again(generated, dashscope_server, tmp_path,
                                             _upload_env):
    a = mediaprep.prepare(generated["png_11x400"], out_dir=tmp_path / "a",
                          **_ds(dashscope_server))
    (record,) = list(_upload_env.glob("*.json"))
    data = json.loads(record.read_text())
    data["expires_at"] = data["uploaded_at"] + 60  # as if 48 h had passed
    record.write_text(json.dumps(data))
    b = mediaprep.prepare(generated["png_11x400"], out_dir=tmp_path / "b",
                          **_ds(dashscope_server))
    assert a.uploads[0]["uploaded"] is True and b.uploads[0]["uploaded"] is True
    assert [p for m, p in dashscope_server.requests if m == "POST"] == ["/oss", "/oss"]
    assert b.uploads[0]["expires"] > a.uploads[0]["expires"] or b.uploads[0]["expires"] == \
        a.uploads[0]["expires"]  # a new 48 h from the new upload


def test_the_server_refuses_an_overwrite(generated, dashscope_server, tmp_path, _upload_env):
    """The same bytes are put on the same content-addressed key; the storage's refusal to
    overwrite (409) means they are there, and the part names them."""
    mediaprep.prepare(generated["png_11x400"], out_dir=tmp_path / "a", **_ds(dashscope_server))
    for record in _upload_env.glob("*.json"):
        record.unlink()  # mediaprep forgot; the storage did not
    b = mediaprep.prepare(generated["png_11x400"], out_dir=tmp_path / "b",
                          **_ds(dashscope_server))
    assert b.ok and len(dashscope_server.objects) == 1
    assert any(p == "/oss" for _, p in dashscope_server.requests[-1:])


# --- keys ------------------------------------------------------------------------------------

def test_a_missing_key_is_a_usage_error_before_any_work(generated, tmp_path, monkeypatch):
    monkeypatch.delenv("MOONSHOT_API_KEY")
    with pytest.raises(SettingsError, match=r"\$MOONSHOT_API_KEY"):
        mediaprep.prepare(generated["png_11x400"], out_dir=tmp_path / "o", transport="upload",
                          target="moonshot")
    res = CliRunner().invoke(main, ["prep", str(generated["png_11x400"]), "-o",
                                    str(tmp_path / "cli"), "--target", "moonshot",
                                    "--transport", "upload"])
    assert res.exit_code == 2, res.output
    assert "MOONSHOT_API_KEY" in res.output
    assert not (tmp_path / "cli").exists()


def test_a_key_never_appears_in_any_output(generated, moonshot_server, tmp_path, monkeypatch,
                                           _upload_env):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["prep", str(generated["png_11x400"]),
                                    str(generated["jpeg_exif6"]), "-o", str(out), "-j", "0",
                                    "--target", "moonshot", "--transport", "upload",
                                    "--api-base", moonshot_server.base + "/v1",
                                    "--batch-requests", str(tmp_path / "req.jsonl"),
                                    "--prompt", "describe"])
    assert res.exit_code == 0, res.output
    # and a refused key, echoed back by the server in its error, is redacted too
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-wrong-key-000111222")
    bad = CliRunner().invoke(main, ["prep", str(generated["png_2200x11"]), "-o",
                                    str(tmp_path / "bad"), "-j", "0", "--target", "moonshot",
                                    "--transport", "upload", "--api-base",
                                    moonshot_server.base + "/v1"])
    assert bad.exit_code == 1
    line = json.loads((tmp_path / "bad" / "parts.jsonl").read_text())
    assert line["findings"][-1]["code"] == "upload.failed"
    assert "401" in line["findings"][-1]["message"]
    texts = [res.output, bad.output]
    for root in (out, tmp_path / "bad", _upload_env, Path(tmp_path / "req.jsonl")):
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        texts += [p.read_bytes().decode("latin-1") for p in files]
    for key in (MS_KEY, "sk-wrong-key-000111222", DS_KEY):
        assert not any(key in t for t in texts)


# --- faults ----------------------------------------------------------------------------------

@pytest.mark.parametrize("faults", [["429"], ["500", "500"], ["drop"], ["slow"]])
def test_faults_are_retried(generated, moonshot_server, tmp_path, faults):
    moonshot_server.faults.extend(faults)
    r = mediaprep.prepare(generated["png_11x400"], out_dir=tmp_path / "o",
                          **_ms(moonshot_server))
    assert r.ok, r.findings
    assert moonshot_server.stored(r.part["image_url"]["url"]) == r.outputs[0].read_bytes()
    posts = [p for m, p in moonshot_server.requests if m == "POST"]
    assert len(posts) == (1 if faults == ["slow"] else len(faults) + 1)


def test_a_failed_upload_is_a_finding_the_run_goes_on_and_a_rerun_retries(
        generated, dashscope_server, tmp_path):
    dashscope_server.faults.extend(["500"] * 5)  # every attempt of the first upload
    out = tmp_path / "out"
    inputs = [generated["png_11x400"], generated["png_2200x11"]]
    s = Settings(**_ds(dashscope_server))
    first = prep_many(inputs, out, s, jobs=0, html_report=False)
    lines = first.lines()
    # the first upload attempted fails (the run takes the larger file first)
    assert sorted(line["ok"] for line in lines) == [False, True]
    bad = [line["ok"] for line in lines].index(False)
    finding = lines[bad]["findings"][-1]
    assert finding["code"] == "upload.failed"
    assert "HTTP 500" in finding["message"] and "internal error" in finding["message"]
    assert Path(inputs[bad]).stem in finding["message"]
    assert first.uploads == {"uploaded": 1, "bytes": lines[1 - bad]["uploads"][0]["bytes"],
                             "reused": 0}
    again = prep_many(inputs, out, s, jobs=0, html_report=False)
    assert [line["ok"] for line in again.lines()] == [True, True]
    origins = ["journal", "journal"]
    origins[bad] = "prepared"
    assert [r.origin for r in again.results] == origins
    assert again.uploads["uploaded"] == 1
    third = prep_many(inputs, out, s, jobs=0, html_report=False)
    assert third.uploads == {"uploaded": 0, "bytes": 0, "reused": 0}
    assert "uploads: 0" in third.summary()


def test_moonshot_file_limits(generated, moonshot_server, tmp_path, big_video):
    moonshot_server.max_bytes = 1024 * 1024  # the server's 100 MB, scaled down
    r = mediaprep.prepare(big_video, out_dir=tmp_path / "big", **_ms(moonshot_server))
    assert not r.ok and r.findings[-1].code == "upload.failed"
    assert "HTTP 400" in r.findings[-1].message and "100MB" in r.findings[-1].message
    moonshot_server.max_files = len(moonshot_server.files)  # the account is full
    r = mediaprep.prepare(generated["png_11x400"], out_dir=tmp_path / "o",
                          **_ms(moonshot_server))
    assert not r.ok and "too many files" in r.findings[-1].message


# --- uploads list / prune ---------------------------------------------------------------------

def test_uploads_list_and_prune_delete_only_what_mediaprep_uploaded(generated, moonshot_server,
                                                                    tmp_path):
    mine = mediaprep.prepare(generated["png_11x400"], out_dir=tmp_path / "o",
                             **_ms(moonshot_server))
    # a file someone else put in the account
    import openai

    client = openai.OpenAI(api_key=MS_KEY, base_url=moonshot_server.base + "/v1")
    with open(generated["png_2200x11"], "rb") as fh:
        theirs = client.files.create(file=fh, purpose="image")
    listed = CliRunner().invoke(main, ["uploads", "list", "--json"])
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [r["ref"] for r in rows] == [mine.part["image_url"]["url"]]
    kept = CliRunner().invoke(main, ["uploads", "prune", "--older-than", "7d"])
    assert kept.exit_code == 0 and len(moonshot_server.files) == 2
    pruned = CliRunner().invoke(main, ["uploads", "prune"])
    assert pruned.exit_code == 0, pruned.output
    assert list(moonshot_server.files) == [theirs.id]
    assert json.loads(CliRunner().invoke(main, ["uploads", "list", "--json"]).stdout) == []
    bad = CliRunner().invoke(main, ["uploads", "prune", "--older-than", "soon"])
    assert bad.exit_code == 2


# --- requests that work, and the real SDKs ----------------------------------------------------

def test_request_headers_and_batch_requests_carry_the_oss_header(generated, dashscope_server,
                                                                 tmp_path):
    from mediaprep.emit import check_request, request_body, request_headers

    s = Settings(**_ds(dashscope_server))
    r = mediaprep.prepare(generated["png_11x400"], out_dir=tmp_path / "o", settings=s)
    assert request_headers([r, "what is this?"], s) == {
        "X-DashScope-OssResourceResolve": "enable"}
    assert request_headers(["text only"], s) == {}
    assert request_headers([r], Settings(target="moonshot")) == {}  # Moonshot needs none
    out = tmp_path / "run"
    prep_many([generated["png_11x400"]], out, s, jobs=0, html_report=False,
              batch_requests=tmp_path / "req.jsonl", prompt="describe")
    (req,) = [json.loads(x) for x in (tmp_path / "req.jsonl").read_text().splitlines()]
    assert req["headers"] == {"X-DashScope-OssResourceResolve": "enable"}
    assert check_request(request_body([r], s), s) == []


def test_the_request_size_counts_references_not_files(big_video, moonshot_server, tmp_path):
    from mediaprep.emit import check_request, request_body

    s = Settings(**_ms(moonshot_server), limit_overrides={"request.max_body_bytes": 64 * 1024})
    assert mediaprep.check(big_video, settings=s).findings == []
    r = mediaprep.prepare(big_video, out_dir=tmp_path / "o", settings=s)
    assert r.ok and not r.changes and r.bytes_out > 10 * 1024 * 1024
    body = request_body([r, "describe"], s)
    assert check_request(body, s) == []  # 15 MB by reference: a body of a few hundred bytes


def test_the_sdks_speak_the_test_servers_protocols(generated, dashscope_server,
                                                   moonshot_server, tmp_path):
    """The servers mediaprep is tested against answer the providers' own SDKs, and the SDKs'
    uploads land where mediaprep's do."""
    import dashscope
    import openai
    from dashscope.utils.oss_utils import OssUtils

    old = dashscope.base_http_api_url
    dashscope.base_http_api_url = dashscope_server.base + "/api/v1"
    try:
        url, cert = OssUtils.upload("kimi-k2.5", str(generated["png_11x400"]), api_key=DS_KEY)
    finally:
        dashscope.base_http_api_url = old
    assert url.startswith("oss://dashscope-instant/")
    assert dashscope_server.stored(url) == generated["png_11x400"].read_bytes()
    client = openai.OpenAI(api_key=MS_KEY, base_url=moonshot_server.base + "/v1")
    with open(generated["png_11x400"], "rb") as fh:
        made = client.files.create(file=fh, purpose="image")
    assert made.id in {f.id for f in client.files.list()}
    assert client.files.delete(made.id).deleted
    # and a body mediaprep builds is one the openai SDK sends, with the header as extra_headers
    s = Settings(**_ds(dashscope_server))
    r = mediaprep.prepare(generated["png_11x400"], out_dir=tmp_path / "o", settings=s)
    from mediaprep.emit import request_body, request_headers

    body = request_body([r, "describe"], s)
    sent = openai.OpenAI(api_key="x", base_url=dashscope_server.base + "/compatible-mode/v1",
                         max_retries=0)
    with pytest.raises(openai.NotFoundError):  # the test server has no chat endpoint
        sent.chat.completions.create(**body, extra_headers=request_headers([r], s))
    assert ("POST", "/compatible-mode/v1/chat/completions") in dashscope_server.requests


def test_api_base_from_the_environment_and_the_config(generated, moonshot_server, tmp_path,
                                                      monkeypatch):
    monkeypatch.setenv("MEDIAPREP_API_BASE", moonshot_server.base + "/v1")
    assert Settings(target="moonshot", transport="upload").api_base == \
        moonshot_server.base + "/v1"
    r = mediaprep.prepare(generated["png_11x400"], out_dir=tmp_path / "o",
                          target="moonshot", transport="upload")
    assert r.ok and r.part["image_url"]["url"].startswith("ms://")
    monkeypatch.delenv("MEDIAPREP_API_BASE")
    assert Settings(transport="upload").api_base == "https://dashscope.aliyuncs.com/api/v1"
    assert Settings(transport="upload", target="moonshot").api_base == \
        "https://api.moonshot.ai/v1"
    cfg = tmp_path / "mediaprep.toml"
    cfg.write_text(f'api_base = "{moonshot_server.base}/v1"\ntarget = "moonshot"\n'
                   'transport = "upload"\n')
    res = CliRunner().invoke(main, ["prep", str(generated["png_11x400"]), "-o",
                                    str(tmp_path / "cli"), "-j", "0", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "uploads: 0 (0 bytes), 1 reused" in res.output


def test_a_missing_extra_names_the_pip_command(generated, tmp_path):
    import subprocess
    import sys

    code = ("import sys; sys.modules['httpx'] = None\n"  # as if httpx were not installed
            "import mediaprep\n"
            "try:\n"
            f"    mediaprep.prepare({str(generated['png_11x400'])!r}, out_dir={str(tmp_path)!r},"
            " transport='upload')\n"
            "except mediaprep.settings.SettingsError as exc:\n"
            "    print(exc)\n")
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert "pip install 'mediaprep[upload]'" in got.stdout, got.stderr
    assert not list(tmp_path.iterdir())


# --- progress in bytes on a terminal ------------------------------------------------------------

def _prep_stderr(video: Path, out: Path, server, *, tty: bool) -> str:
    """Run ``mediaprep prep --transport upload`` in a child whose stderr is a terminal (a pty) or
    a pipe, and return what it wrote there."""
    import os
    import subprocess
    import sys

    args = [sys.executable, "-m", "mediaprep", "prep", str(video), "-o", str(out), "--no-cache",
            "--transport", "upload", "--api-base", server.base + "/api/v1", "-j", "1"]
    env = {**os.environ, "COLUMNS": "120"}
    if not tty:
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        return done.stderr
    import pty

    leader, follower = pty.openpty()
    import fcntl
    import struct
    import termios

    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 0 cols: no bar
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=follower, env=env)
    os.close(follower)
    seen = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert child.wait(timeout=120) == 0, seen.decode(errors="replace")
    return seen.decode(errors="replace")


def test_a_big_upload_shows_its_progress_in_bytes_on_a_terminal(big_video, dashscope_server,
                                                                 tmp_path):
    import re

    size_mib = big_video.stat().st_size / 1024 ** 2
    dashscope_server.faults.append("trickle")  # a slow uplink: the bar has time to move
    shown = _prep_stderr(big_video, tmp_path / "tty", dashscope_server, tty=True)
    assert f"upload {big_video.name}" in shown
    # tqdm's byte counter: "<done>M/<total>M", ending at the file's whole size
    counted = [(float(d), float(t)) for d, t in re.findall(r"([\d.]+)M/([\d.]+)M", shown)]
    assert counted and all(abs(t - size_mib) < 0.1 for _, t in counted), (counted, size_mib)
    assert any(0 < d < t for d, t in counted)  # seen part-way, in bytes
    assert "leaked semaphore" not in shown  # the worker's bar left nothing behind
    # not on a pipe: a log file gets no bar
    piped = _prep_stderr(big_video, tmp_path / "pipe", dashscope_server, tty=False)
    assert f"upload {big_video.name}" not in piped
