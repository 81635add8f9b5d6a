"""The one base of every exception mediaprep raises, and the tree under it.

``except mediaprep.MediaprepError`` catches them all; each keeps its other bases (e.g.
``ValueError`` for bad settings) so existing ``except ValueError`` code still works. A finding,
not an exception, is how an input's problem is told: these are for the caller's mistakes, a
run that cannot go on, and the steps inside a backend that a kind turns into findings.

    MediaprepError
    ├── SettingsError (ValueError)          settings.py: options that cannot work together
    ├── LimitError (ValueError)             limits.py: a --limit override that cannot apply
    ├── ConfigError (ValueError)            config.py: a config file that cannot be read
    ├── ResourceError (ValueError)          resource.py: an input that cannot be one
    ├── RequestLimitError (ValueError)      emit/request.py: a request over a request limit
    ├── FetchError                          net/fetch.py: a URL input that cannot be fetched
    ├── UploadError                         upload/http.py: an upload failed (upload.failed)
    ├── BombError                           backends/pillow.py: refused before decoding
    ├── DecodeTimeout (OSError)             backends/pillow.py: a decode past its time
    ├── BudgetError (ValueError)            backends/pillow_encode.py: no encoding fits
    ├── VideoEncodeError                    backends/av_encode.py
    │   ├── RemuxNotPossible
    │   ├── DoesNotFit
    │   └── VerifyError
    ├── FrameExtractionError                backends/av_frames.py
    │   ├── NoVideoStream
    │   ├── NoFrames
    │   └── UnreadableVideo
    ├── BatchError (ValueError)             batch/folder.py: a run that cannot start as asked
    ├── RunStopped                          batch/folder.py: a run that cannot go on (full disk)
    ├── ManifestError (ValueError)          batch/inputs.py: a manifest that cannot be read
    ├── BatchRequestError                   batch/requests.py: --batch-requests cannot be made
    ├── WorkerStartError (RuntimeError)     batch/pool.py: worker processes cannot start
    ├── ExecutorUnavailable (RuntimeError)  batch/executors.py: e.g. Dask is not installed
    ├── CacheRootRefused (OSError)          batch/cache.py: a cache folder that is not ours
    ├── FramesDirRefused                    batch/frames_dir.py: frames -o would touch files
    │                                       it did not write
    ├── FramesOutputError                   batch/extract.py: frames -o cannot be written
    └── _Damaged                            batch/cache.py: a cache entry not as recorded
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["MediaprepError", "blank_path_problem"]


class MediaprepError(Exception):
    """Base class of mediaprep's own exceptions (settings, sources, limits, fetch, encode)."""


def blank_path_problem(value: Any) -> str | None:
    """Why ``value``, given as a path, names no file: empty or only blanks (None: not blank).

    ``Path("")`` is the current folder, so an unset shell variable (``prep "$DIR" -o out``)
    would take the whole working directory. The library raises with this message
    (``ResourceError``, ``BatchError``), the CLI makes it a usage error.
    """
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text is None or text.strip():
        return None
    return f"an empty path ({text!r}) names no file (is a variable unset?)"
