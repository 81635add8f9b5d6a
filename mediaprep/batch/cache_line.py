"""A cached ``parts.jsonl`` line without the data its outputs already hold.

A prepared image's line carries its output as a data URL: the output file's bytes again, in
base64 (a third bigger). A cache entry stores the outputs, so storing the line whole would
write and hash every output twice more. The entry keeps the line with each such data URL's
payload taken out, and where it was (its offset in the shortened text, and which stored file
it is the base64 of); a hit puts the payloads back. Only a payload that is exactly the base64
of a stored file is taken out, so the line a hit gives is byte for byte the line stored.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

_PAYLOAD = b";base64,"


def take_out_payloads(text: bytes, files: Mapping[str, bytes]) -> tuple[bytes, list[list[Any]]]:
    """``text`` without the data URL payloads that are the base64 of one of ``files``
    (name -> bytes), and the splices that put them back: ``[offset, name]`` pairs, ascending,
    the offsets into the text returned."""
    encoded: dict[str, bytes] = {}
    pieces: list[bytes] = []
    splices: list[list[Any]] = []
    pos = kept = 0
    search = 0
    while (i := text.find(_PAYLOAD, search)) >= 0:
        start = i + len(_PAYLOAD)
        end = text.find(b'"', start)
        if end < 0:
            break
        search = end
        name = _stored_as(text, start, end, files, encoded)
        if name is None:
            continue
        pieces.append(text[pos:start])
        kept += start - pos
        splices.append([kept, name])
        pos = end
    if not splices:
        return text, []
    pieces.append(text[pos:])
    return b"".join(pieces), splices


def _stored_as(text: bytes, start: int, end: int, files: Mapping[str, bytes],
               encoded: dict[str, bytes]) -> str | None:
    """The name of the file whose base64 ``text[start:end]`` is, if any (lengths compared
    first; then a memcmp in place: a memoryview's ``==`` goes item by item, 20x slower)."""
    for name, data in files.items():
        if 4 * -(-len(data) // 3) != end - start:
            continue
        if name not in encoded:
            encoded[name] = base64.b64encode(data)
        if text.startswith(encoded[name], start):
            return name
    return None


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
