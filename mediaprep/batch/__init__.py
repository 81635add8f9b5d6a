"""Folder runs as a library call: :func:`prep_many` and :func:`check_many` (see
:mod:`mediaprep.batch.run`), over inputs, tasks, journal, cache, parts file and runner.

Importing this is cheap: PyAV, numpy and Pillow load when a run needs them.
"""

from .run import (
    DEFAULT_TIMEOUT,
    BatchError,
    BatchResult,
    CheckResult,
    InputResult,
    RunStopped,
    check_many,
    prep_many,
)

__all__ = ["DEFAULT_TIMEOUT", "BatchError", "BatchResult", "CheckResult", "InputResult",
           "RunStopped", "check_many", "prep_many"]
