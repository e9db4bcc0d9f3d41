"""Tests of a difference between two prediction sets: the subject-level permutation test (primary), Holm's correction
and the exact McNemar test (secondary, image level)."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.stats.cells import Rates, SubjectDesign, metric_entries, seed_mean_difference
from benchmark.stats.resampling import chunks, weighted_total

__all__ = ["PairedTest", "holm", "mcnemar_exact", "mcnemar_table", "permutation_p", "permutation_pvalues",
           "seed_majority", "tile_seeds"]

_TIE_TOLERANCE = 1e-9  # percent; permutation statistics this close to the observed one count as "as extreme"


def tile_seeds(sums: np.ndarray, n_seeds: int) -> np.ndarray:
    """Repeat the seed axis (axis 2) cyclically to ``n_seeds`` (a multiple of it): the seed mean is unchanged."""
    return np.tile(sums, (1, 1, n_seeds // sums.shape[2], 1))


@dataclass(frozen=True)
class PairedTest:
    """The subject-level permutation test of metric(a) - metric(b), prepared once and fed chunks of exchanges.

    Seeds are paired by their order after tiling both methods to the least common multiple of their seed counts (a
    one-seed method pairs with every seed of the other). Exchanging a unit's subjects moves every channel's cell sums
    linearly: a loses and b gains ``exchanged @ (a - b)``; the denominators stay (both cover the same images).
    """

    delta: np.ndarray     # (U, channels x T x K x C) numerators a - b per unit (one subject of it)
    total_a: Rates        # channel -> (T, K, C) numerators of a over every subject
    total_b: Rates
    totals: Rates         # channel -> (T, 1, C) denominators over every subject
    observed: np.ndarray  # (T, M)
    layout: CellLayout
    n_seeds: int
    n_subjects: float
    metric_set: tuple[metrics.Metric, ...]

    @functools.cached_property
    def operand(self) -> np.ndarray:
        """``delta`` for the products: float32 (twice as fast) when every partial sum of exchanged counts times it is
        an integer below 2^24, i.e. when the subjects x max |delta| is (a permutation exchanges at most every
        subject), else float64."""
        exact = self.n_subjects * float(np.abs(self.delta).max(initial=0)) < 2 ** 24
        return self.delta.astype(np.float32 if exact else np.float64)

    @classmethod
    def prepare(cls, sums_a: Rates, sums_b: Rates, totals: Rates, observed: np.ndarray, layout: CellLayout,
                size: np.ndarray | None = None,
                metric_set: Sequence[metrics.Metric] = metrics.METRICS) -> PairedTest:
        """sums_a, sums_b: channel -> (U, T, K_a | K_b, C) numerators; totals: channel -> (U, T, C) denominators (the
        channels ``metric_set`` reads); observed (T, M) the difference; size (U,) subjects per unit (None: one each)."""
        channels = list(sums_a)
        n_seeds = math.lcm(sums_a[channels[0]].shape[2], sums_b[channels[0]].shape[2])
        n = sums_a[channels[0]].shape[0]
        w = np.ones(n) if size is None else size.astype(np.float64)

        def total(array: np.ndarray, seed_axis: bool = True) -> np.ndarray:
            summed = weighted_total(w, array)  # before tiling: the tile of the total is the total of the tile
            return np.tile(summed, (1, n_seeds // array.shape[2], 1)) if seed_axis else summed

        total_a, total_b = {c: total(sums_a[c]) for c in channels}, {c: total(sums_b[c]) for c in channels}
        denominators = {c: total(totals[c], seed_axis=False)[:, None, :] for c in channels}
        width = sums_a[channels[0]].shape[1] * n_seeds * sums_a[channels[0]].shape[3]
        kinds = [s[c].dtype for s in (sums_a, sums_b) for c in channels]
        delta = np.empty((n, width * len(channels)), dtype=np.result_type(np.int8, *kinds))
        for j, c in enumerate(channels):  # one channel's tiles at a time
            delta[:, j * width:(j + 1) * width] = (tile_seeds(sums_a[c], n_seeds)
                                                   - tile_seeds(sums_b[c], n_seeds)).reshape(n, -1)
        n_subjects = float(w.sum())
        return cls(delta, total_a, total_b, denominators, observed, layout, n_seeds, n_subjects, tuple(metric_set))

    def exceedances(self, exchanged: np.ndarray) -> np.ndarray:
        """How many of the permutations ``exchanged`` (P, U: subjects of each unit exchanged) give a statistic at
        least as extreme as the observed one: (T, M) int64."""
        exceed = np.zeros(self.observed.shape, dtype=np.int64)
        delta = self.operand
        width = self.delta.shape[1] // len(self.totals)
        for part in chunks(len(exchanged), self.delta.shape[1] * 4):
            moved = (exchanged[part].astype(delta.dtype) @ delta).astype(np.float64)
            rates_a, rates_b = {}, {}
            for j, (c, total) in enumerate(self.totals.items()):
                moved_c = moved[:, j * width:(j + 1) * width].reshape((len(moved),) + self.total_a[c].shape)
                with np.errstate(invalid="ignore", divide="ignore"):
                    rates_a[c] = 100.0 * (self.total_a[c] - moved_c) / total
                    rates_b[c] = 100.0 * (self.total_b[c] + moved_c) / total
            with np.errstate(invalid="ignore", divide="ignore"):
                statistic = seed_mean_difference(rates_a, rates_b, self.layout, self.metric_set)
            exceed += (np.abs(statistic) >= np.abs(self.observed) - _TIE_TOLERANCE).sum(axis=0)
        return exceed

    def p_value(self, exceed: np.ndarray, n_permutations: int) -> np.ndarray:
        """Two-sided p = (1 + exceedances) / (1 + P), NaN where the observed difference is."""
        p = (1.0 + exceed) / (1.0 + n_permutations)
        return np.where(np.isnan(self.observed), np.nan, p)


def permutation_pvalues(tests: list[PairedTest], exchanges: Iterable[tuple[slice, np.ndarray]],
                        n_permutations: int) -> list[np.ndarray]:
    """The permutation p (T, M) of every test on the same permutations, drawn once: ``exchanges`` yields chunks
    (rows, exchanged (len(rows), U)) covering ``n_permutations`` (:meth:`benchmark.stats.draws.Draws.exchanges`)."""
    exceed = [np.zeros(t.observed.shape, dtype=np.int64) for t in tests]
    for _, exchanged in exchanges:
        for i, test in enumerate(tests):
            exceed[i] += test.exceedances(exchanged)
    return [t.p_value(e, n_permutations) for t, e in zip(tests, exceed)]


def permutation_p(sums_a: Rates, sums_b: Rates, totals: Rates, flips: np.ndarray, observed: np.ndarray,
                  layout: CellLayout, metric_set: Sequence[metrics.Metric] = metrics.METRICS) -> np.ndarray:
    """Two-sided subject-level permutation p of metric(a) - metric(b) for every metric of ``metric_set``, shape
    (T, n_metrics), for one subject per row of ``sums_a``/``sums_b`` (channel -> (n_subjects, T, K, C)) over
    ``totals`` (channel -> (n_subjects, T, C)) and ``flips`` (P, n_subjects) bool: the subjects whose predictions are
    exchanged in each permutation (:class:`PairedTest`)."""
    test = PairedTest.prepare(sums_a, sums_b, totals, observed, layout, metric_set=metric_set)
    return test.p_value(test.exceedances(flips), len(flips))


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
