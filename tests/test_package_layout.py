"""The floor plan of the package: one subpackage per stage of the data flow, each importing only from the
stages below it, and no import circle between modules (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cnnzoo"
LEAVES = ("errors", "terminal", "atomic", "precision", "tensorflow_import", "host_memory", "safe_read")
STAGES = ("layers", "data", "config", "runs", "model", "training", "evaluation", "explain", "deploy", "cli")


def module_name(path: Path) -> str:
    parts = ["cnnzoo", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """Every cnnzoo module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cnnzoo":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "cnnzoo")
    return {_owner(name) for name in found} - {module_name(path)}


def _owner(name: str) -> str:
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


GRAPH = {name: imported_modules(path) for name, path in MODULES.items()}


def stage(module: str) -> int:
    """-1 for the root leaves, else the stage's place in STAGES."""
    top = module.split(".")[1] if "." in module else ""
    if top in LEAVES:
        return -1
    return STAGES.index(top)


def test_every_module_has_a_room():
    homeless = [m for m in MODULES if m not in ("cnnzoo", "cnnzoo.__main__", "cnnzoo.configs")
                and m.split(".")[1] not in LEAVES + STAGES]
    assert not homeless, f"modules outside the stages and leaves: {homeless}"


def test_stages_import_only_downward():
    upward = [f"{m} -> {t}" for m, targets in GRAPH.items() if m not in ("cnnzoo", "cnnzoo.__main__")
              for t in targets if t != "cnnzoo" and stage(t) > stage(m)]
    assert not upward, "imports that run up the stages:\n" + "\n".join(sorted(upward))


def test_leaves_import_only_leaves():
    wrong = [f"{m} -> {t}" for m, targets in GRAPH.items() if m.split(".")[-1] in LEAVES
             for t in targets if t != "cnnzoo" and stage(t) != -1]
    assert not wrong, wrong


def test_no_import_circle():
    cycles = _cycles(GRAPH)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_command_modules_do_not_import_each_other():
    commands = [m for m in MODULES if m.startswith("cnnzoo.cli.") and m != "cnnzoo.cli.common"]
    crossing = [f"{m} -> {t}" for m in commands for t in GRAPH[m] if t.startswith("cnnzoo.cli") and
                t != "cnnzoo.cli.common"]
    assert not crossing, crossing


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_circle_finder_finds_circles(graph, expected):
    assert _cycles(graph) == expected
