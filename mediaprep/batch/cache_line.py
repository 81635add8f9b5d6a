"""A ``parts.jsonl`` line's data URLs: written without JSON's scan, kept once in a cache.

A prepared image's line carries its output as a data URL: the output file's bytes again, in
base64 (a third bigger). :func:`line_bytes` writes the line with each data URL this program
made (:class:`mediaprep.emit.parts.DataURL`) set aside while JSON encodes the rest, then put
back as it is (JSON would only copy it, after looking at every character), and says where each
sits. A cache entry stores the outputs, so storing the line whole would write and hash every
output twice more: the entry keeps the line with each payload that carries a stored output
taken out (:func:`take_out_payloads`), and where it was (its offset in the shortened text, and
which stored file it is the base64 of); a hit puts the payloads back
(:func:`put_back_payloads`), so the line a hit gives is byte for byte the line stored.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..output import json_line

_PAYLOAD = b";base64,"
#: a data URL shorter than this is encoded by JSON with the rest (setting it aside costs more)
SET_ASIDE_CHARS = 4096
#: what stands for the i-th data URL set aside while the rest is encoded: NULs, which JSON
#: writes escaped (``\u0000``), so no text of the line can read as one unless it holds them,
#: and the line is checked to hold no other
_MARK = "\x00data-url-%d\x00"
_MARK_TEXT = json.dumps("\x00data-url-")[1:-1]  # how every mark starts in JSON text


@dataclass(frozen=True)
class Carried:
    """Where a data URL's base64 sits in a line's bytes, and the file whose bytes it is."""

    start: int
    end: int
    path: Path


def line_bytes(line: Mapping[str, Any]) -> tuple[bytes, list[Carried]]:
    """The line as ``json_line`` writes it, a newline after it, in UTF-8 bytes; and where the
    payload of each data URL that carries a written file sits in them."""
    found: list[Any] = []
    slim = {k: (_set_aside(v, found) if k in ("part", "parts") else v) for k, v in line.items()}
    if not found:
        return (json_line(line) + "\n").encode("utf-8"), []
    text = json_line(slim)
    if text.count(_MARK_TEXT) != len(found):  # a text of the line itself reads as a mark
        return (json_line(line) + "\n").encode("utf-8"), []
    pieces: list[bytes] = []
    carried: list[Carried] = []
    pos = size = 0
    for i, url in enumerate(found):
        mark = json.dumps(_MARK % i)
        at = text.find(mark, pos)
        head = url[:url.find(",") + 1]
        if at < 0 or json.dumps(head)[1:-1] != head:
            return (json_line(line) + "\n").encode("utf-8"), []  # a line like no other
        before = text[pos:at + 1].encode("utf-8")  # up to the opening quote
        pieces += [before, url.encode("ascii")]
        size += len(before)
        if url.path is not None:
            carried.append(Carried(size + len(head), size + len(url), url.path))
        size += len(url)
        pos = at + len(mark) - 1  # from the closing quote
    pieces.append((text[pos:] + "\n").encode("utf-8"))
    return b"".join(pieces), carried


def _set_aside(value: Any, found: list[Any]) -> Any:
    """``value`` with each long data URL this program made replaced by its mark (copies of the
    dicts and lists on the way; the line itself is not changed)."""
    if getattr(type(value), "json_safe", False) and len(value) >= SET_ASIDE_CHARS:
        found.append(value)
        return _MARK % (len(found) - 1)
    if isinstance(value, dict):
        return {k: _set_aside(v, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_set_aside(v, found) for v in value]
    return value


def take_out_payloads(text: bytes, carried: list[Carried],
                      stored: Mapping[Any, tuple[str, int]]) -> tuple[bytes, list[list[Any]]]:
    """``text`` without the payloads (:func:`line_bytes`' ``carried``) of the files a cache
    entry stores (``stored``: a file's path -> its name in the entry and its size), and the
    splices that put them back: ``[offset, name]`` pairs, ascending, the offsets into the text
    returned. A payload whose length is not its file's base64 length stays (the file changed
    after it was encoded)."""
    pieces: list[bytes] = []
    splices: list[list[Any]] = []
    pos = kept = 0
    for c in carried:
        name, size = stored.get(c.path, ("", -1))
        if not name or c.end - c.start != 4 * -(-size // 3) or c.start < pos:
            continue
        pieces.append(text[pos:c.start])
        kept += c.start - pos
        splices.append([kept, name])
        pos = c.end
    if not splices:
        return text, []
    pieces.append(text[pos:])
    return b"".join(pieces), splices


def put_back_payloads(text: bytes, splices: Any, data: Callable[[str], bytes]) -> bytes:
    """``text`` with its payloads back (``data(name)``: a stored file's bytes). Raises
    ValueError for splices that are not ascending ``[offset, name]`` pairs inside the text:
    an entry may be planted, and its line is then not used."""
    if not isinstance(splices, list):
        raise ValueError("the line's splices are not a list")
    pieces: list[bytes] = []
    pos = 0
    for splice in splices:
        if not (isinstance(splice, list) and len(splice) == 2 and type(splice[0]) is int
                and isinstance(splice[1], str) and pos <= splice[0] <= len(text)):
            raise ValueError("a splice of the line is not an offset inside it and a name")
        offset, name = splice
        pieces.append(text[pos:offset])
        pieces.append(base64.b64encode(data(name)))
        pos = offset
    pieces.append(text[pos:])
    return b"".join(pieces)
