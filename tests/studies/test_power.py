"""The power stage (``benchmark power`` -> results/power.json): per held-out design, the smallest difference in macro
accuracy and in average gap the verdict rule (a bound from Holm's first step) and the permutation test detect with the
target power, from planted effects that change whole people's predictions both ways."""

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
from benchmark.stats.cells import SubjectDesign, metric_entries, seed_mean_difference
from benchmark.stats.significance import permutation_p
from benchmark.studies import power_study

TINY = {"tracking.enabled": False, "power.scenario": "paper", "power.replicates": 10, "power.truth_scale": 2,
        "power.rule_resamples": 100, "evaluate.n_permutations": 50,
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
            assert set(entry) == {"largest_effect", "mde_rule", "mde", "mde_holm", "power"}
            assert set(entry["power"]) == {"alpha", "holm", "rule"}
            assert all(len(curve) == len(power_study.GRID) for curve in entry["power"].values())
            for mde in ("mde_rule", "mde", "mde_holm"):
                assert entry[mde] is None or 0 < entry[mde] <= abs(entry["largest_effect"])


def test_the_rule_is_bounded_at_holms_first_step_over_the_declared_primary_family(document):
    # default primary family: corrector and "corrector vs unimodal" x 2 tasks x (macro, average gap) = 8
    assert document["primary_size"] == 8 and document["ci_method"] == "bound"
    assert {"churn", "rule_resamples"} <= set(document)


def test_the_primary_familys_size_counts_only_the_comparisons_made():
    settings = load_settings(REPO / "params.yaml", overrides={**TINY, "train.methods": ["uncorrected", "corrector"]})
    assert stage.primary_size(settings) == 4  # no unimodal: the contrast is not made


def test_the_mde_interpolates_linearly_in_the_planted_share():
    curve = np.zeros(len(power_study.GRID))
    curve[power_study.GRID.index(0.2)], curve[power_study.GRID.index(0.3):] = 0.6, 1.0
    # power 0.6 at lambda 0.2 and 1.0 at 0.3: 0.8 is reached half way, lambda 0.25, of an effect of 40 pp at lambda 1
    assert power_study.minimum_detectable(curve, 40.0, 0.8) == 10.0
    assert power_study.minimum_detectable(np.zeros(len(power_study.GRID)), 40.0, 0.8) is None


# ------------------------------------------------------------------------- planted effects: clustered, with churn

def _design(n_subjects: int, per_cell: int, layout: CellLayout) -> SubjectDesign:
    """Every subject with ``per_cell`` images in every cell of its group (subjects alternate between the groups)."""
    group = np.arange(n_subjects) % len(layout.groups)
    cells = [(s, g * len(layout.emotions) + e) for s in range(n_subjects) for g in [group[s]]
             for e in range(len(layout.emotions)) for _ in range(per_cell)]
    subject, cell = (np.array(x) for x in zip(*cells))
    counts = np.zeros((n_subjects, layout.n_cells))
    np.add.at(counts, (subject, cell), 1)
    return SubjectDesign(np.arange(len(cells)).astype(str), subject, cell, np.arange(n_subjects).astype(str),
                         np.array(layout.groups)[group], counts, layout, ("gender", "emotion"))


LAYOUT = CellLayout(("female", "male"), ("neutral", "happy", "sad"))


def test_a_planted_method_changes_whole_people_each_persons_errors_all_fixed_or_none():
    design = _design(60, 3, LAYOUT)
    rng = np.random.default_rng(1)
    truth = np.full((2, LAYOUT.n_cells), 70.0)
    correct = rng.random((2, len(design.image_ids))) < 0.7
    draws = power_study.PlantingDraws.of(2, 60, len(design.image_ids), rng)
    shares = power_study.flip_probabilities(truth, LAYOUT, 0.3)["macro"]
    planted = power_study.plant(correct, design, shares, truth, 0.0, draws)
    fixed = ~correct & planted
    for t in range(2):
        for person in range(60):
            wrong = ~correct[t] & (design.image_subject == person)
            assert fixed[t, wrong].all() or not fixed[t, wrong].any()
    assert fixed.any() and not (correct & ~planted).any()  # without churn nothing breaks


def test_with_churn_a_planted_method_also_breaks_right_predictions_of_broken_people():
    design = _design(200, 2, LAYOUT)
    rng = np.random.default_rng(2)
    truth = np.full((2, LAYOUT.n_cells), 80.0)
    correct = rng.random((2, len(design.image_ids))) < 0.8
    draws = power_study.PlantingDraws.of(2, 200, len(design.image_ids), rng)
    shares = power_study.flip_probabilities(truth, LAYOUT, 0.2)["macro"]
    planted = power_study.plant(correct, design, shares, truth, 0.5, draws)
    broken = correct & ~planted
    assert (~correct & planted).any() and broken.any()
    # breaks come from people whose break draw is below the cell's broken share (0.5 x 0.2 = 0.1 here)
    assert (draws.broken[:, design.image_subject][broken] < 0.1 + 1e-12).all()


@pytest.mark.parametrize("churn", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("kind", ["macro", "gap"])
def test_the_planted_effect_is_lambda_of_the_errors_or_gaps_in_expectation(kind, churn):
    # reference predictions right with the cells' true accuracy; the planted cell accuracy moves by q x (100 - truth),
    # so macro gains lambda x its errors and every per-emotion gap shrinks by the share lambda
    design = _design(400, 2, LAYOUT)
    truth = np.array([[95.0, 90.0, 85.0, 80.0, 90.0, 60.0], [70.0, 92.0, 55.0, 75.0, 88.0, 65.0]])
    lam, rng = 0.3, np.random.default_rng(3)
    shares = power_study.flip_probabilities(truth, LAYOUT, lam)[kind]
    cell_n = design.counts.sum(axis=0)
    moved = []
    for _ in range(150):
        correct = rng.random((2, len(design.image_ids))) < truth[:, design.image_cell] / 100.0
        planted = power_study.plant(correct, design, shares, truth, churn,
                                    power_study.PlantingDraws.of(2, 400, len(design.image_ids), rng))
        moved.append([100.0 * np.bincount(design.image_cell, (planted[t] & 1) - (correct[t] & 1), LAYOUT.n_cells)
                      / cell_n for t in range(2)])
    expected = shares * (100.0 - truth)
    assert np.mean(moved, axis=0) == pytest.approx(expected, abs=0.6)
    effect = power_study.true_effects(truth, LAYOUT)[kind]
    got = (expected.mean(axis=-1) if kind == "macro" else
           power_study.true_effects(truth + expected, LAYOUT)["gap"] - effect)
    assert got == pytest.approx(lam * (effect if kind == "macro" else -effect))


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


def test_a_planted_method_predicts_the_truth_where_right_the_next_class_where_broken_and_else_the_references():
    from toy_predictions import LAYOUT, clustered_predictions

    from benchmark.stats.cells import predicted, subject_design

    rows = clustered_predictions(subjects_per_gender=6, logits={"reference": 0.0}, seed=2)
    rows = rows.sort_values("image_id", kind="stable").reset_index(drop=True)
    design = subject_design(rows, LAYOUT, ("gender", "emotion"), "test")
    reference = predicted(rows, design, "reference")
    planted = np.random.default_rng(0).random(reference.correct[:, 0].shape) < 0.5
    written = rows.copy()  # the same predictions written out as rows: the oracle
    for t, (task, labels) in enumerate((("gender", LAYOUT.groups), ("emotion", LAYOUT.emotions))):
        truth = rows[task].to_numpy(dtype=object)
        after = np.array([labels[(labels.index(x) + 1) % len(labels)] for x in truth], dtype=object)
        written[f"pred_{task}"] = np.where(planted[t], truth, np.where(reference.correct[t, 0], after,
                                                                        rows[f"pred_{task}"].to_numpy(dtype=object)))
    expected = predicted(written, design, "planted")
    got = power_study._planted_prediction(reference, planted, design)
    assert (~reference.correct & planted[:, None]).any() and (reference.correct & ~planted[:, None]).any()
    assert np.array_equal(got.correct, expected.correct) and np.array_equal(got.false_cell, expected.false_cell)
