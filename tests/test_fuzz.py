"""Fuzzing: mutated bytes of valid fixtures through probe, check and prepare.

Only findings with known codes or valid outputs may come back: no exception, no unknown code,
no "ok" without a part, and whatever prepare accepts re-checks clean. CI runs a fixed,
derandomized set of :data:`EXAMPLES` examples; ``MEDIAPREP_FUZZ_EXAMPLES=2000`` runs more, with
fresh randomness each time.
"""

from __future__ import annotations

import faulthandler
import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

import mediaprep
from mediaprep.resource import Resource
from mediaprep.types import CODES

EXAMPLES = int(os.environ.get("MEDIAPREP_FUZZ_EXAMPLES", "30"))
DERANDOMIZE = "MEDIAPREP_FUZZ_EXAMPLES" not in os.environ
HANG_SECONDS = 120  # one example taking this long is a hang: dump stacks and stop the run

SEEDS = ["jpeg", "png", "gif_animated", "bmp", "heic", "jpeg_exif6", "png_16bit", "video_2s",
         "video_mkv", "video_webm"]


def _small(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 60, 20)).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def seeds(generated: dict[str, Path]) -> list[tuple[str, bytes]]:
    out = [(generated[k].name, generated[k].read_bytes()) for k in SEEDS]
    out.append(("small.webp", _small("WEBP", quality=50)))
    out.append(("small.tif", _small("TIFF")))
    return out


@st.composite
def mutations(draw):
    """(seed index, edits): byte overwrites, a cut, a duplicated or deleted span."""
    seed = draw(st.integers(0, len(SEEDS) + 1))
    # mostly single-byte overwrites (a file stays readable enough to reach the later stages),
    # anywhere or in the header; sometimes a cut, a duplicated or a deleted span
    ops = st.sampled_from(["set"] * 7 + ["cut", "dup", "del"])
    where = st.one_of(st.floats(0, 1), st.floats(0, 0.05))
    edits = draw(st.lists(st.tuples(ops, where, st.integers(0, 255), st.integers(1, 64)),
                          min_size=1, max_size=4))
    return seed, edits


def mutate(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for op, where, value, length in edits:
        if not buf:
            break
        i = min(len(buf) - 1, int(where * len(buf)))
        if op == "set":
            buf[i] = value
        elif op == "cut":
            del buf[max(1, i):]
        elif op == "dup":
            buf[i:i] = buf[i : i + length]
        else:
            del buf[i : i + length]
    return bytes(buf)


def _codes_known(findings) -> None:
    for f in findings:
        assert f.code in CODES, f.code
        assert f.severity in ("error", "warning", "info")


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(m=mutations())
def test_mutated_fixtures_give_findings_or_valid_outputs(seeds, tmp_path_factory, m) -> None:
    seed, edits = m
    name, data = seeds[seed % len(seeds)]
    event(f"seed {name}")
    fuzzed = mutate(data, edits)
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    try:
        info = mediaprep.probe(Resource(name=name, data=fuzzed))
        assert info.error_code is None or info.error_code in CODES
        report = mediaprep.check(Resource(name=name, data=fuzzed))
        _codes_known(report.findings)
        if info.error_code is not None and info.kind != "frames":
            assert not report.ok  # an unreadable input never passes
        out = tmp_path_factory.mktemp("fuzz")
        prepared = mediaprep.prepare(Resource(name=name, data=fuzzed), out_dir=out,
                                     frame_max_side=160)
        _codes_known(prepared.findings)
        event("prepared" if prepared.ok else "refused")
        if not prepared.ok:
            assert any(f.severity == "error" for f in prepared.findings), prepared.findings
            return
        assert prepared.part is not None
        # what prepare accepted re-checks clean, as the bytes that will be sent
        for path in prepared.outputs:
            again = mediaprep.check(path)
            assert again.ok, (path, again.findings)
            assert path.resolve().is_relative_to(out.resolve())
    finally:
        faulthandler.cancel_dump_traceback_later()


def test_mutate_changes_bytes() -> None:
    data = bytes(range(100))
    assert mutate(data, [("set", 0.5, 7, 1)])[50] == 7
    assert len(mutate(data, [("cut", 0.3, 0, 1)])) == 30
    assert len(mutate(data, [("dup", 0.0, 0, 10)])) == 110
    assert len(mutate(data, [("del", 0.0, 0, 10)])) == 90
