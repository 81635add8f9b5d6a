"""Shared fixtures: the generated boundary media (see fixtures/generate.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `fixtures` is a top-level folder of the repository, not installed
    sys.path.insert(0, str(ROOT))

from fixtures.generate import generate  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Tests never read or fill the user's prep cache (~/.cache/mediaprep)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MEDIAPREP_CACHE_DIR", str(tmp_path_factory.mktemp("prep-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{name: path}`` of every fixture in fixtures.generate.FIXTURES, made once per session."""
    return generate(tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="session")
def ordinary_mode() -> int:
    """The mode of a new ordinary file under this process's umask (what outputs must have)."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
