"""Kinds of change prep makes to an input: the one place that names them.

A ``parts.jsonl`` line (SPEC section 4) carries ``changes``: the kinds prepare recorded where it
made each change (see :class:`mediaprep.model.Prepared`). :func:`changes_of` reads them
for one line and :func:`count_changes` totals them; the HTML report and the text summary both
use these, so they can never disagree on what "rotated" means.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["KINDS", "changes_of", "count_changes", "describe_counts", "fix_words", "words_of"]

#: Every kind, in the order reports list them.
KINDS: tuple[str, ...] = ("rotated", "converted", "resized", "padded", "re-encoded", "remuxed",
                          "transcoded", "sent as frames", "flattened")


def changes_of(line: Mapping[str, Any]) -> list[str]:
    """The kinds of change of one ``parts.jsonl`` line, in :data:`KINDS` order.

    A failed input has none (nothing is sent). A line written before ``changes`` existed (an
    old cache entry) says only what its structure shows: frames with timestamps were sent as
    frames. Unknown kinds are dropped.
    """
    if not line.get("ok"):
        return []
    raw = line.get("changes")
    if isinstance(raw, list):
        given = {str(c) for c in raw}
    else:
        given = {"sent as frames"} if line.get("timestamps") else set()
    return [k for k in KINDS if k in given]


def count_changes(lines: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """How many inputs had each kind of change."""
    counts: Counter[str] = Counter()
    for line in lines:
        counts.update(changes_of(line))
    return counts


def describe_counts(counts: Mapping[str, int]) -> str:
    """``3 rotated, 2 converted, 1 sent as frames`` (kinds in :data:`KINDS` order; '' if none)."""
    return ", ".join(f"{counts[k]} {k}" for k in KINDS if counts.get(k))


# --- what changed, in words --------------------------------------------------------------------
#
# ``fixes`` in a parts.jsonl line are prepare's own notes, some of them how it got there (each
# encoder attempt: "png zlib 6 128x128: 31951 B (fits, counted 42626)"). People read the words
# below; the JSON keeps the raw notes.

_ENCODE = re.compile(r"^(jpeg|png|webp|gif|bmp|tiff?) (?:q=(\d+)|zlib \d+|optimize) "
                     r"(\d+)x(\d+): (\d+) B \((fits|too big)")
_ENCODED_AS = re.compile(r"^encoded as (\w+)$")
_MODE = re.compile(r"^mode (\S+) -> (\S+)$")
_COLOUR = re.compile(r"^colour (.+) -> (.+)$")
_PADDED = re.compile(r"^padded (\d+x\d+) -> (\d+x\d+)$")
_RESIZED = re.compile(r"^resized (\d+x\d+) -> (\d+x\d+)(.*)$")
#: how prepare got there, not what changed: left out of the words
_REMUXED = re.compile(r"^remuxed (\w+) -> (\w+)(.*)$")
_UNDER = re.compile(r"^sent as frames: ([\d.]+) s is under ([\d.]+) s$")
_QUIET = re.compile(r"^(passed through unchanged$|attempt \d+:)")
_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "gif": "GIF", "bmp": "BMP",
            "tif": "TIFF", "tiff": "TIFF"}
_MODES = {"1": "black and white", "L": "greyscale", "LA": "greyscale with transparency",
          "P": "palette colours", "PA": "palette colours with transparency", "RGB": "RGB",
          "RGBA": "RGB with transparency", "CMYK": "CMYK", "YCbCr": "YCbCr",
          "I;16": "16-bit greyscale", "I": "32-bit greyscale", "F": "floating-point greyscale"}


def _size(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MiB"


def _piece(text: str) -> str | None:
    if _QUIET.search(text):
        return None
    if text == "applied EXIF orientation":
        return "turned upright, as its EXIF orientation says"
    if text == "opaque alpha dropped":
        return "its fully opaque transparency channel dropped"
    if m := _UNDER.match(text):
        return f"sent as frames: at {m[1]} s it is shorter than the {m[2]} s a video file needs"
    if m := _MODE.match(text):
        a, b = (_MODES.get(x, x) for x in m.groups())
        return f"{a} converted to {b}"
    if m := _COLOUR.match(text):
        return f"colours converted from {m[1]} to {m[2]}"
    if m := _PADDED.match(text):
        return f"padded from {m[1]} to {m[2]} px"
    if m := _REMUXED.match(text):
        return f"remuxed from {m[1].upper()} to {m[2].upper()}{m[3]}"
    if m := _RESIZED.match(text):
        return f"resized from {m[1]} to {m[2]} px{m[3]}"
    return text


def fix_words(fixes: Sequence[str]) -> list[str]:
    """What prepare changed and why, in words, from a line's raw ``fixes``.

    Encoder attempts become one phrase ("saved as JPEG at quality 92, 56.2 KiB"), an "encoded
    as" note folds into it ("converted to PNG ..."), no-ops and internal counts are left out.
    """
    words: list[str] = []
    steps = [m for f in fixes if (m := _ENCODE.match(str(f)))]
    target = next((m[1] for f in fixes if (m := _ENCODED_AS.match(str(f)))), None)
    encode_at = next((i for i, f in enumerate(fixes) if _ENCODE.match(str(f))), None)
    for i, raw in enumerate(fixes):
        text = str(raw)
        if _ENCODE.match(text) or _ENCODED_AS.match(text):
            if i == encode_at or (encode_at is None and _ENCODED_AS.match(text)):
                words.append(_encoding(steps, target))
            continue
        pieces = text.split("; ")
        if "opaque alpha dropped" in pieces:  # "mode RGBA -> RGB" says the same, in jargon
            pieces = [p for p in pieces if not _MODE.match(p)]
        parts = [w for p in pieces if (w := _piece(p))]
        if parts:
            words.append(", ".join(parts))
    return [w for w in dict.fromkeys(words) if w]


def _encoding(steps: Sequence[re.Match[str]], target: str | None) -> str:
    if not steps:
        return f"converted to {_FORMATS.get(target or '', target)}" if target else ""
    last = next((m for m in reversed(steps) if m[6] == "fits"), steps[-1])
    fmt = _FORMATS.get(last[1], last[1].upper())
    head = f"converted to {fmt}" if target else f"saved as {fmt}"
    how = f"at quality {last[2]}" if last[2] else "(lossless)"
    tail = ""
    if any(m[6] == "too big" for m in steps):
        tail = f", after {len(steps)} tries to fit the size limit"
    return f"{head} {how}, {last[3]}x{last[4]} px, {_size(int(last[5]))}{tail}"


def words_of(line: Mapping[str, Any]) -> list[str]:
    """:func:`fix_words` of one ``parts.jsonl`` line (nothing for a failed input)."""
    if not line.get("ok"):
        return []
    return fix_words([str(f) for f in line.get("fixes") or []])
