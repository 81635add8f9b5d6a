"""Limits that apply to one image."""

from __future__ import annotations

from ..findings import Finding
from ..info import UNENCODED, MediaInfo
from ..settings import Settings
from .common import check_item_bytes, finding, in_box, mime_for

# formats prep can convert from (it decodes them); anything else is a dead end
CONVERTIBLE = frozenset({"jpeg", "png", "gif", "webp", "bmp", "tiff", "heic", "avif",
                         "jpeg2000", "ico", "mpo", "ppm", "tga"})


def check_image(info: MediaInfo, settings: Settings) -> list[Finding]:
    limits = settings.limits
    name = info.path
    w, h = info.width or 0, info.height or 0
    fmt = info.format or "unknown"
    out: list[Finding] = []

    row = limits.get("image.formats")
    # an MPO is a JPEG with extra pictures appended; providers read it as the JPEG it starts with
    wire_fmt = "jpeg" if fmt == "mpo" else fmt
    if row is not None and fmt == UNENCODED:
        out.append(finding(row, f"{name}: an image in memory, not yet in a file format; prep "
                                "encodes it", fmt, fixable=True, limit=sorted(row.value)))
    elif row is not None and wire_fmt not in row.value:
        out.append(finding(row, f"{name}: {fmt} images are not accepted by {settings.target} "
                                f"(accepted: {', '.join(sorted(row.value))}); prep converts it",
                           fmt, fixable=fmt in CONVERTIBLE, limit=sorted(row.value)))

    row = limits.get("image.min_side")
    if row is not None and row.value is not None and (row.below_min(w) or row.below_min(h)):
        out.append(finding(row, f"{name}: {w}x{h} px; each side must be more than {row.value} px"
                                " (prep pads it)", min(w, h), fixable=True))

    row = limits.get("image.max_aspect_ratio")
    if row is not None and row.value is not None and w and h:
        ratio = max(w, h) / min(w, h)
        if row.exceeds_max(ratio):
            fix = "prep pads it" if settings.pad_aspect else "prep pads it with --pad-aspect"
            out.append(finding(row, f"{name}: aspect ratio {ratio:.1f}:1 is above "
                                    f"{row.value:g}:1; crop it, or {fix}", round(ratio, 3),
                               fixable=settings.pad_aspect))

    row = limits.get("image.recommended_box")
    if row is not None and row.value is not None and w and not in_box(w, h, row.value):
        bw, bh = row.value
        out.append(finding(row, f"{name}: {w}x{h} px is above the recommended {bw}x{bh}; "
                                "prep scales it down", [w, h], fixable=True, limit=[bw, bh]))

    tier_box = limits.get("image.format_tier_box")
    tier_formats = limits.get("image.formats_above_tier")
    if (tier_box is not None and tier_formats is not None and w
            and not in_box(w, h, tier_box.value) and wire_fmt not in tier_formats.value
            and wire_fmt in limits.value("image.formats", {wire_fmt})):
        bw, bh = tier_box.value
        out.append(finding(tier_formats, f"{name}: {fmt} at {w}x{h} px; above {bw}x{bh} only "
                                         f"{', '.join(sorted(tier_formats.value))} are accepted"
                                         " (prep converts it)", fmt, fixable=True,
                           limit=sorted(tier_formats.value)))

    out += check_item_bytes("image", name, info.bytes, mime_for(wire_fmt), settings,
                            "prep re-encodes or scales it down")
    return out

