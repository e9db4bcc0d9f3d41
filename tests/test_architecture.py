"""The package's import graph flows one way (docs/ARCHITECTURE.md, "The map"): its folders are layers, each importing
only the layers below it; no module cycle; the settings types at the bottom of the domain; stages above the library
and the CLI on top. Every import counts, also those inside functions (lazy) and under TYPE_CHECKING: a lazy import is
still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "benchmark"
TESTS = Path(__file__).resolve().parent

#: the package's folders (and top-level modules) from the bottom up; a module imports its own folder and lower layers
LAYERS: tuple[frozenset[str], ...] = tuple(frozenset(layer) for layer in (
    {"infra"},                                             # errors, paths, files, processes, probes, plug-in loading
    {"core"},                                              # labels, designs, settings types, tables, protocol, metrics
    {"stats", "frozen", "methods"},                        # statistics; frozen models; methods (their registries)
    {"sources"},                                           # the outputs table's sources (images run frozen models)
    {"experiment", "tuning", "evaluation", "studies"},     # params and the run matrix; Optuna; analyses; studies
    {"report"},
    {"stages"},
    {"tools"},                                             # benchmarks and scaling curves time the stages
    {"cli"},
    {"__main__", "__init__"},                              # `python -m benchmark` and the console script call the CLI
))
REGISTRIES = {"benchmark.sources", "benchmark.methods.method_registry", "benchmark.frozen.model_registry"}
#: the most modules the package's top level may hold (the CLI and the package's face)
TOP_LEVEL_LIMIT = 8


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


def _folder(module: str) -> str:
    """``benchmark.stats.cells`` -> ``stats``; a top-level module is its own folder (``cli``); the package -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(folder: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if folder in layer)


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


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """Imports into the same or a higher layer's other folder: ``module -> dependency``."""
    return sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                  if _folder(d) != _folder(m) and _layer(_folder(d)) >= _layer(_folder(m)))


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _graph()


def test_the_import_graph_has_no_cycle(graph):
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_planted_cycle(graph):
    planted = {**graph, "benchmark.infra.errors": graph["benchmark.infra.errors"] | {"benchmark.cli"}}
    assert _cycle(planted) is not None


def test_every_folder_of_the_package_is_a_declared_layer(graph):
    assert {_folder(m) for m in graph} <= set().union(*LAYERS)


def test_folders_import_only_lower_layers(graph):
    assert _upward(graph) == []


def test_the_layer_check_finds_a_planted_upward_import(graph):
    planted = {**graph, "benchmark.core.labels": graph["benchmark.core.labels"] | {"benchmark.stats.cells"}}
    assert _upward(planted) == ["benchmark.core.labels -> benchmark.stats.cells"]


def test_the_top_level_keeps_only_the_cli_and_the_package_face():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= TOP_LEVEL_LIMIT, modules


def test_registries_never_import_stages_or_the_cli(graph):
    for module in REGISTRIES:
        assert not {d for d in graph[module] if d.startswith(("benchmark.stages", "benchmark.cli"))}, module


def test_only_the_cli_and_the_scaling_harness_import_the_stages(graph):
    importers = {m for m, deps in graph.items() if any(d.startswith("benchmark.stages") for d in deps)}
    assert {m for m in importers if not m.startswith("benchmark.stages")} <= {"benchmark.cli",
                                                                            "benchmark.tools.scaling_work"}, importers


def test_settings_types_import_no_registry_and_no_library(graph):
    assert graph["benchmark.core.settings"] <= {"benchmark.infra.errors", "benchmark.infra.paths"}


def test_tests_mirror_the_package_folders():
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert folders <= set().union(*LAYERS) | {"pipeline"}, sorted(folders)
