"""The package's shape (docs/architecture.md): no import cycles between tracejit's
modules, and no module imports another's ``_private`` names. Read from the source with
ast, so the test sees what a reader sees."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tracejit"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _target(module: str, node: ast.ImportFrom | ast.Import, name: str | None) -> str | None:
    """The tracejit module an import statement loads (a submodule where ``name`` is
    one), or None for imports from outside the package."""
    if isinstance(node, ast.Import):
        base = name
    else:
        here = module.split(".")
        if node.level:
            package = here if MODULES[module].name == "__init__.py" else here[:-1]
            package = package[:len(package) - node.level + 1]
            base = ".".join(package + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        if name and f"{base}.{name}" in MODULES:
            base = f"{base}.{name}"
    if not base or not base.startswith("tracejit"):
        return None
    while base not in MODULES and "." in base:
        base = base.rsplit(".", 1)[0]
    return base if base in MODULES else None


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(module: str, *, in_functions: bool):
    """(statement, imported name or None) of every import run when ``module`` loads;
    with ``in_functions``, also those inside functions and methods."""
    tree = ast.parse(MODULES[module].read_text())

    def visit(nodes):
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    yield node, alias.name
            elif isinstance(node, ast.If) and _is_type_checking(node):
                continue
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                if in_functions:
                    yield from visit(ast.iter_child_nodes(node))
            else:
                yield from visit(ast.iter_child_nodes(node))

    yield from visit(tree.body)


def _graph(in_functions: bool) -> dict[str, set[str]]:
    edges = {m: set() for m in MODULES}
    for module in MODULES:
        for node, name in _imports(module, in_functions=in_functions):
            target = _target(module, node, name)
            # a module's own package is loaded before it: not a dependency it creates
            if target and target != module and not module.startswith(target + "."):
                edges[module].add(target)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                connect(w)
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

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def test_the_walker_sees_a_cycle_when_there_is_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges = _graph(in_functions=False)
    assert "tracejit.ir.core" in edges["tracejit.passes.pipeline"]


def test_no_import_cycles_between_modules_at_load_time():
    assert _cycles(_graph(in_functions=False)) == []


def test_no_import_cycles_even_through_imports_inside_functions():
    assert _cycles(_graph(in_functions=True)) == []


def test_no_module_imports_another_modules_private_names():
    private = []
    for module in MODULES:
        for node, name in _imports(module, in_functions=True):
            target = _target(module, node, name)
            if (isinstance(node, ast.ImportFrom) and target and name.startswith("_")
                    and not name.startswith("__")):
                private.append(f"{module}: from {target} import {name}")
    assert private == []
