"""Encode an image to fit a byte budget with as few encodes as possible.

The budget is compared against ``size_of(len(data))``: how the transport counts bytes (for a
base64 data URL, :func:`data_url_size`). The search:

1. encode at ``max_quality``; done if it fits (the common case);
2. otherwise predict the quality from a size model instead of bisecting: JPEG file size is close
   to a power law of libjpeg's quantiser scale S(q) (S = 5000/q below 50, 200-2q above), i.e.
   log(size) is ~linear in log(S); WEBP size is ~log-linear in q. One point plus a prior slope
   gives the first guess; two points give an interpolation (bracketing when possible);
3. if even ``min_quality`` is too big, shrink by sqrt(budget/size)*0.95 (size ~ pixel count) and
   encode at ``min_quality`` again, from the original pixels each time (one resampling);
4. :class:`BudgetError` when the image would have to go below ``min_side``.

PNG: default zlib level, then ``optimize`` when that is close, then (if
``allow_format_change``) JPEG, or WEBP when the image has real transparency, else downscale.
"""

from __future__ import annotations

import inspect
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ..errors import MediaprepError
from ..tuning import (  # noqa: F401  (PREFER_DOWNSCALE_BELOW, DOWNSCALE_QUALITY re-exported)
    DOWNSCALE_QUALITY,
    IMAGE_MAX_QUALITY,
    IMAGE_MIN_QUALITY,
    PNG_HALF_SAMPLE_CLEAR,
    PNG_SAMPLE_ROWS,
    PNG_SAMPLE_STRIPS,
    PNG_SKIP_OVER,
    PREFER_DOWNSCALE_BELOW,
    SAMPLE_CLOSE,
    SAMPLE_MIN_PIXELS,
    SAMPLE_ROWS,
    SAMPLE_STRIPS,
    SAMPLE_TRIES,
    SEARCH_ACCEPT,
    SEARCH_ACCEPT_AFTER_SHRINK,
    SEARCH_AIM,
    SEARCH_MAX_ROUNDS,
    SEARCH_MAX_TRIES_PER_SIZE,
    SEARCH_SHRINK_AIM,
)
from .pillow import ENCODABLE, normalise_mode, resize_to
from .sniff import MIME, data_url_size, data_url_sizer, identity_size, largest_fitting

#: Formats this encoder writes (their MIME types: :data:`~mediaprep.backends.sniff.MIME`).

#: Prior slope of log(size) against log(1/S(q)) (see :func:`_abscissa`), measured on photos and
#: synthetic photo-like images: JPEG 0.6-1.0, WEBP 0.9-1.4 over q 40-92.
_PRIOR_SLOPE = {"jpeg": 0.8, "webp": 1.2}
#: Bytes that do not scale with pixels (headers, tables): JPEG ~620 with the standard Huffman
#: tables (no optimize), WEBP/PNG ~60-80. Keeps the shrink model honest for tiny budgets.
_OVERHEAD = {"jpeg": 620, "webp": 60, "png": 80}
#: size - overhead ~ pixels**gamma: smaller images are denser (gamma < 1). Prior, then measured.
_PRIOR_GAMMA = 0.9


def estimate_lossy_bytes(fmt: str, pixels: int, q: int, ref_bpp: float, ref_q: float) -> float:
    """Bytes of a ``fmt`` encode of ``pixels`` pixels at quality ``q``, from a reference density
    ``ref_bpp`` (bytes per pixel) measured at quality ``ref_q``: the search's prior curve
    (log size linear in log 1/S(q) with the prior slope). Rough (x0.4-x1.7 on real photos)."""
    slope = _PRIOR_SLOPE.get(fmt, _PRIOR_SLOPE["jpeg"])
    return ref_bpp * pixels * math.exp(slope * (_abscissa(fmt, q) - _abscissa(fmt, ref_q)))


def quality_from_scale(s: float) -> float:
    """libjpeg's quality for quantiser scale ``s`` percent (inverse of S(q))."""
    return _quality_at("jpeg", -math.log(max(s, 1e-6)))


class BudgetError(MediaprepError, ValueError):
    """The image cannot be encoded within the budget even at ``min_side`` and ``min_quality``."""

    def __init__(self, message: str, *, max_bytes: int, smallest: int | None, steps: list[str]):
        super().__init__(message)
        self.max_bytes = max_bytes
        self.smallest = smallest
        self.steps = steps


@dataclass
class EncodedImage:
    """The encoded bytes plus what it took to get them."""

    data: bytes
    format: str  # "jpeg" | "png" | "webp"
    mime: str
    width: int
    height: int
    quality: int | None
    encodes: int
    steps: list[str] = field(default_factory=list)
    sample_encodes: int = 0  # encodes of strip samples used to predict sizes (not counted above)
    # the pixels encoded (a lossless encode decodes back to exactly these: the report's preview)
    image: Image.Image | None = field(default=None, repr=False, compare=False)


SizeOf = Callable[[int], int] | Callable[[int, str], int]


_identity = identity_size


def _sizer(size_of: SizeOf) -> Callable[[int, str], int]:
    """Accept ``size_of(n)`` or ``size_of(n, mime)`` (e.g. :func:`data_url_size` itself)."""
    try:
        params = [
            p
            for p in inspect.signature(size_of).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        two = len(params) >= 2
    except (TypeError, ValueError):
        two = False
    if two:
        return size_of  # type: ignore[return-value]
    return lambda n, _mime: size_of(n)  # type: ignore[call-arg]


def _one_arg(size_of: SizeOf, mime: str) -> Callable[[int], int]:
    """``size_of`` for one MIME type, as ``n -> counted bytes`` (what :func:`largest_fitting`
    inverts: in closed form for data URLs and the identity)."""
    if size_of is data_url_size:
        return data_url_sizer(mime)
    if _sizer(size_of) is size_of:  # a two-parameter rule of the caller's
        return lambda n: size_of(n, mime)  # type: ignore[call-arg]
    return size_of  # type: ignore[return-value]


def _abscissa(fmt: str, q: float) -> float:
    """Quality mapped to an axis on which log(size) is close to linear: log(1/S(q)), S being
    libjpeg's quantiser scale. libwebp's quality is close to the same curve, so WEBP shares it
    (with its own prior slope)."""
    s = 5000.0 / q if q < 50 else max(200.0 - 2.0 * q, 1.0)
    return -math.log(s)


def _quality_at(fmt: str, x: float) -> float:
    s = math.exp(-x)
    return (200.0 - s) / 2.0 if s <= 100.0 else 5000.0 / s


def _predict_quality(fmt: str, points: dict[int, int], target: float) -> float:
    """Quality expected to give ``target`` bytes, from measured (quality -> size) points."""
    pair = _nearest_pair(points, target)
    q0 = pair[0]
    x0, l0 = _abscissa(fmt, q0), math.log(points[q0])
    slope = _measured_slope(fmt, points, q0, pair[1]) if len(pair) == 2 else _PRIOR_SLOPE[fmt]
    return _quality_at(fmt, x0 + (math.log(target) - l0) / slope)


def _nearest_pair(points: dict[int, int], target: float) -> list[int]:
    """The qualities to interpolate between: a fit and a miss that bracket ``target``, else
    the two nearest it in log size, else the one point there is."""
    above = [q for q, s in points.items() if s > target]
    below = [q for q, s in points.items() if s <= target]
    if above and below:
        return [min(above), max(below)]
    if len(points) >= 2:
        lt = math.log(target)
        return sorted(points, key=lambda q: abs(math.log(points[q]) - lt))[:2]
    return list(points)


def _measured_slope(fmt: str, points: dict[int, int], q0: int, q1: int) -> float:
    """The slope between two measured points, within reason (sizes of re-encoded JPEGs can
    plateau); the prior when they do not give one."""
    prior = _PRIOR_SLOPE[fmt]
    x0, l0 = _abscissa(fmt, q0), math.log(points[q0])
    x1, l1 = _abscissa(fmt, q1), math.log(points[q1])
    if x1 == x0:
        return prior
    measured = (l1 - l0) / (x1 - x0)
    if measured <= 0:
        return prior
    return min(max(measured, prior / 4), prior * 4)


def _encode(img: Image.Image, fmt: str, quality: int | None, **opts: Any) -> bytes:
    buf = io.BytesIO()
    icc = img.info.get("icc_profile") or None  # still present only if sRGB conversion not done
    if fmt == "jpeg":
        img.save(
            buf,
            "JPEG",
            quality=quality,
            # No optimize=True: Huffman optimisation doubles the encode time for ~5% fewer
            # bytes; the quality search (and the size model) work on standard tables.
            optimize=False,
            progressive=False,
            subsampling=opts.get("subsampling", 2),
            icc_profile=icc,
        )  # no exif=: EXIF is dropped (orientation already applied)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=quality, method=4, icc_profile=icc or "", exif=b"")
    else:
        if opts.get("optimize"):
            img.save(buf, "PNG", optimize=True, icc_profile=icc)
        else:
            img.save(buf, "PNG", compress_level=6, icc_profile=icc)
    return buf.getvalue()


class _Run:
    """State of one encode_to_budget call: counts encodes and keeps the step log."""

    def __init__(self, size_of: SizeOf, budget: float, max_bytes: int):
        self.given = size_of
        self.size_of = _sizer(size_of)
        self.budget = budget
        self.max_bytes = max_bytes
        self.encodes = 0
        self.sample_encodes = 0  # encodes of a strip sample (a few % of a full encode each)
        self.steps: list[str] = []
        self.smallest: int | None = None

    def fits(self, n: int, fmt: str) -> bool:
        return self.size_of(n, MIME[fmt]) <= self.budget

    def raw_budget(self, fmt: str) -> int:
        return largest_fitting(_one_arg(self.given, MIME[fmt]), self.budget)

    def encode(self, img: Image.Image, fmt: str, q: int | None, **opts: Any) -> bytes:
        data = _encode(img, fmt, q, **opts)
        self.encodes += 1
        n = len(data)
        self.smallest = n if self.smallest is None else min(self.smallest, n)
        ok = self.fits(n, fmt)
        label = f"q={q}" if q is not None else ("optimize" if opts.get("optimize") else "zlib 6")
        self.steps.append(
            f"{fmt} {label} {img.width}x{img.height}: {n} B"
            f" ({'fits' if ok else 'too big'}, counted {self.size_of(n, MIME[fmt])})"
        )
        return data

    def result(self, data: bytes, img: Image.Image, fmt: str, q: int | None) -> EncodedImage:
        return EncodedImage(
            data,
            fmt,
            MIME[fmt],
            img.width,
            img.height,
            q,
            self.encodes,
            self.steps,
            self.sample_encodes,
            img,
        )


def _search_quality(
    run: _Run,
    img: Image.Image,
    fmt: str,
    start: int,
    min_q: int,
    max_q: int,
    raw_budget: int,
    max_tries: int = SEARCH_MAX_TRIES_PER_SIZE,
    accept: float = SEARCH_ACCEPT,
) -> tuple[tuple[int, bytes] | None, dict[int, int]]:
    """Best fitting (quality, data) at this size, or None when ``min_q`` is too big."""
    sizes: dict[int, int] = {}
    fitting: dict[int, bytes] = {}
    q = start
    for _ in range(max_tries):
        data = run.encode(img, fmt, q)
        sizes[q] = len(data)
        if run.fits(len(data), fmt):
            fitting[q] = data
        best = max(fitting, default=None)
        lowest_fail = _lowest_fail(sizes, fitting)
        if best is not None and _good_enough(best, len(fitting[best]), lowest_fail, max_q,
                                             accept * raw_budget):
            return (best, fitting[best]), sizes
        if best is None and lowest_fail is not None and lowest_fail <= min_q:
            return None, sizes
        q = _next_quality(fmt, sizes, SEARCH_AIM * raw_budget, best, lowest_fail, min_q, max_q)
    return _best_fit(fitting), sizes


def _next_quality(fmt: str, sizes: dict[int, int], aim: float, best: int | None,
                  lowest_fail: int | None, min_q: int, max_q: int) -> int:
    """The curve's prediction for ``aim`` bytes, between the best fit and the lowest miss."""
    lo = best + 1 if best is not None else min_q
    hi = lowest_fail - 1 if lowest_fail is not None else max_q
    return int(min(max(math.floor(_predict_quality(fmt, sizes, aim)), lo), hi))


def _lowest_fail(sizes: dict[int, int], fitting: dict[int, bytes]) -> int | None:
    return min((q for q in sizes if q not in fitting), default=None)


def _good_enough(best: int, size: int, lowest_fail: int | None, max_q: int,
                 accept_bytes: float) -> bool:
    """Whether the best fit so far ends the search: the top quality, close enough to the
    budget, or one step below a quality that does not fit."""
    if best >= max_q or size >= accept_bytes:
        return True
    return lowest_fail is not None and lowest_fail - best <= 1


def _best_fit(fitting: dict[int, bytes]) -> tuple[int, bytes] | None:
    if not fitting:
        return None
    best = max(fitting)
    return best, fitting[best]


def _shrink_factor(fmt: str, history: list[tuple[int, int]], raw: int) -> float:
    """Linear scale factor expected to bring the size to ``SEARCH_SHRINK_AIM * raw``.

    ``history`` holds (pixels, bytes) measured at the same quality; the last two give the
    exponent gamma of (bytes - overhead) ~ pixels**gamma, else a prior. This is the spec's
    sqrt(budget/size)*0.95 with the two effects that make plain sqrt undershoot corrected.
    """
    h = min(_OVERHEAD[fmt], raw // 4)
    gamma = _PRIOR_GAMMA
    if len(history) >= 2:
        (p0, s0), (p1, s1) = history[-2], history[-1]
        if p0 != p1 and s0 > h and s1 > h and s0 != s1:
            g = math.log((s0 - h) / (s1 - h)) / math.log(p0 / p1)
            gamma = min(max(g, 0.5), 1.2)
    size = history[-1][1]
    want = max(SEARCH_SHRINK_AIM * raw - h, 1.0) / max(size - h, 1.0)
    return min(want ** (1.0 / (2.0 * gamma)), 0.95)


def _shrink_size(size: tuple[int, int], factor: float, min_side: int) -> tuple[int, int] | None:
    """``size`` scaled by ``factor`` (<1), short side kept >= min_side; None if no smaller size."""
    w, h = size
    short = min(w, h)
    factor = max(factor, min_side / short)
    nw, nh = max(1, int(w * factor)), max(1, int(h * factor))
    if min(nw, nh) < min_side:
        nw, nh = (nw, min_side) if nh < nw else (min_side, nh)
    if (nw, nh) == (w, h) or nw > w or nh > h:
        return None
    return nw, nh


def _sample(img: Image.Image) -> tuple[Image.Image, float] | None:
    """Evenly spaced full-width strips of ``img`` stacked into one small image, and the factor
    from its encoded size to the whole image's. JPEG (standard Huffman tables) and WEBP sizes
    are close to additive over blocks, so this predicts a full encode for a few percent of its
    cost. None for images too small to be worth it (a full encode is cheap there)."""
    w, h = img.size
    if w * h < SAMPLE_MIN_PIXELS or h < SAMPLE_STRIPS * SAMPLE_ROWS * 4:
        return None
    sample = Image.new(img.mode, (w, SAMPLE_STRIPS * SAMPLE_ROWS))
    step = h / SAMPLE_STRIPS
    for i in range(SAMPLE_STRIPS):
        y = int((i + 0.5) * step) - SAMPLE_ROWS // 2
        y = max(0, min(h - SAMPLE_ROWS, y - y % 16))  # MCU-aligned
        sample.paste(img.crop((0, y, w, y + SAMPLE_ROWS)), (0, i * SAMPLE_ROWS))
    return sample, h / sample.height


def _png_estimate(run: _Run, img: Image.Image, strips: int = PNG_SAMPLE_STRIPS) -> int | None:
    """The PNG (zlib 6) size of ``img`` predicted from ``strips`` strips of PNG_SAMPLE_ROWS
    rows encoded as one image; None when the image is too small for a sample to be much
    cheaper than the encode itself."""
    w, h = img.size
    if w * h < SAMPLE_MIN_PIXELS or h < PNG_SAMPLE_STRIPS * PNG_SAMPLE_ROWS * 4:
        return None
    rows = strips * PNG_SAMPLE_ROWS
    sample = Image.new(img.mode, (w, rows))
    if img.mode == "P":
        sample.putpalette(img.getpalette() or [])
    step = h / strips
    for i in range(strips):
        y = max(0, min(h - PNG_SAMPLE_ROWS, int((i + 0.5) * step) - PNG_SAMPLE_ROWS // 2))
        sample.paste(img.crop((0, y, w, y + PNG_SAMPLE_ROWS)), (0, i * PNG_SAMPLE_ROWS))
    n = len(_encode(sample, "png", None))
    run.sample_encodes += 1
    oh = _OVERHEAD["png"]
    return oh + int(max(0, n - oh) * h / rows)


class _Estimator:
    """Predicted full-image sizes at given qualities, from encodes of a strip sample."""

    def __init__(self, run: _Run, img: Image.Image, fmt: str):
        self.fmt = fmt
        self.run = run
        got = _sample(img)
        self.sample, self.factor = got if got else (None, 1.0)
        self.points: dict[int, int] = {}

    @property
    def usable(self) -> bool:
        return self.sample is not None

    def size_at(self, q: int) -> int:
        if q not in self.points:
            assert self.sample is not None
            n = len(_encode(self.sample, self.fmt, q))
            self.run.sample_encodes += 1
            oh = _OVERHEAD[self.fmt]
            self.points[q] = int(max(n - oh, 1) * self.factor + oh)
        return self.points[q]

    def quality_for(self, target: float, min_q: int, max_q: int) -> int:
        """Highest quality expected to give at most ``target`` bytes: sample at max_q, then
        predictions from the curve, interpolating once a fit and a miss bracket the target."""
        if self.size_at(max_q) <= target:
            return max_q
        for _ in range(SAMPLE_TRIES):
            settled = self._settled(target, min_q)
            if settled is not None:
                return settled
            q = self._next_guess(target, min_q)
            if q in self.points:
                break
            self.size_at(q)
        best = self._best_fit(target)
        return best if best is not None else min_q

    def _best_fit(self, target: float) -> int | None:
        return max((k for k, v in self.points.items() if v <= target), default=None)

    def _lowest_miss(self, target: float) -> int:
        return min(k for k, v in self.points.items() if v > target)  # max_q misses

    def _settled(self, target: float, min_q: int) -> int | None:
        """The quality to take, when the points sampled so far settle it."""
        best = self._best_fit(target)
        if best is None:
            return min_q if min_q in self.points else None
        if self._lowest_miss(target) - best <= 1 or self.points[best] >= SAMPLE_CLOSE * target:
            return best
        return None

    def _next_guess(self, target: float, min_q: int) -> int:
        """The next quality to sample: the curve's prediction, between the best fit and the
        lowest miss."""
        best = self._best_fit(target)
        guess = _predict_quality(self.fmt, self.points, SEARCH_AIM * target)
        lo = best + 1 if best is not None else min_q
        return int(min(max(math.floor(guess), lo), self._lowest_miss(target) - 1))

    def shrink_for(self, fmt: str, q: int, raw: int) -> float:
        """Linear scale at which quality ``q`` is expected to fit ``raw`` bytes.

        ``bytes - overhead ~ pixels**gamma`` with gamma measured on the sample itself, halved
        with ``reduce(2)``: the 32-row strips become 16-row ones, still whole MCU rows, so no
        block straddles two strips. Noise-like content loses bytes faster than pixels
        (gamma > 1), detailed photos slower (gamma < 1)."""
        assert self.sample is not None
        oh = min(_OVERHEAD[fmt], raw // 4)
        full = self.size_at(q)
        half = _encode(self.sample.reduce(2), fmt, q)
        self.run.sample_encodes += 1
        at_half = max(len(half) - _OVERHEAD[fmt], 1) * self.factor
        gamma = math.log(max(full - oh, 1) / at_half) / math.log(4.0)
        gamma = min(max(gamma, 0.5), 1.6)
        want = max(SEARCH_SHRINK_AIM * raw - oh, 1.0) / max(full - oh, 1.0)
        return min(want ** (1.0 / (2.0 * gamma)), 0.95)


def _lossy(
    run: _Run,
    img: Image.Image,
    fmt: str,
    min_q: int,
    max_q: int,
    min_side: int,
    prefer_downscale_below: int | None = None,
    downscale_quality: int = 75,
) -> EncodedImage:
    raw = run.raw_budget(fmt)
    start = max_q
    est = _Estimator(run, img, fmt)
    if est.usable:
        start = est.quality_for(SEARCH_AIM * raw, min_q, max_q)
        if prefer_downscale_below is not None and start < prefer_downscale_below:
            img, start = _downscale_first(run, img, fmt, est, start, raw, min_q, max_q, min_side,
                                          downscale_quality)
    return _lossy_rounds(run, img, fmt, start, raw, min_q, max_q, min_side)


def _downscale_first(run: _Run, img: Image.Image, fmt: str, est: _Estimator, start: int,
                     raw: int, min_q: int, max_q: int, min_side: int,
                     downscale_quality: int) -> tuple[Image.Image, int]:
    """The budget allows only a low quality at this size: fewer pixels at a good quality look
    better (and the model resamples big images down anyway). Aim the size at
    downscale_quality with the size model, then predict the quality there again. Returns the
    picture to search from (later shrinks resample from here: one more resampling at most)
    and its first quality."""
    new = _shrink_size(img.size, est.shrink_for(fmt, downscale_quality, raw), min_side)
    if new is None:
        return img, start
    run.steps.append(f"planned downscale {img.width}x{img.height} -> {new[0]}x{new[1]} "
                     f"(q~{start} at full size)")
    img = resize_to(img, new)
    est = _Estimator(run, img, fmt)
    if est.usable:
        start = est.quality_for(SEARCH_AIM * raw, min_q, max_q)
    return img, start


def _lossy_rounds(run: _Run, img: Image.Image, fmt: str, start: int, raw: int, min_q: int,
                  max_q: int, min_side: int) -> EncodedImage:
    """The quality search at this size, then at sizes shrunk by the size model (size ~ pixel
    count), each resampled from ``img``, until one fits or ``min_side`` is reached."""
    cur = img
    history: list[tuple[int, int]] = []
    for _ in range(SEARCH_MAX_ROUNDS):
        # After a downscale, min_q at ~90% of the budget is the expected outcome: accept from
        # 75% and allow one upward try at most (quality gained there is small).
        tries, accept = ((SEARCH_MAX_TRIES_PER_SIZE, SEARCH_ACCEPT) if cur is img
                         else (2, SEARCH_ACCEPT_AFTER_SHRINK))
        found, sizes = _search_quality(run, cur, fmt, start, min_q, max_q, raw, tries, accept)
        if found is None and min_q not in sizes:
            # a predicted start above min_q that did not fit: measure min_q
            found, at_min = _search_quality(run, cur, fmt, min_q, min_q, max_q, raw, 1, accept)
            sizes.update(at_min)
        if found is not None:
            return run.result(found[1], cur, fmt, found[0])
        # min_q measured and too big here: shrink by the size model (size ~ pixel count).
        history.append((cur.width * cur.height, sizes[min_q]))
        new = _shrink_size(cur.size, _shrink_factor(fmt, history, raw), min_side)
        if new is None:
            break
        run.steps.append(f"downscale {cur.width}x{cur.height} -> {new[0]}x{new[1]}")
        cur = resize_to(img, new)
        start = min_q  # the quality axis is exhausted; keep it at the floor from now on
    raise _no_fit(run, f"{fmt} within {run.max_bytes} bytes even at {min_side}px / q={min_q}")


def _no_fit(run: _Run, what: str) -> BudgetError:
    return BudgetError(f"cannot fit {what}", max_bytes=run.max_bytes, smallest=run.smallest,
                       steps=run.steps)


def _png(
    run: _Run,
    img: Image.Image,
    min_side: int,
    allow_format_change: bool,
    min_q: int,
    max_q: int,
    try_png: bool = True,
    **policy: Any,
) -> EncodedImage:
    raw = run.raw_budget("png")
    data = b""
    if try_png and allow_format_change:
        try_png = _png_worth_trying(run, img, raw)
    if try_png or not allow_format_change:
        done, data = _png_lossless(run, img, raw)
        if done is not None:
            return done
    if allow_format_change:
        to = "webp" if img.mode in ("RGBA", "LA") else "jpeg"
        conv, note = normalise_mode(img, to)
        why = "too big" if data else "planned too big, not tried"
        run.steps.append(f"png {why}: switching to {to}" + (f" ({note})" if note else ""))
        return _lossy(run, conv, to, min_q, max_q, min_side, **policy)
    return _png_shrunk(run, img, len(data), raw, min_side)


def _png_worth_trying(run: _Run, img: Image.Image, raw: int) -> bool:
    """A lossless encode of a noisy 4K picture costs seconds: predict it before trying it."""
    limit = raw * PNG_SKIP_OVER
    # half the strips first: far enough from the limit either way, they decide alone (half
    # the sample's cost); near it, the whole sample is encoded as before
    guess = _png_estimate(run, img, PNG_SAMPLE_STRIPS // 2)
    if guess is not None and limit / PNG_HALF_SAMPLE_CLEAR < guess < limit * PNG_HALF_SAMPLE_CLEAR:
        guess = _png_estimate(run, img)
    if guess is None or guess <= limit:
        return True
    run.steps.append(f"png predicted at ~{guess} bytes from a strip sample (budget {raw}): "
                     "not tried")
    return False


def _png_lossless(run: _Run, img: Image.Image, raw: int) -> tuple[EncodedImage | None, bytes]:
    """PNG at zlib 6, then with ``optimize`` (zlib 9 and a filter choice gain a few percent)
    when that is close. Returns the fit, if any, and the last bytes encoded."""
    data = run.encode(img, "png", None)
    if run.fits(len(data), "png"):
        return run.result(data, img, "png", None), data
    if len(data) <= raw * 1.15:
        data = run.encode(img, "png", None, optimize=True)
        if run.fits(len(data), "png"):
            return run.result(data, img, "png", None), data
    return None, data


def _png_shrunk(run: _Run, img: Image.Image, size: int, raw: int,
                min_side: int) -> EncodedImage:
    """PNG it must stay: shrunk by the size model until it fits or ``min_side`` is reached."""
    cur = img
    history = [(img.width * img.height, size)]
    for _ in range(SEARCH_MAX_ROUNDS):
        new = _shrink_size(cur.size, _shrink_factor("png", history, raw), min_side)
        if new is None:
            break
        run.steps.append(f"downscale {cur.width}x{cur.height} -> {new[0]}x{new[1]}")
        cur = resize_to(img, new)
        data = run.encode(cur, "png", None)
        history.append((cur.width * cur.height, len(data)))
        if run.fits(len(data), "png"):
            return run.result(data, cur, "png", None)
    raise _no_fit(run, f"png within {run.max_bytes} bytes even at {min_side}px")


def encode_to_budget(
    img: Image.Image,
    *,
    format: str,
    max_bytes: int,
    size_of: SizeOf = _identity,
    margin: float = 0.02,
    min_quality: int = IMAGE_MIN_QUALITY,
    max_quality: int = IMAGE_MAX_QUALITY,
    min_side: int = 11,
    allow_format_change: bool = False,
    try_png: bool = True,
    prefer_downscale_below: int | None = None,
    downscale_quality: int = 75,
) -> EncodedImage:
    """Encode ``img`` as ``format`` so that ``size_of(len(data)) <= max_bytes * (1 - margin)``.

    ``size_of`` is how the transport counts bytes; it is called as ``size_of(n)`` or, if it
    takes two parameters, ``size_of(n, mime)`` (pass :func:`data_url_size` directly for base64
    data URLs; the mime then follows a format change). Never upscales. The image is brought to a
    mode the format holds first (:func:`~mediaprep.transform.image.normalise_mode`). EXIF is not
    written; an ICC profile is embedded only if it could not be converted to sRGB.

    For images of a megapixel or more the first quality is predicted from encodes of a strip
    sample (:func:`_sample`), so a full encode usually lands on the budget at once.
    ``prefer_downscale_below``: when the predicted quality at full size is below it, scale down
    first to where ``downscale_quality`` is expected to fit (fewer pixels at a good quality
    instead of all pixels at a poor one). ``try_png=False`` (with ``allow_format_change``)
    skips PNG attempts the caller already knows cannot fit.

    Raises :class:`BudgetError` if nothing fits down to ``min_side`` pixels on the short side.
    """
    fmt = format.lower()
    if fmt == "jpg":
        fmt = "jpeg"
    if fmt not in ENCODABLE:
        raise ValueError(f"unsupported format {format!r}; use one of {ENCODABLE}")
    if not 1 <= min_quality <= max_quality <= 100:
        raise ValueError("need 1 <= min_quality <= max_quality <= 100")
    run = _Run(size_of, max_bytes * (1.0 - margin), max_bytes)
    work, note = normalise_mode(img, fmt)
    if note:
        run.steps.append(note)
    policy: dict[str, Any] = {
        "prefer_downscale_below": prefer_downscale_below,
        "downscale_quality": downscale_quality,
    }
    if fmt == "png":
        return _png(
            run, work, min_side, allow_format_change, min_quality, max_quality, try_png, **policy
        )
    return _lossy(run, work, fmt, min_quality, max_quality, min_side, **policy)
