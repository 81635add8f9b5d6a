"""The package's shape: no import cycle, no module named like a public function, a plain
module object whose public names are the documented functions and classes; and the tests' shape:
tests/ mirrors the package, the fixture generators live in tests/fixtures, the real media is found
from one place."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import types
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "mediaprep"
TESTS = Path(__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """mediaprep modules ``path`` imports anywhere (functions too), not under TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for sub in node.body for n in ast.walk(sub))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("mediaprep")}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        targets = set()
        for m in _imports(path, name):
            while m not in files and "." in m:
                m = m.rsplit(".", 1)[0]
            if m in files and m != name:
                targets.add(m)
        graph[name] = targets
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        stack.pop()
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    assert sum(len(t) for t in graph.values()) > 50  # the walk really saw the imports
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_module_is_named_like_a_public_function():
    names = {_module_name(p).rsplit(".", 1)[-1] for p in PKG.rglob("*.py")}
    assert not names & {"check", "probe", "prepare"}


def test_mediaprep_is_a_plain_module_with_its_public_functions():
    proc = subprocess.run([sys.executable, "-c", (
        "import types, mediaprep, mediaprep.kinds.image, mediaprep.batch.journal\n"
        "assert type(mediaprep) is types.ModuleType, type(mediaprep)\n"
        "for n in ('probe', 'check', 'prepare'):\n"
        "    f = getattr(mediaprep, n)\n"
        "    assert callable(f) and not isinstance(f, types.ModuleType), n\n"
        "from mediaprep import Report, Prepared, MediaInfo, Finding\n"
        "assert Report.__module__ == 'mediaprep.types'\n"
        "assert sorted(mediaprep.__all__) == sorted(mediaprep._HOMES)\n"
        "try:\n    mediaprep.nothing_here\nexcept AttributeError:\n    print('ok')\n")],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert isinstance(sys.modules.get("types"), types.ModuleType)


def test_tests_mirror_the_package():
    folders = {p.name for p in TESTS.iterdir() if (p / "__init__.py").is_file()} - {"fixtures"}
    subpackages = {p.parent.name for p in PKG.glob("*/*.py")}
    assert {"kinds", "backends", "batch"} <= folders <= subpackages, (folders, subpackages)
    for folder in folders:  # each folder holds tests, not only an __init__.py
        assert list((TESTS / folder).glob("test_*.py")), folder


def test_the_fixture_generators_are_a_package_under_tests():
    assert not (PKG.parent / "fixtures").exists()
    assert (TESTS / "fixtures" / "__init__.py").is_file()
    assert "sys.path.insert" not in (TESTS / "conftest.py").read_text()
    proc = subprocess.run([sys.executable, "-c", "import tests.fixtures.generate, "
                           "tests.fixtures.hostile, tests.videogen; print('ok')"],
                          cwd=PKG.parent, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def _string_constants(path: Path) -> list[str]:
    return [n.value for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_real_media_is_found_from_one_place():
    """Only tests/conftest.py names the real-media folder (REALMEDIA): relative to the checkout
    or from $MEDIAPREP_REALMEDIA, never an absolute path."""
    def names_it(text: str) -> bool:
        return text == "realmedia" or text.startswith("/") and "realmedia" in text

    naming = sorted(str(p.relative_to(TESTS)) for p in TESTS.rglob("*.py")
                    if p.name != "test_layout.py" and any(map(names_it, _string_constants(p))))
    assert naming == ["conftest.py"]
    env = {**os.environ, "MEDIAPREP_REALMEDIA": "/elsewhere/media"}
    env.pop("PYTHONPATH", None)
    code = "from tests.conftest import REALMEDIA; print(REALMEDIA)"
    got = subprocess.run([sys.executable, "-c", code], cwd=PKG.parent, env=env,
                         capture_output=True, text=True, timeout=120)
    assert got.stdout.strip() == "/elsewhere/media", got.stderr
    env.pop("MEDIAPREP_REALMEDIA")
    got = subprocess.run([sys.executable, "-c", code], cwd=PKG.parent, env=env,
                         capture_output=True, text=True, timeout=120)
    assert got.stdout.strip() == str(PKG.parent.parent / "shared" / "realmedia"), got.stderr
