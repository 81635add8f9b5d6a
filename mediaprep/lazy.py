"""Names a package exports but imports on first use (PEP 562): ``import mediaprep`` or
``import mediaprep.batch`` costs the package file alone, and a command loads only the modules
it reaches (``mediaprep frames`` never loads the journal, the cache or the image kind)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, str], namespace: dict[str, Any],
                 public: Iterable[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose ``namespace`` (its
    ``globals()``) gets each name of ``homes`` (name -> the module defining it, relative to the
    package) from that module when first asked for; ``public`` is the package's ``__all__``,
    which ``dir()`` lists with the module's dunder names."""
    names = tuple(public)

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*names, *(k for k in namespace if k.startswith("__"))})

    return __getattr__, __dir__
