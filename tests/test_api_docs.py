"""The public API is documented: every public function and class has a docstring, and a
function's docstring names each of its parameters, what it returns and what it raises."""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC_MODULES = ["mediaprep", "mediaprep.emit", "mediaprep.batch"]


def _public() -> list[tuple[str, object]]:
    out = []
    for mod_name in PUBLIC_MODULES:
        mod = importlib.import_module(mod_name)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                out.append((f"{mod_name}.{name}", obj))
    return out


@pytest.mark.parametrize("name,obj", _public(), ids=[n for n, _ in _public()])
def test_public_names_are_documented(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert len(doc) > 20, f"{name} has no docstring"
    if inspect.isfunction(obj):
        params = [p for p in inspect.signature(obj).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        missing = [p.name for p in params if p.name not in doc]
        assert not missing, f"{name}: docstring does not name {missing}"
        assert "Return" in doc, f"{name}: docstring does not say what it returns"
        assert "Raises" in doc, f"{name}: docstring does not say what it raises"
