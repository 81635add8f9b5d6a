"""Shared fixtures: the generated boundary media (see tests/fixtures/generate.py), and where the
real-world media lives (:data:`REALMEDIA`).

``tests`` is a package (``tests/__init__.py``), so pytest puts the checkout's root on ``sys.path``
and ``tests.fixtures`` / ``tests.videogen`` import like any module: no ``sys.path`` edit here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.generate import generate
from tests.fixtures.once import built_once, session_root

ROOT = Path(__file__).resolve().parents[1]

# The real-world corpus (MANIFEST.tsv says what each file is): $MEDIAPREP_REALMEDIA when set, else
# ../shared/realmedia beside the checkout. Tests that read it skip when the folder is absent:
# ``from tests.conftest import REALMEDIA``.
REALMEDIA = Path(os.environ.get("MEDIAPREP_REALMEDIA") or ROOT.parent / "shared" / "realmedia")
# Phones' files (HEICs, P3 JPEGs, CMYK, HDR clips): $MEDIAPREP_REALMEDIA_PHONES, else
# ../shared/realmedia-phones beside the checkout; skip when absent.
REALMEDIA_PHONES = Path(os.environ.get("MEDIAPREP_REALMEDIA_PHONES")
                        or ROOT.parent / "shared" / "realmedia-phones")


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """Tests never read or fill the user's prep cache (~/.cache/mediaprep)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MEDIAPREP_CACHE_DIR", str(tmp_path_factory.mktemp("prep-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{name: path}`` of every tests.fixtures.generate.FIXTURES entry, made once a session
    (shared by the xdist workers)."""
    return built_once(session_root(tmp_path_factory.getbasetemp()), "generated", generate)


@pytest.fixture(scope="session")
def hostile_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``{name: Case}`` of tests.fixtures.hostile's corpus, built once a session (shared by the
    xdist workers)."""
    from tests.fixtures.hostile import build

    return built_once(session_root(tmp_path_factory.getbasetemp()), "hostile", build)


@pytest.fixture(scope="session")
def ordinary_mode() -> int:
    """The mode of a new ordinary file under this process's umask (what outputs must have)."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask

