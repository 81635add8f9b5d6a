"""Folder runs as a library call: :func:`prep_many` and :func:`check_many` (see
:mod:`mediaprep.batch.folder`), over inputs, tasks, journal, cache, parts file and runner; and
the ``frames`` command's :func:`frames_to_folder` (:mod:`mediaprep.batch.extract`).

Importing this is cheap: PyAV, numpy and Pillow load when a run needs them.
"""

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

__all__ = ["DEFAULT_TIMEOUT", "BatchError", "BatchResult", "CheckResult", "FramesOutcome",
           "FramesOutputError", "InputResult", "PrepOptions", "RunStopped", "check_many",
           "frames_to_folder", "prep_many"]
