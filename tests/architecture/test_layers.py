"""The import graph: layers point one way and nothing imports in a circle.

Read from the source with ``ast`` (imports inside functions count too: a deferred import that
closes a circle is still a circle, only hidden).  A failure names the modules involved."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("idp", "clients")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module a dotted name lives in (``idp.services.limits.KeyedLimit`` → ``idp.services.limits``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            names = [f"{origin}.{alias.name}" for alias in node.names] or [origin]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target and target != module and not (module.startswith(target + ".") and target == package):
                targets.add(target)
    return targets


def import_graph() -> dict[str, set[str]]:
    graph = {m: _imports(m, p) for m, p in MODULES.items()}
    # importing a package's submodule runs the package's __init__ first, but that is not an
    # edge between the two: drop parent-package edges.
    return {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


LAYERS = {
    # a module of the left may not import one of the right
    "idp.models": ("idp.services", "idp.flows", "idp.oauth", "idp.auth", "idp.register", "idp.recovery",
                   "idp.account", "idp.privacy", "idp.admin", "idp.sandbox", "idp.cli"),
    "idp.services": ("idp.flows", "idp.oauth", "idp.auth", "idp.register", "idp.recovery", "idp.account",
                     "idp.privacy", "idp.admin", "idp.sandbox", "idp.cli", "idp.form_feedback"),
    "idp.flows": ("idp.oauth", "idp.auth", "idp.register", "idp.recovery", "idp.account", "idp.admin",
                  "idp.sandbox", "idp.cli"),
    "idp.oauth": ("idp.auth", "idp.register", "idp.recovery", "idp.account", "idp.privacy", "idp.admin", "idp.sandbox",
                  "idp.cli", "idp.flows"),
    "clients": ("idp",),
}


def _is_form(module: str) -> bool:
    """A blueprint's form classes: a step of a flow names its form, so flows may import these."""
    return module.endswith(".forms")


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layers_point_one_way(layer):
    graph = import_graph()
    wrong = sorted(
        f"{m} -> {t}"
        for m, targets in graph.items() if m == layer or m.startswith(layer + ".")
        for t in targets
        if any(t == f or t.startswith(f + ".") for f in LAYERS[layer])
        and not (layer == "idp.flows" and _is_form(t))
    )
    assert wrong == []


def test_forms_are_leaves_under_the_flows():
    """Forms may use services and rules, never a flow or a view."""
    graph = import_graph()
    above = ("idp.flows", "idp.cli") + tuple(
        f"idp.{bp}.{m}" for bp in ("auth", "register", "recovery", "account", "admin") for m in ("routes", "edit"))
    wrong = sorted(f"{m} -> {t}" for m, targets in graph.items() if _is_form(m) for t in targets
                   if any(t == f or t.startswith(f + ".") for f in above))
    assert wrong == []


FORK_EACH = """
import importlib, os, sys, traceback
# third-party libraries are loaded once before forking; each child imports only our modules
for lib in ("flask", "flask_sqlalchemy", "flask_wtf", "flask_limiter", "flask_session", "flask_migrate",
            "sqlalchemy", "authlib.integrations.flask_oauth2", "authlib.oidc.core", "joserfc.jwt", "redis",
            "fakeredis", "requests", "cryptography", "argon2", "captcha.image", "phonenumbers",
            "stdnum.cn.ric", "wtforms", "prometheus_client", "limits", "alembic", "click"):
    try:
        importlib.import_module(lib)
    except ImportError:
        pass
failed = []
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            __import__(name)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    if os.waitpid(pid, 0)[1] != 0:
        failed.append(name)
print("FAILED:" + ",".join(failed))
"""


def test_every_module_imports_alone():
    """Each of our modules imports alone (none works only because another module happened to be
    imported first): one child process per module, forked from an interpreter that holds the
    third-party libraries but none of ours."""
    names = sorted(m for m in MODULES if not m.endswith("__main__"))
    result = subprocess.run([sys.executable, "-c", FORK_EACH, *names], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.stdout.strip().endswith("FAILED:"), result.stdout[-500:] + result.stderr[-3000:]
