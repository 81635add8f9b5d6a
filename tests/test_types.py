"""mediaprep.types: a parts.jsonl line read back from disk (a cache entry anyone who can write
the cache folder can plant) is used only when it has the shape prepare writes."""

from __future__ import annotations

from typing import Any

import pytest

from mediaprep.types import line_of, line_problem


def _line(**changes: Any) -> dict[str, Any]:
    return line_of(**{"path": "page.png", "ok": True, "kind": "image", **changes})


def test_a_line_as_prepare_writes_it_is_used() -> None:
    assert line_problem(_line(parts=[{"image": "oss://b/page_tile01.jpg"}],
                              outputs=["page_tile01.jpg"])) is None


@pytest.mark.parametrize("parts", ["data:image/png;base64,AAAA", [["x"]], [None], None])
def test_tiles_that_are_not_content_parts_are_refused(parts: Any) -> None:
    assert line_problem(_line(parts=parts)) == "parts is not a list of objects"


@pytest.mark.parametrize(("changes", "why"), [
    ({"ok": "yes"}, "path or ok missing"),
    ({"part": "x"}, "part is not an object"),
    ({"fixes": [1]}, "fixes is not a list of strings"),
    ({"findings": [{"code": "no.such", "severity": "error", "message": "m"}]},
     "a finding without a known code, a severity and a message"),
    ({"fps": 0}, "fps is not a number above 0"),
    ({"tokens": {"estimate": True}}, "tokens is not an estimate"),
    ({"uploads": [{"ref": "x"}]}, "uploads is not a list of upload records"),
])
def test_each_damaged_key_is_named(changes: dict[str, Any], why: str) -> None:
    assert line_problem(_line(**changes)) == why
