"""Settings: every option of check and prepare in one object, validated once.

The CLI, the config files and the library keyword arguments all end up here, so a default has
one home. Limit values themselves live in :mod:`mediaprep.limits`; the options below either pick
the table (target), say how media travels (dialect, transport), or override limit rows.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from .errors import MediaprepError
from .limits import (
    DEFAULT_DIALECT,
    DEFAULT_FPS,
    DEFAULT_MAX_FRAMES,
    DEFAULT_TARGET,
    DEFAULT_TRANSPORT,
    DIALECTS,
    TRANSPORTS,
    Limits,
    limits_for,
    row_elsewhere,
)
from .targets import Target, get_target
from .targets.base import Estimator

VideoMode = Literal["auto", "file", "frames"]
VIDEO_MODES = ("auto", "file", "frames")
SMALL_IMAGE_FIXES = ("pad", "upscale")
ANIMATION_MODES = ("first", "frames")  # an animated image: its first frame, or all as a video
HDR_MODES = ("convert", "keep")  # an HDR still or video: tone-mapped to SDR, or sent as it is
#: What transparent pixels are flattened onto where the target's processor drops alpha. White:
#: what a sticker or logo is seen on in a viewer or a chat (the processor itself would show the
#: colour stored under the transparency, black for most stickers).
DEFAULT_BACKGROUND = "white"

API_BASE_ENV = "MEDIAPREP_API_BASE"  # the endpoint when neither option nor config names one
DEFAULT_SAFETY_MARGIN = 0.02  # keep encoded outputs 2% under a byte limit
DEFAULT_FRAME_MAX_SIDE = 1280  # frames longer than this on a side are scaled down


class SettingsError(MediaprepError, ValueError):
    """Options that cannot work together (the CLI exits 2 on these)."""


@dataclass(frozen=True)
class Settings:
    """Every option of probe, check and prepare, validated when made (``SettingsError``).

    Make one with keywords (``Settings(target="moonshot", fps=1)``), with
    :func:`make_settings` on top of another, or let the functions take the keywords
    themselves (``mediaprep.check(path, target="moonshot")``). The command line and the
    config file fill the same fields; each field's CLI option is named after it.

    Attributes:
        target: where the media goes: ``"dashscope"``, ``"moonshot"`` or ``"vllm"`` (your own
            vLLM or SGLang server); its limits apply.
        dialect: API dialect of the content parts: ``"openai"`` or ``"dashscope"``.
        transport: how media travels: ``"base64"`` (data URLs), ``"url"`` (hosted under
            ``url_prefix``), ``"path"`` (file:// URIs: the DashScope SDK's dialect, or a
            vllm server's ``allowed_local_media_path``) or ``"upload"`` (put in the
            provider's own storage: ``oss://`` / ``ms://`` references; :mod:`mediaprep.upload`).
        model: model the request is for (its limits, context and token estimate; None: the
            target's default model).
        fps: video frames per second sampled (0.1 to 10).
        max_frames: cap on frames per video (1 to 2000).
        max_frames_set: whether ``max_frames`` was given (the native dialect then sends it);
            set by itself when ``max_frames`` differs from the default.
        limit_overrides: rows of the limits table overridden, ``{"image.min_side": 16}``
            (``--limit KEY=VALUE``; see ``mediaprep limits``).
        url_prefix: where prep's outputs will be hosted (``transport="url"``).
        video_mode: send videos as ``"file"``, as ``"frames"``, or decide per video
            (``"auto"``).
        max_side: prep scales images down to this long side (None: only as limits need).
        max_pixels: prep scales images down to this area (None: only as limits need).
        frame_max_side: frames taken from a video are scaled down to this long side.
        small_image_fix: how an image of 10 px or less on a side is fixed: ``"pad"`` or
            ``"upscale"``.
        animation: an animated GIF/APNG/WebP is sent as its ``"first"`` frame, or as
            ``"frames"`` (a video image list).
        pad_aspect: pad images beyond the aspect-ratio limit instead of failing them.
        hdr: HDR (PQ/HLG) stills and videos are tone-mapped to SDR (``"convert"``) or sent as
            they are (``"keep"``); pixels mediaprep decodes are tone-mapped either way.
        background: the colour transparent pixels are flattened onto where the target's
            processor drops alpha: a name or ``#rrggbb`` (default ``"white"``).
        resize_model: resize images to exactly the size the model keeps (``--resize model``).
        tiles: send a tall or wide image the model would shrink as overlapping tiles in
            reading order, each kept whole by the model (``--tiles``; ``Prepared.parts``).
        safety_margin: fraction kept free under a byte limit when encoding (0 to 0.5).
        max_tokens: limit on the estimated tokens of a request (None: off).
        max_image_tokens: limit on the estimated tokens of one image (None: off).
        deep: decode pixels too (check and prep), so damage inside a stream is found.
        allow_url: fetch http(s) inputs (otherwise they are not fetched).
        allow_private_urls: with ``allow_url``, also fetch from private, link-local and
            loopback addresses.
        allow_loopback_urls: with ``allow_url``, also fetch from loopback addresses (local
            servers).
        allowed_local_media_path: vllm: the folder the server reads file:// parts from (its
            ``--allowed-local-media-path``); the path transport writes there.
        api_base: the provider endpoint the upload transport talks to (``--api-base``); for
            that transport None becomes ``$MEDIAPREP_API_BASE``, else the target's default.
    """

    #: where the media goes: a name (``dashscope``, ``moonshot``, ``vllm``), made the
    #: :class:`~mediaprep.targets.base.Target` object once (it prints and compares as its name)
    target: Target | str = DEFAULT_TARGET
    dialect: str = DEFAULT_DIALECT
    transport: str = DEFAULT_TRANSPORT
    model: str | None = None  # None: the target's default model
    fps: float = DEFAULT_FPS
    max_frames: int = DEFAULT_MAX_FRAMES
    max_frames_set: bool = False  # emitted as max_frames in the native dialect only when set
    limit_overrides: Mapping[str, Any] = field(default_factory=dict)
    url_prefix: str | None = None
    video_mode: VideoMode = "auto"
    max_side: int | None = None
    max_pixels: int | None = None
    frame_max_side: int = DEFAULT_FRAME_MAX_SIDE
    small_image_fix: str = "pad"
    animation: str = "first"  # an animated GIF/APNG/WebP: "first" frame, or "frames" (a video)
    pad_aspect: bool = False
    hdr: str = "convert"
    background: str = DEFAULT_BACKGROUND
    resize_model: bool = False
    #: a tall or wide image goes as overlapping tiles in reading order, each seen by the model
    #: without shrinking (Prepared.parts)
    tiles: bool = False
    safety_margin: float = DEFAULT_SAFETY_MARGIN
    max_tokens: int | None = None
    max_image_tokens: int | None = None
    deep: bool = False
    allow_url: bool = False
    # URL inputs (with allow_url): addresses refused unless allowed (mediaprep.net.fetch)
    allow_private_urls: bool = False  # private, link-local, loopback ...: everything
    allow_loopback_urls: bool = False  # loopback only (local servers, tests)
    # the folder a self-hosted server reads file:// parts from (vLLM's
    # --allowed-local-media-path): the path transport's outputs must lie under it
    allowed_local_media_path: str | None = None
    # the provider's API endpoint the upload transport talks to (None: $MEDIAPREP_API_BASE,
    # else the target's default; filled in for the upload transport, so keys name it)
    api_base: str | None = None

    def __post_init__(self) -> None:
        try:
            target = get_target(self.target)
        except KeyError as exc:
            raise SettingsError(exc.args[0]) from None
        object.__setattr__(self, "target", target)
        if self.model is None:
            object.__setattr__(self, "model", target.default_model)
        # fps is a JSON float on the wire whatever the caller typed (5 -> 5.0)
        try:
            fps = float(self.fps)
        except (TypeError, ValueError):
            raise SettingsError(f"fps must be a number, got {self.fps!r}") from None
        object.__setattr__(self, "fps", fps)
        if self.max_frames != DEFAULT_MAX_FRAMES and not self.max_frames_set:
            object.__setattr__(self, "max_frames_set", True)
        if self.transport == "upload" and target.uploads is not None:
            base = self.api_base or os.environ.get(API_BASE_ENV) or target.uploads.api_base
            object.__setattr__(self, "api_base", base.rstrip("/"))
        self.validate()

    def validate(self) -> None:
        for name, what, choices in _CHOICES:
            value = getattr(self, name)
            if value not in choices:
                raise SettingsError(f"unknown {what} {value!r} (choose {', '.join(choices)})")
        try:
            self.background_rgb  # noqa: B018
        except ValueError as exc:
            raise SettingsError(f"--background: {exc}") from None
        self._validate_numbers()
        self._validate_limit_rows()
        self.limits  # noqa: B018  (raises LimitError, a ValueError, on bad overrides)
        if self.api_base is not None and not self.api_base.startswith(("https://", "http://")):
            raise SettingsError(f"--api-base must be an http(s) URL, got {self.api_base!r}")
        problem = self.target.settings_problem(self.dialect, self.transport, self.video_mode,
                                               self.animation, self.allowed_local_media_path)
        if problem:
            raise SettingsError(problem)

    def _validate_numbers(self) -> None:
        if not math.isfinite(self.fps):
            raise SettingsError(f"fps must be a number, got {self.fps!r}")
        for name in _WHOLE_NUMBERS:
            problem = _whole_number_problem(name, getattr(self, name))
            if problem:
                raise SettingsError(problem)
        if not 0 <= self.safety_margin < 0.5:
            raise SettingsError("the safety margin must be between 0 and 0.5")

    def _validate_limit_rows(self) -> None:
        """An override of a row only other targets have would do nothing: refused, named."""
        for key in self.limit_overrides:
            elsewhere = row_elsewhere(self.target, key)
            if elsewhere:
                raise SettingsError(elsewhere)

    def __getstate__(self) -> dict[str, Any]:
        # Without the cached limits table: a prep task pickles its settings once per input,
        # and the table is 90% of their bytes; a worker rebuilds it in microseconds.
        state = self.__dict__.copy()
        state.pop("limits", None)
        return state

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        """:attr:`background` as (r, g, b)."""
        from .backends.colour import parse_colour

        return parse_colour(self.background)

    @cached_property
    def limits(self) -> Limits:
        overrides = dict(self.limit_overrides)
        if self.max_tokens is not None:
            overrides["tokens.max_request"] = self.max_tokens
        if self.max_image_tokens is not None:
            overrides["tokens.max_image"] = self.max_image_tokens
        return limits_for(self.target, overrides)

    @property
    def estimator(self) -> Estimator | None:
        """Token estimates for this model on this target (None: the model has none)."""
        return self.target.estimator(self.model)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **_follow_target(self, changes))

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["target"] = self.target.name
        out["limit_overrides"] = dict(self.limit_overrides)
        if out["allowed_local_media_path"] is None:
            del out["allowed_local_media_path"]  # absent unless set: cache keys stay as they were
        if out["api_base"] is None:
            del out["api_base"]  # likewise (set for the upload transport only)
        return out


#: The options taken from a list: (field, what a message calls it, its choices).
_CHOICES = (("dialect", "dialect", DIALECTS), ("transport", "transport", TRANSPORTS),
            ("video_mode", "video mode", VIDEO_MODES),
            ("small_image_fix", "small-image fix", SMALL_IMAGE_FIXES),
            ("animation", "animation mode", ANIMATION_MODES), ("hdr", "hdr mode", HDR_MODES))

#: The options that are whole numbers (None: off); all but max_frames at least 1.
_WHOLE_NUMBERS = ("max_frames", "max_side", "max_pixels", "frame_max_side", "max_tokens",
                  "max_image_tokens")


def _whole_number_problem(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{name.replace('_', '-')} must be a whole number, got {value!r}"
    if value < 1 and name != "max_frames":
        return f"{name.replace('_', '-')} must be at least 1"
    return None


def _follow_target(base: Settings, changes: dict[str, Any]) -> dict[str, Any]:
    """A new target without a model named brings its own default model (a vLLM server serves
    ``moonshotai/Kimi-K2.5``, not ``kimi-k2.5``), unless the model was chosen by hand."""
    if "target" in changes and "api_base" not in changes and isinstance(base.target, Target):
        # an endpoint filled in from the old target's default is not the new target's
        uploads = base.target.uploads
        if uploads is not None and base.api_base == uploads.api_base:
            changes = {**changes, "api_base": None}
    if "target" in changes and "model" not in changes and isinstance(base.target, Target) \
            and base.model == base.target.default_model:
        return {**changes, "model": None}
    return changes


def make_settings(settings: Settings | None = None, **kwargs: Any) -> Settings:
    """Settings from keyword arguments (the library's calls), on top of ``settings``."""
    base = settings or Settings()
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = set(kwargs) - known - {"limits"}
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
    changes = {k: v for k, v in kwargs.items() if v is not None and k in known}
    if kwargs.get("limits"):
        changes["limit_overrides"] = {**base.limit_overrides, **kwargs["limits"]}
    if "max_frames" in changes:
        changes.setdefault("max_frames_set", True)
    return base.replace(**changes) if changes else base
