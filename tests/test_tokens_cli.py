"""Token estimates reach the command line: probe --json, check text and JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mediaprep.cli import main
from mediaprep.tokens import MEDIA_PROMPT_IMAGE, image_tokens


def test_probe_json_carries_tokens_beside_info(generated):
    res = CliRunner().invoke(main, ["probe", "--json", str(generated["png_7680x4320"])])
    assert res.exit_code == 0
    entry = json.loads(res.stdout)[0]
    assert entry["tokens"] == {"estimate": image_tokens(7680, 4320) + MEDIA_PROMPT_IMAGE,
                               "model": "kimi-k2.5", "counts": ["vision", "media_prompt"]}


def test_check_reports_estimates_labelled(generated):
    args = ["check", str(generated["jpeg"]), str(generated["png"]), "-j", "0"]
    text = CliRunner().invoke(main, [*args, "-v"])
    assert text.exit_code == 0
    assert "tokens for kimi-k2.5, estimate)" in text.stdout
    total = (image_tokens(64, 48) + MEDIA_PROMPT_IMAGE) * 2
    assert f"~{total:,} tokens for 2 files (estimate, kimi-k2.5)" in text.stdout
    js = json.loads(CliRunner().invoke(main, [*args, "--format", "json"]).stdout)
    assert all(f["tokens"]["estimate"] == image_tokens(64, 48) + MEDIA_PROMPT_IMAGE
               for f in js["files"])


def test_max_tokens_limit_fails_check(generated):
    res = CliRunner().invoke(main, ["check", str(generated["png_7680x4320"]), "-j", "0",
                                    "--max-image-tokens", "100", "--format", "json"])
    assert res.exit_code == 1
    codes = [f["code"] for f in json.loads(res.stdout)["files"][0]["findings"]]
    assert "tokens.image_too_many" in codes


def test_token_total_of_one_file_reads_in_the_singular(generated) -> None:
    text = CliRunner().invoke(main, ["check", str(generated["png"]), "-j", "0"])
    assert "tokens for 1 file (estimate" in text.stdout
