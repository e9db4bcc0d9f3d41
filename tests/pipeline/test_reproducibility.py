"""Same params and seeds give byte-identical results files; changing only the seed changes them."""

from __future__ import annotations

import pytest
from project import copy_project, run, set_params

pytestmark = pytest.mark.slow
RESULTS = ("reports/metrics.json", "results/predictions.parquet", "results/stats.parquet", "reports/tune/best_params.yaml")
SMALL = {"train.n_seeds": 2, "train.splits": ["faces->adfes", "adfes->faces"], "train.corrector.epochs": 20,
         "evaluate.n_resamples": 300, "evaluate.n_permutations": 300, "tune.pipeline_trials": 2,
         "tune.space.epochs": [50, 100], "tracking.enabled": False, "power.replicates": 20,
         "power.rule_resamples": 200}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("repro") / "project")
    set_params(project, SMALL)
    run(project, "dvc", "repro")
    return project, {name: (project / name).read_bytes() for name in RESULTS}


def test_dvc_repro_force_with_the_same_params_gives_byte_identical_results(first_run):
    project, before = first_run
    run(project, "dvc", "repro", "--force")
    for name in RESULTS:
        assert (project / name).read_bytes() == before[name], name


def test_changing_only_the_seed_changes_the_results(first_run):
    project, before = first_run
    set_params(project, {"train.seed": 1})
    run(project, "dvc", "repro")
    assert (project / "results/predictions.parquet").read_bytes() != before["results/predictions.parquet"]
    assert (project / "reports/metrics.json").read_bytes() != before["reports/metrics.json"]
