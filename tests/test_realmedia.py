"""Real-world media from other projects' test suites (../shared/realmedia, or
$MEDIAPREP_REALMEDIA), read in place.

For every file in MANIFEST.tsv, ``mediaprep.probe`` and ``mediaprep.check`` must not raise, and
what the manifest says is odd about the file must show up as the right finding. The manifest is
"a first reading, not a verdict": where mediaprep disagrees for a good reason, the difference
is written down in :data:`EXCEPTIONS` with the reason and with what mediaprep says instead
(which is asserted, so a change of behaviour is noticed).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import mediaprep
from mediaprep.cli import main
from mediaprep.types import CODES, MediaInfo
from tests.conftest import REALMEDIA

ROOT = REALMEDIA
MANIFEST = ROOT / "MANIFEST.tsv"
if not MANIFEST.is_file():
    pytest.skip(f"{MANIFEST} is absent", allow_module_level=True)

ROWS: list[dict[str, str]] = list(csv.DictReader(MANIFEST.open(encoding="utf-8"), delimiter="\t"))
FILE_ROWS = [r for r in ROWS if not r["relpath"].startswith("framelists/")]
FRAME_ROWS = [r for r in ROWS if r["relpath"].startswith("framelists/")]

# a read refused: unreadable, a bomb, or a format mediaprep has no decoder for (JPEG XL)
FAILED_READ = {"file.unreadable", "image.decompression_bomb", "file.unsupported_format"}


@dataclass(frozen=True)
class Exception_:
    """Where mediaprep and the manifest part ways: why, and what mediaprep says instead."""

    reason: str
    ours: Callable[[MediaInfo, list[str]], bool]
    # a gap in mediaprep, not a better reading: what it says now is not asserted (a fix must not
    # break this test), and the entry may stop applying once the gap is closed
    gap: bool = False


def _any(info: MediaInfo, codes: list[str]) -> bool:
    return True


# (relpath, rule) -> the documented difference. Rules are the names used in _rules below.
EXCEPTIONS: dict[tuple[str, str], Exception_] = {
    ("videos/mb_rotate-buck-bunny.mp4", "duration"): Exception_(
        "the manifest's 2.005 s is the container duration, stretched by the AAC track; the video "
        "stream holds 45 frames at 24 fps = 1.875 s, so mediaprep reports video.too_short",
        lambda i, c: abs(i.duration - 1.875) < 0.01 and "video.too_short" in c,
    ),
    ("videos/mp4ff_v300_multiple_segments.mp4", "duration"): Exception_(
        "the header declares 3,900 s (> 1 h) but only 8 s of samples exist; mediaprep measures "
        "8 s and does not report video.too_long",
        lambda i, c: abs(i.duration - 8.0) < 0.1 and "video.too_long" not in c,
    ),
    ("videos/ft_fixture2.mkv", "duration"): Exception_(
        "cut at 100 KiB: the header says 1,132 s, the packets hold ~1.6 s, so mediaprep reports "
        "video.too_short rather than a long video",
        lambda i, c: i.duration < 2.0 and "video.too_short" in c,
    ),
    ("videos/dec_corrupted.mp4", "unreadable"): Exception_(
        "GAP (closed by --deep): frames are corrupt mid-stream (PyAV fails after 28 frames); "
        "the default probe demuxes every packet but decodes only the first frame, so the file "
        "passes a plain check; check --deep decodes every packet and reports video.undecodable "
        "(tests/kinds/test_video_undecodable.py)",
        _any,
        gap=True,
    ),
    ("images/heif_truncated.heic", "unreadable"): Exception_(
        "GAP: the file is one byte short (its mdat box ends at 3,658, the file has 3,657 bytes) "
        "but the primary picture still decodes; the probe has no structural check for HEIF "
        "boxes, so it passes today (even with deep=True)",
        _any,
        gap=True,
    ),
    ("images/heif_zPug_3.heic", "frames"): Exception_(
        "3 top-level pictures in a HEIF are alternatives, not an animation: mediaprep notes "
        "them and uses the primary one (frames stays unset)",
        lambda i, c: i.frames is None and any("3 pictures" in n for n in i.notes),
    ),
    ("images/heif_truncated.heic", "frames"): Exception_(
        "2 top-level HEIF pictures: noted, not counted as animation frames (the rule stops "
        "applying once the truncation above is reported)",
        lambda i, c: i.frames is None and any("2 pictures" in n for n in i.notes),
        gap=True,
    ),
    ("images/pil_sugarshack.mpo", "frames"): Exception_(
        "an MPO's second picture is the other stereo view, not an animation frame; providers "
        "read the first JPEG",
        lambda i, c: i.frames is None and any("2 pictures" in n for n in i.notes),
    ),
    ("videos/mpy_bitmap.mp4", "too_small"): Exception_(
        "a 1x1 video: the 10 px minimum in the limits table is for images; no video minimum is "
        "documented, so the check passes",
        lambda i, c: (i.width, i.height) == (1, 1) and c == [],
    ),
}

# notable words that explain why a file the manifest could open is unreadable to mediaprep
DAMAGE_WORDS = ("truncated", "corrupt", "huge", "no samples", "0 decodable", "garbage",
                "adler32")


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _frames(row: dict[str, str]) -> int | None:
    m = re.search(r"frames=(\d+)", row["frames/fps"])
    return int(m.group(1)) if m else None


def _rules(row: dict[str, str], info: MediaInfo, found: list[str]) -> dict[str, Callable]:
    """The manifest's expectations for one file: rule name -> assertion (raises on failure)."""
    notable, error = row["notable"], row["probe_error"]
    kind, fmt = row["kind"], row["format/container"].upper()
    w, h = _num(row["width"]), _num(row["height"])
    duration = _num(row["duration_s"])
    failed_read = info.error_code in FAILED_READ
    rules: dict[str, Callable] = {}

    def need(code: str) -> Callable:
        def check() -> None:
            assert code in found, f"expected {code}, got {found}"

        return check

    if error or row["bytes"] == "0":

        def unreadable() -> None:
            assert info.error_code in FAILED_READ, (info.error_code, info.error, error)
            assert set(found) & FAILED_READ

        rules["unreadable"] = unreadable
    elif info.error_code == "file.unreadable":

        def explained() -> None:
            assert any(word in notable for word in DAMAGE_WORDS), (info.error, notable)

        rules["unreadable_explained"] = explained
    if "decompression bomb" in notable or "decode skipped" in notable:
        rules["bomb"] = need("image.decompression_bomb")
    if w is not None and h is not None and not failed_read:
        if min(w, h) <= 10:
            rules["too_small"] = need("image.too_small")
        if max(w, h) / max(min(w, h), 1) > 200:
            rules["aspect"] = need("image.aspect_ratio")
    if "not in allowed list" in notable:
        rules["unsupported"] = need("file.unsupported_format")
    if "over 4K box" in notable and fmt not in ("JPEG", "PNG", "MPO") and not failed_read:
        rules["format_tier"] = need("image.format_tier")
    if "encrypted (CENC" in notable:
        rules["encrypted"] = need("video.undecodable")
    if "audio-only" in notable:
        rules["no_video"] = need("video.no_video_stream")
    elif kind == "video" and duration is not None and duration < 2.0 and not failed_read:
        rules["too_short"] = need("video.too_short")
    m = re.search(r"EXIF orientation (\d)", notable)
    if m and info.error_code is None:

        def orientation() -> None:
            assert info.orientation == int(m.group(1)), (info.orientation, m.group(1))

        rules["orientation"] = orientation
    if info.error_code is None and w is not None and h is not None:

        def dims() -> None:
            assert (info.width, info.height) == (int(w), int(h))

        rules["dims"] = dims
    m_rot = re.search(r"rotation (-?\d+)", notable)
    if m_rot:

        def rotation() -> None:
            assert info.rotation == int(m_rot.group(1)) % 360, (info.rotation, m_rot.group(1))

        rules["rotation"] = rotation
    if kind == "video" and duration is not None and info.error_code is None:

        def duration_close() -> None:
            assert info.duration == pytest.approx(duration, abs=max(0.1, 0.05 * duration))

        rules["duration"] = duration_close
    n_frames = _frames(row)
    if n_frames and n_frames > 1 and kind == "image" and info.error_code is None:

        def frames() -> None:
            assert info.frames == n_frames, (info.frames, n_frames)

        rules["frames"] = frames
    if kind == "video" and not error and info.error_code is None:

        def is_video() -> None:
            assert info.kind == "video"

        rules["kind"] = is_video
    return rules


@pytest.mark.parametrize("row", FILE_ROWS, ids=[r["relpath"] for r in FILE_ROWS])
def test_manifest_file(row):
    path = ROOT / row["relpath"]
    info = mediaprep.probe(path)
    report = mediaprep.check(path)
    found = report.codes()
    assert all(code in CODES for code in found)
    assert info.bytes == int(row["bytes"])
    assert report.info.error_code == info.error_code  # probe and check agree
    if info.error_code:
        assert info.error, "a failure always carries a message"
        assert any(
            path.name in f.message
            for f in report.findings
            if f.code in FAILED_READ
            or f.code in ("file.unsupported_format", "video.no_video_stream",
                          "video.undecodable")
        )
    json.dumps(report.to_json())  # the report serialises

    for name, rule in _rules(row, info, found).items():
        exc = EXCEPTIONS.get((row["relpath"], name))
        if exc is not None:
            assert exc.ours(info, found), f"{name}: mediaprep changed: {info} {found}"
            continue
        rule()


def test_every_exception_is_in_use():
    """Each exception names a manifest row and a rule that really applies to it."""
    rows = {r["relpath"]: r for r in ROWS}
    for (relpath, rule), exc in EXCEPTIONS.items():
        assert relpath in rows, relpath
        assert exc.reason
        if exc.gap:
            continue
        info = mediaprep.probe(ROOT / relpath)
        found = mediaprep.check(ROOT / relpath).codes()
        assert rule in _rules(rows[relpath], info, found), (relpath, rule)


def test_framelist_folder():
    folders = sorted({Path(r["relpath"]).parent for r in FRAME_ROWS})
    assert folders
    for folder in folders:
        rows = [r for r in FRAME_ROWS if Path(r["relpath"]).parent == folder]
        info = mediaprep.probe(ROOT / folder)
        assert info.kind == "frames"
        assert len(info.members) == len(rows)
        assert [Path(m.path).name for m in info.members] == sorted(
            Path(r["relpath"]).name for r in rows
        )
        assert (info.width, info.height) == (int(rows[0]["width"]), int(rows[0]["height"]))
        assert info.bytes == sum(int(r["bytes"]) for r in rows)
        report = mediaprep.check(ROOT / folder)
        assert report.ok, report.codes()
        assert mediaprep.check(ROOT / folder, fps=20).codes() == ["param.fps"]


def test_cli_over_the_whole_folder(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["check", "--format", "json", "."])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    paths = [e["path"] for e in data["files"]]
    assert sorted(paths) == sorted(r["relpath"] for r in ROWS)  # MANIFEST/README skipped
    assert data["summary"]["files"] == len(ROWS)
    assert 0 < data["summary"]["failed"] < len(ROWS)
