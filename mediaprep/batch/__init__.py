"""Folder runs as a library call: :func:`prep_many` and :func:`check_many` (see
:mod:`mediaprep.batch.folder`), over inputs, tasks, journal, cache, parts file and runner; and
the ``frames`` command's :func:`frames_to_folder` (:mod:`mediaprep.batch.extract`).

Importing this is cheap: each name is imported on first use (``mediaprep frames`` loads the
extract side alone), and PyAV, numpy and Pillow load when a run needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .extract import FramesOutcome, FramesOutputError, frames_to_folder
    from .folder import (
        DEFAULT_TIMEOUT,
        BatchError,
        BatchResult,
        CheckResult,
        InputResult,
        PrepOptions,
        RunStopped,
        check_many,
        prep_many,
    )

# public name -> the module that defines it
_HOMES = {
    **dict.fromkeys(("FramesOutcome", "FramesOutputError", "frames_to_folder"), ".extract"),
    **dict.fromkeys(("DEFAULT_TIMEOUT", "BatchError", "BatchResult", "CheckResult", "InputResult",
                     "PrepOptions", "RunStopped", "check_many", "prep_many"), ".folder"),
}

__all__ = ["DEFAULT_TIMEOUT", "BatchError", "BatchResult", "CheckResult", "FramesOutcome",
           "FramesOutputError", "InputResult", "PrepOptions", "RunStopped", "check_many",
           "frames_to_folder", "prep_many"]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals(), __all__)
