"""Every real-world file of ../shared/realmedia through prepare, in every target and dialect.

Each input either comes out sendable, and every output written re-checks clean under the same
settings, or it is refused with an error finding (a known code and a message) that says why.
Targets x dialects run with the base64 transport (Moonshot speaks only the OpenAI dialect);
the url and path transports run once each on DashScope over the images and frame folders (the
video work is the same as with base64 and is the slow part: a 3026x1386 VFR clip is transcoded
to 2K). Frames are kept small (``frame_max_side``) so the matrix stays within about a minute.
Skipped when the folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mediaprep
from mediaprep.limits import DIALECTS, TARGETS, limits_for
from mediaprep.settings import Settings
from mediaprep.types import CODES
from tests.conftest import REALMEDIA

ROOT = REALMEDIA
if not (ROOT / "MANIFEST.tsv").is_file():
    pytest.skip(f"{ROOT} is absent", allow_module_level=True)

FILES = sorted(p for sub in ("images", "videos") for p in (ROOT / sub).iterdir() if p.is_file())
FOLDERS = sorted(p for p in (ROOT / "framelists").iterdir() if p.is_dir())
FRAME_MAX_SIDE = 320

COMBOS = [(t, d, "base64") for t in TARGETS for d in DIALECTS
          if d in limits_for(t).value("dialects")]
COMBOS += [("dashscope", "openai", "url"), ("dashscope", "dashscope", "path")]


def _settings(target: str, dialect: str, transport: str) -> Settings:
    return Settings(target=target, dialect=dialect, transport=transport,
                    frame_max_side=FRAME_MAX_SIDE,
                    url_prefix="https://media.example.com/prepared/" if transport == "url"
                    else None)


def _problems(src: Path, settings: Settings, out: Path) -> list[str]:
    """Why this input's handling breaks the contract (empty: it does not)."""
    try:
        prepared = mediaprep.prepare(src, settings=settings, out_dir=out)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises for bad media"
        return [f"raised {type(exc).__name__}: {exc}"]
    bad = [f"unknown code {f.code}" for f in prepared.findings if f.code not in CODES]
    if not prepared.ok:
        errors = [f for f in prepared.findings if f.severity == "error"]
        if not errors or not all(f.message for f in errors):
            bad.append(f"refused without an error finding: {prepared.findings}")
        if prepared.outputs:
            bad.append(f"refused but left outputs {prepared.outputs}")
        return bad
    if prepared.part is None:
        return bad + ["ok without a part"]
    if settings.transport != "base64" and not prepared.outputs:
        bad.append("no output file for a url/path transport")
    recheck = settings.replace(video_mode="file")
    for p in prepared.outputs:
        if not p.resolve().is_relative_to(out.resolve()):
            bad.append(f"output outside the folder: {p}")
            continue
        report = mediaprep.check(p, settings=recheck)
        errors = [f"{f.code}: {f.message}" for f in report.findings if f.severity == "error"]
        if errors:
            bad.append(f"output {p.name} re-checks with {errors}")
    return bad


@pytest.mark.parametrize("target,dialect,transport", COMBOS,
                         ids=["-".join(c) for c in COMBOS])
def test_every_file_prepares_or_says_why(tmp_path: Path, target: str, dialect: str,
                                         transport: str) -> None:
    settings = _settings(target, dialect, transport)
    failures = {}
    outcomes = {"ok": 0, "refused": 0}
    inputs = FILES + FOLDERS
    if transport != "base64":
        inputs = [p for p in inputs if p.parent.name != "videos"]
    for i, src in enumerate(inputs):
        out = tmp_path / f"{i:03d}"
        bad = _problems(src, settings, out)
        if bad:
            failures[src.name] = bad
    assert failures == {}
    # the matrix did real work: most real files are sendable after prep
    for i, _ in enumerate(inputs):
        outcomes["ok" if any((tmp_path / f"{i:03d}").rglob("*.*")) else "refused"] += 1
    assert outcomes["ok"] >= len(inputs) // 2, outcomes
