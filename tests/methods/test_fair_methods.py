"""The fairness post-processing baselines: each on a toy table with a known answer, each deterministic, the strength
syntax, and a missing optional library named with its extra."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from test_baselines import biased_table
from toy import GENDER, make_toy_table

from benchmark.core.outputs import OutputsTable
from benchmark.core.settings import Settings
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.optional import available, require
from benchmark.methods import method_registry
from benchmark.methods.fair_recalibration import GroupRecalibration
from benchmark.methods.group_offsets import OffsetProblem, apply_offsets, fit_offsets, objective
from benchmark.methods.lp_postprocess import LPPostprocess, confusion_by_group, draw, solve_mappings
from benchmark.methods.method import FitTask, check_results

fairlearn_installed = pytest.mark.skipif(not available("fairlearn"), reason="optional extra 'fairness' not installed")


def _offset_problem(seed: int = 0) -> OffsetProblem:
    """Two groups, three classes; group 1's class 0 looks like class 1 (a +1.5 logit on class 1)."""
    rng = np.random.default_rng(seed)
    n = 600
    group = np.repeat([0, 1], n // 2)
    target = np.tile(np.repeat([0, 1, 2], n // 6), 2)
    scores = 2.0 * np.eye(3)[target] + rng.normal(size=(n, 3))
    scores[(group == 1) & (target == 0), 1] += 1.5
    return OffsetProblem(scores, group, target, group, target, 2)


def test_offset_gradient_is_exact():
    problem = _offset_problem()
    x = np.random.default_rng(1).normal(size=6) * 0.3
    error = check_grad(lambda v: objective(v, problem, strength=5.0, ridge=0.01)[0],
                       lambda v: objective(v, problem, strength=5.0, ridge=0.01)[1], x)
    assert error < 1e-5


def test_offsets_without_strength_recover_the_known_shift():
    """Plain group-aware recalibration: group 1's class-1 logit carries +1.5 for its class-0 rows, so its fitted offset
    on class 0 relative to class 1 is larger than group 0's."""
    offsets = fit_offsets(_offset_problem(), strength=0.0, ridge=0.0)
    assert (offsets[1, 0] - offsets[1, 1]) - (offsets[0, 0] - offsets[0, 1]) > 0.5


def _soft_gaps(probs: np.ndarray, problem: OffsetProblem) -> np.ndarray:
    """|R(g, e) - R(h, e)| for every emotion and pair of groups, R the mean probability of the true class in a cell."""
    q = probs[np.arange(len(probs)), problem.target]
    soft = pd.Series(q).groupby([problem.cell_group, problem.cell_emotion]).mean().unstack()  # groups x emotions
    return np.concatenate([(soft.loc[g] - soft.loc[h]).abs().dropna().to_numpy()
                           for i, g in enumerate(soft.index) for h in soft.index[i + 1:]])


def test_a_larger_strength_gives_smaller_gaps_on_the_training_rows():
    problem = _offset_problem()
    gaps = [_soft_gaps(apply_offsets(problem.scores, problem.condition,
                                    fit_offsets(problem, strength=s, ridge=1e-3)), problem).mean()
            for s in (0.0, 10.0, 1000.0)]
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 0.02


def test_group_recalibration_fixes_the_cross_modal_gender_bias():
    """The toy's angry women look male (+3 log-odds): offsets by predicted emotion undo it on fresh rows."""
    train, test = biased_table(seed=1), biased_table(seed=2)
    probs = GroupRecalibration(strength=0.0, ridge=1e-3).run([FitTask(train, {"test": test}, 0, GENDER)])[0]["test"]
    angry_women = ((test.frame["gender"] == "female") & (test.frame["emotion"] == "anger")).to_numpy()
    before = GENDER.group_probabilities(test.frame)[angry_women].argmax(1) == 1
    after = probs.attribute[angry_women].argmax(1) == 1
    assert after.mean() > before.mean() + 0.3


def test_group_recalibration_is_deterministic():
    train, test = make_toy_table(seed=0), make_toy_table(seed=1)
    a, b = (GroupRecalibration(strength=4.0, ridge=1e-3).run([FitTask(train, {"test": test}, s, GENDER)])[0]["test"]
            for s in (0, 7))
    np.testing.assert_array_equal(a.emotion, b.emotion)
    np.testing.assert_array_equal(a.attribute, b.attribute)


def _lp_toy() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group 0's classifier is perfect; group 1 predicts class 1 for half of its class-0 rows."""
    group = np.repeat([0, 1], 300)
    y = np.tile(np.repeat([0, 1, 2], 100), 2)
    predicted = y.copy()
    predicted[np.flatnonzero((group == 1) & (y == 0))[::2]] = 1
    return y, predicted, group


@pytest.mark.parametrize("constraint", ["equal_opportunity", "equalized_odds"])
def test_lp_levels_true_positive_rates_to_the_known_optimum(constraint):
    """Known answer: group 1 cannot raise its class-0 rate without losing more on class 1, so the optimum lowers group
    0's class-0 rate to 0.5 and keeps every other rate at 1, in both groups."""
    y, predicted, group = _lp_toy()
    confusion, prior = confusion_by_group(y, predicted, group, n_groups=2, n_classes=3)
    mappings = solve_mappings(confusion, prior, constraint=constraint)
    adjusted = np.einsum("gyi,gij->gyj", confusion, mappings)
    np.testing.assert_allclose(np.diagonal(adjusted, axis1=1, axis2=2), [[0.5, 1, 1], [0.5, 1, 1]], atol=1e-9)
    np.testing.assert_allclose(mappings.sum(axis=2), 1.0)


def test_lp_draws_follow_the_mapping_of_the_predicted_label():
    """The randomised labels realise the adjusted rates (holisticai's transform, which draws from the adjusted
    confusion matrix instead, gives group 1 a class-0 rate of 0.25 here)."""
    y, predicted, group = _lp_toy()
    confusion, prior = confusion_by_group(y, predicted, group, n_groups=2, n_classes=3)
    mappings = solve_mappings(confusion, prior, constraint="equal_opportunity")
    rates = np.mean([[np.mean(draw(mappings, group, predicted, np.random.default_rng(s))[(group == g) & (y == 0)] == 0)
                      for g in (0, 1)] for s in range(200)], axis=0)
    np.testing.assert_allclose(rates, [0.5, 0.5], atol=0.02)


def test_lp_method_is_deterministic_per_seed_and_draws_anew_across_seeds():
    train, test = biased_table(seed=1), biased_table(seed=2)

    def run(seed):
        return LPPostprocess("equalized_odds").run([FitTask(train, {"test": test}, seed, GENDER)])[0]["test"]

    np.testing.assert_array_equal(run(3).emotion, run(3).emotion)
    assert (run(3).emotion != run(4).emotion).any()


def test_lp_predicts_only_classes_of_the_training_labels():
    train = make_toy_table(seed=0)
    tasks = [FitTask(train, {"test": make_toy_table(seed=1)}, 0, GENDER)]
    probs = check_results("lp_equal_opportunity", tasks, LPPostprocess("equal_opportunity").run(tasks))[0]["test"]
    assert set(np.unique(probs.emotion.argmax(1))) <= {i for i, c in enumerate(train.emotion_classes)
                                                      if c not in ("surprise", "contempt")}


def _large_biased_table(seed: int) -> OutputsTable:
    """test_baselines' biased table (angry women look male) with 40 subjects per gender, so thresholds per predicted
    emotion are estimated on enough rows."""
    table = make_toy_table(subjects_per_gender=40, images_per_cell=2, seed=seed)
    frame = table.frame.copy()
    log_odds = np.log(frame["p_male"] / frame["p_female"]) + 3.0 * ((frame["gender"] == "female")
                                                                  & (frame["emotion"] == "anger"))
    frame["p_male"] = 1.0 / (1.0 + np.exp(-log_odds))
    frame["p_female"] = 1.0 - frame["p_male"]
    return OutputsTable(frame, table.design, table.emotion_classes, {"source": "toy"})


@fairlearn_installed
def test_threshold_optimizer_equalises_gender_error_rates_across_predicted_emotions():
    """Known answer: with equalized odds by predicted emotion, the angry women's excess 'male' errors are gone, so
    the female accuracy in anger comes close to the other emotions'."""
    from benchmark.methods.threshold import ThresholdOptimizerMethod

    train, test = _large_biased_table(seed=1), _large_biased_table(seed=2)
    frame = test.frame
    women = (frame["gender"] == "female").to_numpy()
    angry = (frame["emotion"] == "anger").to_numpy()
    accuracy = []
    for seed in range(20):
        probs = ThresholdOptimizerMethod(objective="balanced_accuracy_score").run(
            [FitTask(train, {"test": test}, seed, GENDER)])[0]["test"]
        female = probs.attribute.argmax(1) == 1
        accuracy.append((female[women & angry].mean(), female[women & ~angry].mean()))
    uncorrected = GENDER.group_probabilities(frame).argmax(1) == 1
    angry_mean, other_mean = np.mean(accuracy, axis=0)
    assert other_mean - uncorrected[women & angry].mean() > 0.3   # the bias the toy planted
    assert abs(angry_mean - other_mean) < 0.15


@fairlearn_installed
def test_threshold_optimizer_is_deterministic_per_seed():
    from benchmark.methods.threshold import ThresholdOptimizerMethod

    train, test = biased_table(seed=1), biased_table(seed=2)

    def run():
        return ThresholdOptimizerMethod(objective="accuracy_score").run([FitTask(train, {"test": test}, 5, GENDER)])[0]["test"]

    np.testing.assert_array_equal(run().attribute, run().attribute)


def test_strength_syntax_builds_the_method_at_that_strength():
    method = method_registry.build_method("group_recalibration@2.5", Settings())
    assert isinstance(method, GroupRecalibration) and method.strength == 2.5


@pytest.mark.parametrize("name, message", [
    ("corrector@1", "'corrector' takes no fairness strength"),
    ("group_recalibration@-1", "must be a finite number >= 0, got '-1'"),
    ("group_recalibration@x", "must be a finite number >= 0, got 'x'"),
])
def test_bad_strength_gives_one_line(name, message):
    with pytest.raises(BenchmarkError, match=message) as err:
        method_registry.check_method_name(name)
    assert "\n" not in str(err.value)


def test_missing_optional_library_names_the_extra(monkeypatch):
    monkeypatch.setattr("benchmark.infra.optional.available", lambda module: False)
    with pytest.raises(BenchmarkError, match=r"needs fairlearn, which is not installed: install the optional extra "
                                             r"'fairness' \(pip install -c constraints.txt -e '\.\[fairness\]'"):
        method_registry.check_method_name("threshold_optimizer")
    with pytest.raises(BenchmarkError, match="dataset-bias-metrics"):
        require("dataset_bias_metrics", user="the bias profile")
