"""One exception tree: every exception class mediaprep defines derives from MediaprepError
and is drawn in errors.py's docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import mediaprep
from mediaprep import errors
from mediaprep.errors import MediaprepError


def _exception_classes() -> dict[str, type]:
    found = {}
    for mod in pkgutil.walk_packages(mediaprep.__path__, "mediaprep."):
        if mod.name.endswith("__main__"):
            continue
        module = importlib.import_module(mod.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == mod.name):
                found[f"{mod.name}.{name}"] = obj
    return found


def test_every_exception_derives_from_mediaprep_error_and_is_drawn():
    classes = _exception_classes()
    assert len(classes) >= 20  # the walk really found them
    cli_only = {"mediaprep.cli.UsageFailure"}  # click's own usage error, exit 2
    for qualname, cls in classes.items():
        if qualname in cli_only:
            continue
        assert issubclass(cls, MediaprepError), qualname
        assert cls.__name__ in errors.__doc__, f"{qualname} is not drawn in errors.py"
