"""The rooms of the house keep to their doors: the gateway never imports a
service's code, and the shared package imports neither side (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.processes import REPO


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offending_imports(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for module in imported_modules(path):
            if module.split(".")[0] in forbidden:
                found.append(f"{path.relative_to(REPO)} imports {module}")
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("gateway", ("services", "tools")), ("common", ("gateway", "services", "tools"))],
)
def test_package_keeps_out_of_other_rooms(package, forbidden):
    assert offending_imports(package, forbidden) == []


def test_the_check_sees_a_forbidden_import(tmp_path, monkeypatch):
    # The test above must be able to fail: a planted import is reported.
    (tmp_path / "gateway").mkdir()
    (tmp_path / "gateway" / "bad.py").write_text("from services.classifier import core\n")
    monkeypatch.setattr("tests.test_layout.REPO", tmp_path)
    assert offending_imports("gateway", ("services",)) == [
        "gateway/bad.py imports services.classifier"
    ]
