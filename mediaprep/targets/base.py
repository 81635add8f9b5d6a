"""What a target is: a provider (or a server you run) described as data, one module each.

A :class:`Target` holds everything mediaprep needs to know about where media goes: its limits
table with the sources of every row, the dialects and transports it takes (and which dialect the
path transport needs), its vision models with their processor configs and context windows, its
token rule (:class:`TokenRule`), and its video policy (whether a video may go as a list of
frames). Adding a provider means one module beside ``dashscope.py`` and one line in the
registry (``mediaprep/targets/__init__.py``); nothing outside ``targets/`` names a target.

The rows every target shares (mediaprep's own guards and the sampling parameters) are
:data:`SHARED_ROWS`, built here with :func:`shared_rows`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..tokens import (
    MEDIA_PROMPT_CHUNK,
    MEDIA_PROMPT_IMAGE,
    KimiVisionConfig,
    TokenEstimate,
    fit_video,
    frames_for_video,
    image_tokens,
    video_tokens,
)
from ..types import CODES, Severity

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

DIALECTS = ("openai", "dashscope")
TRANSPORTS = ("base64", "url", "path", "upload")


@dataclass(frozen=True)
class Source:
    title: str
    url: str
    as_of: str  # date of the document in hand


@dataclass(frozen=True)
class Limit:
    """One enforced limit.

    ``value`` is the boundary itself; ``strict`` says the boundary value is already outside
    (e.g. "each side must exceed 10 px": min 10, strict; "< 10 MB": max, strict). ``source`` is
    a key of the owning target's :attr:`Target.sources` (or of :data:`SHARED_SOURCES`).
    """

    key: str
    value: Any
    code: str
    severity: Severity
    source: str
    note: str
    strict: bool = False

    def __post_init__(self) -> None:
        assert self.code in CODES, self.code

    def exceeds_max(self, actual: float) -> bool:
        return actual >= self.value if self.strict else actual > self.value

    def below_min(self, actual: float) -> bool:
        return actual <= self.value if self.strict else actual < self.value


def rows(*limits: Limit) -> dict[str, Limit]:
    """A table: key -> row, in the order given."""
    return {r.key: r for r in limits}


@dataclass(frozen=True)
class Uploads:
    """A provider's own storage, where ``--transport upload`` puts prepared files.

    ``protocol`` names the module of :mod:`mediaprep.upload` that speaks it; ``scheme`` is the
    reference a part then carries (``oss://...``, ``ms://<id>``). ``expires`` is how long a
    reference stays usable (None: until deleted); a cached one is reused only while more than
    ``margin`` seconds of that are left. ``headers`` are what a request naming a reference
    must carry. The byte and count limits are rows of the target's table (``upload.*``).
    """

    protocol: str
    key_env: str  # the environment variable holding the API key
    api_base: str  # the default endpoint
    regions: Mapping[str, str]  # region name -> its endpoint (README lists them)
    scheme: str
    expires: float | None = None
    margin: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)
    deletable: bool = False  # files stay until deleted (``mediaprep uploads prune``)


@dataclass(frozen=True)
class TokenRule:
    """How a target's vision tokens are counted, on top of the processor's arithmetic
    (:mod:`mediaprep.tokens`).

    ``image_prompt`` and ``chunk_prompt`` are the text tokens the chat template puts around
    each image and each video chunk (the Kimi template's, on every target: the hosted APIs serve
    the same models). ``video_sample_fps`` is the rate at which the server samples a video
    *file* (None: at the part's ``fps``, as the hosted APIs document).
    """

    image_prompt: int = MEDIA_PROMPT_IMAGE
    chunk_prompt: int = MEDIA_PROMPT_CHUNK
    video_sample_fps: float | None = None

    def image(self, width: int, height: int, cfg: KimiVisionConfig) -> int:
        """Tokens of one image of ``width`` x ``height`` (its media prompt included)."""
        return image_tokens(width, height, cfg=cfg) + self.image_prompt

    def video(self, n_frames: int, width: int, height: int, cfg: KimiVisionConfig) -> int:
        """Tokens of ``n_frames`` frames sent as one video (every 4-frame chunk's prompt
        included)."""
        chunks = -(-n_frames // cfg.temporal_merge_kernel_size)
        return video_tokens(n_frames, width, height, cfg=cfg) + chunks * self.chunk_prompt

    def frame_list(self, sizes: list[tuple[int, int]], cfg: KimiVisionConfig) -> int:
        """Tokens of frames of these sizes sent as one video: each chunk of 4 is sized by its
        first frame, as the processor does (``navit_resize_video`` on the chunk's first)."""
        k = cfg.temporal_merge_kernel_size
        return sum(self.video(len(sizes[i:i + k]), *sizes[i], cfg)
                   for i in range(0, len(sizes), k))

    def file_frames(self, duration: float, fps: float, max_frames: int,
                    source_fps: float | None) -> int:
        """Frames the server samples from a video file of ``duration`` seconds: at ``fps``
        (or the target's own rate), never faster than the video's own ``source_fps``, as the
        processor samples at ``min(sample_fps, video_fps)``."""
        if self.video_sample_fps is not None:
            return frames_for_video(duration, self.video_sample_fps, 10**9,
                                    source_fps=source_fps)
        return frames_for_video(duration, fps, max_frames, source_fps=source_fps)


@dataclass(frozen=True)
class Estimator:
    """A target's token rule bound to one model's processor: what every estimate asks."""

    rule: TokenRule
    cfg: KimiVisionConfig
    model: str

    def image(self, width: int, height: int) -> int:
        return self.rule.image(width, height, self.cfg)

    def video(self, n_frames: int, width: int, height: int) -> int:
        return self.rule.video(n_frames, width, height, self.cfg)

    def frame_list(self, sizes: list[tuple[int, int]]) -> int:
        """Tokens of a list of frames of mixed sizes (each chunk sized by its first)."""
        return self.rule.frame_list(sizes, self.cfg)

    def chunk(self, width: int, height: int) -> int:
        """Tokens of one full chunk of frames (its prompt included)."""
        return self.video(self.cfg.temporal_merge_kernel_size, width, height)

    def file_frames(self, duration: float, fps: float, max_frames: int,
                    source_fps: float | None = None) -> int:
        return self.rule.file_frames(duration, fps, max_frames, source_fps)

    def fit_video(self, n_frames: int, width: int, height: int, max_tokens: int,
                  min_frames: int = 1) -> tuple[int, int, int] | None:
        """:func:`mediaprep.tokens.fit_video` under this rule (chunk prompts counted)."""
        return fit_video(n_frames, width, height, max_tokens, min_frames=min_frames,
                         cfg=self.cfg, chunk_prompt=self.rule.chunk_prompt)

    def to_json(self, estimate: int) -> dict[str, Any]:
        """The ``tokens`` object of a report or a prepared input (the one place it is made)."""
        counted = ("vision", "media_prompt") if self.rule.image_prompt or \
            self.rule.chunk_prompt else ("vision",)
        return TokenEstimate(estimate, self.model, counted).to_json()


@dataclass(frozen=True, eq=False)
class Target:
    """One place media is sent to. Compares equal to its name (``settings.target ==
    "moonshot"``) and prints as it, so code and JSON that name targets keep working."""

    name: str
    title: str
    sources: Mapping[str, Source]
    table: Mapping[str, Limit]
    #: vision model name -> its processor config (the models whose tokens are estimated)
    models: Mapping[str, KimiVisionConfig]
    default_model: str
    tokens: TokenRule = field(default_factory=TokenRule)
    #: dialects in which the ``path`` transport (``file://`` URIs) works
    path_dialects: frozenset[str] = frozenset()
    #: whether a video may go as a list of frames (an image-list part); else files only
    frame_lists: bool = True
    #: the option that lets the server read file:// URIs from a folder (None: none needed)
    local_media_option: str | None = None
    #: whether the model's processor drops an image's alpha channel (the Kimi K2.5 processor
    #: opens every image with convert("RGB")): transparency is then flattened onto
    #: --background, never left to show the colour stored under it
    drops_alpha: bool = True
    #: the provider's own storage (``--transport upload``); None: it has none
    uploads: Uploads | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        known = {**SHARED_SOURCES, **self.sources}
        for row in self.table.values():
            assert row.source in known, (self.name, row.key, row.source)
        _MADE[self.name] = self

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Target({self.name!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Target):
            return other.name == self.name
        if isinstance(other, str):
            return other == self.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __reduce__(self) -> tuple[Any, ...]:
        # a task pickles its settings once per input: send the name, not the tables
        return (_made, (self.name,))

    def source(self, key: str) -> Source:
        return self.sources.get(key) or SHARED_SOURCES[key]

    @property
    def dialects(self) -> frozenset[str]:
        return frozenset(self.table["dialects"].value)

    @property
    def transports(self) -> frozenset[str]:
        return frozenset(self.table["transports"].value)

    def processor(self, model: str) -> KimiVisionConfig | None:
        """The processor config of ``model`` (None: no token estimate for it)."""
        return self.models.get(model)

    def estimator(self, model: str) -> Estimator | None:
        """Token estimates for ``model`` on this target (None: the model has no estimate)."""
        cfg = self.models.get(model)
        return None if cfg is None else Estimator(self.tokens, cfg, model)

    def settings_problem(self, dialect: str, transport: str, video_mode: str,
                         animation: str, local_media_path: str | None) -> str | None:
        """Why these options cannot work with this target (None: they can)."""
        return (self._channel_problem(dialect, transport)
                or self._path_problem(dialect, transport, local_media_path)
                or self._video_problem(video_mode, animation))

    def _channel_problem(self, dialect: str, transport: str) -> str | None:
        """A dialect or transport the target does not take."""
        if dialect not in self.dialects:
            return (f"target {self.name} does not speak the {dialect} dialect (it speaks "
                    f"{', '.join(sorted(self.dialects))})")
        if transport not in self.transports:
            return (f"target {self.name} does not take the {transport} transport (it takes "
                    f"{', '.join(sorted(self.transports))})")
        if transport == "upload" and self.uploads is None:
            return f"target {self.name} has no storage of its own to upload to"
        return None

    def _path_problem(self, dialect: str, transport: str,
                      local_media_path: str | None) -> str | None:
        """file:// URIs in a dialect that cannot carry them, or with no folder to read."""
        if transport != "path":
            return None
        if dialect not in self.path_dialects:
            need = " or ".join(sorted(self.path_dialects))
            return (f"the path transport (file:// URIs) works with target {self.name} in the "
                    f"{need} dialect only: add --dialect {need}")
        if self.local_media_option and not local_media_path:
            return (f"the path transport needs the folder the {self.title} may read "
                    f"(its {self.local_media_option}): add --allowed-local-media-path DIR")
        return None

    def _video_problem(self, video_mode: str, animation: str) -> str | None:
        if not self.frame_lists and (video_mode == "frames" or animation == "frames"):
            return (f"target {self.name} takes videos as files only (its API has no "
                    "image-list video part): drop --video-mode frames / --animation frames")
        return None


#: every Target made, by name: what an unpickled name turns back into
_MADE: dict[str, Target] = {}


def _made(name: str) -> Target:
    return _MADE[name]


SHARED_SOURCES: Mapping[str, Source] = MappingProxyType({
    # The sampling parameters (fps, max_frames) are documented by Model Studio; every target
    # keeps the same range, so a part means the same wherever it goes.
    "dashscope-vision": Source(
        "Alibaba Cloud Model Studio: image and video understanding (Kimi vision models), "
        "input limits",
        "https://www.alibabacloud.com/help/en/model-studio/vision",
        "2026-11",
    ),
    # The Kimi models and their context windows: the same models on every target.
    "dashscope-models": Source(
        "Alibaba Cloud Model Studio: Kimi model list (kimi-k2.7-code, kimi-k2.6, kimi-k2.5 "
        "vision; kimi-k2-thinking, Moonshot-Kimi-K2-Instruct text only)",
        "https://www.alibabacloud.com/help/en/model-studio/kimi-api",
        "2026-11",
    ),
    "moonshot-models": Source(
        "Moonshot open platform: model list and pricing (kimi-k2.5 and the other K2 models: "
        "256K context window, 262,144 tokens)",
        "https://platform.moonshot.ai/docs/pricing/chat",
        "2026-11",
    ),
    "mediaprep": Source(
        "mediaprep safety default (no provider limit documented)",
        "https://github.com/mediaprep/mediaprep#limits",
        "2026-11",
    ),
})


def shared_rows(*, vision: frozenset[str], text_only: frozenset[str],
                context: Mapping[str, int], models_source: str,
                context_source: str) -> tuple[Limit, ...]:
    """The rows every target has: sampling parameters, mediaprep's decode guards, token caps,
    and the target's models and their context (whose values and sources differ per target)."""
    return (
        Limit("param.fps.min", 0.1, "param.fps", "error", "dashscope-vision", "lowest fps"),
        Limit("param.fps.max", 10.0, "param.fps", "error", "dashscope-vision", "highest fps"),
        Limit("param.max_frames.max", 2000, "param.max_frames", "error", "dashscope-vision",
              "max_frames ceiling"),
        Limit("image.max_frames", 1, "image.animated", "warning", "mediaprep",
              "frames of an animated GIF/APNG/WebP that are sent (the first); --animation "
              "frames sends all as a video image list, fps from their durations within the "
              "fps range"),
        Limit("image.max_decode_pixels", 1 << 30, "image.decompression_bomb", "error",
              "mediaprep", "pixels an image may declare before mediaprep refuses to decode it "
              "(32768 x 32768, libheif's own ceiling; a 200 MP phone photo is 0.2 G)"),
        Limit("image.max_decode_bytes", 448 << 20, "image.decompression_bomb", "error",
              "mediaprep", "bytes decoding and preparing an image would take at its peak: the "
              "decoded pixels, the decoder's own buffer (a TIFF strip at its true bit depth, "
              "libwebp's frame, FFmpeg's for a still WebP above 33.5 MP) and prep's "
              "full-size working copy, at the scale the decoder really uses (a JPEG is "
              "decoded at 1/2-1/8 when that covers the box; an animation's whole canvas, "
              "RGBA); keeps a prep under 1 GB"),
        Limit("image.max_pixels_per_byte", 1000, "image.decompression_bomb", "error",
              "mediaprep", "pixels a large image (decoded above 256 MiB) may claim per input "
              "byte: a photo claims tens, a bomb thousands"),
        Limit("image.max_jpeg_scans", 100, "image.decompression_bomb", "error", "mediaprep",
              "scans (SOS markers) in a JPEG: encoders write 1-3 (baseline) or ~10 "
              "(progressive), a few dozen at most; each scan costs a pass over every block "
              "(djpeg -maxscans)"),
        Limit("image.max_animation_pixels", 1 << 32, "image.decompression_bomb", "error",
              "mediaprep", "frames x canvas pixels an animation sent as frames may composite "
              "(every frame is composited onto the whole canvas, sampled or not: 1-2 G a "
              "second)"),
        Limit("image.max_decode_seconds", 60.0, "file.unreadable", "error", "mediaprep",
              "seconds one image decode may take, checked between the decoder's input reads"),
        Limit("video.max_streams", 64, "file.unreadable", "error", "mediaprep",
              "streams of any kind a video container may hold (FFmpeg decodes a frame of "
              "every stream to open it; a Blu-ray remux holds ~40)"),
        Limit("video.max_frame_pixels", 8192 * 4352, "file.unreadable", "error", "mediaprep",
              "pixels of one video frame, judged from the headers before a frame is decoded: "
              "the largest any level of H.264, HEVC, VP9 or AV1 allows (8192 x 4352, level "
              "6.2)"),
        Limit("tokens.max_image", None, "tokens.image_too_many", "error", "mediaprep",
              "estimated tokens per image (off unless --max-image-tokens)"),
        Limit("tokens.max_request", None, "tokens.request_too_many", "error", "mediaprep",
              "estimated tokens per request (off unless --max-tokens)"),
        Limit("tokens.context", MappingProxyType(dict(context)), "tokens.context", "error",
              context_source,
              "the model's context in tokens, per model (Model Studio: all images and text "
              "must fit the model's maximum input); checked against the vision-token "
              "estimate: an error for what the client decides (images, frames, a request), a "
              "warning for a video file the server samples. Override with one number for "
              "every model, model=N,... for some, or off"),
        Limit("models.vision", vision, "model.no_vision", "error", models_source,
              "models that take images and video"),
        Limit("models.text_only", text_only, "model.no_vision", "error", models_source,
              "models that take text only"),
    )
