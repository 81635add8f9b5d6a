"""Kinds of change prep makes to an input: the one place that names them.

A ``parts.jsonl`` line (SPEC section 4) carries ``changes``: the kinds prepare recorded where it
made each change (see :class:`mediaprep.model.Prepared`). :func:`changes_of` reads them
for one line and :func:`count_changes` totals them; the HTML report and the text summary both
use these, so they can never disagree on what "rotated" means.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["KINDS", "changes_of", "count_changes", "describe_counts"]

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
