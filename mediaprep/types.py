"""What the library hands back: MediaInfo (what a file is), Finding (one limit's verdict),
Report (check's answer) and Prepared (prepare's answer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")

#: code -> one-line description (also used for SARIF rule descriptions and `mediaprep limits`).
CODES: dict[str, str] = {
    # stable since the first round (README.md, "Limits and choices")
    "file.unreadable": "The file cannot be read or decoded (empty, truncated, corrupt, timed out).",
    "file.changed": "The file changed while it was prepared; the result is not cached.",
    "file.unsupported_format": "The format or container is not accepted by the target.",
    "file.too_large": "The file is larger than the target accepts for this transport.",
    "base64.too_large": "The base64 data URL is larger than the per-item limit.",
    "image.too_small": "An image side is not larger than the minimum.",
    "image.aspect_ratio": "The ratio of the long to the short side is above the maximum.",
    "image.resolution": "The image is above the recommended resolution.",
    "image.format_tier": "The format is accepted only below a resolution tier (e.g. 4K).",
    "image.decompression_bomb": "The declared pixel count is above the safe decode limit.",
    "video.too_short": "The video is shorter than the minimum duration.",
    "video.too_long": "The video is longer than the maximum duration.",
    "video.resolution": "The video is above the recommended resolution.",
    "frames.too_few": "An image list has fewer frames than a video needs.",
    "frames.too_many": "An image list has more frames than a video may have.",
    "param.fps": "The fps parameter is outside the accepted range.",
    "param.max_frames": "The max_frames parameter is outside the accepted range.",
    "model.no_vision": "The model takes text only.",
    "request.too_large": "The request body is larger than the target accepts.",
    "request.too_many_data_urls": "The request holds more media items than the target accepts.",
    # added in the second round
    "image.animated": "An animated image (GIF/APNG/WebP): only its first frame is sent, unless "
                      "--animation frames sends its frames as a video image list.",
    "video.undecodable": "The video stream cannot be decoded (encrypted, no decoder in the "
                         "bundled FFmpeg, or damaged packets found by --deep).",
    # mediaprep additions (the contract is silent; documented in README.md)
    "file.extension_mismatch": "The file's extension does not match what its bytes are.",
    "video.audio_ignored": "The audio track is ignored by the model (dropped when transcoding).",
    "video.no_video_stream": "The container holds no video stream (audio-only or empty).",
    "video.frames_dropped": "Frames of the input are not in the prepared video (repeated "
                            "timestamps); the message says how many.",
    "transport.unsupported": "The transport cannot carry this kind of media to this target.",
    "url.not_verified": "A URL was passed through without being fetched and checked.",
    "upload.failed": "The provider's storage refused or failed the upload (its status is in "
                     "the message); a rerun tries again.",
    "tokens.image_too_many": "The image costs more tokens than --max-image-tokens.",
    "tokens.request_too_many": "The request costs more tokens than --max-tokens.",
    "tokens.context": "The token estimate is above the model's context.",
    "model.unknown": "The model is in neither model list of the target's limits table.",
    # SPEC section 6 (third round): colour
    "image.hdr": "An HDR (PQ or HLG) still: prep tone-maps it to SDR sRGB unless --hdr keep.",
    "video.hdr": "An HDR (PQ or HLG) video: prep tone-maps it to SDR BT.709 unless --hdr keep.",
    # mediaprep additions, colour (README.md)
    "image.colour_profile": "The image's colours are not sRGB (a wide-gamut or CMYK ICC "
                            "profile) and would look visibly wrong to a decoder that ignores "
                            "the profile: prep converts it to sRGB.",
    "image.high_bit_depth": "16-bit or float grey samples: a decoder that converts them to "
                            "8-bit RGB by clipping shows white (or black); prep scales them.",
    "image.transparency": "The image has an alpha channel; the model's processor drops alpha, "
                          "so prep flattens transparent pixels onto --background.",
    # added in the third round
    "image.raw_preview": "A raw camera file (DNG): its embedded preview is sent, not the raw "
                         "data (mediaprep does not develop raw images).",
    "image.downscaled": "The model sees the image at less than half its size (--tiles sends "
                        "it as tiles it sees whole).",
    # mediaprep additions, the output folder (README.md)
    "output.not_ours": "A file or folder where the input's output would go is already in the "
                       "output folder and no mediaprep run made it: it is left as it is and "
                       "the input is not prepared.",
}


@dataclass
class Finding:
    """One thing check or prepare has to say about an input."""

    code: str
    severity: Severity
    message: str
    limit: Any = None
    actual: Any = None
    fixable: bool = False
    path: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.code not in CODES:  # a typo here would silently break users keying on codes
            raise ValueError(f"unknown finding code {self.code!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "limit": _jsonable(self.limit),
            "actual": _jsonable(self.actual),
            "fixable": self.fixable,
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return list(v)
    if isinstance(v, frozenset | set):
        return sorted(v)
    return v


def has_errors(findings: list[Finding], *, strict: bool = False) -> bool:
    bad = ("error", "warning") if strict else ("error",)
    return any(f.severity in bad for f in findings)


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
    # colour, when it is not plain sRGB (mediaprep.backends.colour): what the numbers mean
    # ("Display P3 (ICC)", "CMYK", "BT.2020 PQ"), how far off (mean CIEDE2000) a decoder that
    # ignores that would be, the HDR transfer (PQ, HLG) and the H.273 code points (primaries,
    # transfer, matrix, full range) of an HEIF/AVIF nclx box or a video stream
    colour: str | None = None
    colour_shift: float | None = None
    hdr: str | None = None
    cicp: list[int] | None = None
    # the bytes of the image that stands for the file when that is not the whole file: the
    # first image of a JPEG with more after it (a motion photo's video, an MPF gain map), a
    # raw file's embedded preview at image_offset, a HEIF without what its primary image does
    # not use (rewritten: backends/heif.py). What prep sends (losslessly cut out) and what the
    # byte limits are judged on; width/height/format-of-pixels are that image's.
    image_bytes: int | None = None
    image_offset: int | None = None
    raw_size: tuple[int, int] | None = None  # a raw file's sensor image, when it has one
    # "ffmpeg": the pixels are decoded by the bundled FFmpeg, Pillow refusing the file (an
    # AVIF libavif rejects and dav1d reads); None: Pillow decodes it
    decoder: str | None = None
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
    video_streams: int | None = None  # video tracks, cover art not counted (only one is sent)
    pix_fmt: str | None = None
    # image lists
    members: list[MediaInfo] = field(default_factory=list)
    # failure
    error: str | None = None
    error_code: str | None = None
    notes: list[str] = field(default_factory=list)
    # the video's packet scan (mediaprep.backends.av.VideoScan), kept so remux/transcode need
    # not demux the input again; not serialised, not compared
    scan: Any = field(default=None, repr=False, compare=False)
    # a video's first decoded frame as a small RGB picture (the report's), when the probe was
    # asked for it (prepare(preview=True)): the probe decodes that frame anyway
    first_frame: Any = field(default=None, repr=False, compare=False)

    @property
    def sent_bytes(self) -> int:
        """The bytes prep sends when it does not re-encode: the first image of a file with
        more after it (:attr:`image_bytes`), else the whole file."""
        return self.image_bytes if self.image_bytes is not None else self.bytes

    @property
    def pixels(self) -> int | None:
        if self.width is None or self.height is None:
            return None
        return self.width * self.height

    @property
    def orientation_source(self) -> str:
        """Where :attr:`orientation` is written: an AVIF's or HEIF's ``irot``/``imir`` item
        properties (the decoder reports them as an orientation), a DNG's IFD 0 (for its
        embedded preview), else EXIF (or XMP)."""
        return {"heic": "irot/imir", "avif": "irot/imir", "dng": "DNG"}.get(self.format or "",
                                                                            "EXIF")

    @property
    def display_size(self) -> tuple[int, int] | None:
        """(width, height) as shown: EXIF orientations 5-8 and 90/270 rotations swap them."""
        if self.width is None or self.height is None:
            return None
        swap = (self.orientation or 1) in (5, 6, 7, 8) or (self.rotation or 0) % 180 == 90
        return (self.height, self.width) if swap else (self.width, self.height)

    def to_json(self) -> dict[str, Any]:
        """The ``info`` object of the JSON outputs: set fields only, the documented keys first."""
        out: dict[str, Any] = {"format": self.format, "width": self.width,
                               "height": self.height, "bytes": self.bytes}
        skip = {"path", "kind", "format", "width", "height", "bytes", "members", "notes",
                "extension_matches", "scan"}
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


@dataclass
class Report:
    """What check says about one input."""

    path: str
    kind: str
    info: MediaInfo
    findings: list[Finding] = field(default_factory=list)
    tokens: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind, "ok": self.ok,
                               "info": self.info.to_json()}
        if self.tokens is not None:
            out["tokens"] = self.tokens
        out["findings"] = [f.to_json() for f in self.findings]
        return out


#: Every kind of change prep makes, in the order reports list them (the one home: the text
#: summary, the HTML report and parts.jsonl all count and name changes by these).
CHANGE_KINDS: tuple[str, ...] = ("rotated", "converted", "resized", "padded", "re-encoded",
                                 "remuxed", "transcoded", "sent as frames", "flattened",
                                 "sampled", "stripped", "tiled")


@dataclass(frozen=True)
class Change:
    """One change prep made to an input: its kind (:data:`CHANGE_KINDS`), what it was, what it
    became, and why. Every rendering of what changed (the per-file line, ``fixes``, the report,
    the summary's counts) is made from these; nothing parses a sentence back."""

    kind: str
    before: str | None = None  # "from" in JSON: "4000x3000", "GIF", "a 1.50 s video file"
    after: str | None = None  # "to": "3000x4000", "PNG", "6 frames at 4 fps"
    why: str | None = None  # "EXIF orientation 6", "above the 8K box"

    def __post_init__(self) -> None:
        if self.kind not in CHANGE_KINDS:
            raise ValueError(f"unknown kind of change {self.kind!r}")

    def words(self) -> str:
        """``resized from 8000x6000 to 7680x5760 (above the recommended 7680x4320)``."""
        text = self.kind
        if self.before is not None:
            text += f" from {self.before}"
        if self.after is not None:
            text += f" to {self.after}"
        if self.why:
            text += f" ({self.why})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "from": self.before, "to": self.after, "why": self.why}

    @classmethod
    def from_json(cls, raw: Any) -> Change | None:
        """A record as parts.jsonl holds it (None for anything else: an old or damaged line)."""
        if not isinstance(raw, dict) or raw.get("kind") not in CHANGE_KINDS:
            return None
        text = {k: (str(raw[k]) if raw.get(k) is not None else None)
                for k in ("from", "to", "why")}
        return cls(raw["kind"], text["from"], text["to"], text["why"])


#: The keys of every parts.jsonl line, in order (docs/formats.md, "parts.jsonl").
LINE_KEYS = ("path", "ok", "kind", "part", "parts", "outputs", "findings", "fixes", "changes",
             "fps", "timestamps", "tokens", "uploads")


def line_of(**values: Any) -> dict[str, Any]:
    """A parts.jsonl line with every key of :data:`LINE_KEYS` (the missing ones null; lists
    empty), in that order: the one place a line's shape is decided."""
    unknown = set(values) - set(LINE_KEYS)
    if unknown:
        raise TypeError(f"not a parts.jsonl key: {', '.join(sorted(unknown))}")
    empty = {"parts": [], "outputs": [], "findings": [], "fixes": [], "changes": []}
    return {k: values.get(k, empty.get(k)) for k in LINE_KEYS}


#: What ``fixes`` says of an input sent as it was.
UNCHANGED = "passed through unchanged"


@dataclass
class Prepared:
    """A sendable input, or the reasons it could not be made sendable (``ok`` False).

    ``part`` is the content part (docs/formats.md, "Content parts"). ``outputs`` are files
    written under the output folder; ``data`` holds an image's bytes when nothing was written.
    ``findings`` are the input's findings from check plus any from the re-check of the output;
    ``changes`` are what prep changed (typed :class:`Change` records) and ``fixes`` the same in
    words.
    """

    path: str
    kind: str
    ok: bool
    part: dict[str, Any] | None = None
    # --tiles: the content parts of an input sent as several images, in reading order (then
    # ``part`` is None: no one part stands for the input); empty otherwise
    parts: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    info: MediaInfo | None = None
    output_info: MediaInfo | None = None
    data: bytes | None = None
    mime: str | None = None
    fps: float | None = None
    timestamps: list[float] | None = None
    tokens: dict[str, Any] | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    #: --transport upload: each output put in the provider's storage (file, ref, sha256, bytes,
    #: expires (ISO 8601 UTC, absent: until deleted), uploaded: True now, False reused)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    # prepare(preview=True): small RGB PIL images (long side <= 256 px) of what is sent, by
    # output index ("input": the input's own first picture), made from pixels prepare had
    # anyway; not part of the JSON
    previews: dict[int | str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def fixes(self) -> list[str]:
        """What changed, in words (one per change; ``passed through unchanged`` when a
        sendable input needed none)."""
        words = [c.words() for c in self.changes]
        return words or ([UNCHANGED] if self.ok else [])

    def change_kinds(self) -> list[str]:
        """The kinds of change, each once, in :data:`CHANGE_KINDS` order."""
        have = {c.kind for c in self.changes}
        return [k for k in CHANGE_KINDS if k in have]

    @property
    def preview(self) -> Any:
        """The preview of what is sent (its first output), or None: see ``previews``."""
        return self.previews.get(0)

    def to_json(self, *, root: Path | None = None) -> dict[str, Any]:
        """One line of ``parts.jsonl`` (docs/formats.md)."""
        outputs = []
        base = root.resolve() if root else None
        for p in self.outputs:
            try:
                outputs.append(p.resolve().relative_to(base).as_posix() if base else str(p))
            except ValueError:
                outputs.append(str(p))
        # the same keys on every line (null or empty where a value does not apply): a program
        # reading parts.jsonl never meets a missing key
        return line_of(
            path=self.path, ok=self.ok, kind=self.kind, part=self.part,
            parts=list(self.parts), outputs=outputs,
            findings=[f.to_json() for f in self.findings], fixes=self.fixes,
            changes=[c.to_json() for c in self.changes], fps=self.fps,
            timestamps=(None if self.timestamps is None
                        else [round(t, 6) for t in self.timestamps]),
            tokens=self.tokens, uploads=self.uploads or None)


KINDS_OF_INPUT: tuple[str, ...] = get_args(Kind)


def line_problem(line: Any) -> str | None:
    """Why ``line``, a ``parts.jsonl`` line (:meth:`Prepared.to_json`) read back from disk (a
    cache entry, which anyone who can write the cache folder can plant), cannot be used as one;
    None when its keys have the types and values prepare writes."""
    if not isinstance(line, dict):
        return "not a JSON object"
    if set(line) != set(LINE_KEYS):
        return "its keys are not those of a parts.jsonl line"
    return next((why for check in _LINE_CHECKS if (why := check(line)) is not None), None)


def _identity_problem(line: dict[str, Any]) -> str | None:
    if not isinstance(line.get("path"), str) or not isinstance(line.get("ok"), bool):
        return "path or ok missing"
    if line.get("kind") not in KINDS_OF_INPUT:
        return f"kind {str(line.get('kind'))[:40]!r} is none of {', '.join(KINDS_OF_INPUT)}"
    return None


def _parts_problem(line: dict[str, Any]) -> str | None:
    if not (line.get("part") is None or isinstance(line["part"], dict)):
        return "part is not an object"
    if not _list_of(line.get("parts"), dict):
        return "parts is not a list of objects"
    return None


def _words_problem(line: dict[str, Any]) -> str | None:
    for key in ("outputs", "fixes"):
        if not _list_of(line.get(key, []), str):
            return f"{key} is not a list of strings"
    changes = line.get("changes", [])
    if not isinstance(changes, list) or any(Change.from_json(c) is None for c in changes):
        return "changes is not a list of change records"
    return None


def _findings_problem(line: dict[str, Any]) -> str | None:
    findings = line.get("findings")
    if not isinstance(findings, list):
        return "findings is not a list"
    if not all(_is_finding(f) for f in findings):
        return "a finding without a known code, a severity and a message"
    return None


def _is_finding(f: Any) -> bool:
    return (isinstance(f, dict) and f.get("code") in CODES
            and f.get("severity") in SEVERITIES and isinstance(f.get("message"), str))


def _timing_problem(line: dict[str, Any]) -> str | None:
    fps = line.get("fps")
    if fps is not None and not _finite(fps, above=0):
        return "fps is not a number above 0"
    stamps = line.get("timestamps")
    if stamps is not None and not (isinstance(stamps, list)
                                   and all(_finite(t, above=None) for t in stamps)):
        return "timestamps is not a list of numbers"
    return None


def _tokens_problem(line: dict[str, Any]) -> str | None:
    tokens = line.get("tokens")
    if tokens is None:
        return None
    if not isinstance(tokens, dict) or not (tokens.get("estimate") is None
                                            or _whole(tokens["estimate"])):
        return "tokens is not an estimate"
    return None


def _uploads_problem(line: dict[str, Any]) -> str | None:
    uploads = line.get("uploads")
    if uploads is not None and not (isinstance(uploads, list) and all(
            isinstance(u, dict) and isinstance(u.get("ref"), str)
            and isinstance(u.get("bytes"), int) for u in uploads)):
        return "uploads is not a list of upload records"
    return None


#: line_problem's checks, in the order their problems are reported
_LINE_CHECKS = (_identity_problem, _parts_problem, _words_problem, _findings_problem,
                _timing_problem, _tokens_problem, _uploads_problem)


def _list_of(value: Any, kind: type) -> bool:
    return isinstance(value, list) and all(isinstance(v, kind) for v in value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: Any, *, above: float | None) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and (above is None or value > above)
