"""mediaprep: make images and videos safe to send to Kimi's multimodal chat models.

    import mediaprep
    info = mediaprep.probe("clip.mov")
    report = mediaprep.check("clip.mov", target="dashscope", transport="base64")
    prepared = mediaprep.prepare("clip.mov", target="dashscope", dialect="openai", fps=2)

The names below are imported on first use: ``import mediaprep`` (and so every ``mediaprep``
command) does not pay for PyAV, numpy and Pillow before it knows it needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

if TYPE_CHECKING:
    from .api import check, prepare, probe
    from .errors import MediaprepError
    from .limits import Limit, Limits, limits_for
    from .settings import Settings, SettingsError
    from .types import CODES, Finding, MediaInfo, Prepared, Report

# public name -> the module that defines it
_HOMES = {
    "check": ".api",
    "probe": ".api",
    "Report": ".types",
    "CODES": ".types",
    "Finding": ".types",
    "MediaInfo": ".types",
    "Limit": ".limits",
    "Limits": ".limits",
    "MediaprepError": ".errors",
    "limits_for": ".limits",
    "Prepared": ".types",
    "prepare": ".api",
    "Settings": ".settings",
    "SettingsError": ".settings",
}

__all__ = [
    "CODES",
    "Finding",
    "Limit",
    "Limits",
    "MediaInfo",
    "MediaprepError",
    "Prepared",
    "Report",
    "Settings",
    "SettingsError",
    "check",
    "limits_for",
    "prepare",
    "probe",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals(), __all__)
