"""The power stage (``benchmark power`` -> results/power.json): per held-out design, the smallest difference in macro
accuracy and in average gap the permutation test detects with the target power, from planted effects."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO

from benchmark.core.design import CellLayout
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
    metrics = [name for name, _, _ in metric_entries(layout)]
    cell_n = counts.sum(axis=0)
    for s in range(n_sets):
        a, b = sums[:, s, :, None, :], reference[:, :, None, :]  # one seed each
        observed = seed_mean_difference(100.0 * a.sum(axis=0) / cell_n, 100.0 * b.sum(axis=0) / cell_n, layout)
        expected = permutation_p(a, b, counts, flips, observed, layout)
        for metric in ("macro", "average_gap"):
            assert np.array_equal(p[metric][s], expected[:, metrics.index(metric)])


def test_power_json_does_not_depend_on_how_many_cores_share_the_replicates(tmp_path, monkeypatch):
    settings = load_settings(REPO / "params.yaml", overrides=TINY)
    documents = []
    for cores in ([0], [0, 1, 2]):
        monkeypatch.setattr(processes, "available_cores", lambda cores=cores: cores)
        documents.append(stage.run(settings, target=tmp_path / f"{len(cores)}.json").read_bytes())
    assert documents[0] == documents[1]


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
