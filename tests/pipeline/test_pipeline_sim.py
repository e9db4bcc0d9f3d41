"""End to end on the default data source (`sim`, scenario `paper`): no network and no ../shared needed. Only the
budgets are cut (seeds, epochs, resamples) to keep the suite fast; docs/PERFORMANCE.md times the full default run."""

from __future__ import annotations

import json

import pytest
from project import copy_project, run, set_params

from benchmark.core import outputs
from benchmark.sources import sim

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sim_project(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("sim") / "project")
    set_params(project, {"train.n_seeds": 2, "train.corrector.epochs": 20, "evaluate.n_resamples": 200,
                         "evaluate.n_permutations": 200, "tune.pipeline_trials": 2, "tune.space.epochs": [10, 20]})
    run(project, "dvc", "repro")
    return project


def test_default_dvc_repro_writes_the_report_from_the_paper_scenario(sim_project):
    assert (sim_project / "reports" / "report.html").exists()
    table = outputs.read(sim_project / "data" / "outputs" / "adfes.parquet")
    assert table.metadata["source"] == "sim" and table.metadata["scenario"] == "paper"
    assert table.metadata["scenario_sha256"] == sim.sha256_of("paper")
    assert json.loads((sim_project / "reports" / "metrics.json").read_text())["source"] == "sim"


@pytest.mark.parametrize("page", ["report.md", "report.html"])
def test_default_report_says_the_data_are_simulated_and_names_the_scenario(sim_project, page):
    text = (sim_project / "reports" / page).read_text()
    assert "simulated" in text
    assert "scenario <code>paper</code>" in text or "scenario `paper`" in text


def test_second_default_dvc_repro_is_a_no_op(sim_project):
    second = run(sim_project, "dvc", "repro")
    assert "Running stage" not in second.stdout
