"""Layers point one way: models import nothing of the app but extensions; the protocol package
sits on services and imports no blueprint."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

IDP = Path(__file__).resolve().parents[2] / "idp"
BLUEPRINTS = ("auth", "register", "recovery", "account", "admin", "dev")


def _imports(path: Path) -> set[str]:
    """Every idp module a file imports, as dotted names relative to the idp package."""
    package = path.relative_to(IDP).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.add(".".join((*base, *(node.module.split(".") if node.module else ()))))
            elif node.module and node.module.startswith("idp"):
                found.add(node.module.removeprefix("idp").lstrip("."))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("idp").lstrip(".") for a in node.names if a.name.startswith("idp"))
    return found


@pytest.mark.parametrize("path", sorted((IDP / "models").glob("*.py")), ids=lambda p: p.name)
def test_models_import_nothing_but_extensions(path):
    outside = {m for m in _imports(path) if m and not m.startswith("models") and m != "extensions"}
    assert not outside, f"{path.name} imports {outside}"


@pytest.mark.parametrize("path", sorted((IDP / "oauth").glob("*.py")), ids=lambda p: p.name)
def test_the_protocol_package_imports_no_blueprint(path):
    blueprints = {m for m in _imports(path) if m.split(".")[0] in BLUEPRINTS}
    assert not blueprints, f"{path.name} imports {blueprints}"
