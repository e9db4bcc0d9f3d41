"""One rule from test to verdict (docs/STATISTICS.md): the primary family's p-values invert its intervals, Holm runs
over exactly that family, and the printed (stepped) interval excludes 0 exactly when Holm rejects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from toy_predictions import LAYOUT, clustered_predictions

from benchmark import stats
from benchmark.stats.stepdown import ALPHA_FLOOR, inversion_p, step_down

ALPHA = 0.05
PRIMARY = stats.PrimaryFamily(("corrector", "corrector vs unimodal"), ("macro", "average_gap"), ALPHA)
CONTRASTS = (("corrector", "unimodal"), ("unimodal", "other"))


def _normal(diff: np.ndarray, se: np.ndarray):
    """Wald intervals diff +- z se: p_ci is the two-sided normal p."""
    def at(level: float, members: np.ndarray | None = None):
        z = sps.norm.ppf(0.5 + level / 2)
        low, high = diff - z * se, diff + z * se
        return (low, high) if members is None else (low[members], high[members])
    return at


def test_inversion_p_of_wald_intervals_is_the_normal_p():
    diff, se = np.array([2.0, -1.0, 0.3, 0.0, 30.0]), np.ones(5)
    got = inversion_p(_normal(diff, se), 5, start=0.95)
    exact = 2 * sps.norm.sf(np.abs(diff))
    np.testing.assert_allclose(got[:2], exact[:2], rtol=0.03)  # below 1 - start: to ~2 %
    np.testing.assert_allclose(got[2], exact[2], rtol=0.1)  # p > 0.05: to ~10 %
    assert got[3] == 1.0 and got[4] == ALPHA_FLOOR


def test_a_level_without_an_interval_counts_as_holding_zero_in_the_inversion_and_the_steps():
    """A construction with no interval above level 0.99 (a pre-test spending 0.01 of alpha, say)."""
    wald = _normal(np.array([3.5, 1.0]), np.ones(2))

    def capped(level: float, members: np.ndarray | None = None):
        low, high = wald(level, members)
        return (low, high) if level <= 0.99 else (np.full(low.shape, np.nan), np.full(high.shape, np.nan))

    p = inversion_p(capped, 2, start=0.95)
    assert p[0] == pytest.approx(0.01, rel=0.03)  # 2 sf(3.5) = 0.00047 is beyond the construction's reach
    assert p[1] == pytest.approx(2 * sps.norm.sf(1.0), rel=0.1)
    result = step_down(p, capped, alpha=0.05)  # step 1 at level 0.975: the first one is rejected there
    assert list(result.rejected) == [True, False]
    stopped = step_down(p, capped, alpha=0.015)  # step 1 at 1 - 0.0075 > 0.99: no interval, no rejection
    assert not stopped.rejected.any() and np.isnan(stopped.low).all()


def test_step_down_rejects_what_holm_rejects_and_prints_the_stepped_levels():
    rng = np.random.default_rng(1)
    for _ in range(50):
        diff, se = rng.normal(0, 2.5, 8), rng.uniform(0.5, 1.5, 8)
        exact = 2 * sps.norm.sf(np.abs(diff / se))
        result = step_down(exact, _normal(diff, se), alpha=ALPHA)
        np.testing.assert_array_equal(result.rejected, stats.holm(exact) <= ALPHA)
        np.testing.assert_allclose(result.adjusted, stats.holm(exact))
        j0 = result.step[~result.rejected].min() if (~result.rejected).any() else 9
        np.testing.assert_allclose(result.level, 1 - ALPHA / (8 - np.minimum(result.step, j0) + 1))
        np.testing.assert_array_equal(result.rejected, (result.low > 0) | (result.high < 0))


@pytest.fixture(scope="module", params=["bound", "bca", "calibrated"])
def table(request, tmp_path_factory) -> pd.DataFrame:
    """stats.parquet of a held-out group (one test partition, 4 methods, 2 contrasts), written and read back."""
    frame = clustered_predictions(subjects_per_gender=8, seed=5,
                                  logits={"reference": 0.0, "corrector": 0.9, "unimodal": 0.4, "other": 0.3})
    config = stats.StatsConfig(n_resamples=500, n_permutations=200, ci_method=request.param)
    analysed = stats.analyse(frame, reference="reference", layouts={"faces": LAYOUT}, attribute="gender",
                             config=config, contrasts=CONTRASTS, primary=PRIMARY)
    path = tmp_path_factory.mktemp("stats") / "stats.parquet"
    analysed.to_parquet(path)
    return pd.read_parquet(path)


def test_the_primary_family_is_exactly_the_declared_comparisons_tasks_and_metrics(table):
    primary = table[table["family"] == "primary"]
    assert set(zip(primary["method"], primary["task"], primary["metric"])) == {
        (c, t, m) for c in PRIMARY.comparisons for t in ("gender", "emotion") for m in PRIMARY.metrics}
    assert sorted(primary["holm_step"]) == list(range(1, 9))
    others = table[(table["family"] != "primary")]
    assert (others.loc[others["diff"].notna(), "family"] == "exploratory").all()
    assert (others.loc[others["diff"].isna(), "family"] == "").all()


def test_a_primary_row_is_rejected_exactly_when_its_printed_interval_excludes_zero(table):
    primary = table[table["family"] == "primary"]
    excludes = (primary["verdict_ci_low"] > 0) | (primary["verdict_ci_high"] < 0)
    assert (primary["rejected"] == excludes).all()
    assert primary["rejected"].any() and not primary["rejected"].all()  # both outcomes are exercised


def test_holm_over_the_inverted_p_rejects_the_same_rows(table):
    primary = table[table["family"] == "primary"]
    np.testing.assert_allclose(primary["p_ci_holm"], stats.holm(primary["p_ci"].to_numpy()))
    clear = (primary["p_ci_holm"] - ALPHA).abs() > 0.05 * ALPHA  # p_ci is a root found to ~2 %
    assert ((primary["p_ci_holm"] <= ALPHA) == primary["rejected"])[clear].all()


def test_the_printed_interval_takes_holms_level_at_its_step(table):
    primary = table[table["family"] == "primary"]
    m = len(primary)
    j0 = primary.loc[~primary["rejected"], "holm_step"].min()
    expected = 1 - ALPHA / (m - np.minimum(primary["holm_step"], j0) + 1)
    np.testing.assert_allclose(primary["verdict_level"], expected)
    wider = (primary["verdict_ci_low"] <= primary["diff_ci_low"] + 1e-9) & (primary["verdict_ci_high"] >= primary["diff_ci_high"] - 1e-9)
    assert wider.all()  # every stepped level is at least the unadjusted 95 %


def test_exploratory_rows_keep_the_unadjusted_interval_and_say_so(table):
    rows = table[table["family"] == "exploratory"]
    assert len(rows) and rows["p_ci"].isna().all() and (rows["holm_step"] == 0).all()
    np.testing.assert_array_equal(rows["verdict_ci_low"], rows["diff_ci_low"])
    assert (rows["verdict_level"] == 0.95).all()
    assert (rows["rejected"] == ((rows["diff_ci_low"] > 0) | (rows["diff_ci_high"] < 0))).all()


def test_without_a_primary_family_every_comparison_is_exploratory():
    frame = clustered_predictions(subjects_per_gender=4, seed=2)
    table = stats.analyse(frame, reference="reference", layouts={"faces": LAYOUT}, attribute="gender",
                          config=stats.StatsConfig(n_resamples=100, n_permutations=50))
    assert set(table.loc[table["diff"].notna(), "family"]) == {"exploratory"}


# --- speed (recorded, never asserted; docs/STATISTICS.md "One rule from test to verdict") ----------------------------

@pytest.mark.parametrize("family", ["without", "with"])
def test_speed_of_an_adfes_sized_held_out_group_with_and_without_the_primary_family(benchmark, family):
    """22 people x 12 images, 6 methods and the 3 default contrasts, 10,000 resamples and permutations, ``bound``:
    the two entries side by side are the primary family's cost."""
    logits = {"uncorrected": 0.0, "corrector": 0.8, "unimodal": 0.3, "crossmodal_linear": 0.5, "label_mask": 0.1,
              "group_recalibration": 0.2}
    frame = clustered_predictions(subjects_per_gender=11, logits=logits, seed=3)
    pairs = (("corrector", "unimodal"), ("crossmodal_linear", "unimodal"), ("corrector", "crossmodal_linear"))
    kwargs = {"reference": "uncorrected", "layouts": {"faces": LAYOUT}, "attribute": "gender",
              "config": stats.StatsConfig(), "contrasts": pairs,
              "primary": stats.PrimaryFamily(("corrector", "corrector vs unimodal"), ("macro", "average_gap"))
              if family == "with" else None}
    table = benchmark.pedantic(stats.analyse, args=(frame,), kwargs=kwargs, rounds=2, iterations=1)
    assert (table["family"] == "primary").sum() == (8 if family == "with" else 0)


@pytest.mark.parametrize("ci_method", ["bound", "bca"])
def test_the_power_studys_difference_intervals_are_the_evaluate_stages(ci_method):
    # benchmark.studies.power_study counts the verdict rule's rejections with these intervals: on the same rows and
    # draws (the group's key) they are the ones analyse reports, at any level
    frame = clustered_predictions(subjects_per_gender=8, seed=5, logits={"reference": 0.0, "corrector": 0.9})
    config = stats.StatsConfig(n_resamples=300, n_permutations=50, ci_method=ci_method)
    analysed = stats.analyse(frame, reference="reference", layouts={"faces": LAYOUT}, attribute="gender",
                             config=config)
    key = "|".join(str(frame[c].iloc[0]) for c in stats.analysis.GROUP_COLUMNS)
    by_method = {m: rows for m, rows in frame.groupby("method")}
    low, high = stats.analysis.difference_intervals(by_method["reference"], [by_method["corrector"]], layout=LAYOUT,
                                                    tasks=("gender", "emotion"), config=config, level=config.ci,
                                                    key=key, metrics=("macro", "average_gap"))
    for t, task in enumerate(("gender", "emotion")):
        for j, metric in enumerate(("macro", "average_gap")):
            row = analysed[(analysed["method"] == "corrector") & (analysed["task"] == task)
                           & (analysed["metric"] == metric) & analysed["group"].isna() & analysed["emotion"].isna()]
            assert (low[0, t, j], high[0, t, j]) == pytest.approx((row["diff_ci_low"].item(), row["diff_ci_high"].item()),
                                                                  abs=1e-8)
