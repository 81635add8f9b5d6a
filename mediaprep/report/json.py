"""The report as pretty-printed JSON (the ``check --format json`` object of docs/formats.md)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from . import RunReport


def jsonable(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps`` turns into valid, strict JSON.

    Why: ``NaN``/``Infinity`` (e.g. an unknown duration) are not JSON and break strict
    parsers, so they become strings; tuples become lists; paths, numpy scalars and other
    objects become their natural JSON value or their ``str``.
    """
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=repr)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        try:
            return jsonable(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def dumps(value: Any) -> str:
    """Stable pretty JSON, ASCII only.

    Why ASCII: CI logs and Windows pipes may not be UTF-8, and paths can carry
    undecodable bytes (lone surrogates); ``\\uXXXX`` escapes survive all of that.
    """
    return json.dumps(jsonable(value), indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def render(report: RunReport) -> str:
    """The report itself, pretty-printed, key order kept as given."""
    return dumps(report)
