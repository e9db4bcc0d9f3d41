"""Statistics in bounded memory: resamples and permutations drawn in chunks give the same numbers as drawn at once,
the subject bootstrap draws what it always drew, and a design without person ids resamples classes of alike images
(the same bootstrap and permutation test in distribution, checked against the multinomial and binomial moments).

Oracles: the whole-array draws of :func:`benchmark.stats.subject_resamples` and ``rng.random`` (the code before
chunking), the leave-one-out weights matrix written out, and the moments of the multinomial and binomial laws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from toy_predictions import LAYOUT, clustered_predictions

from benchmark import stats
from benchmark.core import metrics
from benchmark.stats import calibrated
from benchmark.stats import draws as draws_module
from benchmark.stats.cells import channel_sums, channel_totals, predicted, subject_design
from benchmark.stats.draws import Draws, group_rng
from benchmark.stats.resampling import jackknife_metrics, resampled_rates, seed_mean_metrics, seed_rates
from benchmark.stats.units import Units, profile_units, subject_units, unit_sums, unit_totals

TASKS = ("gender", "emotion")
CHANNELS = metrics.channels()  # recall and fpr
PAIR = {"layout": LAYOUT, "attribute": "gender"}


def _rows(frame: pd.DataFrame, method: str) -> pd.DataFrame:
    return frame[frame["method"] == method].reset_index(drop=True)


def _clustered(subjects_per_gender: int = 60) -> pd.DataFrame:
    return clustered_predictions(subjects_per_gender=subjects_per_gender, images_per_cell=2,
                                 seeds={"method": 3, "reference": 1}, seed=4)


def _without_person_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Every image its own subject (a design without person ids)."""
    return frame.assign(subject=frame["image_id"])


def _design(frame: pd.DataFrame):
    """The design and both methods' predictions (:class:`benchmark.stats.cells.Predicted`)."""
    design = subject_design(frame, LAYOUT, TASKS, "test")
    return design, [predicted(_rows(frame, m), design, m) for m in ("method", "reference")]


def _whole(draws: Draws) -> np.ndarray:
    """The chunks of ``draws.resamples()`` put back together: (R, U)."""
    out = np.zeros((draws.n_resamples, len(draws.units)), dtype=np.int64)
    for g, rows, weights in draws.resamples():
        out[rows, draws.units.members(g)] = weights
    return out


@pytest.mark.parametrize("budget", [1, 2_000, 10**9])
def test_subject_draws_in_chunks_are_the_whole_array_draws_of_before(budget):
    design, _ = _design(_clustered())
    units = subject_units(design)
    draws = Draws(units, n_resamples=50, n_permutations=40, seed=3, key="g", budget_bytes=budget)
    rng = group_rng(3, "g")
    before = stats.subject_resamples(design.subject_group, groups=LAYOUT.groups, n_resamples=50, rng=rng)
    flips = rng.random((40, len(units))) < 0.5
    assert np.array_equal(_whole(draws), before)
    assert np.array_equal(np.concatenate([x for _, x in draws.exchanges()]), flips)


def test_exchanges_asked_for_first_are_those_after_the_resamples():
    design, _ = _design(_clustered())
    first = Draws(subject_units(design), 30, 20, 0, "g", budget_bytes=500)
    second = Draws(subject_units(design), 30, 20, 0, "g", budget_bytes=500)
    list(second.resamples())
    assert np.array_equal(np.concatenate([x for _, x in first.exchanges()]),
                          np.concatenate([x for _, x in second.exchanges()]))


@pytest.mark.parametrize("budget", [1, 3_000])
def test_profile_draws_in_chunks_are_the_draws_at_once(budget):
    design, predictions = _design(_without_person_ids(_clustered()))
    units = profile_units(design, predictions)
    chunked = Draws(units, 60, 50, 1, "g", budget_bytes=budget)
    at_once = Draws(units, 60, 50, 1, "g", budget_bytes=10**9)
    assert len(list(chunked.resamples())) > len(list(at_once.resamples()))  # really in chunks
    assert np.array_equal(_whole(chunked), _whole(at_once))
    assert np.array_equal(np.concatenate([x for _, x in chunked.exchanges()]),
                          np.concatenate([x for _, x in at_once.exchanges()]))


@pytest.mark.parametrize("ci_method", ["bound", "bca"])
@pytest.mark.parametrize("person_ids", [True, False])
def test_statistics_in_chunks_equal_the_statistics_at_once(ci_method, person_ids):
    """The scaled-down version of a million images: the whole table, every number, bit for bit."""
    frame = _clustered(subjects_per_gender=150)
    frame = frame if person_ids else _without_person_ids(frame)
    tables = [stats.compare(_rows(frame, "method"), _rows(frame, "reference"), **PAIR,
                            config=stats.StatsConfig(n_resamples=300, n_permutations=300, ci_method=ci_method,
                                                     memory_budget_mb=budget))
              for budget in (1, 4096)]
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)


def test_design_without_person_ids_resamples_classes_of_alike_images():
    frame = _without_person_ids(_clustered())
    design, predictions = _design(frame)
    units = profile_units(design, predictions)
    assert units.kind == "profiles" and units.size.sum() == len(design.image_ids)
    assert len(units) < len(design.image_ids)  # alike images share a class
    assert np.all(np.diff(units.stratum) >= 0)  # strata contiguous
    # every image of a class has the representative's cell, correctness and false-positive cells
    key = np.concatenate([a.reshape(-1, len(design.image_ids)) for p in predictions
                          for a in (p.correct, p.false_cell)]).T
    for u in (0, len(units) // 2, len(units) - 1):
        alike = (design.image_cell == design.image_cell[units.representative[u]]) & (
            key == key[units.representative[u]]).all(axis=1)
        assert alike.sum() == units.size[u]


def _units(sizes: list[int]) -> Units:
    sizes = np.array(sizes)
    return Units("profiles", np.zeros(len(sizes), dtype=np.int64), sizes, np.ones((len(sizes), 1)),
                 np.arange(len(sizes)))


def test_profile_resamples_are_a_multinomial_of_the_images_over_the_classes():
    """Small classes (under SMALL_CLASS) are drawn image by image, large ones by the multinomial: together the
    counts must have the multinomial's means, variances and covariances."""
    sizes = [1, 1, 3, draws_module.SMALL_CLASS - 1, draws_module.SMALL_CLASS, 40]
    n, p = sum(sizes), np.array(sizes) / sum(sizes)
    counts = _whole(Draws(_units(sizes), 40_000, 1, 0, "m", budget_bytes=10**9)).astype(float)
    assert np.all(counts.sum(axis=1) == n)
    se = np.sqrt(n * p * (1 - p) / len(counts))
    assert np.all(np.abs(counts.mean(axis=0) - n * p) < 5 * se)
    covariance = np.cov(counts, rowvar=False)
    expected = n * (np.diag(p) - np.outer(p, p))
    assert np.allclose(covariance, expected, atol=0.05 * n * p.max())


def test_profile_exchanges_are_binomial_halves_of_each_class():
    sizes = [1, 2, 7, draws_module.BITS - 1, draws_module.BITS, 200]
    exchanged = np.concatenate([x for _, x in Draws(_units(sizes), 1, 40_000, 0, "m", 10**9).exchanges()])
    sizes = np.array(sizes)
    assert np.all((exchanged >= 0) & (exchanged <= sizes))
    se = np.sqrt(sizes / 4 / len(exchanged))
    assert np.all(np.abs(exchanged.mean(axis=0) - sizes / 2) < 5 * se)
    assert np.allclose(exchanged.var(axis=0), sizes / 4, rtol=0.05)
    assert abs(np.corrcoef(exchanged[:, 3], exchanged[:, 4])[0, 1]) < 0.03  # independent classes


def test_profile_bootstrap_has_the_image_bootstraps_distribution():
    """The same design resampled image by image (subject units) and by classes: each cell's bootstrap mean and sd
    agree within Monte Carlo error."""
    frame = _without_person_ids(_clustered(subjects_per_gender=40))
    design, predictions = _design(frame)
    spread = []
    for units in (subject_units(design), profile_units(design, predictions)):
        sums = [unit_sums(p, design, units, CHANNELS) for p in predictions]
        rates = resampled_rates(Draws(units, 20_000, 1, 5, "g", 10**8), sums, unit_totals(design, units, CHANNELS))
        cells = rates[0]["recall"]  # (R, T, K, C)
        spread.append((cells.mean(axis=0), cells.std(axis=0)))
    (mean_a, sd_a), (mean_b, sd_b) = spread
    assert np.all(np.abs(mean_a - mean_b) < 5 * sd_a * np.sqrt(2 / 20_000) + 1e-12)
    assert np.allclose(sd_a, sd_b, rtol=0.04)


@pytest.mark.parametrize("person_ids", [True, False])
def test_resampled_rates_in_chunks_equal_one_product_over_every_resample(person_ids):
    """Every channel, the false-positive rates of the attribute task included (a stratum's images count in the other
    groups' cells): the per-stratum products in chunks are the rates of the whole multiplicities array."""
    frame = _clustered()
    design, predictions = _design(frame if person_ids else _without_person_ids(frame))
    units = profile_units(design, predictions) if not person_ids else subject_units(design)
    sums = [unit_sums(p, design, units, CHANNELS) for p in predictions]
    totals = unit_totals(design, units, CHANNELS)
    draws = Draws(units, 70, 1, 2, "g", budget_bytes=3_000)
    got = resampled_rates(draws, sums, totals)
    for method, rates in zip(sums, got):
        expected = seed_rates(_whole(draws), method, totals)
        for channel in CHANNELS:
            assert np.array_equal(rates[channel], expected[channel], equal_nan=True)


def test_jackknife_from_totals_equals_the_leave_one_out_weights_matrix():
    design, predictions = _design(_clustered(subjects_per_gender=20))
    sums, totals = channel_sums(predictions[0], design, CHANNELS), channel_totals(design, CHANNELS)
    n = len(design.subjects)
    expected = seed_mean_metrics(np.ones((n, n)) - np.eye(n), sums, totals, LAYOUT)
    got = jackknife_metrics(sums, totals, subject_units(design), LAYOUT, budget_bytes=5_000)  # several chunks
    assert np.array_equal(got, expected, equal_nan=True)


def test_class_jackknife_weighted_by_class_size_equals_the_image_jackknife():
    design, predictions = _design(_without_person_ids(_clustered(subjects_per_gender=20)))
    images, classes = subject_units(design), profile_units(design, predictions)
    per_image = jackknife_metrics(channel_sums(predictions[0], design, CHANNELS), channel_totals(design, CHANNELS),
                                  images, LAYOUT, budget_bytes=10**8)
    per_class = jackknife_metrics(unit_sums(predictions[0], design, classes, CHANNELS),
                                  unit_totals(design, classes, CHANNELS), classes, LAYOUT, budget_bytes=10**8)
    expected = stats.bounds.stratified_jackknife_variance(per_image, images.stratum)
    got = stats.bounds.stratified_jackknife_variance(per_class, classes.stratum, classes.jackknife_weights)
    assert np.allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_a_draws_chunk_holds_at_most_the_budgets_rows():
    assert draws_module.rows_within(1_000, 10, 4, 500) == 25
    assert draws_module.rows_within(1, 10**6, 32, 500) == 1  # at least one row
    assert draws_module.rows_within(10**12, 10, 4, 500) == 500  # at most all


def test_a_long_pass_over_the_draws_says_how_far_it_got(monkeypatch, caplog):
    monkeypatch.setattr(draws_module, "PROGRESS_SECONDS", 0.0)
    design, _ = _design(_clustered())
    draws = Draws(subject_units(design), 40, 30, 0, "faces|test", budget_bytes=2_000)
    with caplog.at_level("INFO", logger="benchmark.stats.draws"):
        list(draws.resamples())
        list(draws.exchanges())
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("faces|test: bootstrap resamples x 2 strata: ") and " of 80 " in line for line in lines)
    assert any(line.startswith("faces|test: permutations: ") and " of 30 " in line for line in lines)


def test_debiased_gaps_of_classes_weighted_by_class_size_equal_those_of_the_images():
    """The de-biased gaps need the persons' variances: a class of alike images stands for its size persons (no row per
    image at a million images), and unweighted classes would give other numbers."""
    design, predictions = _design(_without_person_ids(_clustered(subjects_per_gender=20)))
    classes, method = profile_units(design, predictions), predictions[0]
    per_image = channel_sums(method, design, ["recall"])["recall"]  # (n, T, K, C)
    cells = 100.0 * per_image.sum(axis=0) / channel_totals(design, ["recall"])["recall"].sum(axis=0)[:, None, :]
    expected = calibrated.debiased_gaps(per_image, cells, calibrated.Design(design.subject_stratum, design.counts, LAYOUT))
    per_person = unit_sums(method, design, classes, ["recall"])["recall"]  # of one image of each class
    by_class = calibrated.Design(classes.stratum, classes.counts, LAYOUT)
    got = calibrated.debiased_gaps(per_person, cells, by_class, weights=classes.size)
    assert len(classes) < len(design.subjects) and np.isfinite(expected).sum() > 0
    assert np.allclose(got, expected, rtol=1e-9, atol=1e-9, equal_nan=True)
    assert not np.allclose(calibrated.debiased_gaps(per_person, cells, by_class), expected, equal_nan=True)
