"""The power stage (``benchmark power`` -> results/power.json): per held-out design, the smallest difference in macro
accuracy and in average gap the permutation test detects with the target power, from planted effects."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark import power
from benchmark.params import load_settings
from benchmark.stages import power as stage
from conftest import REPO

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
            assert all(len(curve) == len(power.GRID) for curve in entry["power"].values())
            assert entry["mde"] is None or 0 < entry["mde"] <= abs(entry["largest_effect"])


def test_the_mde_interpolates_linearly_in_the_planted_share():
    curve = np.zeros(len(power.GRID))
    curve[power.GRID.index(0.2)], curve[power.GRID.index(0.3):] = 0.6, 1.0
    # power 0.6 at lambda 0.2 and 1.0 at 0.3: 0.8 is reached half way, lambda 0.25, of an effect of 40 pp at lambda 1
    assert power.minimum_detectable(curve, 40.0, 0.8) == 10.0
    assert power.minimum_detectable(np.zeros(len(power.GRID)), 40.0, 0.8) is None
