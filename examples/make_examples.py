"""Regenerate the bundled examples (committed, a few KB each): python examples/make_examples.py"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

HERE = Path(__file__).parent


def photo(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(1, w - 1)).astype(np.uint8)
    g = (y * 255 // max(1, h - 1)).astype(np.uint8)
    b = ((x + y) % 64 * 4).astype(np.uint8)
    arr = np.dstack([r, g, b]) + rng.integers(0, 12, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(arr.astype(np.uint8))


def main() -> None:
    # a phone photo stored sideways: EXIF orientation 6
    img = photo(320, 240, 1)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(HERE / "sideways_photo.jpg", quality=80, exif=exif)
    # a 300x8 banner: too small on one side for DashScope (each side must exceed 10 px)
    photo(300, 8, 2).save(HERE / "thin_banner.png")
    # a GIF: not an accepted DashScope format
    photo(96, 96, 3).convert("P").save(HERE / "icon.gif")
    # a 3 s clip with a sound track, in MPEG-TS (a container DashScope does not take: remuxed)
    _clip(HERE / "clip.ts", seconds=3.0, audio=True)
    # a 1.5 s clip: under DashScope's 2 s minimum, so it goes as frames
    _clip(HERE / "short_clip.mp4", seconds=1.5, audio=False)


def _clip(path: Path, *, seconds: float, audio: bool) -> None:
    fps = 10
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps, options={"crf": "32", "preset": "veryfast"})
        vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
        aus = out.add_stream("aac", rate=16000) if audio else None
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_image(photo(160, 120, 10 + i % 3))
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if aus is None:
            return
        samples = np.zeros((1, 1024), dtype=np.float32)
        for i in range(int(seconds * 16000 / 1024)):
            af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            af.sample_rate = 16000
            af.pts = i * 1024
            for p in aus.encode(af):
                out.mux(p)
        for p in aus.encode():
            out.mux(p)

if __name__ == "__main__":
    main()
