"""Vision-token estimates for the Kimi K2.5 family (kimi-k2.5, kimi-k2.6, kimi-k2.7-code).

The numbers here reproduce the open-source Kimi K2.5 media processor ("NaViT resize"): the
image is scaled down (never up) so that its 14-px patch grid stays within a patch budget and
within 512 patches per side, then padded on the right/bottom to a multiple of
``merge_kernel_size * patch_size`` = 28 px; every 2x2 block of patches becomes one LLM token.
Video frames are sampled, grouped into chunks of ``temporal_merge_kernel_size`` = 4 frames, and
each chunk is pooled over time into as many tokens as one of its frames (with the smaller
per-frame patch budget of 4096).

Sources (read 2025/2026 snapshots; the arithmetic is identical in all of them):

* vllm-project/vllm
  ``vllm/foundation/integrations/transformers_utils/processors/kimi_k25_vision_fused.py``
  at commit aedcda890b813c2a68618ce6b7547d2e5881dbde (the old path
  ``vllm/transformers_utils/processors/kimi_k25_vision_fused.py`` is a shim to it):
  ``navit_resize_image`` / ``navit_resize_video`` and ``KimiK25FusedVisionProcessor``.
* sgl-project/sglang ``python/sglang/srt/multimodal/processors/kimi_k25.py`` at commit
  0c9020e20df943d4c531042f44ad3c275b023097: ``navit_resize_config`` (same arithmetic, used for
  the token expansion of ``<|media_pad|>``).
* The Hugging Face remote code of moonshotai/Kimi-K2.5 (``KimiK25VisionProcessor`` and
  ``media_utils.py``, seen through mirrored copies): ``navit_resize_image`` additionally asserts
  ``token_side * merge_kernel_size <= patch_limit_on_one_side``; ``split_video_chunks`` samples
  ``max(round(num_frames * min(sample_fps, video_fps) / video_fps), 1)`` frames and cuts them
  into chunks of ``temporal_merge_kernel_size``, each preceded by a timestamp prompt
  ``"HH:MM:SS.fff<|media_begin|>video<|media_content|><|media_pad|><|media_end|>"``.
* ``media_proc_cfg`` of moonshotai/Kimi-K2.5 ``preprocessor_config.json`` (values as repeated in
  the defaults of several serving stacks): patch_size 14, merge_kernel_size 2,
  in_patch_limit 16384, patch_limit_on_one_side 512, in_patch_limit_each_frame 4096,
  in_patch_limit_video null, sample_fps 2.0, max_num_frames_each_video null,
  temporal_merge_kernel_size 4, fixed_output_tokens null. Third-party notes state that K2.6 ships
  a byte-identical preprocessor config; for kimi-k2.7-code no separate processor is documented,
  so it is assumed to be the same.

What is counted (``"counts"`` in a ``tokens`` object): the vision tokens the processor makes
(``"vision"``) and the media prompt the chat template puts around each item
(``"media_prompt"``: :data:`MEDIA_PROMPT_IMAGE` text tokens around an image's pads,
:data:`MEDIA_PROMPT_CHUNK` before each 4-frame video chunk). Every target counts both: the
hosted APIs serve the same models with the same chat template. What is *not* counted: the
message's own text, the system prompt and the template's role tokens, and anything a hosted
API does before the model sees the pixels that it does not document.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "KIMI_K25",
    "MEDIA_PROMPT_CHUNK",
    "MEDIA_PROMPT_IMAGE",
    "MAX_DIMENSION",
    "VISION_MODELS_WITH_ESTIMATE",
    "KimiVisionConfig",
    "TokenEstimate",
    "estimate_image",
    "estimate_video",
    "fit_video",
    "frames_for_video",
    "image_tokens",
    "model_resize",
    "video_chunk_tokens",
    "video_tokens",
]


# --------------------------------------------------------------------------------------------
# Constants (one place). See the module docstring for where each number comes from.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KimiVisionConfig:
    """The ``media_proc_cfg`` numbers of a Kimi vision processor.

    Attributes mirror the keys of ``preprocessor_config.json`` -> ``media_proc_cfg``.
    ``in_patch_limit_video`` is a total patch budget shared by all sampled frames of one video
    (``None`` in the released K2.5 config: no total budget).
    """

    patch_size: int = 14
    merge_kernel_size: int = 2
    in_patch_limit: int = 16384
    patch_limit_on_one_side: int = 512
    in_patch_limit_each_frame: int = 4096
    in_patch_limit_video: int | None = None
    sample_fps: float = 2.0
    temporal_merge_kernel_size: int = 4
    source: str = (
        "moonshotai/Kimi-K2.5 preprocessor_config.json media_proc_cfg; arithmetic of "
        "navit_resize_image/navit_resize_video as in vllm-project/vllm "
        "vllm/foundation/integrations/transformers_utils/processors/kimi_k25_vision_fused.py "
        "@aedcda890b813c2a68618ce6b7547d2e5881dbde and sgl-project/sglang "
        "python/sglang/srt/multimodal/processors/kimi_k25.py "
        "@0c9020e20df943d4c531042f44ad3c275b023097"
    )

    @property
    def factor(self) -> int:
        """Pixels per token side: ``merge_kernel_size * patch_size`` (28)."""
        return self.merge_kernel_size * self.patch_size

    @property
    def max_side_px(self) -> int:
        """Largest side the model keeps: ``patch_limit_on_one_side * patch_size`` (7168)."""
        return self.patch_limit_on_one_side * self.patch_size


#: The processor shared by kimi-k2.5, kimi-k2.6 and (as far as documented) kimi-k2.7-code.
KIMI_K25 = KimiVisionConfig()

#: Text tokens the chat template puts around each image's ``<|media_pad|>`` tokens:
#: ``<|media_begin|>image<|media_content|>`` before them and ``<|media_end|>`` after.
MEDIA_PROMPT_IMAGE = 4
#: Text tokens before each 4-frame video chunk: its ``HH:MM:SS.fff`` timestamp (7: the K2
#: tokenizer splits digits in groups of up to three, each group and separator one token) and
#: the same wrapper as an image's, with ``video`` (4).
MEDIA_PROMPT_CHUNK = 7 + 4

#: Model name -> processor config. All three use the K2.5 MoonViT processor: K2.6's
#: preprocessor_config.json is reported byte-identical to K2.5's, and nothing documents a
#: different processor for kimi-k2.7-code.
VISION_MODELS_WITH_ESTIMATE: Mapping[str, KimiVisionConfig] = MappingProxyType(
    {
        "kimi-k2.5": KIMI_K25,
        "kimi-k2.6": KIMI_K25,
        "kimi-k2.7-code": KIMI_K25,
    }
)

#: Largest width/height accepted. The reference arithmetic is floating point; sides beyond
#: 2**63 (no container or decoder can describe such a frame) would make it meaningless.
MAX_DIMENSION = 2**63


# --------------------------------------------------------------------------------------------
# Arithmetic
# --------------------------------------------------------------------------------------------


def _dimension(value: int, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not bool")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if n < 1:
        raise ValueError(f"{name} must be at least 1 pixel, got {n}")
    if n > MAX_DIMENSION:
        raise ValueError(f"{name} is implausibly large ({n} > 2**63)")
    return n


def _resize(width: int, height: int, patch_limit: int, cfg: KimiVisionConfig) -> tuple[int, int]:
    """``navit_resize_image`` without the padding step (inputs already validated)."""
    p = cfg.patch_size
    s1 = math.sqrt(patch_limit / (max(1, width // p) * max(1, height // p)))
    s2 = cfg.max_side_px / width
    s3 = cfg.max_side_px / height
    scale = min(1.0, s1, s2, s3)
    new_w = min(max(1, int(width * scale)), cfg.max_side_px)
    new_h = min(max(1, int(height * scale)), cfg.max_side_px)
    return new_w, new_h


def _tokens_for(width: int, height: int, patch_limit: int, cfg: KimiVisionConfig) -> int:
    new_w, new_h = _resize(width, height, patch_limit, cfg)
    f = cfg.factor
    # The processor pads right/bottom with zeros up to a multiple of 28 px: ceil division.
    return -(-new_w // f) * -(-new_h // f)


def model_resize(
    width: int,
    height: int,
    *,
    patch_limit: int | None = None,
    cfg: KimiVisionConfig = KIMI_K25,
) -> tuple[int, int]:
    """Return the ``(width, height)`` the model's processor resizes an image to.

    This is the size before the zero padding to a multiple of 28 px. It never upscales, keeps
    each side at most ``cfg.max_side_px`` (7168) and keeps the 14-px patch grid near
    ``patch_limit`` patches.

    Args:
        width: Image width in pixels (>= 1).
        height: Image height in pixels (>= 1).
        patch_limit: Patch budget; ``None`` means ``cfg.in_patch_limit`` (16384 for images).
            Pass ``cfg.in_patch_limit_each_frame`` (4096) for video frames.
        cfg: Processor constants.

    Raises:
        ValueError: a side is < 1 (or absurdly large), or ``patch_limit`` < 1.
        TypeError: a side is not an integer.
    """
    w = _dimension(width, "width")
    h = _dimension(height, "height")
    limit = cfg.in_patch_limit if patch_limit is None else patch_limit
    if limit < 1:
        raise ValueError(f"patch_limit must be at least 1, got {limit}")
    return _resize(w, h, limit, cfg)


def image_tokens(width: int, height: int, *, cfg: KimiVisionConfig = KIMI_K25) -> int:
    """Vision tokens for one image of ``width`` x ``height`` pixels.

    ``ceil(W'/28) * ceil(H'/28)`` where ``W' x H'`` is :func:`model_resize`. Note that the
    result can slightly exceed ``in_patch_limit / 4`` (= 4096): the patch budget is computed
    from floored patch counts and the padding rounds up (3840x2160 gives 4214).
    """
    w = _dimension(width, "width")
    h = _dimension(height, "height")
    return _tokens_for(w, h, cfg.in_patch_limit, cfg)


def video_chunk_tokens(width: int, height: int, *, cfg: KimiVisionConfig = KIMI_K25) -> int:
    """Vision tokens for one chunk of 1 to ``temporal_merge_kernel_size`` frames.

    A chunk is pooled over time, so it costs what one frame costs under the per-frame budget
    ``in_patch_limit_each_frame`` (4096 patches).
    """
    w = _dimension(width, "width")
    h = _dimension(height, "height")
    return _tokens_for(w, h, cfg.in_patch_limit_each_frame, cfg)


def video_tokens(
    n_frames: int, width: int, height: int, *, cfg: KimiVisionConfig = KIMI_K25
) -> int:
    """Vision tokens for ``n_frames`` sampled frames of ``width`` x ``height`` pixels.

    Frames are cut into ``ceil(n_frames / 4)`` chunks; each chunk costs
    :func:`video_chunk_tokens`. If ``cfg.in_patch_limit_video`` is set, the per-frame budget is
    ``min(round(in_patch_limit_video / n_frames), in_patch_limit_each_frame)`` as in the
    reference ``navit_resize_video`` (it is ``None`` for K2.5). The frames are taken as given:
    use :func:`frames_for_video` to count the frames sampled from a video file.

    Raises:
        ValueError: ``n_frames`` < 1, or a side < 1.
    """
    if isinstance(n_frames, bool):
        raise TypeError("n_frames must be an integer, not bool")
    n = operator.index(n_frames)
    if n < 1:
        raise ValueError(f"n_frames must be at least 1, got {n}")
    w = _dimension(width, "width")
    h = _dimension(height, "height")
    limit = cfg.in_patch_limit_each_frame
    if cfg.in_patch_limit_video is not None:
        limit = max(1, min(round(cfg.in_patch_limit_video / n), limit))
    chunks = -(-n // cfg.temporal_merge_kernel_size)
    return chunks * _tokens_for(w, h, limit, cfg)


def frames_for_video(
    duration_s: float,
    fps: float,
    max_frames: int,
    *,
    source_fps: float | None = None,
) -> int:
    """Number of frames sampled from a video file of ``duration_s`` seconds at ``fps``.

    Choice: ``min(max_frames, max(1, round(duration_s * fps)))``, following the reference
    ``split_video_chunks`` (``max(round(num_frames * sample_fps / video_fps), 1)``, i.e.
    ``round(duration * sample_fps)``, with Python's round-half-to-even). When ``source_fps`` is
    given, the sampling rate is capped at it, as the reference does with
    ``min(sample_fps, video_fps)``. How DashScope/Moonshot sample server-side is not
    documented precisely; this is an estimate.

    Raises:
        ValueError: ``duration_s`` <= 0, ``fps`` <= 0, ``source_fps`` <= 0 or ``max_frames`` < 1,
            or a value is not finite.
    """
    for name, value in (("duration_s", duration_s), ("fps", fps)):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if isinstance(max_frames, bool):
        raise TypeError("max_frames must be an integer, not bool")
    cap = operator.index(max_frames)
    if cap < 1:
        raise ValueError(f"max_frames must be at least 1, got {cap}")
    rate = fps
    if source_fps is not None:
        if not math.isfinite(source_fps) or source_fps <= 0:
            raise ValueError(f"source_fps must be a positive finite number, got {source_fps!r}")
        rate = min(rate, source_fps)
    return min(cap, max(1, round(duration_s * rate)))


# --------------------------------------------------------------------------------------------
# Report shape (docs/formats.md: "tokens": {"estimate": 1369, "model": "kimi-k2.5"})
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenEstimate:
    """A vision-token estimate for one file, as reported beside ``"info"``."""

    estimate: int
    model: str
    #: what the estimate counts: ``"vision"`` tokens and, where a target counts it, the
    #: ``"media_prompt"`` around each item
    counts: tuple[str, ...] = ("vision", "media_prompt")

    def to_json(self) -> dict[str, Any]:
        """``{"estimate": N, "model": "kimi-k2.5", "counts": ["vision", "media_prompt"]}``."""
        return {"estimate": self.estimate, "model": self.model, "counts": list(self.counts)}


def _config_for(model: str) -> KimiVisionConfig:
    try:
        return VISION_MODELS_WITH_ESTIMATE[model]
    except KeyError:
        known = ", ".join(sorted(VISION_MODELS_WITH_ESTIMATE))
        raise ValueError(f"no token estimate for model {model!r} (known: {known})") from None


def estimate_image(width: int, height: int, model: str = "kimi-k2.5") -> TokenEstimate:
    """:func:`image_tokens` for ``model``, wrapped as a :class:`TokenEstimate`."""
    return TokenEstimate(image_tokens(width, height, cfg=_config_for(model)), model, ("vision",))


def estimate_video(
    n_frames: int, width: int, height: int, model: str = "kimi-k2.5"
) -> TokenEstimate:
    """:func:`video_tokens` for ``model``, wrapped as a :class:`TokenEstimate`."""
    return TokenEstimate(video_tokens(n_frames, width, height, cfg=_config_for(model)), model,
                         ("vision",))


# --------------------------------------------------------------------------------------------
# Fitting a video into a token budget (mediaprep's choice, not the processor's)
# --------------------------------------------------------------------------------------------

#: Frames are not made smaller than this on their long side to meet a token budget (16 token
#: columns); below it the count is lowered instead. Choice: a 448-px frame still shows faces
#: and large text, while dropping frames loses events; so size goes first, down to this floor.
MIN_FIT_SIDE = 448


def fit_video(
    n_frames: int,
    width: int,
    height: int,
    max_tokens: int,
    *,
    min_side: int = MIN_FIT_SIDE,
    min_frames: int = 1,
    cfg: KimiVisionConfig = KIMI_K25,
    chunk_prompt: int = 0,
) -> tuple[int, int, int] | None:
    """``(frames, width, height)`` whose :func:`video_tokens` is within ``max_tokens``.

    Keeps every frame and scales the frames down (aspect kept) as far as ``min_side`` on the
    long side; past that, keeps that size and takes fewer frames (whole chunks of 4). None when
    even ``min_frames`` frames at that size are over the budget. Returns the input unchanged
    when it already fits. ``chunk_prompt``: text tokens a target counts around each chunk.
    """
    n = operator.index(n_frames)
    w, h = _dimension(width, "width"), _dimension(height, "height")
    chunks = -(-n // cfg.temporal_merge_kernel_size)
    if video_tokens(n, w, h, cfg=cfg) + chunks * chunk_prompt <= max_tokens:
        return (n, w, h)
    per_chunk = max_tokens // chunks - chunk_prompt
    long_ = max(w, h)
    floor_scale = min(1.0, min_side / long_)

    def size(scale: float) -> tuple[int, int]:
        return max(1, math.floor(w * scale)), max(1, math.floor(h * scale))

    if per_chunk >= 1 and video_chunk_tokens(*size(floor_scale), cfg=cfg) <= per_chunk:
        lo, hi = floor_scale, 1.0
        for _ in range(30):  # largest scale whose chunk cost fits
            mid = (lo + hi) / 2
            if video_chunk_tokens(*size(mid), cfg=cfg) <= per_chunk:
                lo = mid
            else:
                hi = mid
        return (n, *size(lo))
    fw, fh = size(floor_scale)
    chunk = video_chunk_tokens(fw, fh, cfg=cfg) + chunk_prompt
    keep = (max_tokens // chunk) * cfg.temporal_merge_kernel_size
    keep = min(keep, n)
    if keep < max(1, min_frames):
        return None
    return (keep, fw, fh)
