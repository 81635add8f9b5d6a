"""One packet scan: prepare opens a video's input container at most twice (probe, then the
copy or encode) and its output once (verify, which also gives the re-checked description)."""

from __future__ import annotations

import os
from pathlib import Path

import av
import pytest

import mediaprep
from tests.conftest import REALMEDIA

ROOT = Path(__file__).resolve().parents[2]


def _count_opens(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    opens: list[tuple[str, str]] = []
    real = av.open

    def counting(file, *args, **kwargs):
        mode = kwargs.get("mode") or (args[0] if args else "r")
        name = os.path.abspath(os.fspath(file)) if isinstance(file, str | os.PathLike) else "<io>"
        opens.append((name, mode))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting)
    return opens


def _split(opens, src: Path) -> tuple[int, int]:
    src_name = os.path.abspath(src)
    ins = sum(1 for name, mode in opens if name == src_name and mode == "r")
    outs = sum(1 for name, mode in opens if name not in (src_name, "<io>") and mode == "r")
    return ins, outs


def test_a_transcode_opens_the_input_twice_and_the_output_once(tmp_path, monkeypatch):
    src = REALMEDIA / "videos" / "mb_cursed-vfr.mp4"
    if not src.exists():
        pytest.skip("real media not present")
    opens = _count_opens(monkeypatch)
    res = mediaprep.prepare(src, out_dir=tmp_path)
    assert res.ok and "transcoded" in res.change_kinds()
    assert _split(opens, src) == (2, 1)
    # the re-checked description of the output is what probe says of the written file
    opens.clear()
    again = mediaprep.probe(res.outputs[0])
    assert again.to_json() == res.output_info.to_json()


def test_a_remux_opens_the_input_twice_and_the_output_once(tmp_path, monkeypatch):
    src = ROOT / "examples" / "clip.ts"
    opens = _count_opens(monkeypatch)
    res = mediaprep.prepare(src, out_dir=tmp_path)
    assert res.ok and "remuxed" in res.change_kinds()
    assert _split(opens, src) == (2, 1)
    assert mediaprep.probe(res.outputs[0]).to_json() == res.output_info.to_json()


def test_the_probe_keeps_its_scan_but_does_not_serialise_it():
    info = mediaprep.probe(ROOT / "examples" / "clip.ts")
    assert info.scan is not None and info.scan.packets == info.frame_count
    assert "scan" not in info.to_json()
