"""A throwaway copy of the project for end-to-end runs (dvc repro, CLI in a subprocess)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SKIP = {".git", ".venv", ".locks", "test-artifacts", "dvc.lock", "mlflow.db", "mlartifacts", "mlruns", "optuna.db",
        "results", ".pytest_cache", ".benchmarks", "__pycache__", "tmp", "cache"}
SKIP_UNDER = {"data": {"outputs", "published", "raw", "chips"}, "reports": None}


def _ignore(directory: str, entries: list[str]) -> set[str]:
    rel = Path(directory).resolve().relative_to(REPO)
    skipped = {e for e in entries if e in SKIP or e.endswith(".egg-info")}
    if str(rel) == "data":
        skipped |= {e for e in entries if e in SKIP_UNDER["data"]}
    if str(rel) == "reports":
        skipped |= {e for e in entries if e != ".gitkeep"}
    return skipped


def copy_project(target: Path) -> Path:
    """Copy the working tree (sources, params, dvc files; no outputs, caches or venv) into ``target``; git-init it."""
    shutil.copytree(REPO, target, ignore=_ignore)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    return target


def set_params(project: Path, updates: dict) -> None:
    """Set dotted keys in the copy's params.yaml."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in updates.items():
        node = params
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def env() -> dict[str, str]:
    """Environment whose PATH finds this interpreter's `benchmark` and `dvc` first; MLflow store left to params."""
    bin_dir = str(Path(sys.executable).parent)
    out = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out["PATH"] = bin_dir + os.pathsep + out.get("PATH", "")
    return out


def run(project: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a command in the copy with the project's interpreter on PATH."""
    result = subprocess.run(list(args), cwd=project, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result


#: a pipeline small enough for DVC round trips in tests: one split, two methods, tiny budgets, no MLflow
SMALL_PIPELINE = {"train.splits": ["faces->adfes"], "train.methods": ["uncorrected", "corrector"], "train.n_seeds": 2,
                  "train.corrector.epochs": 20, "evaluate.n_resamples": 200, "evaluate.n_permutations": 200,
                  "tune.pipeline_trials": 2, "tune.space.epochs": [10, 20], "tracking.enabled": False,
                  "power.replicates": 20, "power.rule_resamples": 200}


def commit_all(project: Path, message: str) -> None:
    """Stage everything git does not ignore and commit it (a repo-local identity, as CI machines may have none)."""
    for key, value in (("user.name", "benchmark tests"), ("user.email", "tests@example.invalid")):
        subprocess.run(["git", "config", key, value], cwd=project, check=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=project, check=True)


def stages_run(output: str) -> list[str]:
    """The stages a `dvc repro` / `dvc exp run` output says it ran, in order."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]
