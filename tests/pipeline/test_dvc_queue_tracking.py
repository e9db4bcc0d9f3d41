"""Queued and temporary DVC experiments run in copies of the workspace under .dvc/tmp/exps that DVC deletes; their
MLflow runs still land in the workspace's store, one parent run per experiment named after it, its stage runs nested
under it, every run tagged with the experiment's name and the git revision."""

from __future__ import annotations

import subprocess
import time

import pytest
from project import SMALL_PIPELINE, commit_all, copy_project, run, set_params

pytestmark = pytest.mark.slow
QUEUED = {"queued-150": "evaluate.n_resamples=150", "queued-250": "evaluate.n_resamples=250"}
TEMP = ("temp-300", "evaluate.n_resamples=300")


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("queue") / "project")
    set_params(project, {**SMALL_PIPELINE, "tracking.enabled": True})
    commit_all(project, "a fresh clone")
    run(project, "dvc", "repro")
    for name, setting in QUEUED.items():
        run(project, "dvc", "exp", "run", "--queue", "-S", setting, "-n", name)
    run(project, "dvc", "queue", "start", "-j", "2")
    _wait_for_queue(project, timeout_s=900)
    run(project, "dvc", "exp", "run", "--temp", "-S", TEMP[1], "-n", TEMP[0])
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True)
    return project, head.stdout.strip()


def _wait_for_queue(project, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = run(project, "dvc", "queue", "status").stdout
        if not any(state in status for state in ("Queued", "Running")):
            assert "Failed" not in status, status + run(project, "dvc", "queue", "logs", "queued-150", check=False).stdout
            return
        time.sleep(2)
    raise AssertionError(f"the queue did not finish within {timeout_s} s:\n{status}")


def _runs(project) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("crossmodal-bias")
    return client.search_runs([experiment.experiment_id], max_results=5000)


def test_each_queued_and_temp_experiment_is_one_parent_run_named_after_it_in_the_workspace_store(experiments):
    project, _ = experiments
    parents = [r for r in _runs(project) if r.data.tags.get("benchmark.kind") == "pipeline"]
    names = sorted(r.info.run_name for r in parents)
    assert names == sorted(["dvc repro", *QUEUED, TEMP[0]])
    assert not list((project / ".dvc" / "tmp" / "exps").glob("*/mlflow.db"))   # nothing left behind in copies
    for parent in parents:
        assert parent.info.status == "FINISHED", parent.info.run_name


def test_an_experiments_stage_runs_nest_under_its_parent_and_carry_its_name_and_revision(experiments):
    project, head = experiments
    runs = _runs(project)
    for name in [*QUEUED, TEMP[0]]:
        (parent,) = [r for r in runs if r.info.run_name == name and r.data.tags.get("benchmark.kind") == "pipeline"]
        stages = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        names = {r.info.run_name for r in stages}
        # what the setting reran; DVC reruns the tune stage in a copy too (its outputs are not cached, so the copy
        # lacks them), and its seeded study gives the same best_params.yaml, so train does not rerun
        assert {"evaluate", "report"} <= names <= {"tune:pipeline", "evaluate", "report"}, name
        evaluate = next(r for r in stages if r.info.run_name == "evaluate")
        items = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == evaluate.info.run_id]
        assert sorted(r.info.run_name for r in items) == ["evaluate:faces->adfes:corrector",
                                                          "evaluate:faces->adfes:uncorrected"]
        for logged in [parent, *stages, *items]:
            assert logged.data.tags["dvc.exp_name"] == name
            assert logged.data.tags["dvc.baseline_rev"] == head and logged.data.tags["git_commit"] == head
        assert {r.data.params["evaluate.n_resamples"] for r in items} == {(QUEUED.get(name) or TEMP[1]).split("=")[1]}


def test_dvc_exp_show_lists_the_experiments_whose_runs_mlflow_holds(experiments):
    project, _ = experiments
    shown = run(project, "dvc", "exp", "show", "--no-pager", "--csv").stdout
    for name in [*QUEUED, TEMP[0]]:
        assert name in shown
