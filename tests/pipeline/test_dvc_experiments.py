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


@pytest.fixture(scope="module")
def one_seed(repro_done):
    """The README's `dvc exp run -S train.n_seeds=2` (here 1, the small pipeline has 2) as a named experiment."""
    project, _ = repro_done
    return project, run(project, "dvc", "exp", "run", "-S", "train.n_seeds=1", "-n", "one-seed")


def test_an_experiment_reruns_only_the_stages_its_parameter_touches_and_records_its_metrics(one_seed):
    project, result = one_seed
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


def test_the_readmes_commands_compare_an_experiment_with_head(one_seed):
    # README "Variants with DVC experiments": dvc exp show --only-changed; dvc metrics diff HEAD <exp> --md;
    # dvc plots diff HEAD <exp> (HEAD has no results here, as on a fresh clone: its side is empty)
    project, _ = one_seed
    shown = run(project, "dvc", "exp", "show", "--only-changed", "--md").stdout
    assert "one-seed" in shown and "train.n_seeds" in shown
    diff = run(project, "dvc", "metrics", "diff", "HEAD", "one-seed", "--md").stdout
    assert "reports/headline.json" in diff and "one-seed" in diff
    plots = run(project, "dvc", "plots", "diff", "HEAD", "one-seed")
    assert (project / "dvc_plots" / "index.html").exists(), plots.stdout


def test_recording_the_workspace_as_a_baseline_experiment_reruns_nothing(one_seed):
    # README: `dvc exp run -n baseline` right after a run records its results as an experiment
    project, _ = one_seed
    assert stages_run(run(project, "dvc", "exp", "run", "-n", "baseline").stdout) == []
    assert "baseline" in run(project, "dvc", "exp", "list").stdout
