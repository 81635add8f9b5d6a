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
#: and when the picture is shrunk in the same pass (a 40 MP photo to 30 MP: 0.5 s against
#: 0.8 s for the conversion and Pillow's bicubic resize after it; 0.5 levels from those)
_SWS_SHRINK_FLAGS = "bicubic+accurate_rnd+full_chroma_int+full_chroma_inp"


class LeanWebPImageFile(ImageFile.ImageFile):
    """A still WebP whose header Pillow read and whose pixels FFmpeg decodes (see module).

    ``draft(mode, size)`` before ``load()`` asks for the picture at ``size`` (smaller, the
    aspect kept): swscale then shrinks the coded picture in the same pass that converts it
    (bicubic, as :data:`mediaprep.backends.pillow.RESAMPLE`), and no full-size RGB copy is
    made at all."""

    format = "WEBP"
    format_description = "WebP image"
    #: ``draft`` gives exactly the size asked for (a JPEG's gives a DCT scale at least as big)
    drafts_exactly = True

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
        self._coded_size = header.size
        self._header = None  # libwebp's decoder, never asked for pixels, goes with it

    def draft(self, mode: str | None, size: tuple[int, int] | None) -> Any:
        if self._im is not None or size is None:
            return None
        w, h = self._coded_size
        if size[0] < w and size[1] < h:
            self._size = (int(size[0]), int(size[1]))
        return self.mode, (0, 0, w, h)

    def load(self) -> Any:
        if self._im is None:
            assert self.fp is not None
            self.im = decode_still_webp(self.fp, self.mode, self._coded_size, self.size).im
        return Image.Image.load(self)

    def seek(self, frame: int) -> None:
        if frame != 0:
            raise EOFError("a still WebP has one frame")

    def tell(self) -> int:
        return 0


def decode_still_webp(fh: IO[bytes], mode: str, size: tuple[int, int],
                      out_size: tuple[int, int] | None = None) -> Image.Image:
    """The first picture of the WebP in ``fh`` as a ``mode`` (RGB or RGBA) image, its coded
    picture ``size`` shrunk to ``out_size`` if given. Raises OSError when FFmpeg cannot decode
    it or it is not the size its header declares."""
    fh.seek(0)
    try:
        # the whole RIFF file is the decoder's one packet, as FFmpeg's webp_pipe demuxer
        # hands it over; opening a container instead would decode the picture twice (its
        # stream probe decodes one frame to learn the format)
        decoder = av.CodecContext.create("webp", "r")
        decoder.thread_count = 1
        frames = [*decoder.decode(av.Packet(fh.read())), *decoder.decode(None)]
        del decoder  # its own buffers go before the RGB copy exists
        frame = frames[0] if frames else None
        del frames
        if frame is None or (frame.width, frame.height) != size:
            raise OSError("cannot decode image: FFmpeg's WebP decoder gave no picture of "
                          f"{size[0]}x{size[1]}")
        rgb = _to_rgb(frame, "rgba" if mode == "RGBA" else "rgb24", out_size or size)
    except av.FFmpegError as exc:
        raise OSError(f"cannot decode image: {exc}") from exc
    del frame
    plane = rgb.planes[0]
    # frombuffer copies RGB into Pillow's own layout (an RGBA plane would be mapped: copy it)
    img = Image.frombuffer(mode, (rgb.width, rgb.height), plane, "raw", mode,
                           plane.line_size, 1)
    return img.copy() if img.readonly else img


def _to_rgb(frame: Any, pix_fmt: str, size: tuple[int, int]) -> Any:
    """``frame`` in ``pix_fmt`` at ``size`` through one swscale pass: :data:`_SWS_FLAGS` at
    the coded size, bicubic when it shrinks too."""
    flags = _SWS_FLAGS if size == (frame.width, frame.height) else _SWS_SHRINK_FLAGS
    levels = ":in_range=tv:out_range=pc" if frame.format.name.startswith("yuv") else ""
    graph = av.filter.Graph()
    src = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                           time_base=Fraction(1, 1000))
    scale = graph.add("scale", f"w={size[0]}:h={size[1]}:flags={flags}{levels}")
    fmt = graph.add("format", pix_fmt)
    sink = graph.add("buffersink")
    src.link_to(scale)
    scale.link_to(fmt)
    fmt.link_to(sink)
    graph.configure()
    graph.push(frame)
    return graph.pull()
