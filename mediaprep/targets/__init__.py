"""Where media goes: one module per target, each a :class:`~mediaprep.targets.base.Target`.

``Settings(target=...)`` looks the name up here once; kinds, emit and batch then ask
``settings.target`` (its table, models, token rule and video policy). To add a target, write a
module beside ``dashscope.py`` and list its ``TARGET`` in :data:`REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from . import dashscope, moonshot, vllm
from .base import Limit, Source, Target, TokenRule

__all__ = ["NAMES", "REGISTRY", "Limit", "Source", "Target", "TokenRule", "get_target"]

REGISTRY: Mapping[str, Target] = MappingProxyType(
    {t.name: t for t in (dashscope.TARGET, moonshot.TARGET, vllm.TARGET)})
NAMES = tuple(REGISTRY)


def get_target(name: str | Target) -> Target:
    """The target called ``name`` (a :class:`Target` is returned as it is).

    Raises:
        KeyError: no target has that name.
    """
    if isinstance(name, Target):
        return name
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown target {name!r}; choose from {', '.join(NAMES)}") from None
