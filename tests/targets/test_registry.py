"""Targets are objects with one home each: nothing outside mediaprep/targets/ names one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from mediaprep.limits import SOURCES, TABLES, TARGETS
from mediaprep.targets import REGISTRY

PKG = Path(__file__).resolve().parents[2] / "mediaprep"


def test_every_target_has_a_module_and_a_complete_table():
    assert set(TARGETS) == set(REGISTRY) >= {"dashscope", "moonshot", "vllm"}
    for name, target in REGISTRY.items():
        assert (PKG / "targets" / f"{name}.py").is_file()
        assert TABLES[name] is target.table
        for row in target.table.values():
            assert row.source in SOURCES, (name, row.key)
        assert {"dialects", "transports", "models.vision", "tokens.context"} <= set(
            target.table)
        assert target.default_model in target.models


def test_no_module_outside_targets_branches_on_a_target_name():
    names = set(REGISTRY)
    # comparisons of anything named *target* with a literal target name
    pattern = re.compile(r"target\w*\s*(==|!=|\bin\b|\bnot in\b)")
    offenders = []
    for path in PKG.rglob("*.py"):
        if "targets" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                text = ast.unparse(node)
                consts = {c.value for c in ast.walk(node) if isinstance(c, ast.Constant)}
                if pattern.search(text) and consts & names:
                    offenders.append(f"{path.relative_to(PKG)}: {text}")
    assert offenders == []
