"""Statistics (benchmark.stats): subject-cluster paired bootstrap, permutation tests, Holm, McNemar.

Oracles are independent of the vectorised code: benchmark.core.metrics on explicitly built data sets, exhaustive
enumeration of subject swaps, binomial sums written out, Holm worked by hand, and a population difference computed
by quadrature.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd
import pytest
from toy_predictions import LAYOUT, clustered_predictions, population_difference

from benchmark import stats
from benchmark.core import metrics
from benchmark.core.labels import GENDERS
from benchmark.infra.errors import BenchmarkError

SMALL = stats.StatsConfig(n_resamples=400, n_permutations=400, seed=0)
TASKS = ("gender", "emotion")
#: the toy predictions' design: one dataset, 2 genders x 6 emotions
DESIGN = {"layouts": {"faces": LAYOUT}, "attribute": "gender"}
PAIR = {"layout": LAYOUT, "attribute": "gender"}
ENTRIES = stats.metric_entries(LAYOUT)


def _rows(frame: pd.DataFrame, method: str) -> pd.DataFrame:
    return frame[frame["method"] == method].reset_index(drop=True)


def _pick(table: pd.DataFrame, *, method: str, task: str, metric: str, gender=None, emotion=None) -> pd.Series:
    mask = (table["method"] == method) & (table["task"] == task) & (table["metric"] == metric)
    if gender is not None:
        mask &= table["group"] == gender
    if emotion is not None:
        mask &= table["emotion"] == emotion
    found = table[mask]
    assert len(found) == 1, found
    return found.iloc[0]


def _cells(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    return metrics.cell_accuracies(group=frame["gender"].to_numpy(), emotion=frame["emotion"].to_numpy(),
                                   correct=frame[f"pred_{task}"].to_numpy() == frame[task].to_numpy(), layout=LAYOUT)


def _oracle_metrics(rows: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Seed-mean (task, metric) -> value through benchmark.core.metrics, one seed at a time."""
    per_seed = []
    for _, one in rows.groupby("seed"):
        values = {}
        for task in TASKS:
            summary = metrics.summarize(_cells(one, task), LAYOUT)
            values.update({(task, k): v for k, v in summary.as_dict().items()})
        per_seed.append(values)
    return {key: float(np.mean([v[key] for v in per_seed])) for key in per_seed[0]}


# --- resampling ------------------------------------------------------------------------------------------------------

def test_subject_resamples_keep_each_gender_at_its_subject_count():
    genders = np.array(["male"] * 5 + ["female"] * 3)
    weights = stats.subject_resamples(genders, groups=GENDERS, n_resamples=200, rng=np.random.default_rng(0))
    assert weights.shape == (200, 8) and (weights >= 0).all()
    assert (weights[:, genders == "male"].sum(axis=1) == 5).all()
    assert (weights[:, genders == "female"].sum(axis=1) == 3).all()


def test_weighted_metrics_equal_metrics_of_whole_subjects_replicated():
    """A resample counts every image of a drawn subject as often as the subject is drawn, never part of them."""
    rows = _rows(clustered_predictions(subjects_per_gender=4, seed=3, seeds={"method": 2}), "method")
    subjects = sorted(rows["subject"].unique())
    genders = rows.drop_duplicates("subject").set_index("subject").loc[subjects, "gender"].to_numpy()
    draws = stats.subject_resamples(genders, groups=GENDERS, n_resamples=3, rng=np.random.default_rng(1))
    got = stats.weighted_metrics(rows, pd.DataFrame(draws, columns=subjects), **PAIR)
    for r, draw in enumerate(draws):
        copies = [rows[rows["subject"] == s].assign(subject=f"{s}#{k}", image_id=lambda f, k=k: f["image_id"] + f"#{k}")
                  for s, n in zip(subjects, draw) for k in range(n)]
        oracle = _oracle_metrics(pd.concat(copies, ignore_index=True))
        for t, task in enumerate(TASKS):
            for metric in metrics.SUMMARY_METRICS:
                j = [m for m, _, _ in ENTRIES].index(metric)
                assert got[r, t, j] == pytest.approx(oracle[(task, metric)], abs=1e-9), (r, task, metric)


# --- estimates -------------------------------------------------------------------------------------------------------

def test_estimates_equal_seed_mean_metrics_of_the_metrics_module():
    frame = clustered_predictions(subjects_per_gender=5, seeds={"method": 3}, seed=2)
    table = stats.analyse(frame, reference="reference", **DESIGN, config=SMALL)
    oracle = _oracle_metrics(_rows(frame, "method"))
    for (task, metric), value in oracle.items():
        assert _pick(table, method="method", task=task, metric=metric)["estimate"] == pytest.approx(value, abs=1e-9)


def test_seed_sd_is_the_sd_of_the_metric_over_seeds():
    frame = clustered_predictions(subjects_per_gender=5, seeds={"method": 4}, seed=4)
    table = stats.analyse(frame, reference="reference", **DESIGN, config=SMALL)
    rows = _rows(frame, "method")
    per_seed = [_oracle_metrics(one)[("emotion", "largest_gap")] for _, one in rows.groupby("seed")]
    got = _pick(table, method="method", task="emotion", metric="largest_gap")["seed_sd"]
    assert got == pytest.approx(float(np.std(per_seed, ddof=1)), abs=1e-9)


# --- known difference ------------------------------------------------------------------------------------------------

def test_known_difference_is_covered_by_the_ci_and_rejected_by_the_permutation_test():
    frame = clustered_predictions(subjects_per_gender=30, logits={"reference": 0.0, "method": 1.0}, seed=7)
    table = stats.analyse(frame, reference="reference", **DESIGN, config=stats.StatsConfig(n_resamples=2000, n_permutations=2000))
    truth = population_difference(1.0, 0.0)
    for task in TASKS:
        row = _pick(table, method="method", task=task, metric="macro")
        assert row["diff_ci_low"] <= truth <= row["diff_ci_high"], (task, row["diff_ci_low"], row["diff_ci_high"], truth)
        assert row["p_perm"] < 0.01 and row["p_holm"] < 0.01
        assert row["p_mcnemar"] < 0.01


def test_ci_of_a_known_difference_covers_it_near_the_nominal_rate_with_clustered_images():
    truth = population_difference(1.0, 0.0)
    covered = 0
    for replicate in range(40):
        frame = clustered_predictions(subjects_per_gender=15, logits={"reference": 0.0, "method": 1.0},
                                      seed=100 + replicate)
        table = stats.compare(_rows(frame, "method"), _rows(frame, "reference"), **PAIR,
                              config=stats.StatsConfig(n_resamples=400, n_permutations=100, seed=replicate))
        row = _pick(table, method="method", task="emotion", metric="macro")
        covered += row["diff_ci_low"] <= truth <= row["diff_ci_high"]
    assert covered >= 34  # nominal 95 %: P(at most 33 of 40) = 1.4 %


def test_identical_prediction_sets_give_zero_difference_and_p_one():
    rows = _rows(clustered_predictions(subjects_per_gender=6, seeds={"method": 3}, seed=5), "method")
    table = stats.compare(rows, rows.copy(), **PAIR, config=SMALL, names=("a", "b"))
    compared = table[table["method"] == "a"]
    assert (compared["diff"] == 0.0).all()
    # identical predictions on the sample do not make the population difference 0: the interval is the floor of one
    # discordant image on each side (Agresti and Min), symmetric about 0, no candidate truth moving it
    bounded = compared[compared["diff_ci_method"] == "bound"]
    assert (bounded["diff_ci_low"] < 0.0).all()
    assert np.allclose(bounded["diff_ci_low"], -bounded["diff_ci_high"])
    # the metrics `bound` has no construction for get a bootstrap interval, and their rows say so
    others = compared[compared["diff_ci_method"] != "bound"]
    assert set(others["metric"]) == {m.name for m in metrics.METRICS if m.bound is None}
    assert others["note"].str.contains("bound has no construction").all()
    assert (compared["p_perm"] == 1.0).all() and (compared["p_holm"] == 1.0).all()
    accuracy = compared["metric"].isin([m.name for m in metrics.METRICS if m.mcnemar])
    assert (compared.loc[accuracy, "p_mcnemar"] == 1.0).all()


def test_one_seed_reference_against_equal_multi_seed_method_gives_zero_difference():
    frame = clustered_predictions(subjects_per_gender=5, seed=6)
    reference = _rows(frame, "reference")
    repeated = pd.concat([reference.assign(seed=s) for s in range(4)], ignore_index=True)
    table = stats.compare(repeated, reference, **PAIR, config=SMALL)
    compared = table[table["method"] == "method"]
    assert (compared["diff"] == 0.0).all() and (compared["seed_sd"] == 0.0).all() and (compared["p_perm"] == 1.0).all()


# --- permutation test ------------------------------------------------------------------------------------------------

def _swap_statistic(a: pd.DataFrame, b: pd.DataFrame, swapped: set[str], task: str, metric: str) -> float:
    """metric(a) - metric(b) after exchanging the swapped subjects' predictions (one seed each), via benchmark.core.metrics."""
    def value(frame: pd.DataFrame) -> float:
        return metrics.summarize(_cells(frame, task), LAYOUT).as_dict()[metric]

    moved_a, moved_b = a["subject"].isin(swapped), b["subject"].isin(swapped)
    return value(pd.concat([a[~moved_a], b[moved_b]])) - value(pd.concat([b[~moved_b], a[moved_a]]))


@pytest.mark.parametrize("metric", ["macro", "largest_gap"])
def test_permutation_p_matches_exhaustive_enumeration_of_subject_swaps(metric):
    frame = clustered_predictions(subjects_per_gender=3, images_per_cell=2, logits={"reference": 0.0, "method": 1.5},
                                  subject_sd=1.0, seed=12)
    a, b = _rows(frame, "method"), _rows(frame, "reference")
    subjects = sorted(a["subject"].unique())
    observed = _swap_statistic(a, b, set(), "emotion", metric)
    swaps = [_swap_statistic(a, b, {s for s, flip in zip(subjects, pattern) if flip}, "emotion", metric)
             for pattern in itertools.product([False, True], repeat=len(subjects))]
    exact = float(np.mean(np.abs(swaps) >= abs(observed) - 1e-9))
    assert exact < 0.25  # an informative case (macro: 2/64, largest gap: 12/64)
    table = stats.compare(a, b, **PAIR, config=stats.StatsConfig(n_resamples=10, n_permutations=20000, seed=3))
    got = _pick(table, method="method", task="emotion", metric=metric)["p_perm"]
    assert got == pytest.approx(exact, abs=0.015)


# --- multiplicity ----------------------------------------------------------------------------------------------------

def test_holm_adjusts_a_known_vector():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone 0.06
    got = stats.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(got, [0.03, 0.06, 0.06, 0.02])


def test_holm_keeps_nan_and_caps_at_one():
    got = stats.holm([0.5, np.nan, 0.4])
    assert np.isnan(got[1])
    np.testing.assert_allclose(got[[0, 2]], [0.8, 0.8])
    np.testing.assert_allclose(stats.holm([0.9, 0.8]), [1.0, 1.0])


def test_holm_is_applied_over_the_methods_of_each_family():
    frame = clustered_predictions(subjects_per_gender=6, logits={"reference": 0.0, "m1": 0.6, "m2": 0.1, "m3": 1.2},
                                  seed=8)
    table = stats.analyse(frame, reference="reference", **DESIGN, config=SMALL)
    family = table[(table["task"] == "emotion") & (table["metric"] == "macro") & (table["method"] != "reference")]
    assert len(family) == 3
    np.testing.assert_allclose(family["p_holm"].to_numpy(), stats.holm(family["p_perm"].to_numpy()))


# --- McNemar, BCa ----------------------------------------------------------------------------------------------------

def test_mcnemar_exact_matches_the_binomial_sum():
    a = np.array([1] * 9 + [0] * 2 + [1] * 5, dtype=bool)
    b = np.array([0] * 9 + [1] * 2 + [1] * 5, dtype=bool)
    n, k = 11, 2  # discordant pairs, the smaller side
    oracle = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)
    assert stats.mcnemar_exact(a, b) == pytest.approx(oracle)
    assert stats.mcnemar_exact(a, a) == 1.0


def test_bca_falls_back_to_percentile_where_a_cell_is_perfect_and_says_so():
    frame = clustered_predictions(subjects_per_gender=6, seed=9)
    frame.loc[(frame["gender"] == "male") & (frame["emotion"] == "happy"), "pred_emotion"] = "happy"
    table = stats.analyse(frame, reference="reference", **DESIGN,
                          config=stats.StatsConfig(n_resamples=300, n_permutations=50, ci_method="bca"))
    row = _pick(table, method="method", task="emotion", metric="cell", gender="male", emotion="happy")
    assert row["estimate"] == 100.0 and row["ci_low"] == 100.0 and row["ci_high"] == 100.0
    assert row["ci_method"] == "percentile" and "BCa degenerate" in row["note"]
    assert _pick(table, method="method", task="emotion", metric="macro")["ci_method"] == "bca"


# --- API contract ----------------------------------------------------------------------------------------------------

def test_analyse_is_deterministic_for_a_seed_and_varies_with_it():
    frame = clustered_predictions(subjects_per_gender=5, seed=10)
    first = stats.analyse(frame, reference="reference", **DESIGN, config=SMALL)
    pd.testing.assert_frame_equal(first, stats.analyse(frame, reference="reference", **DESIGN, config=SMALL))
    other = stats.analyse(frame, reference="reference", **DESIGN, config=stats.StatsConfig(n_resamples=400, n_permutations=400, seed=1))
    assert not np.allclose(first["ci_low"].fillna(0), other["ci_low"].fillna(0))


def test_analyse_has_a_row_per_group_method_task_and_metric():
    frame = clustered_predictions(subjects_per_gender=3, seed=1)
    table = stats.analyse(frame, reference="reference", **DESIGN, config=SMALL)
    assert len(table) == 2 * len(TASKS) * len(ENTRIES)
    assert set(table.loc[table["metric"] == "cell", "group"]) == set(GENDERS)
    assert set(table.loc[table["metric"] == "signed_gap", "group"]) == {"male vs female"}
    assert table.loc[table["method"] == "reference", "diff"].isna().all()


def test_compare_rejects_sets_over_different_images():
    frame = clustered_predictions(subjects_per_gender=3, seed=1)
    a, b = _rows(frame, "method"), _rows(frame, "reference")
    with pytest.raises(BenchmarkError, match="does not predict every image"):
        stats.compare(a.iloc[:-1], b, **PAIR, config=SMALL)


def test_stats_config_rejects_an_unknown_interval_method():
    with pytest.raises(BenchmarkError, match="ci_method .basic. is not one of percentile, bca, bound"):
        stats.StatsConfig(ci_method="basic")


# --- speed (recorded, never asserted; docs/PERFORMANCE.md) -----------------------------------------------------------

def test_bootstrap_speed_of_one_faces_sized_comparison(benchmark):
    """10,000 resamples and 10,000 permutations, 171 subjects x 12 images, a 10-seed method against a 1-seed reference."""
    frame = clustered_predictions(subjects_per_gender=86, images_per_cell=2, seeds={"method": 10}, seed=0)
    a, b = _rows(frame, "method"), _rows(frame, "reference")
    table = benchmark.pedantic(stats.compare, args=(a, b), kwargs={"config": stats.StatsConfig(), **PAIR}, rounds=3, iterations=1)
    assert table["n_subjects"].iloc[0] == 172


@pytest.mark.parametrize("seeds", [1, 3, 10])
def test_bounds_seed_means_and_short_maxima_are_numpys_reductions_bit_for_bit(seeds):
    """The bound construction's hot loops (seed means over a middle axis, maxima over 2-8 pairs or emotions) are
    written as slice-by-slice sums and maxima for speed: the same bits as numpy's own reductions, NaN included."""
    rng = np.random.default_rng(seeds)
    draws = rng.normal(0, 10, (500, 2, seeds, 18)).astype(np.float32)  # (R, T, K, pairs x emotions): 3 groups
    draws[7, 1, 0, 4] = np.nan
    assert np.array_equal(stats.bounds._seed_mean(draws), draws.mean(axis=2), equal_nan=True)
    by_pair = draws.reshape(500, 2, seeds, 3, 6)
    assert np.array_equal(stats.bounds._max_over(by_pair, axis=-2), by_pair.max(axis=-2), equal_nan=True)
    assert np.array_equal(stats.bounds._max_over(draws, axis=-1), draws.max(axis=-1), equal_nan=True)


def test_an_atom_two_methods_agree_on_up_to_float_rounding_adds_nothing_to_the_gap_differences_shift_range():
    """A 10-seed method whose seeds all equal a 1-seed reference on one atom has paired errors of rounding only
    there: that atom must not enter the studentised maximum (it did, moving intervals by pp) and gets no width."""
    rng = np.random.default_rng(4)
    r, k, n_atoms = 2_000, 10, 6
    x_b = rng.normal(0, 5, (r, 1, 1, n_atoms)).astype(np.float32)
    x_a = rng.normal(0, 5, (r, 1, k, n_atoms)).astype(np.float32)
    x_a[:, :, :, 0] = x_b[:, :, :, 0] * np.float32(1.1)  # every seed alike on atom 0 ...
    x_b[:, :, :, 0] = x_a[:, :, :1, 0]  # ... and alike with the reference there
    errors = stats.bounds.MethodErrors(None, None, np.zeros((1, k, n_atoms), np.float32), x_a, [], [])
    reference = stats.bounds.MethodErrors(None, None, np.zeros((1, 1, n_atoms), np.float32), x_b, [], [])
    rounding = stats.bounds._seed_mean(x_a)[..., 0] - stats.bounds._seed_mean(x_b)[..., 0]
    assert rounding.std() > 0  # the case exists: a mean of 10 equal float32 values is not always that value
    low, high = stats.bounds._difference_range(errors, reference, level=0.95)
    low_rest, high_rest = stats.bounds._difference_range(
        dataclasses.replace(errors, atoms=errors.atoms[..., 1:], x=x_a[..., 1:]),
        dataclasses.replace(reference, atoms=reference.atoms[..., 1:], x=x_b[..., 1:]), level=0.95)
    assert (low[..., 0], high[..., 0]) == (0.0, 0.0)
    assert np.array_equal(low[..., 1:], low_rest) and np.array_equal(high[..., 1:], high_rest)
