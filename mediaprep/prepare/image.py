"""Prepare one image: plan, fix, encode to budget, re-check, emit."""

from __future__ import annotations

from PIL import Image

from ..check import Report, check_info
from ..check.common import mime_for
from ..emit.parts import image_part
from ..encode.image import (
    DOWNSCALE_QUALITY,
    PREFER_DOWNSCALE_BELOW,
    BudgetError,
    EncodedImage,
    encode_to_budget,
)
from ..findings import Finding
from ..mime import data_url_size
from ..plan.image import ImagePlan, budget_decode_size, draft_size, plan_image
from ..probe import probe_source
from ..settings import Settings
from ..sources import Source
from ..transform.image import (
    _fit_size,
    apply_orientation,
    fit_and_pad_to_aspect,
    load_image,
    normalise_mode,
    open_image,
    pad_to_min_side,
    resize_to,
    resize_within,
)
from .result import Prepared
from .sink import Sink, emit_url


def prepare_image(src: Source, report: Report, settings: Settings, sink: Sink) -> Prepared:
    info = report.info
    result = Prepared(
        path=src.name,
        kind="image",
        ok=False,
        info=info,
        findings=list(report.findings),
        bytes_in=info.bytes,
    )
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
        except (
            OSError,
            ValueError,
            SyntaxError,
            Image.DecompressionBombError,
            MemoryError,
            EOFError,
        ) as exc:
            result.findings.append(
                Finding("file.unreadable", "error", f"{src.name}: cannot decode the image: {exc}")
            )
            return result
    mime = mime_for(fmt)
    # re-check what will be sent: the exact bytes, decoded once (deep) to prove they decode
    # (bytes encoded here by Pillow are not decoded again: their header and structure are)
    out_src = Source(name=f"{src.name} (prepared)", data=data)
    out_info = probe_source(out_src, limits=settings.limits, deep=plan.passthrough)
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


def _transform_and_encode(
    src: Source, plan: ImagePlan, result: Prepared, settings: Settings
) -> tuple[bytes, str]:
    info = result.info
    assert info is not None
    up = info.display_size or (info.width or 1, info.height or 1)
    # What prep would send without --resize model, to report the bytes the resize saves.
    plain = None
    if plan.exact_cap_reason == "model":
        plain = plan_image(
            info,
            result.findings,
            settings.replace(resize_model=False),
            from_pil=src.image is not None,
        )
    limits = settings.limits
    ceiling = limits.value("image.max_decode_pixels")
    opened = open_image(src.image if src.image is not None else (src.path or src.data),
                        max_pixels=1 << 62 if ceiling is None else ceiling,
                        seconds=limits.value("image.max_decode_seconds"))
    try:
        decode_to = (
            plan.target_size(up) if plain is None or plain.passthrough else plain.target_size(up)
        )
        planned = None
        if opened.format in ("JPEG", "MPO") and plan.out_format in ("jpeg", "webp", "png"):
            planned = budget_decode_size(
                plan, info, getattr(opened, "quantization", None), settings.safety_margin
            )
        decode_to = draft_size(up, decode_to, planned)
        img = load_image(opened, target_box=decode_to)
    except BaseException:
        if src.image is None:
            opened.close()
        raise
    if src.image is None and opened is not img:
        opened.close()  # a frame was copied out of a multi-frame file
    result.stats["decoded"] = list(img.size)  # after any JPEG draft (DCT scaling)
    img, rotated = apply_orientation(img)
    if rotated:
        result.fixes.append("applied EXIF orientation")
        result.changes.append("rotated")
    target = plan.target_size(img.size)  # the pixels really decoded (and turned)
    if plan.pad_aspect:
        cap = plan.exact_size_cap

        def fit(size: tuple[int, int]) -> tuple[int, int]:
            return _fit_size(
                size,
                box=plan.box,
                max_side=plan.max_side,
                max_pixels=plan.max_pixels
                if cap is None
                else min(plan.max_pixels or 1 << 62, cap[0] * cap[1]),
            )

        unpadded = img.size
        img, padded, shrunk = fit_and_pad_to_aspect(img, plan.pad_aspect, fit)
        if padded:
            result.changes.append("padded")
            if shrunk:
                result.changes.append("resized")
                result.fixes.append(f"resized {unpadded[0]}x{unpadded[1]} to fit once padded")
            result.fixes.append(f"padded to a {plan.pad_aspect:g}:1 aspect ratio "
                                f"({img.size[0]}x{img.size[1]})")
            target = img.size
    before = img.size
    uncapped = img
    if plain is not None and not plain.passthrough:
        uncapped, _ = resize_within(
            img, box=plain.box, max_side=plain.max_side, max_pixels=plain.max_pixels
        )
    resized = False
    if img.width > target[0] or img.height > target[1]:
        # exactly the planned size: the model's W'xH' or the token cap keep their own rounding
        img = resize_to(img, target)
        resized = True
    if resized:
        result.changes.append("resized")
        how = (
            {"model": " (what the model keeps)", "tokens": " (token cap)"}.get(
                plan.exact_cap_reason or "", ""
            )
            if plan.exact_size_cap and sorted(target) == sorted(plan.exact_size_cap)
            else ""
        )
        result.fixes.append(f"resized {before[0]}x{before[1]} -> {img.size[0]}x{img.size[1]}" + how)
    if plan.pad_min_side is not None:
        small = img.size
        img, padded = pad_to_min_side(
            img, plan.pad_min_side, upscale=settings.small_image_fix == "upscale"
        )
        if padded:
            result.changes.append("padded")
            result.fixes.append(f"padded {small[0]}x{small[1]} -> {img.size[0]}x{img.size[1]}")
    had_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    img, note = normalise_mode(img, plan.out_format)
    if had_alpha and img.mode not in ("RGBA", "LA") and plan.out_format == "jpeg":
        result.changes.append("flattened")
    if note:
        result.fixes.append(note)
    enc = _encode(img, plan, settings)
    result.stats["encodes"] = enc.encodes
    result.stats["sample_encodes"] = enc.sample_encodes
    result.stats["size"] = [enc.width, enc.height]
    result.stats["quality"] = enc.quality
    result.fixes += [s for s in enc.steps if s]
    if enc.format != (result.info.format if result.info else None):
        result.fixes.append(f"encoded as {enc.format}")
        result.changes.append("converted")
    else:
        result.changes.append("re-encoded")
    if plain is not None:
        replacement = _bytes_saved(src, result, plain, uncapped, enc, settings)
        if replacement is not None:
            return replacement
    return enc.data, enc.format


def _encode(img: Image.Image, plan: ImagePlan, settings: Settings) -> EncodedImage:
    size_of = data_url_size if plan.budget_is_data_url else (lambda n: n)
    return encode_to_budget(
        img,
        format=plan.out_format,
        max_bytes=plan.budget if plan.budget is not None else 1 << 62,
        size_of=size_of,
        margin=settings.safety_margin,
        allow_format_change=plan.allow_format_change,
        try_png=plan.try_png,
        prefer_downscale_below=PREFER_DOWNSCALE_BELOW,
        downscale_quality=DOWNSCALE_QUALITY,
    )


def _bytes_saved(
    src: Source,
    result: Prepared,
    plain: ImagePlan,
    uncapped: Image.Image,
    enc: EncodedImage,
    settings: Settings,
) -> tuple[bytes, str] | None:
    """--resize model: what prep would have sent without it (the input itself when it would
    have passed through, else the same encode of the uncapped pixels), and the difference.

    When that is smaller (a tiny lossless file, or a PNG that now fits losslessly where the big
    one had to become JPEG), it is sent instead: the model resizes it to the same W'xH' itself,
    and the option promises fewer bytes, never more. Returns the replacement, if any."""
    info = result.info
    assert info is not None
    if plain.passthrough:
        data, fmt = src.read_bytes(), ("jpeg" if info.format == "mpo" else info.format or "")
        size = list(info.display_size or (info.width, info.height))
    else:
        img, _ = normalise_mode(uncapped, plain.out_format)
        other = _encode(img, plain, settings)
        data, fmt, size = other.data, other.format, [other.width, other.height]
    without, with_ = len(data), len(enc.data)
    use_plain = without < with_
    result.stats["resize_model"] = {
        "bytes_without": without,
        "bytes_with": with_,
        "bytes_saved": max(without - with_, 0),
        "size_without": size,
        "size_with": [enc.width, enc.height],
        "sent": "without" if use_plain else "with",
    }
    if use_plain:
        if plain.passthrough:  # the input itself is sent after all
            result.changes[:] = []
        result.fixes.append(
            f"--resize model: kept the {size[0]}x{size[1]} output ({without:,} bytes), smaller "
            f"than {enc.width}x{enc.height} ({with_:,} bytes); the model resizes it the same"
        )
        return data, fmt
    result.fixes.append(
        f"--resize model saves {without - with_:,} bytes ({without:,} -> {with_:,}; "
        f"{size[0]}x{size[1]} -> {enc.width}x{enc.height})"
    )
    return None


def _budget_finding(name: str, exc: BudgetError, settings: Settings) -> Finding:
    code = "base64.too_large" if settings.transport == "base64" else "file.too_large"
    return Finding(
        code,
        "error",
        f"{name}: cannot be encoded within {exc.max_bytes:,} bytes ({exc})",
        exc.max_bytes,
        exc.smallest,
    )
