"""The one base of every exception mediaprep raises on purpose.

``except mediaprep.MediaprepError`` catches them all; each keeps its other bases (e.g.
``ValueError`` for bad settings) so existing ``except ValueError`` code still works.
"""

from __future__ import annotations

__all__ = ["MediaprepError"]


class MediaprepError(Exception):
    """Base class of mediaprep's own exceptions (settings, sources, limits, fetch, encode)."""
