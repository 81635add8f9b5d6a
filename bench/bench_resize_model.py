"""Bytes sent with and without ``--resize model`` over the real and the generated image sets.

For every image that ``mediaprep.prepare`` can make sendable, prepare it twice through the
product path (``resize_model`` off, then on) and sum the bytes of what would go over the wire
(the data URL's payload). ``--resize model`` resizes images larger than what the Kimi processor
keeps (``mediaprep.tokens.model_resize``: 16,384 patches of 14 px, 7,168 px a side) to exactly
that size, so the model sees the same pixels (same token estimate) for fewer bytes.

Sets: ``../shared/realmedia/images`` (skipped when absent), the generated fixtures
(``tests/fixtures/generate.py``) and three generated photo-like images of common camera sizes
(4032x3024, 6000x4000, 3840x2160), which are where the saving is.

Run: python bench/bench_resize_model.py [--no-real] [--no-photos]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_fit_images import photo_like  # noqa: E402

import mediaprep  # noqa: E402
from tests.fixtures.generate import generate  # noqa: E402

REAL = ROOT.parent / "shared" / "realmedia" / "images"
PHOTOS = [(4032, 3024, ".jpg"), (6000, 4000, ".jpg"), (3840, 2160, ".png")]


def sent_bytes(path: Path, resize: bool) -> tuple[int, tuple[int, ...], int | None] | None:
    r = mediaprep.prepare(path, resize_model=resize)
    if not r.ok or r.kind != "image" or r.data is None:
        return None
    size = tuple(r.stats.get("size") or ())
    est = (r.tokens or {}).get("estimate")
    return len(r.data), size, est


def run_set(name: str, paths: list[Path]) -> tuple[int, int, int]:
    total_off = total_on = n = 0
    print(f"\n== {name}: {len(paths)} files")
    t0 = time.perf_counter()
    for p in sorted(paths):
        off = sent_bytes(p, False)
        if off is None:
            continue
        on = sent_bytes(p, True)
        if on is None:
            print(f"  {p.name:<40} prepares without --resize model only (skipped)")
            continue
        n += 1
        total_off += off[0]
        total_on += on[0]
        if on[0] != off[0]:
            print(
                f"  {p.name:<40} {off[0]:>11,} B -> {on[0]:>11,} B  "
                f"({'x'.join(map(str, off[1])) or '-'} -> {'x'.join(map(str, on[1])) or '-'}, "
                f"tokens {off[2]} -> {on[2]})"
            )
    saved = total_off - total_on
    share = saved / total_off * 100 if total_off else 0.0
    print(
        f"  {n} images sendable: {total_off:,} B without, {total_on:,} B with --resize model; "
        f"saved {saved:,} B ({share:.1f}%) in {time.perf_counter() - t0:.1f}s"
    )
    return total_off, total_on, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-real", action="store_true", help="skip ../shared/realmedia/images")
    ap.add_argument("--no-photos", action="store_true", help="skip the camera-size photos")
    args = ap.parse_args()
    totals = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_real and REAL.is_dir():
            totals.append(run_set("real images", [p for p in REAL.iterdir() if p.is_file()]))
        gen = generate(Path(tmp) / "generated")
        images = [p for p in gen.values() if p.is_file() and p.suffix != ".mp4"]
        totals.append(run_set("generated fixtures", images))
        if not args.no_photos:
            photos = []
            for i, (w, h, ext) in enumerate(PHOTOS):
                p = Path(tmp) / f"photo_{w}x{h}{ext}"
                img = photo_like(w, h, seed=10 + i)
                img.save(p, quality=92) if ext == ".jpg" else img.save(p, compress_level=6)
                photos.append(p)
            totals.append(run_set("generated camera-size photos", photos))
    off = sum(t[0] for t in totals)
    on = sum(t[1] for t in totals)
    n = sum(t[2] for t in totals)
    print(
        f"\nall sets: {n} images, {off:,} B without --resize model, {on:,} B with; "
        f"saved {off - on:,} B ({(off - on) / off * 100 if off else 0:.1f}%)"
    )


if __name__ == "__main__":
    main()
