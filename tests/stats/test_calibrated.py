"""The calibrated intervals (``ci_method: calibrated``: benchmark.stats.calibrated and .proportions).

Oracles are independent of the vectorised code: scipy's exact binomial interval, the mid-p equations solved by
root-finding, Newcombe's hybrid interval written out, the folded normal's mean from scipy, brute force over sign
patterns, and the metric objects' own declarations.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy import stats as sps
from toy_predictions import LAYOUT, clustered_predictions

from benchmark import stats
from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.stats import calibrated, proportions

CALIBRATED = stats.StatsConfig(n_resamples=400, n_permutations=200, seed=0, ci_method="calibrated")
PAIR = {"layout": LAYOUT, "attribute": "gender"}


def _rows(frame: pd.DataFrame, method: str) -> pd.DataFrame:
    return frame[frame["method"] == method].reset_index(drop=True)


def _pick(table: pd.DataFrame, *, method: str, task: str, metric: str, group=None, emotion=None) -> pd.Series:
    mask = (table["method"] == method) & (table["task"] == task) & (table["metric"] == metric)
    if group is not None:
        mask &= table["group"] == group
    if emotion is not None:
        mask &= table["emotion"] == emotion
    found = table[mask]
    assert len(found) == 1, found
    return found.iloc[0]


# --- proportions -----------------------------------------------------------------------------------------------------

def test_clopper_pearson_equals_scipys_exact_binomial_interval():
    x = np.arange(13.0)
    low, high = proportions.binomial_interval(x, np.full(13, 12.0), level=0.95, kind="exact")
    for k in range(13):
        ref = sps.binomtest(k, 12).proportion_ci(0.95, method="exact")
        assert (low[k], high[k]) == pytest.approx((ref.low, ref.high), abs=1e-10), k


def test_mid_p_interval_solves_the_mid_p_equations():
    n, x = 15, np.arange(16.0)
    low, high = proportions.binomial_interval(x, np.full(16, float(n)), level=0.9, kind="midp")
    for k in range(1, n):
        lower_tail = sps.binom.sf(k, n, low[k]) + 0.5 * sps.binom.pmf(k, n, low[k])
        upper_tail = sps.binom.cdf(k - 1, n, high[k]) + 0.5 * sps.binom.pmf(k, n, high[k])
        assert lower_tail == pytest.approx(0.05, abs=1e-9) and upper_tail == pytest.approx(0.05, abs=1e-9)
    assert low[0] == 0.0 and high[n] == 1.0
    assert high[0] == pytest.approx(optimize.brentq(lambda p: 0.5 * (1 - p) ** n - 0.05, 1e-9, 1 - 1e-9), abs=1e-9)


def test_effective_size_is_the_images_when_no_person_has_two_images_in_the_proportion():
    n = proportions.effective_size(np.array([0.7]), np.array([0.5]), np.array([10.0]), np.array([10.0]),
                                   np.array([1.0]), level=0.95)
    assert n[0] == 10.0


def test_korn_graubard_effective_size_has_the_persons_degrees_of_freedom():
    p, v, persons = 0.8, 0.0025, 40.0  # deff 1.25: between the persons (40) and the images (80)
    n = proportions.effective_size(np.array([p]), np.array([v]), np.array([80.0]), np.array([persons]),
                                   np.array([2.0]), level=0.95)
    expected = p * (1 - p) / v * (sps.norm.ppf(0.975) / sps.t.ppf(0.975, persons - 1)) ** 2
    assert n[0] == pytest.approx(expected)


def test_a_proportion_seen_at_100_percent_gets_the_binomial_interval_over_persons():
    low, high = proportions.proportion_interval(np.array([1.0]), np.array([0.0]), np.array([170.0]),
                                                np.array([85.0]), np.array([2.0]), level=0.95, kind="exact")
    assert high[0] == 1.0 and low[0] == pytest.approx(0.025 ** (1 / 85))


def test_a_proportion_at_100_percent_borrows_a_design_effect_identified_elsewhere():
    p, n_images, persons = np.array([1.0]), np.array([170.0]), np.array([85.0])
    n = proportions.effective_size(p, np.array([0.0]), n_images, persons, np.array([2.0]), level=0.95,
                                   fallback_deff=np.array([1.25]))
    assert n[0] == pytest.approx(170.0 / 1.25 * (sps.norm.ppf(0.975) / sps.t.ppf(0.975, 84)) ** 2)
    unidentified = proportions.effective_size(p, np.array([0.0]), n_images, persons, np.array([2.0]), level=0.95,
                                              fallback_deff=np.array([np.nan]))
    assert unidentified[0] == 85.0


# --- calibrated intervals through the statistics ---------------------------------------------------------------------

def test_calibrated_cell_intervals_never_collapse_at_0_or_100_percent():
    frame = clustered_predictions(subjects_per_gender=6, logits={"reference": 0.0, "method": 30.0}, seed=1)
    table = stats.analyse(frame, reference="reference", layouts={"faces": LAYOUT}, attribute="gender",
                          config=CALIBRATED)
    cells = table[(table["method"] == "method") & (table["metric"] == "cell")]
    assert (cells["estimate"] == 100.0).all()
    assert (cells["ci_low"] < 100.0).all() and (cells["ci_high"] == 100.0).all()


def test_a_calibrated_cell_interval_is_the_proportion_interval_of_the_cell():
    frame = clustered_predictions(subjects_per_gender=8, images_per_cell=1, seed=2)
    table = stats.compare(_rows(frame, "method"), _rows(frame, "reference"), **PAIR, config=CALIBRATED)
    row = _pick(table, method="method", task="emotion", metric="cell", group="female", emotion="happy")
    n = row["n_images"] / 12  # one image per person and cell
    low, high = proportions.binomial_interval(np.array([row["estimate"] / 100 * n]), np.array([n]), level=0.95,
                                              kind="midp")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((100 * low[0], 100 * high[0]), abs=1e-7)


def test_a_calibrated_signed_gap_is_newcombes_hybrid_of_its_two_cells():
    frame = clustered_predictions(subjects_per_gender=8, images_per_cell=1, seed=3)
    table = stats.compare(_rows(frame, "method"), _rows(frame, "reference"), **PAIR, config=CALIBRATED)
    a = _pick(table, method="method", task="emotion", metric="cell", group="male", emotion="sad")
    b = _pick(table, method="method", task="emotion", metric="cell", group="female", emotion="sad")
    gap = _pick(table, method="method", task="emotion", metric="signed_gap", emotion="sad")
    d = a["estimate"] - b["estimate"]
    low = d - np.hypot(a["estimate"] - a["ci_low"], b["ci_high"] - b["estimate"])
    high = d + np.hypot(a["ci_high"] - a["estimate"], b["estimate"] - b["ci_low"])
    assert (gap["ci_low"], gap["ci_high"]) == pytest.approx((max(low, -100.0), min(high, 100.0)), abs=1e-7)


def test_a_one_seed_gap_interval_is_the_image_of_its_signed_interval_under_the_absolute_value():
    frame = clustered_predictions(subjects_per_gender=10, seed=4)
    table = stats.compare(_rows(frame, "method"), _rows(frame, "reference"), **PAIR, config=CALIBRATED)
    for emotion in LAYOUT.emotions:
        signed = _pick(table, method="method", task="emotion", metric="signed_gap", emotion=emotion)
        gap = _pick(table, method="method", task="emotion", metric="gap", emotion=emotion)
        ends = sorted([abs(signed["ci_low"]), abs(signed["ci_high"])])
        inside = signed["ci_low"] <= 0 <= signed["ci_high"]
        assert gap["ci_low"] == pytest.approx(0.0 if inside else ends[0]) and gap["ci_high"] == pytest.approx(ends[1])


def test_a_difference_of_gaps_is_never_wider_than_the_signed_difference_bound():
    frame = clustered_predictions(subjects_per_gender=12, logits={"reference": 0.0, "method": 0.7}, seed=5)
    table = stats.compare(_rows(frame, "method"), _rows(frame, "reference"), **PAIR, config=CALIBRATED)
    for task in ("gender", "emotion"):
        for emotion in LAYOUT.emotions:
            signed = _pick(table, method="method", task=task, metric="signed_gap", emotion=emotion)
            gap = _pick(table, method="method", task=task, metric="gap", emotion=emotion)
            reach = max(abs(signed["diff_ci_low"]), abs(signed["diff_ci_high"]))
            assert -reach - 1e-9 <= gap["diff_ci_low"] and gap["diff_ci_high"] <= reach + 1e-9, (task, emotion)


def test_every_calibrated_interval_holds_its_estimate():
    frame = clustered_predictions(subjects_per_gender=7, seeds={"method": 3}, seed=6)
    table = stats.compare(_rows(frame, "method"), _rows(frame, "reference"), **PAIR, config=CALIBRATED)
    assert (table["ci_low"] <= table["estimate"] + 1e-9).all() and (table["estimate"] <= table["ci_high"] + 1e-9).all()
    compared = table[table["method"] == "method"]
    assert (compared["diff_ci_low"] <= compared["diff"] + 1e-9).all()
    assert (compared["diff"] <= compared["diff_ci_high"] + 1e-9).all()


def test_identical_prediction_sets_get_a_calibrated_difference_interval_of_nonzero_width_around_0():
    rows = _rows(clustered_predictions(subjects_per_gender=6, seed=7), "method")
    table = stats.compare(rows, rows.copy(), **PAIR, config=CALIBRATED, names=("a", "b"))
    compared = table[(table["method"] == "a") & (table["diff_ci_method"] == "calibrated")]
    assert len(compared) and (compared["diff"] == 0.0).all()
    assert (compared["diff_ci_low"] < 0.0).all() and (compared["diff_ci_high"] > 0.0).all()


def test_the_debiased_gap_inverts_the_folded_normal_mean_at_the_gaps_variance():
    frame = clustered_predictions(subjects_per_gender=9, images_per_cell=1, seed=8)
    rows = _rows(frame, "method")
    table = stats.compare(rows, _rows(frame, "reference"), **PAIR, config=CALIBRATED)
    gap = _pick(table, method="method", task="emotion", metric="gap", emotion="anger")
    correct = rows.assign(c=(rows["pred_emotion"] == rows["emotion"]).astype(float))
    cell = correct[correct["emotion"] == "anger"].groupby("gender")["c"]
    sd = np.sqrt((cell.var(ddof=1) / cell.count()).sum()) * 100
    observed = abs(100 * (cell.mean()["male"] - cell.mean()["female"]))
    folded = sps.foldnorm(gap["estimate_debiased"] / sd, scale=sd).mean() if gap["estimate_debiased"] > 0 else None
    if folded is None:
        assert observed <= sd * np.sqrt(2 / np.pi)
    else:
        assert folded == pytest.approx(observed, rel=1e-6)


def test_the_debiased_gap_is_0_below_the_folded_normal_mean_at_0_and_nearly_the_gap_far_from_it():
    got = calibrated.folded_normal_mean_inverse(np.array([0.5, 30.0]), np.array([1.0, 1.0]))
    assert got[0] == 0.0 and got[1] == pytest.approx(30.0, abs=1e-6)


# --- pieces of the gap construction ----------------------------------------------------------------------------------

def test_the_smallest_lower_quantile_over_sign_patterns_is_found_by_brute_force():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(500, 1, 1, 4)) * np.array([1.0, 2.0, 0.5, 1.5])  # (R, T, K, A)
    low = np.array([[[-1.0, 0.5, -2.0, -3.0]]])
    high = np.array([[[1.0, 2.0, 2.0, -0.5]]])
    got = calibrated._pattern_minimum(h.astype(np.float32), low, high, 0.05)[0]
    settled = {1: 1.0, 3: -1.0}
    best = np.inf
    for signs in itertools.product((-1.0, 1.0), repeat=2):
        s = np.array([signs[0], settled[1], signs[1], settled[3]])
        best = min(best, np.quantile((h[:, 0, 0] * s).sum(axis=-1) / 4, 0.05))
    assert got == pytest.approx(best, rel=1e-5)


# --- families through the metric objects -----------------------------------------------------------------------------

def test_calibrated_families_are_the_metrics_cell_linear_and_gap_families_of_the_recall_channel():
    families = calibrated.families(LAYOUT)
    for (name, _, _), family in zip(stats.metric_entries(LAYOUT), families):
        metric = metrics.by_name(name)
        known = metric.channel == "recall" and metric.bound in ("cell", "linear", "gap")
        assert family == (metric.bound if known else None), name


def test_metrics_without_a_calibrated_construction_get_bca_with_a_note_saying_so():
    frame = clustered_predictions(subjects_per_gender=8, seed=10)
    table = stats.compare(_rows(frame, "method"), _rows(frame, "reference"), **PAIR, config=CALIBRATED)
    for name in ("worst_cell", "fpr_gap"):
        rows = table[table["metric"] == name]
        assert set(rows["ci_method"]) <= {"bca", "percentile"}, name
        assert rows["note"].str.contains("ci_method calibrated has no construction for this metric: BCa").all()
    known = {name for (name, _, _), family in zip(stats.metric_entries(LAYOUT), calibrated.families(LAYOUT)) if family}
    paper = table[table["metric"].isin(known)]
    assert (paper["ci_method"] == "calibrated").all() and (paper["diff_ci_method"].isin(["calibrated", ""])).all()


def test_the_debiased_estimate_is_given_for_the_gap_family_of_the_cell_accuracies_only():
    frame = clustered_predictions(subjects_per_gender=8, seed=11)
    table = stats.compare(_rows(frame, "method"), _rows(frame, "reference"), **PAIR, config=CALIBRATED)
    gaps = table["metric"].map(lambda m: metrics.by_name(m).bound == "gap" and metrics.by_name(m).channel == "recall")
    assert table.loc[gaps, "estimate_debiased"].notna().all()
    assert table.loc[~gaps, "estimate_debiased"].isna().all()
    assert (table.loc[gaps, "estimate_debiased"] <= table.loc[gaps, "estimate"] + 1e-9).all()


def test_a_linear_metric_is_split_into_equally_weighted_proportions_of_each_group():
    macro = calibrated._linear_coefficients(metrics.by_name("macro"), LAYOUT)[0]
    weights, coef = calibrated._group_parts(macro, len(LAYOUT.groups))
    n_emotions = len(LAYOUT.emotions)
    assert coef.tolist() == [n_emotions / LAYOUT.n_cells] * len(LAYOUT.groups)
    assert np.allclose(weights.sum(axis=-1), 1.0) and set(np.unique(weights)) == {0.0, 1.0 / n_emotions}


def test_a_row_mixing_signs_within_a_group_is_not_a_sum_of_proportions():
    within = np.zeros(LAYOUT.n_cells)
    within[0], within[1] = 1.0, -1.0  # two cells of the first group
    assert calibrated._group_parts(within, len(LAYOUT.groups)) is None


def test_three_groups_get_calibrated_pair_gaps_that_hold_their_estimates():
    layout = CellLayout(("a", "b", "c"), LAYOUT.emotions)
    frame = clustered_predictions(subjects_per_gender=9, seed=12)
    groups = {s: "abc"[i % 3] for i, s in enumerate(sorted(frame["subject"].unique()))}
    frame = frame.assign(gender=frame["subject"].map(groups))
    frame["pred_gender"] = np.where(frame["pred_gender"] == "female", frame["gender"], "a")
    table = stats.analyse(frame, reference="reference", layouts={"faces": layout}, attribute="gender",
                          config=CALIBRATED)
    pair = table[(table["metric"] == "pair_gap")]
    assert len(pair) and (pair["ci_method"] == "calibrated").all()
    assert ((pair["ci_low"] <= pair["estimate"] + 1e-9) & (pair["estimate"] <= pair["ci_high"] + 1e-9)).all()
