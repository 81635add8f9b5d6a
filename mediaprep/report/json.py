"""The report as pretty-printed JSON (the ``check --format json`` object of docs/formats.md)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from . import RunReport


def _number(value: float) -> Any:
    return value if math.isfinite(value) else str(value)


def _items(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return sorted((jsonable(v) for v in value), key=repr)  # a set


def _scalar(value: Any) -> Any:
    """A numpy scalar's Python value, or the object's ``str``."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def jsonable(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps`` turns into valid, strict JSON.

    Why: ``NaN``/``Infinity`` (e.g. an unknown duration) are not JSON and break strict
    parsers, so they become strings; tuples become lists; paths, numpy scalars and other
    objects become their natural JSON value or their ``str``.
    """
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return _items(value)
    return _scalar(value)


def dumps(value: Any) -> str:
    """Stable pretty JSON, ASCII only.

    Why ASCII: CI logs and Windows pipes may not be UTF-8, and paths can carry
    undecodable bytes (lone surrogates); ``\\uXXXX`` escapes survive all of that.
    """
    return json.dumps(jsonable(value), indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def render(report: RunReport) -> str:
    """The report itself, pretty-printed, key order kept as given."""
    return dumps(report)
