"""Tests of a difference between two prediction sets: the subject-level permutation test (primary), Holm's correction
and the exact McNemar test (secondary, image level)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.stats.cells import Rates, SubjectDesign, metric_entries, seed_mean_difference
from benchmark.stats.resampling import chunks, exact_product

__all__ = ["holm", "mcnemar_exact", "mcnemar_table", "permutation_p", "seed_majority", "tile_seeds"]

_TIE_TOLERANCE = 1e-9  # percent; permutation statistics this close to the observed one count as "as extreme"


def tile_seeds(sums: np.ndarray, n_seeds: int) -> np.ndarray:
    """Repeat the seed axis (axis 2) cyclically to ``n_seeds`` (a multiple of it): the seed mean is unchanged."""
    return np.tile(sums, (1, 1, n_seeds // sums.shape[2], 1))


def permutation_p(sums_a: Rates, sums_b: Rates, totals: Rates, flips: np.ndarray, observed: np.ndarray,
                  layout: CellLayout, metric_set: Sequence[metrics.Metric] = metrics.METRICS) -> np.ndarray:
    """Two-sided subject-level permutation p of metric(a) - metric(b) for every metric of ``metric_set``, shape
    (T, n_metrics).

    sums_a, sums_b: channel -> (n_subjects, T, K, C) per-subject numerators; totals: channel -> (n_subjects, T, C)
    (the channels ``metric_set`` reads).
    ``flips`` (P, n_subjects) bool: the subjects whose predictions are exchanged in each permutation. Seeds are paired
    by their order after tiling both methods to the least common multiple of their seed counts (a one-seed method
    pairs with every seed of the other).
    """
    channels = list(sums_a)
    n_seeds = math.lcm(sums_a[channels[0]].shape[2], sums_b[channels[0]].shape[2])
    a = {c: tile_seeds(sums_a[c], n_seeds) for c in channels}
    b = {c: tile_seeds(sums_b[c], n_seeds) for c in channels}
    n, n_tasks = a[channels[0]].shape[:2]
    delta = np.concatenate([(a[c] - b[c]).reshape(n, -1) for c in channels], axis=1)
    width = n_tasks * n_seeds * layout.n_cells
    totals_all = {c: totals[c].sum(axis=0)[:, None, :] for c in channels}  # (T, 1, C)
    exceed = np.zeros(observed.shape, dtype=np.int64)
    for part in chunks(len(flips), delta.shape[1] * 4):
        moved = exact_product(flips[part], delta)
        shape = (len(moved), n_tasks, n_seeds, layout.n_cells)
        rates_a, rates_b = {}, {}
        for j, c in enumerate(channels):
            moved_c = moved[:, j * width:(j + 1) * width].reshape(shape)
            with np.errstate(invalid="ignore", divide="ignore"):
                rates_a[c] = 100.0 * (a[c].sum(axis=0) - moved_c) / totals_all[c]
                rates_b[c] = 100.0 * (b[c].sum(axis=0) + moved_c) / totals_all[c]
        with np.errstate(invalid="ignore", divide="ignore"):
            statistic = seed_mean_difference(rates_a, rates_b, layout, metric_set)
        exceed += (np.abs(statistic) >= np.abs(observed) - _TIE_TOLERANCE).sum(axis=0)
    p = (1.0 + exceed) / (1.0 + len(flips))
    return np.where(np.isnan(observed), np.nan, p)


def holm(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order.

    With m non-NaN p-values sorted ascending, p_(i) is adjusted to max over j <= i of min(1, (m - j + 1) p_(j)).
    NaN entries stay NaN and do not count in m.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact (binomial) two-sided McNemar p on paired image-level correctness; 1.0 when no pair is discordant."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    return _binomial_p(int(np.sum(a & ~b)), int(np.sum(~a & b)))


@functools.lru_cache(maxsize=4096)
def _binomial_p(only_a: int, only_b: int) -> float:
    """Two-sided exact binomial p of only_a successes in only_a + only_b trials at 1/2 (discordant counts repeat
    across cells and methods, so they are remembered)."""
    if only_a + only_b == 0:
        return 1.0
    return float(sps.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def seed_majority(correct: np.ndarray) -> np.ndarray:
    """Image-level correctness over seeds: (T, K, n_images) -> (T, n_images); a tie goes to the first seed."""
    fraction = correct.mean(axis=1)
    return (fraction > 0.5) | ((fraction == 0.5) & correct[:, 0])


def mcnemar_table(majority_a: np.ndarray, majority_b: np.ndarray, design: SubjectDesign) -> np.ndarray:
    """McNemar p for every (task, metric): a metric's :attr:`~benchmark.core.metrics.Metric.mcnemar` says on which
    images (its cell's, all), NaN for the others."""
    entries = metric_entries(design.layout)
    kind = {m.name: m.mcnemar for m in metrics.METRICS}
    cell_of = {(group, emotion): c for c, (group, emotion) in enumerate(design.layout.cells())}
    out = np.full((majority_a.shape[0], len(entries)), np.nan)
    for t in range(majority_a.shape[0]):
        for j, (metric, group, emotion) in enumerate(entries):
            if kind[metric] == "all":
                out[t, j] = mcnemar_exact(majority_a[t], majority_b[t])
            elif kind[metric] == "cell":
                mask = design.image_cell == cell_of[group, emotion]
                out[t, j] = mcnemar_exact(majority_a[t, mask], majority_b[t, mask])
    return out
