"""mediaprep: make images and videos safe to send to Kimi's multimodal chat models.

    import mediaprep
    info = mediaprep.probe("clip.mov")
    report = mediaprep.check("clip.mov", target="dashscope", transport="base64")
    prepared = mediaprep.prepare("clip.mov", target="dashscope", dialect="openai", fps=2)
"""

from .api import check, probe
from .check import Report
from .findings import CODES, Finding
from .info import MediaInfo
from .limits import Limit, Limits, limits_for
from .prepare import Prepared, prepare  # the function shadows the subpackage name
from .settings import Settings, SettingsError

__all__ = [
    "CODES",
    "Finding",
    "Limit",
    "Limits",
    "Prepared",
    "MediaInfo",
    "Report",
    "Settings",
    "SettingsError",
    "check",
    "limits_for",
    "prepare",
    "probe",
]
