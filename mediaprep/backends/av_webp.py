"""A large still WebP decoded through FFmpeg's WebP decoder, in bounded memory.

Pillow decodes every WebP through libwebp's animation decoder, which composites even a still
picture into two RGBA canvases of its own before Pillow copies the pixels out: about 14 bytes
a pixel at the peak (a 40 MP photo: 600 MB). FFmpeg's decoder gives the picture as it is
coded (lossy: 4:2:0 YUV, 1.5 bytes a pixel; lossless: RGBA), and one swscale pass turns it
into the RGB(A) Pillow works on. The conversion is libwebp's own (BT.601 limited range,
chroma interpolated, rounded exactly): no pixel of a lossy photo differs by more than 2 levels
from libwebp's, and a lossless one is identical.

:class:`LeanWebPImageFile` is what :func:`mediaprep.backends.pillow.pil_open` returns for such
a file: Pillow's own header read (size, mode, ICC, EXIF, XMP) with this decode behind
``load()``, so every caller (probe, verify, prep, preview) decodes it the same way.
"""

from __future__ import annotations

from fractions import Fraction
from typing import IO, Any

import av
from PIL import Image, ImageFile

#: swscale's flags for the YUV to RGB step: bilinear chroma, full chroma interpolation and
#: exact rounding reproduce libwebp's "fancy upsampling" to within 2 levels (mean 0.1)
_SWS_FLAGS = "bilinear+accurate_rnd+full_chroma_int+full_chroma_inp"


class LeanWebPImageFile(ImageFile.ImageFile):
    """A still WebP whose header Pillow read and whose pixels FFmpeg decodes (see module)."""

    format = "WEBP"
    format_description = "WebP image"

    def __init__(self, fp: IO[bytes], header: Image.Image) -> None:
        self._header = header
        super().__init__(fp)

    def _open(self) -> None:
        header = self._header
        self._size = header.size
        self._mode = "RGBA" if header.mode == "RGBA" else "RGB"
        self.info = dict(header.info)
        self.n_frames = 1
        self.is_animated = False
        self.tile = []
        self._header = None  # libwebp's decoder, never asked for pixels, goes with it

    def load(self) -> Any:
        if self._im is None:
            assert self.fp is not None
            self.im = decode_still_webp(self.fp, self.mode, self.size).im
        return Image.Image.load(self)

    def seek(self, frame: int) -> None:
        if frame != 0:
            raise EOFError("a still WebP has one frame")

    def tell(self) -> int:
        return 0


def decode_still_webp(fh: IO[bytes], mode: str, size: tuple[int, int]) -> Image.Image:
    """The first picture of the WebP in ``fh`` as a ``mode`` (RGB or RGBA) image of ``size``.
    Raises OSError when FFmpeg cannot decode it or it is not the size its header declares."""
    fh.seek(0)
    try:
        with av.open(fh, format="webp_pipe", options={"threads": "1"}) as container:
            stream = container.streams.video[0]
            stream.thread_count = 1
            frame = next(container.decode(stream), None)
        # the decoder's own buffers are freed with the container, before the RGB copy exists
        if frame is None or (frame.width, frame.height) != size:
            raise OSError("cannot decode image: FFmpeg's WebP decoder gave no picture of "
                          f"{size[0]}x{size[1]}")
        rgb = _to_rgb(frame, "rgba" if mode == "RGBA" else "rgb24")
    except av.FFmpegError as exc:
        raise OSError(f"cannot decode image: {exc}") from exc
    del frame
    plane = rgb.planes[0]
    # frombuffer copies RGB into Pillow's own layout (an RGBA plane would be mapped: copy it)
    img = Image.frombuffer(mode, size, plane, "raw", mode, plane.line_size, 1)
    return img.copy() if img.readonly else img


def _to_rgb(frame: Any, pix_fmt: str) -> Any:
    """``frame`` in ``pix_fmt`` through one swscale pass with :data:`_SWS_FLAGS`."""
    graph = av.filter.Graph()
    src = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                           time_base=Fraction(1, 1000))
    scale = graph.add("scale", f"flags={_SWS_FLAGS}:in_range=tv:out_range=pc"
                      if frame.format.name.startswith("yuv") else f"flags={_SWS_FLAGS}")
    fmt = graph.add("format", pix_fmt)
    sink = graph.add("buffersink")
    src.link_to(scale)
    scale.link_to(fmt)
    fmt.link_to(sink)
    graph.configure()
    graph.push(frame)
    return graph.pull()
