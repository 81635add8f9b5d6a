"""Prepare one image: plan, fix, encode to budget, re-check, emit."""

from __future__ import annotations

from PIL import Image

from ..check import Report, check_info
from ..check.common import mime_for
from ..emit.parts import image_part
from ..encode.image import BudgetError, encode_to_budget
from ..findings import Finding
from ..mime import data_url_size
from ..plan.image import ImagePlan, plan_image
from ..probe import probe_source
from ..settings import Settings
from ..sources import Source
from ..transform.image import (
    apply_orientation,
    load_image,
    normalise_mode,
    pad_to_aspect,
    pad_to_min_side,
    resize_within,
)
from .result import Prepared
from .sink import Sink, emit_url


def prepare_image(src: Source, report: Report, settings: Settings, sink: Sink) -> Prepared:
    info = report.info
    result = Prepared(path=src.name, kind="image", ok=False, info=info,
                      findings=list(report.findings), bytes_in=info.bytes)
    plan = plan_image(info, report.findings, settings, from_pil=src.image is not None)
    if plan.passthrough:
        data = src.read_bytes()
        fmt = "jpeg" if info.format == "mpo" else info.format
        result.fixes.append("passed through unchanged")
    else:
        try:
            data, fmt = _transform_and_encode(src, plan, result, settings)
        except BudgetError as exc:
            result.findings.append(_budget_finding(src.name, exc, settings))
            return result
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
                MemoryError, EOFError) as exc:
            result.findings.append(Finding("file.unreadable", "error",
                                           f"{src.name}: cannot decode the image: {exc}"))
            return result
    mime = mime_for(fmt)
    # re-check what will be sent: the exact bytes, decoded once (deep) to prove they decode
    out_src = Source(name=f"{src.name} (prepared)", data=data)
    out_info = probe_source(out_src, limits=settings.limits, deep=True)
    recheck = check_info(out_info, settings)
    problems = [f for f in recheck.findings if f.severity == "error"]
    if problems:
        result.findings += problems
        return result
    result.output_info = out_info
    result.tokens = recheck.tokens
    result.mime = mime
    result.data = data
    result.bytes_out = len(data)
    url, outputs = emit_url(sink, src.name, data, fmt, mime, settings)
    result.outputs = outputs
    result.part = image_part(url, settings.dialect)
    result.ok = True
    return result


def _transform_and_encode(src: Source, plan: ImagePlan, result: Prepared,
                          settings: Settings) -> tuple[bytes, str]:
    box = plan.box
    img = load_image(src.image if src.image is not None else (src.path or src.data),
                     target_box=_smallest_box(plan, result))
    img, rotated = apply_orientation(img)
    if rotated:
        result.fixes.append("applied EXIF orientation")
    if plan.pad_aspect:
        img, padded = pad_to_aspect(img, plan.pad_aspect)
        if padded:
            result.fixes.append(f"padded to a {plan.pad_aspect:g}:1 aspect ratio")
    before = img.size
    img, resized = resize_within(img, box=box, max_side=plan.max_side,
                                 max_pixels=plan.max_pixels)
    if plan.exact_size_cap is not None:
        cw, ch = plan.exact_size_cap
        if img.size[0] > cw or img.size[1] > ch:
            img = img.resize((min(cw, img.size[0]), min(ch, img.size[1])),
                             Image.Resampling.LANCZOS)
            resized = True
    if resized:
        result.fixes.append(f"resized {before[0]}x{before[1]} -> {img.size[0]}x{img.size[1]}")
    if plan.pad_min_side is not None:
        small = img.size
        img, padded = pad_to_min_side(img, plan.pad_min_side,
                                      upscale=settings.small_image_fix == "upscale")
        if padded:
            result.fixes.append(f"padded {small[0]}x{small[1]} -> {img.size[0]}x{img.size[1]}")
    img, note = normalise_mode(img, plan.out_format)
    if note:
        result.fixes.append(note)
    size_of = data_url_size if plan.budget_is_data_url else (lambda n: n)
    if plan.budget is None:
        plan.budget = 1 << 62
    enc = encode_to_budget(img, format=plan.out_format, max_bytes=plan.budget,
                           size_of=size_of, margin=settings.safety_margin,
                           allow_format_change=plan.allow_format_change)
    result.stats["encodes"] = enc.encodes
    result.fixes += [s for s in enc.steps if s]
    if enc.format != (result.info.format if result.info else None):
        result.fixes.append(f"encoded as {enc.format}")
    return enc.data, enc.format


def _smallest_box(plan: ImagePlan, result: Prepared) -> tuple[int, int] | None:
    """The box to decode into: with JPEG draft mode, the less we need the faster."""
    info = result.info
    if info is None or not info.width:
        return plan.box
    w, h = info.display_size or (info.width, info.height or 1)
    long_, short = max(w, h), min(w, h)
    caps = []
    if plan.box:
        caps.append(min(max(plan.box) / long_, min(plan.box) / short))
    if plan.max_side:
        caps.append(plan.max_side / long_)
    if plan.max_pixels:
        caps.append((plan.max_pixels / (w * h)) ** 0.5)
    if plan.exact_size_cap:
        cw, ch = plan.exact_size_cap
        caps.append(max(cw, ch) / long_)
    scale = min([1.0, *caps])
    return (max(1, int(long_ * scale)), max(1, int(short * scale)))


def _budget_finding(name: str, exc: BudgetError, settings: Settings) -> Finding:
    code = "base64.too_large" if settings.transport == "base64" else "file.too_large"
    return Finding(code, "error", f"{name}: cannot be encoded within {exc.max_bytes:,} bytes "
                                  f"({exc})", exc.max_bytes, exc.smallest)

