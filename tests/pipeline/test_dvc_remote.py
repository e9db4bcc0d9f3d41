"""The GPU outputs through a DVC remote: one clone computes the outputs tables (`dvc repro fetch`), pushes them to a
remote and commits dvc.lock; a second clone pulls them and runs the rest of the pipeline without running fetch, even
though the fetch stage's input exists only on the first machine (as raw images would), and its report names the same
tables by sha256. The remote is a local folder; S3, SSH and shared drives differ only in `dvc remote add` (README)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest
from project import SMALL_PIPELINE, commit_all, copy_project, run, set_params, stages_run

pytestmark = pytest.mark.slow

TABLES = ("data/outputs/faces.parquet", "data/outputs/adfes.parquet")


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def machines(tmp_path_factory):
    """(gpu clone, cpu clone, the cpu clone's `dvc repro --allow-missing` output)."""
    root = tmp_path_factory.mktemp("remote")
    gpu = copy_project(root / "gpu")
    # the fetch stage's input lives only where the outputs are computed (as data/raw with the images source)
    (gpu / "data" / "scenario").mkdir(parents=True)
    shutil.copy(gpu / "benchmark" / "scenarios" / "paper.yaml", gpu / "data" / "scenario" / "paper.yaml")
    set_params(gpu, {**SMALL_PIPELINE, "data.input": "data/scenario/paper.yaml"})
    run(gpu, "dvc", "add", "data/scenario")
    run(gpu, "dvc", "remote", "add", "-d", "team", str(root / "dvc-remote"))
    commit_all(gpu, "project with a team remote")
    assert stages_run(run(gpu, "dvc", "repro", "fetch").stdout) == ["fetch"]
    run(gpu, "dvc", "push", "fetch")
    commit_all(gpu, "outputs tables computed and pushed")   # dvc.lock names what was pushed
    cpu = root / "cpu"
    subprocess.run(["git", "clone", "-q", str(gpu), str(cpu)], check=True)
    run(cpu, "dvc", "pull", "fetch")
    return gpu, cpu, run(cpu, "dvc", "repro", "--allow-missing").stdout


def test_pulled_outputs_tables_are_the_pushed_ones(machines):
    gpu, cpu, _ = machines
    assert [_sha256(cpu / t) for t in TABLES] == [_sha256(gpu / t) for t in TABLES]


def test_the_pulling_machine_runs_train_to_report_without_fetch(machines):
    _, cpu, output = machines
    assert not (cpu / "data" / "scenario" / "paper.yaml").exists()
    assert stages_run(output) == ["tune", "train", "evaluate", "power", "report"]
    assert "Stage 'fetch' didn't change, skipping" in output


def test_the_report_names_the_pulled_tables_by_sha256(machines):
    gpu, cpu, _ = machines
    report = (cpu / "reports" / "report.md").read_text()
    provenance = report[report.index("## Provenance"):]
    for table in TABLES:
        assert f"| {table} | {_sha256(gpu / table)} |" in provenance
