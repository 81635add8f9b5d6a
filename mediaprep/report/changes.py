"""Kinds of change as ``parts.jsonl`` lines carry them: reading, counting and wording them.

A line's ``changes`` are the typed records prepare made (:class:`mediaprep.types.Change`:
kind, from, to, why); its ``fixes`` are the same in words. The text summary, the per-file
lines and the HTML report all read them here, so they can never disagree on what "rotated"
means, and nothing parses a sentence back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ..types import CHANGE_KINDS, Change

__all__ = ["KINDS", "changes_of", "count_changes", "describe_counts", "records_of", "words_of"]

#: Every kind, in the order reports list them (the one home is mediaprep.types.CHANGE_KINDS).
KINDS: tuple[str, ...] = CHANGE_KINDS


def records_of(line: Mapping[str, Any]) -> list[Change]:
    """The change records of one line (none for a failed input; records that are not valid
    are dropped: a damaged or foreign line says nothing)."""
    if not line.get("ok") or not isinstance(line.get("changes"), list):
        return []
    return [c for raw in line["changes"] if (c := Change.from_json(raw)) is not None]


def changes_of(line: Mapping[str, Any]) -> list[str]:
    """The kinds of change of one ``parts.jsonl`` line, each once, in :data:`KINDS` order."""
    have = {c.kind for c in records_of(line)}
    return [k for k in KINDS if k in have]


def count_changes(lines: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """How many inputs had each kind of change."""
    counts: Counter[str] = Counter()
    for line in lines:
        counts.update(changes_of(line))
    return counts


def describe_counts(counts: Mapping[str, int]) -> str:
    """``3 rotated, 2 converted, 1 sent as frames`` (kinds in :data:`KINDS` order; '' if none)."""
    return ", ".join(f"{counts[k]} {k}" for k in KINDS if counts.get(k))


def words_of(line: Mapping[str, Any]) -> list[str]:
    """What changed and why, in words, one per change (nothing for a failed input or one sent
    as it was)."""
    return [c.words() for c in records_of(line)]
