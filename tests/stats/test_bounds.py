"""The ``bound`` construction (benchmark.stats.bounds) for every metric: each reads the error draws of its own rate
channel, the worst cell is bounded by the largest cell error, and no metric falls back to a bootstrap interval.

Oracles: numpy's minimum and maximum written out on random draws, and coverage against the toy design's known truth
(every cell's true accuracy is E[sigmoid(logit + u)]; wrong predictions are spread evenly over the other classes, so
every false-positive-rate gap is truly 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from toy_predictions import LAYOUT, clustered_predictions, population_difference

from benchmark import stats
from benchmark.core import metrics
from benchmark.stats import bounds

PAIR = {"layout": LAYOUT, "attribute": "gender"}
SMALL = stats.StatsConfig(n_resamples=400, n_permutations=100, seed=0)
REPLICATES = 40
#: the toy design's true accuracy of every cell for the method (logit 1) and the reference (logit 0), percent
TRUE_ACCURACY = {"method": population_difference(1.0, -60.0), "reference": population_difference(0.0, -60.0)}


def _rows(frame: pd.DataFrame, method: str) -> pd.DataFrame:
    return frame[frame["method"] == method].reset_index(drop=True)


def _draws(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 5.0, shape).astype(np.float32)


@pytest.fixture(scope="module")
def replicated() -> pd.DataFrame:
    """The method - reference comparison of REPLICATES independent toy samples (15 people per gender)."""
    tables = []
    for replicate in range(REPLICATES):
        frame = clustered_predictions(subjects_per_gender=15, logits={"reference": 0.0, "method": 1.0},
                                      seed=300 + replicate)
        config = stats.StatsConfig(n_resamples=400, n_permutations=100, seed=replicate)
        table = stats.compare(_rows(frame, "method"), _rows(frame, "reference"), **PAIR, config=config)
        tables.append(table[table["method"] == "method"].assign(replicate=replicate))
    return pd.concat(tables, ignore_index=True)


def test_every_metric_has_a_bound_construction_and_none_falls_back_to_a_bootstrap_interval():
    frame = clustered_predictions(subjects_per_gender=8, seeds={"method": 3}, seed=3)
    table = stats.compare(_rows(frame, "method"), _rows(frame, "reference"), **PAIR, config=SMALL)
    assert {m.name for m in metrics.METRICS if m.bound is None} == set()
    assert set(table["ci_method"]) <= {"bound", "wilson", ""}
    assert set(table["diff_ci_method"].dropna()) <= {"bound", ""}
    assert not table["note"].str.contains("no construction").any()


def test_the_lowest_cells_plugin_error_is_the_change_of_the_seed_mean_minimum():
    cells, errors = 80.0 + _draws((2, 3, 12), 1), _draws((50, 2, 3, 12), 2)
    expected = ((cells[None] + errors).min(axis=-1) - cells.min(axis=-1)[None]).mean(axis=2)
    np.testing.assert_allclose(bounds._lowest_errors(cells, errors), expected, rtol=0, atol=1e-4)


def test_the_lowest_cell_never_moves_by_more_than_the_largest_cell_error():
    cells, errors = 80.0 + _draws((2, 3, 12), 3), _draws((50, 2, 3, 12), 4)
    largest = bounds._seed_mean(np.abs(errors).max(axis=-1)[..., None])[..., 0]  # (R, T)
    assert (np.abs(bounds._lowest_errors(cells, errors)) <= largest + 1e-4).all()


def test_cells_near_the_lowest_are_tied_to_it_in_the_second_candidate_truth():
    cells = np.array([[[60.0, 61.0, 90.0]]], dtype=np.float32)  # (T=1, K=1, C=3)
    errors = np.random.default_rng(5).normal(0.0, 1.0, (4000, 1, 1, 3)).astype(np.float32)  # sd 1: 61 is near 60
    estimates, tied = bounds._lowest_candidates(cells, errors, level=0.95)
    assert np.array_equal(estimates, cells)
    assert tied[0, 0].tolist() == [60.0, 60.0, 90.0]


def _channel_errors(seed: int, channel: str) -> bounds.MethodErrors:
    """Calibrated error draws of one method's rates of ``channel`` from random resampled rates (R=200, T=2, K=1)."""
    point = 50.0 + _draws((2, 1, LAYOUT.n_cells), seed)
    boot = point[None] + _draws((200, 2, 1, LAYOUT.n_cells), seed + 1)
    shared = np.random.default_rng(seed + 2).standard_normal((200, 2, 1, len(LAYOUT.groups)))
    sizes = np.full(LAYOUT.n_cells, 10)
    return bounds.method_errors(boot.astype(np.float64), point.astype(np.float64), layout=LAYOUT,
                                group_sizes=np.array([10, 10]), n_images=2 * sizes, n_subjects=sizes, level=0.95,
                                shared=shared, channel=channel)


def test_each_metric_interval_reads_the_error_draws_of_its_own_rate_channel():
    point = np.full((2, len(stats.metric_entries(LAYOUT))), 10.0)
    recall, fpr = _channel_errors(10, "recall"), _channel_errors(20, "fpr")
    low, high = bounds.estimate_bounds({"recall": recall, "fpr": fpr}, point, LAYOUT, level=0.95)
    other_low, other_high = bounds.estimate_bounds({"recall": _channel_errors(30, "recall"), "fpr": fpr}, point,
                                                   LAYOUT, level=0.95)
    channel = np.array([metrics.by_name(name).channel for name, _, _ in stats.metric_entries(LAYOUT)])
    assert np.array_equal(low[:, channel == "fpr"], other_low[:, channel == "fpr"])
    assert np.array_equal(high[:, channel == "fpr"], other_high[:, channel == "fpr"])
    assert not np.array_equal(high[:, channel == "recall"], other_high[:, channel == "recall"])


def _coverage(table: pd.DataFrame, metric: str, low: str, high: str, truth: float) -> float:
    rows = table[table["metric"] == metric]
    return float(((rows[low] <= truth + 1e-9) & (truth - 1e-9 <= rows[high])).mean())


@pytest.mark.parametrize("task", ["gender", "emotion"])
def test_worst_cell_intervals_hold_the_true_lowest_cell_at_least_at_the_nominal_rate(replicated, task):
    table = replicated[replicated["task"] == task]
    assert _coverage(table, "worst_cell", "ci_low", "ci_high", TRUE_ACCURACY["method"]) >= 34 / REPLICATES
    truth = TRUE_ACCURACY["method"] - TRUE_ACCURACY["reference"]
    assert _coverage(table, "worst_cell", "diff_ci_low", "diff_ci_high", truth) >= 34 / REPLICATES


@pytest.mark.parametrize("task", ["gender", "emotion"])
def test_fpr_gap_intervals_hold_the_true_gap_of_0_at_least_at_the_nominal_rate(replicated, task):
    table = replicated[replicated["task"] == task]
    assert _coverage(table, "fpr_gap", "ci_low", "ci_high", 0.0) >= 0.85  # per-emotion rows: 34 of 40 on average
    assert _coverage(table, "fpr_gap", "diff_ci_low", "diff_ci_high", 0.0) >= 0.85
