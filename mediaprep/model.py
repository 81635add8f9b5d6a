"""Deprecated name of :mod:`mediaprep.types` (renamed: "model" means the LLM everywhere else).

``from mediaprep.model import Prepared`` keeps working, with a DeprecationWarning.
"""

import warnings

from . import types as _types


def __getattr__(name: str) -> object:
    warnings.warn("mediaprep.model is now mediaprep.types", DeprecationWarning, stacklevel=2)
    return getattr(_types, name)
