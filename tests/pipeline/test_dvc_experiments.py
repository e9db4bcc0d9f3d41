"""DVC experiments on a fresh clone: after `dvc repro`, `dvc exp run -S train.n_seeds=...` reruns only the stages
the parameter touches and records the headline metrics, which `dvc exp show` then reads (they live at a path git
tracks, so the experiment's commit carries them with its own dvc.lock)."""

from __future__ import annotations

import json
import subprocess

import pytest
from project import SMALL_PIPELINE, commit_all, copy_project, run, set_params, stages_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repro_done(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("exp") / "project")
    set_params(project, SMALL_PIPELINE)
    commit_all(project, "a fresh clone")
    run(project, "dvc", "repro")
    return project, _git_status(project)


def _git_status(project) -> list[str]:
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, check=True)
    return sorted(status.stdout.splitlines())


def test_a_fresh_run_modifies_no_tracked_file_and_leaves_what_experiments_carry(repro_done):
    _, status_after_repro = repro_done
    assert status_after_repro == ["?? dvc.lock", "?? reports/headline.json", "?? reports/plots/"]


def test_an_experiment_reruns_only_the_stages_its_parameter_touches_and_records_its_metrics(repro_done):
    project, _ = repro_done
    result = run(project, "dvc", "exp", "run", "-S", "train.n_seeds=1", "-n", "one-seed")
    assert stages_run(result.stdout) == ["train", "evaluate", "report"]
    rows = json.loads(run(project, "dvc", "exp", "show", "--json").stdout)
    experiments = {rev["name"]: rev for row in rows for exp in (row.get("experiments") or []) for rev in exp["revs"]}
    data = experiments["one-seed"]["data"]
    assert data["params"]["params.yaml"]["data"]["train"]["n_seeds"] == 1
    headline = data["metrics"]["reports/headline.json"]["data"]
    emotion = headline["faces-to-adfes"]["emotion"]
    assert set(emotion) == {"corrector", "reference", "difference"}
    assert 0 <= emotion["corrector"]["macro"] <= 100
    workspace = next(row for row in rows if row["rev"] == "workspace")["data"]["metrics"]["reports/headline.json"]["data"]
    assert workspace == headline   # the experiment's results were applied to the workspace


def test_plots_are_one_per_held_out_split_and_task(repro_done):
    project, _ = repro_done
    shown = json.loads(run(project, "dvc", "plots", "show", "--json").stdout)
    assert sorted(shown["data"]) == ["reports/plots/faces-to-adfes_emotion.csv", "reports/plots/faces-to-adfes_gender.csv"]
