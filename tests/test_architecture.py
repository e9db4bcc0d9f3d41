"""The package's import graph flows one way: no cycles, settings types and declarations at the bottom, stages above
the library, the CLI on top (docs/ARCHITECTURE.md, "The map"). Every import counts, also those inside functions
(lazy) and under TYPE_CHECKING: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "benchmark"

#: modules every other module may build on; they import only each other
BOTTOM = {"benchmark.errors", "benchmark.paths", "benchmark.hashing", "benchmark.labels", "benchmark.processes",
          "benchmark.atomic", "benchmark.tables", "benchmark.plugins", "benchmark.design", "benchmark.config",
          "benchmark.textfiles"}
REGISTRIES = {"benchmark.sources", "benchmark.methods.registry", "benchmark.frozen.registry"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("benchmark"):
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    deps.add(candidate if candidate in modules else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("benchmark")}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, or None (depth-first search with colours)."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if colour.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in colour and (found := visit(dep)):
                return found
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if node not in colour and (found := visit(node)):
            return found
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _graph()


def test_the_import_graph_has_no_cycle(graph):
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_planted_cycle(graph):
    planted = {**graph, "benchmark.errors": graph["benchmark.errors"] | {"benchmark.cli"}}
    assert _cycle(planted) is not None


def test_bottom_modules_import_only_each_other(graph):
    upward = {m: sorted(graph[m] - BOTTOM) for m in BOTTOM if graph[m] - BOTTOM}
    assert not upward, upward


def test_registries_never_import_stages_or_the_cli(graph):
    for module in REGISTRIES:
        assert not {d for d in graph[module] if d.startswith(("benchmark.stages", "benchmark.cli"))}, module


def test_only_the_cli_imports_the_stages(graph):
    importers = {m for m, deps in graph.items() if any(d.startswith("benchmark.stages") for d in deps)}
    assert {m for m in importers if not m.startswith("benchmark.stages")} <= {"benchmark.cli"}, importers


def test_settings_types_import_no_registry_and_no_library(graph):
    assert graph["benchmark.config"] <= {"benchmark.errors", "benchmark.paths"}, graph["benchmark.config"]
