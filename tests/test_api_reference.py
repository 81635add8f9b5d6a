"""The API reference (issue 27, item 11): ``Settings`` documents its fields, no public class is
left with the signature dataclasses write for it, the reference is built in the docstrings'
format (Google) by CI and by README's command, and ``docs/api/`` (pdoc's output) is not
committed."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mediaprep import Settings

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = ["mediaprep", "mediaprep.emit", "mediaprep.batch"]
PDOC_COMMAND = re.compile(r"python -m pdoc (.*?) mediaprep mediaprep\.emit mediaprep\.batch")


def attributes_section(doc: str) -> str:
    return doc.split("Attributes:", 1)[1] if "Attributes:" in doc else ""


def test_settings_docstring_documents_every_field() -> None:
    section = attributes_section(Settings.__doc__ or "")
    assert section, "Settings has no Attributes: section"
    missing = [f.name for f in dataclasses.fields(Settings)
               if not re.search(rf"^\s+{f.name}: \S", section, re.M)]
    assert not missing, f"Settings' docstring does not document {missing}"


def test_no_public_class_keeps_the_generated_signature_as_its_docstring() -> None:
    generated = []
    for mod_name in PUBLIC_MODULES:
        mod = importlib.import_module(mod_name)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj) and (obj.__doc__ or "").startswith(f"{obj.__name__}("):
                generated.append(f"{mod_name}.{name}")
    assert not generated, f"no docstring of their own: {generated}"


@pytest.mark.parametrize("where", [".ci/run", "README.md"])
def test_the_reference_is_built_in_google_format(where: str) -> None:
    commands = PDOC_COMMAND.findall((ROOT / where).read_text(encoding="utf-8"))
    assert commands, f"{where} does not build the API reference"
    assert all("--docformat google" in options for options in commands), commands


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="not a git checkout")
def test_docs_folder_is_ignored_by_git() -> None:
    done = subprocess.run(["git", "check-ignore", "-q", "docs/api/index.html"], cwd=ROOT)
    assert done.returncode == 0, "docs/api/ is not in .gitignore"


def test_pdoc_renders_sections_and_no_raw_roles() -> None:
    pytest.importorskip("pdoc")
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="google")
    try:
        settings_page = pdoc.pdoc("mediaprep.settings")
        pages = {m: pdoc.pdoc(m) for m in PUBLIC_MODULES}
    finally:
        pdoc.render.configure()
    for field in dataclasses.fields(Settings):  # Attributes: as a list, not a run-on paragraph
        assert f"<li><strong>{field.name}:</strong>" in settings_page, field.name
    for name, html in pages.items():
        text = re.sub(r'<div class="pdoc-code codehilite">.*?</div>', "", html, flags=re.S)
        assert '<h6 id="returns">' in text or name == "mediaprep.emit"
        for raw in ("~mediaprep", "``", ":class:", ":func:"):
            assert raw not in text, f"{name}: {raw!r} shows as written"
