"""What a probed input is: :class:`MediaInfo`, the output of the probe stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["image", "video", "frames", "other"]

# MediaInfo.format of a PIL image made in memory (Image.new, Image.fromarray, a drawing): pixels
# with no file format yet. Not a format a provider takes, and not a dead end: prep encodes it.
UNENCODED = "unencoded"


@dataclass
class MediaInfo:
    """Facts about one input, read from its bytes (header and container, not pixels).

    ``width``/``height`` are as stored; ``orientation`` (images) and ``rotation`` (videos) say
    how they are displayed. ``error`` is set (with ``error_code``) when the input could not be
    read; the other fields then hold whatever was learnt before the failure.
    """

    path: str
    kind: Kind
    format: str | None = None
    bytes: int = 0
    width: int | None = None
    height: int | None = None
    extension: str | None = None  # lower-case extension without the dot
    extension_matches: bool = True
    # images
    mode: str | None = None
    bit_depth: int | None = None
    orientation: int | None = None
    frames: int | None = None  # frames in an animated image
    declared_pixels: int | None = None  # set when a bomb is refused before the size is known
    # videos
    container: str | None = None
    codec: str | None = None
    duration: float | None = None
    declared_duration: float | None = None
    start_time: float | None = None
    fps: float | None = None
    fps_varies: bool | None = None
    frame_count: int | None = None
    rotation: int | None = None
    sample_aspect_ratio: float | None = None
    has_audio: bool | None = None
    pix_fmt: str | None = None
    # image lists
    members: list[MediaInfo] = field(default_factory=list)
    # failure
    error: str | None = None
    error_code: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def pixels(self) -> int | None:
        if self.width is None or self.height is None:
            return None
        return self.width * self.height

    @property
    def display_size(self) -> tuple[int, int] | None:
        """(width, height) as shown: EXIF orientations 5-8 and 90/270 rotations swap them."""
        if self.width is None or self.height is None:
            return None
        swap = (self.orientation or 1) in (5, 6, 7, 8) or (self.rotation or 0) % 180 == 90
        return (self.height, self.width) if swap else (self.width, self.height)

    def to_json(self) -> dict[str, Any]:
        """The ``info`` object of the JSON outputs: set fields only, SPEC keys first."""
        out: dict[str, Any] = {"format": self.format, "width": self.width,
                               "height": self.height, "bytes": self.bytes}
        skip = {"path", "kind", "format", "width", "height", "bytes", "members", "notes",
                "extension_matches"}
        for name in self.__dataclass_fields__:
            if name in skip:
                continue
            v = getattr(self, name)
            if v is not None:
                out[name] = round(v, 6) if isinstance(v, float) else v
        if not self.extension_matches:
            out["extension_matches"] = False
        if self.members:
            out["count"] = len(self.members)
        if self.notes:
            out["notes"] = list(self.notes)
        return out
