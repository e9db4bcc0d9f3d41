"""The power stage (``benchmark power`` -> results/power.json): per held-out design, the smallest difference in macro
accuracy and in average gap the permutation test detects with the target power, from planted effects."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO

from benchmark.core.design import CellLayout
from benchmark.core.metrics import RECALL
from benchmark.experiment.params import load_settings
from benchmark.infra import processes
from benchmark.stages import power as stage
from benchmark.stats.cells import metric_entries, seed_mean_difference
from benchmark.stats.significance import permutation_p
from benchmark.studies import power_study

TINY = {"tracking.enabled": False, "power.scenario": "paper", "power.replicates": 10, "power.truth_scale": 2, "evaluate.n_permutations": 50,
        "train.splits": ["faces->adfes"]}


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> dict:
    path = stage.run(load_settings(REPO / "params.yaml", overrides=TINY),
                     target=tmp_path_factory.mktemp("power") / "power.json")
    return json.loads(path.read_text())


def test_power_json_has_the_settings_and_one_entry_per_held_out_design(document):
    assert {"scenario", "scenario_sha256", "attribute", "reference", "alpha", "family_size", "n_permutations",
            "replicates", "target", "scale", "designs"} <= set(document)
    assert list(document["designs"]) == ["adfes"] and document["replicates"] == 10 and document["scenario"] == "paper"


def test_each_task_has_both_metrics_with_an_mde_and_a_power_curve_per_level(document):
    design = document["designs"]["adfes"]
    assert design["subjects"] > 0 and set(design["tasks"]) == {"gender", "emotion"}
    for metrics in design["tasks"].values():
        assert set(metrics) == {"macro", "average_gap"}
        for entry in metrics.values():
            assert set(entry) == {"largest_effect", "mde", "mde_holm", "power"}
            assert set(entry["power"]) == {"alpha", "holm"}
            assert all(len(curve) == len(power_study.GRID) for curve in entry["power"].values())
            assert entry["mde"] is None or 0 < entry["mde"] <= abs(entry["largest_effect"])


def test_the_mde_interpolates_linearly_in_the_planted_share():
    curve = np.zeros(len(power_study.GRID))
    curve[power_study.GRID.index(0.2)], curve[power_study.GRID.index(0.3):] = 0.6, 1.0
    # power 0.6 at lambda 0.2 and 1.0 at 0.3: 0.8 is reached half way, lambda 0.25, of an effect of 40 pp at lambda 1
    assert power_study.minimum_detectable(curve, 40.0, 0.8) == 10.0
    assert power_study.minimum_detectable(np.zeros(len(power_study.GRID)), 40.0, 0.8) is None


@pytest.mark.parametrize("groups", [("female", "male"), ("young", "middle", "old")])
def test_planted_sets_get_the_evaluate_stages_permutation_p(groups):
    layout = CellLayout(groups, ("neutral", "happy", "sad", "anger"))
    rng = np.random.default_rng(7)
    n_subjects, n_sets, n_tasks = 12, 3, 2
    counts = rng.integers(1, 4, (n_subjects, layout.n_cells))
    reference = rng.binomial(counts[:, None], 0.6, (n_subjects, n_tasks, layout.n_cells))
    sums = np.minimum(reference[:, None] + rng.binomial(1, 0.3, (n_subjects, n_sets, n_tasks, layout.n_cells)),
                      counts[:, None, None])
    flips = rng.random((300, n_subjects)) < 0.5
    p = power_study.planted_p(sums, reference, counts, flips, layout)
    metrics = [name for name, _, _ in metric_entries(layout, RECALL)]
    cell_n = counts.sum(axis=0)
    totals = {"recall": np.repeat(counts[:, None, :], n_tasks, axis=1)}
    for s in range(n_sets):
        a, b = sums[:, s, :, None, :], reference[:, :, None, :]  # one seed each
        observed = seed_mean_difference({"recall": 100.0 * a.sum(axis=0) / cell_n},
                                        {"recall": 100.0 * b.sum(axis=0) / cell_n}, layout, RECALL)
        expected = permutation_p({"recall": a}, {"recall": b}, totals, flips, observed, layout, RECALL)
        for metric in ("macro", "average_gap"):
            assert np.array_equal(p[metric][s], expected[:, metrics.index(metric)])


def test_power_json_does_not_depend_on_how_many_cores_share_the_replicates(tmp_path, monkeypatch):
    settings = load_settings(REPO / "params.yaml", overrides=TINY)
    documents = []
    for cores in ([0], [0, 1, 2]):
        monkeypatch.setattr(processes, "available_cores", lambda cores=cores: cores)
        documents.append(stage.run(settings, target=tmp_path / f"{len(cores)}.json").read_bytes())
    assert documents[0] == documents[1]


# ------------------------------------------------------------------------- every design the pipeline offers

AGE_DESIGN = {**TINY, "data.attribute": "age_group", "data.datasets": ["faces"], "train.splits": ["cv:faces"]}


def test_age_groups_are_simulated_from_a_scenario_that_models_them_and_the_entry_says_why(tmp_path):
    # power.scenario is the gender-only paper scenario (the default); FACES' age groups come from the `age` scenario
    document = json.loads(stage.run(load_settings(REPO / "params.yaml", overrides=AGE_DESIGN),
                                    target=tmp_path / "power.json").read_text())
    design = document["designs"]["faces"]
    assert design["scenario"] == "age" and design["train_dataset"] == "faces"
    assert "scenario 'paper' does not model age_group on faces" in design["scenario_chosen_because"]
    assert set(design["tasks"]) == {"age_group", "emotion"} and design["subjects"] == 171


def test_the_configured_scenario_is_used_where_it_models_the_design(document):
    design = document["designs"]["adfes"]
    assert design["scenario"] == "paper" and "scenario_chosen_because" not in design
    assert design["train_dataset"] == "faces"  # faces->adfes trains on FACES


def test_a_design_no_scenario_models_is_one_line_in_power_json_and_no_simulation(tmp_path):
    mine = {"emotions": ["happy", "sad"], "attributes": {"gender": {"groups": ["male", "female"]}}}
    settings = load_settings(REPO / "params.yaml", overrides={
        **TINY, "data.declare": {"mine": mine}, "data.datasets": ["mine"], "train.splits": ["cv:mine"]})
    document = json.loads(stage.run(settings, target=tmp_path / "power.json").read_text())
    reason = document["designs"]["mine"]["not_simulated"]
    assert reason.startswith("power.scenario paper: scenario 'paper' has no dataset 'mine'")
    assert reason.endswith("no shipped scenario (paper, null, age) models it either") and "\n" not in reason


def test_curtailed_planted_p_decides_every_level_up_to_where_it_stops_as_the_full_test():
    layout = CellLayout(("female", "male"), ("neutral", "happy", "sad"))
    rng = np.random.default_rng(3)
    n_subjects, n_sets, n_tasks = 30, 8, 2
    counts = rng.integers(1, 4, (n_subjects, layout.n_cells))
    reference = rng.binomial(counts[:, None], 0.6, (n_subjects, n_tasks, layout.n_cells))
    lift = rng.binomial(1, np.linspace(0.0, 0.5, n_sets)[None, :, None, None], (n_subjects, n_sets, n_tasks, layout.n_cells))
    sums = np.minimum(reference[:, None] + lift, counts[:, None, None])
    flips = rng.random((2 * power_study.SETTLE_CHECK + 7, n_subjects)) < 0.5
    full = power_study.planted_p(sums, reference, counts, flips, layout)
    curtailed = power_study.planted_p(sums, reference, counts, flips, layout, settled_at=0.05)
    for metric in full:
        assert np.any(curtailed[metric] != full[metric])  # some sets stopped early (else this test tests nothing)
        for level in (0.05, 0.01, 0.001):
            assert np.array_equal(curtailed[metric] < level, full[metric] < level)
        assert np.all(curtailed[metric] <= full[metric])
        assert np.array_equal(curtailed[metric][full[metric] < 0.05], full[metric][full[metric] < 0.05])
