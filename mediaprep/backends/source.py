"""What a backend reads from: any object with a name and one way to its bytes.

:class:`mediaprep.resource.Resource` is one; the backends ask only for what is below, so they
do not depend on how inputs are made (paths, bytes, URLs, PIL images, frame folders)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any, Protocol


class MediaSource(Protocol):
    name: str  # as reports show it
    path: Path | None  # a local file, if the bytes are one
    data: bytes | None  # the bytes, if held in memory
    image: Any  # a PIL image made in memory, if that is the input

    def open(self) -> IO[bytes]: ...

    def head(self, n: int) -> bytes: ...

    def tail(self, n: int) -> bytes: ...


class BytesSource:
    """A :class:`MediaSource` over bytes in memory (a part of a file a backend cut out: a raw
    file's embedded preview)."""

    path = None
    image = None

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self.data = name, data

    def open(self) -> IO[bytes]:
        return io.BytesIO(self.data)

    def head(self, n: int) -> bytes:
        return self.data[:n]

    def tail(self, n: int) -> bytes:
        return self.data[-n:]

    @property
    def size(self) -> int:
        return len(self.data)
