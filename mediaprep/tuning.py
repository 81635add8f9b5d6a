"""Tuning constants that change what prep writes, in one place, each with why.

These are choices, not provider limits (those are rows of :mod:`mediaprep.limits`). Changing one
changes output bytes: bench (bench/) and the parts.jsonl comparison over the real-media corpus
say whether a change is worth it.
"""

from __future__ import annotations

# ------------------------------------------------------------------ image encoding (Pillow)

#: JPEG/WEBP quality an image encode starts from: 92 is visually lossless on photos; above it
#: libjpeg's size grows fast for no visible gain.
IMAGE_MAX_QUALITY = 92
#: Lowest quality the search goes to before it shrinks pixels instead: below 40 JPEG blocking
#: shows and fewer pixels at a better quality look better.
IMAGE_MIN_QUALITY = 40
#: Quality video frames start from (lowered only to fit a byte budget): frames are many and
#: the model samples them small, so they start lower than stills.
FRAME_QUALITY = 85

#: Image quality policy for prepare (images only; frames keep the plain search): below this
#: predicted JPEG/WEBP quality at the planned size, scale down to where DOWNSCALE_QUALITY fits.
#: Measured on the bench photos at a 1 MB budget (PSNR of what the model sees, bench/
#: bench_fit_images.py): q~44 at 5760x4320 scores 0.6 dB below q~76 at 4000x3000 and q~41 at
#: 6000x4000 0.2 dB below q~73 at 4200x2800, while q~64 at full size beats any downscale.
PREFER_DOWNSCALE_BELOW = 50
DOWNSCALE_QUALITY = 70

#: Quality search: aim the size prediction this share under the budget so it lands inside.
SEARCH_AIM = 0.97
#: A fit using at least this share of the budget is good enough: stop searching (each more
#: encode of a large image costs a second for a percent or two of bytes).
SEARCH_ACCEPT = 0.90
#: The same after a shrink: sizes move in steps there, a closer fit costs many encodes.
SEARCH_ACCEPT_AFTER_SHRINK = 0.75
#: A shrink aims this share under the budget (the size model is rougher across sizes).
SEARCH_SHRINK_AIM = 0.92
#: Encodes tried at one size before shrinking, and shrink rounds before giving up: bound the
#: work on an image that cannot fit.
SEARCH_MAX_TRIES_PER_SIZE = 5
SEARCH_MAX_ROUNDS = 16
#: Strip sample used to predict a full encode's size before doing it: 10 strips of 32 rows
#: from images of a megapixel or more, up to 5 sample encodes, close enough within 5%.
SAMPLE_STRIPS = 10
SAMPLE_ROWS = 32
SAMPLE_MIN_PIXELS = 1_000_000
SAMPLE_TRIES = 5
SAMPLE_CLOSE = 0.95

#: A DCT draft decode is taken when it gives at least this share (linear) of the budget-planned
#: size: the plan is an estimate, and the quality search spends the freed bytes on quality.
DRAFT_SNAP = 0.85
#: A PNG input re-encoded as PNG (zlib 6) at the same pixel count is taken to be at least this
#: share of the input's bytes (inputs are rarely compressed much harder than zlib 6): far over
#: the budget even so, the lossless attempts are skipped.
PNG_RECOMPRESS_FLOOR = 0.6
#: Before a lossless PNG encode that may be over the budget (a noisy photo re-encodes to ~0.9x
#: its input, not the floor above): strips of this many rows, PNG_SAMPLE_STRIPS of them spread
#: over the image, are encoded and their size scaled to the whole image (rows are filtered and
#: deflated nearly independently: within 10% on photos and noise). Over PNG_SKIP_OVER times the
#: budget by that estimate, the full encode (seconds at 4K) is not tried.
PNG_SAMPLE_ROWS = 8
PNG_SAMPLE_STRIPS = 16
PNG_SKIP_OVER = 1.15
#: Half the strips are encoded first; an estimate from them this far (as a factor) above or
#: below PNG_SKIP_OVER times the budget decides alone, at half the sample's cost (a noisy 4K
#: PNG's sample is 0.16 s). Measured: the half sample's estimate is within 2 % of the whole
#: sample's on noise and photos from 1 to 40 MP, so the decisions do not change.
PNG_HALF_SAMPLE_CLEAR = 1.05

# ------------------------------------------------------------------ video encoding (PyAV)

#: libx264 preset: "veryfast" is the speed/size sweet spot on small machines (2 cores); slower
#: presets buy ~10-15 % size for 2-4x the time, which the budget rule does not need.
X264_PRESET = "veryfast"
#: Below this many bits per pixel per frame x264 output turns to mush; we downscale instead.
MIN_BITS_PER_PIXEL = 0.02
#: Never spend more than this: x264 at 0.3 bits per pixel per frame is visually lossless.
MAX_BITS_PER_PIXEL = 0.3
#: Downscaling for bitrate stops at this short side (unless the source is smaller already).
MIN_SHORT_SIDE = 144
#: At most this many encodes per transcode: each is a full pass over the video.
MAX_ATTEMPTS = 4

# ---------------------------------------------------------------------------------- colour

#: An ICC profile whose test colours move less than this (mean CIEDE2000) when converted to
#: sRGB is sRGB under another name (Apple's, HP's, a camera's sRGB): it is dropped, the pixels
#: kept. 0.5 is a quarter of the visible shift below; LittleCMS's own round trip of sRGB gives
#: about 0.1.
COLOUR_SAME_AS_SRGB = 0.5
#: Above this mean CIEDE2000 between what a profile means and what a decoder that ignores it
#: shows (the Kimi processor does: Image.open(...).convert("RGB")), a file is not passed
#: through as is: it gets image.colour_profile and is converted. 2 is where a side-by-side
#: comparison shows the difference (1 is the just-noticeable difference of a trained eye), and
#: it is above what the conversion's own re-encode costs (a JPEG at quality 92: about 0.7), so
#: converting never costs more than it gains. Display P3 measures 3.5, Adobe RGB 5.3, ProPhoto
#: 9.3 on the test cube.
COLOUR_VISIBLE_SHIFT = 2.0
#: The luminance an HDR picture's SDR white sits at when tone-mapped (cd/m2): 100, as FFmpeg's
#: zscale (npl=100) and tonemap filters use, so mediaprep's SDR matches the usual reference.
HDR_REFERENCE_WHITE = 100.0

# ------------------------------------------------------------------ tiles (--tiles)

#: Share of a tile's length it shares with the next one (--tiles): a line of text cut by one
#: tile's edge is whole in the next. 10 % of a 7000 px tile is 700 px, many text lines.
TILE_OVERLAP = 0.10
#: --tiles and image.downscaled are for tall or wide captures (screenshots, documents,
#: panoramas): at least this long:short. A photo the model shrinks stays one image (its
#: subject survives the shrink; text across a page does not).
TILE_MIN_ASPECT = 2.0

# ------------------------------------------------------------------ batch on Dask (--executor dask)

#: At most this many inputs go in one Dask task: a Dask task costs about 20 ms to dispatch
#: (bench/bench_scale.py --executors), 10^6 of them over 5 h; 32 inputs a task cut that to
#: under 1 ms an input, while a chunk's results (sent back when the whole chunk ends) and a
#: killed worker's lost work stay small.
DASK_INPUTS_PER_TASK = 32
#: ... and fewer when the run is small: each worker gets at least this many tasks, so one slow
#: input does not leave the other workers idle at the end (a run of 12 inputs on 3 workers is
#: still one input a task).
DASK_TASKS_PER_WORKER = 4

# ------------------------------------------------------------------ the prep cache (batch/cache.py)

#: A stored file given as bytes up to this size (a journal record, a parts.jsonl line) is kept
#: inside the entry's record.json instead of a file of its own: a cold run's put makes one file
#: fewer each, and a hit opens one fewer. Larger ones (a line with a data URL) stay files, so
#: record.json, read on every hit, stays small.
CACHE_INLINE_BYTES = 64 * 1024

# ------------------------------------------------------------------ parts.idx (batch/parts_file.py)

#: From this many rows up, parts.idx is sorted by numpy over its packed rows (8 bytes a row)
#: instead of a Python object a row (100 bytes); below, numpy's import (0.1 s, 15 MB) would
#: cost more than the sort saves.
SORT_ROWS_WITH_NUMPY = 4096
