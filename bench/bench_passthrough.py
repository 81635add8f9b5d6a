"""A pass-through is nearly free: prepare() of a compliant image vs reading + base64 of it.

Issue 28 item 2 (after issue 16 item 3): ``mediaprep.prepare()`` of an already compliant JPEG
or PNG costs at most 3x reading and base64-encoding the file, a WebP at most 10x (median of 5,
in one process). The same for HEIC (each generated once into a temporary folder, photo-like
content, within the default target's limits); the ratio of each is printed.

Where the decode that proves the bytes whole costs more than that by itself (its floor is
printed), prepare is held to 1.2x the floor. What that decode buys: the damaged files whose
structure check accepts and only a decode refuses, tests/backends/test_verify_decodes.py (a
JPEG's bad sampling factors, bad progression, an undefined Huffman table; a WebP whose coded
picture is cut while its sizes agree) and the large PNGs with damaged rows of
tests/kinds/test_image_passthrough.py.

    PYTHONPATH=$PWD python bench/bench_passthrough.py
"""

from __future__ import annotations

import base64
import io
import os
import statistics
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageFilter

import mediaprep

REPEAT = 5
TARGET = 3.0  # prepare / read+base64 for JPEG and PNG
TARGETS = {".webp": 10.0}
FLOOR_TARGET = 1.2  # prepare / the floor, where the floor is above the target


def _photo(size: tuple[int, int], seed: int = 7) -> Image.Image:
    """Smooth shapes plus fine grain: compresses like a phone photo, not like flat colour."""
    small = Image.effect_noise((size[0] // 40, size[1] // 40), 90).convert("RGB")
    base = small.resize(size, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(size, 12).convert("RGB")
    img = Image.blend(base, grain, 0.25).filter(ImageFilter.SMOOTH)
    return img


def make_inputs(folder: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    big = _photo((4000, 3000))
    out["jpeg 4000x3000 (12 MP)"] = folder / "photo.jpg"
    big.save(out["jpeg 4000x3000 (12 MP)"], "JPEG", quality=90)
    mid = big.resize((2048, 1536))
    out["png 2048x1536"] = folder / "photo.png"
    mid.save(out["png 2048x1536"], "PNG")
    tier = big.resize((3840, 2160))
    out["webp 3840x2160"] = folder / "photo.webp"
    tier.save(out["webp 3840x2160"], "WEBP", quality=85)
    try:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        out["heic 3840x2160"] = folder / "photo.heic"
        tier.save(out["heic 3840x2160"], "HEIF", quality=80)
    except ImportError:
        print("heic: pillow_heif not installed, row skipped")
    return out


def interleaved(fns: dict[str, Callable[[], object]], repeat: int = REPEAT
                ) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each function, run A B C A B C ... so load hits them
    alike. CPU is the process's (all its threads: a PNG's verify runs beside the base64), which
    a shared machine's load barely moves; wall is what a caller waits."""
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(repeat):
        for k, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[k].append((time.perf_counter() - t0, time.process_time() - c0))
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
            for k, v in times.items()}


def _decode_floor(path: Path) -> Callable[[], object]:
    """The least decoder work that can tell a damaged file from a whole one, with no checks of
    mediaprep's own: a JPEG's 1/8 DCT-scaled decode (libjpeg still Huffman-decodes every
    scan), a PNG's IDAT stream inflated (no CRC, no row filter check), any other format's
    plain Pillow decode (libwebp and libheif have no cheaper mode that reads every coded
    byte)."""
    if path.suffix == ".png":
        return lambda: _inflate_idat(path.read_bytes())

    def decode() -> object:
        with Image.open(io.BytesIO(path.read_bytes())) as im:
            if im.format == "JPEG":
                im.draft(im.mode, (-(-im.width // 8), -(-im.height // 8)))
            im.load()
        return im

    return decode


def _inflate_idat(data: bytes) -> int:
    z, pos, out = zlib.decompressobj(), 8, 0
    while pos + 8 <= len(data):
        n, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"IDAT":
            view = memoryview(data)[pos + 8 : pos + 8 + n]
            while len(view):
                out += len(z.decompress(view, 4 << 20))
                view = z.unconsumed_tail
        pos += 12 + n
    return out


def main() -> int:
    worst = worst_floor = worst_floor_cpu = 0.0
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench_passthrough_") as tmp:
        inputs = make_inputs(Path(tmp))
        print(f"{'':26} {'':>10} {'wall':-^50} {'CPU':-^26}")
        print(f"{'input':26} {'bytes':>10} {'read+b64':>10} {'decode':>9} {'prepare':>10} "
              f"{'ratio':>7} {'floor':>6} {'/floor':>6} {'decode':>8} {'prepare':>9} "
              f"{'/floor':>7}  target")
        for name, path in inputs.items():
            p = mediaprep.prepare(path)  # warm-up, and proof it passes through
            if not p.ok or p.fixes != ["passed through unchanged"]:
                print(f"{name}: not a pass-through: {p.fixes} {[f.code for f in p.findings]}")
                return 2

            def baseline(path: Path = path) -> object:
                return base64.b64encode(path.read_bytes())

            def ours(path: Path = path) -> object:
                return mediaprep.prepare(path)

            t = interleaved({"base": baseline, "decode": _decode_floor(path), "ours": ours})
            (bw, bc), (dw, dc), (ow, oc) = t["base"], t["decode"], t["ours"]
            ratio = ow / bw
            floor = (dw + bw) / bw
            floor_cpu = oc / (dc + bc)  # prepare against the floor's own CPU
            target = TARGETS.get(path.suffix, TARGET)
            worst = max(worst, ratio / target)
            worst_floor = max(worst_floor, ratio / floor)
            worst_floor_cpu = max(worst_floor_cpu, floor_cpu)
            print(f"{name:26} {path.stat().st_size:>10,} {bw * 1e3:>8.1f}ms {dw * 1e3:>7.1f}ms "
                  f"{ow * 1e3:>8.1f}ms {ratio:>6.1f}x {floor:>5.1f}x {ratio / floor:>5.2f}x "
                  f"{dc * 1e3:>6.1f}ms {oc * 1e3:>7.1f}ms {floor_cpu:>6.2f}x  {target:g}x")
    print("ratio: prepare / read+b64 (target: issue 28 item 2). decode: the least decoder work "
          "that tells damage (JPEG: the 1/8 draft decode; PNG: the IDAT inflate alone; others: "
          "Pillow's decode); floor: (decode + read+b64) / read+b64, what any pass-through that "
          "refuses damaged data costs at least; /floor: prepare against it, in wall and in CPU "
          f"time (target <= {FLOOR_TARGET:g})")
    print(f"median of {REPEAT}, interleaved; worst ratio / target {worst:.2f}, worst prepare / "
          f"floor {worst_floor:.2f} wall, {worst_floor_cpu:.2f} CPU; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
