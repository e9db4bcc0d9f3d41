"""dvc.yaml's deps never go stale: every project file a stage's process can import is under one of that stage's deps,
so editing it makes `dvc status` report the stage changed.

What a stage's process can import is the static import closure (lazy imports inside functions included, as
tests/test_architecture.py reads them) of what `benchmark <stage>` runs: the CLI module's own imports, the imports of
its entry point and of the stage's command with the CLI helpers it calls, and everything those reach in the package.
A slow test checks the static reading against the modules a real run of each stage loads.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from project import REPO, SMALL_PIPELINE, copy_project, env, run, set_params

PACKAGE = REPO / "benchmark"
STAGES = ("fetch", "tune", "train", "evaluate", "power", "report")
#: the CLI functions every stage command passes through (the console script's entry point and the click group)
ENTRY_FUNCTIONS = ("main", "_interrupted", "cli")


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(nodes: list[ast.AST]) -> set[str]:
    """Project modules imported anywhere inside ``nodes`` (and their parent packages, which Python imports first)."""
    found = set()
    for node in (n for top in nodes for n in ast.walk(top)):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("benchmark"):
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("benchmark")]
        for name in names:
            parts = name.split(".")
            found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(MODULES)
    return found


def _closure(start: set[str]) -> set[str]:
    """``start`` and every project module it reaches; the CLI's own modules are taken as given (``_cli_start`` read
    the parts of them a command runs)."""
    entry = {"benchmark.cli", "benchmark.__main__"}
    seen: set[str] = set(entry)
    todo = list(start - entry)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += _imports([ast.parse(MODULES[module].read_text())])
    return seen


def _cli_start(command: str) -> set[str]:
    """What `benchmark <command>` imports in the CLI: module-level imports, the entry point's and the command's
    function bodies and those of the CLI helpers they call (by name)."""
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    module_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    todo, used = [*ENTRY_FUNCTIONS, command], set()
    while todo:
        name = todo.pop()
        if name in used or name not in functions:
            continue
        used.add(name)
        todo += [c.func.id for c in ast.walk(functions[name]) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
    return _imports(module_level + [functions[n] for n in used]) | {"benchmark", "benchmark.cli", "benchmark.__main__"}


def _stage_files(stage: str, command: str) -> set[Path]:
    return {MODULES[m] for m in _closure(_cli_start(command))}


def _dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(REPO)
    return any(relative == Path(d) or Path(d) in relative.parents for d in deps)


@pytest.mark.parametrize("stage", STAGES)
def test_every_file_a_stage_can_import_is_one_of_its_dvc_deps(stage):
    definition = _dvc_stages()[stage]
    command = definition["cmd"].split()[1]
    missing = sorted(str(p.relative_to(REPO)) for p in _stage_files(stage, command)
                     if not _covered(p, definition["deps"]))
    assert missing == [], f"dvc.yaml stage {stage!r} does not list {missing}"


def test_the_closure_follows_lazy_imports_into_other_layers():
    """A command's lazy stage import is followed: the report stage reaches the report package and the statistics."""
    files = {str(p.relative_to(REPO)) for p in _stage_files("report", "report")}
    assert "benchmark/report/findings.py" in files and "benchmark/stages/report.py" in files
    assert "benchmark/stages/train.py" not in files


def test_the_deps_check_finds_a_file_no_dep_covers():
    assert not _covered(PACKAGE / "stats" / "cells.py", ["benchmark/core", "benchmark/stages/report.py"])


def _loaded_modules(stderr: str) -> set[str]:
    """Project modules named by ``-X importtime`` lines (``import time: self | cumulative | name``)."""
    names = {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    return {n for n in names if n in MODULES}


def _templated(word: str, params: dict) -> str:
    """A dvc.yaml word with its ``${a.b}`` filled from params, as DVC fills it."""
    def value(match: re.Match) -> str:
        node = params
        for part in match.group(1).split("."):
            node = node[part]
        return str(node)

    return re.sub(r"\$\{([^}]+)\}", value, word)


#: the smallest budgets that run every stage (power needs 10 replicates)
TINY = {**SMALL_PIPELINE, "train.n_seeds": 1, "train.corrector.epochs": 2, "evaluate.n_resamples": 20,
        "evaluate.n_permutations": 20, "power.replicates": 10, "power.rule_resamples": 100, "tune.pipeline_trials": 1,
        "tune.space.epochs": [2, 3],
        "tune.prune_epochs": [1]}


@pytest.mark.slow
def test_a_real_run_of_each_stage_loads_only_what_the_static_closure_names(tmp_path):
    """The static reading is not missing imports: each stage's command, run for real on tiny budgets (with its forked
    workers and the trainer's fork server, whose imports print to the same stderr), loads a subset of it."""
    root = copy_project(tmp_path / "project")
    set_params(root, TINY)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for stage, definition in _dvc_stages().items():
        command = [_templated(word, params) for word in definition["cmd"].split()]
        done = subprocess.run(command, cwd=root, env={**env(), "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True,
                              text=True, timeout=900)
        said = "\n".join(line for line in done.stderr.splitlines() if not line.startswith("import time:"))
        assert done.returncode == 0, f"{stage}: {said[-2000:]}"
        loaded = _loaded_modules(done.stderr)
        assert loaded, "no import lines: PYTHONPROFILEIMPORTTIME had no effect"
        unexpected = sorted(str(MODULES[m].relative_to(REPO)) for m in loaded
                            if MODULES[m] not in _stage_files(stage, command[1]))
        assert unexpected == [], f"stage {stage} loaded {unexpected}, which the static closure does not name"


@pytest.mark.slow
def test_editing_a_file_a_stage_imports_makes_dvc_report_the_stage_changed(tmp_path):
    """After `dvc repro fetch`, editing the statistics changes the stages that import them, not fetch."""
    root = copy_project(tmp_path / "project")
    set_params(root, TINY)
    run(root, "dvc", "repro", "-q", "fetch")
    cells = root / "benchmark" / "stats" / "cells.py"
    cells.write_text(cells.read_text() + "\n# edited\n")
    changed = set(yaml.safe_load(run(root, "dvc", "status", "--json").stdout) or {})
    assert "fetch" not in changed and {"evaluate", "power", "report"} <= changed, changed
