"""Tests of a difference between two prediction sets: the subject-level permutation test (primary), Holm's correction
and the exact McNemar test (secondary, image level)."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from benchmark.core.design import CellLayout
from benchmark.stats.cells import SubjectDesign, metric_entries, seed_mean_difference
from benchmark.stats.resampling import chunks

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
    one-seed method pairs with every seed of the other). Exchanging a unit's subjects moves the cell sums linearly:
    a loses and b gains ``exchanged @ (a - b)``.
    """

    delta: np.ndarray     # (U, T * K * C) correct counts a - b per unit (one subject of it)
    total_a: np.ndarray   # (T * K * C,) cell sums of a over every subject
    total_b: np.ndarray
    cell_n: np.ndarray    # (C,) images per cell
    observed: np.ndarray  # (T, M)
    layout: CellLayout
    n_seeds: int

    @functools.cached_property
    def operand(self) -> np.ndarray:
        """``delta`` for the products: float32 (twice as fast) when every partial sum of exchanged counts times it is
        an integer below 2^24, i.e. when all images x max |delta| is (a permutation exchanges at most every subject,
        and there are at most as many subjects as images), else float64."""
        exact = float(self.cell_n.sum()) * float(np.abs(self.delta).max(initial=0)) < 2 ** 24
        return self.delta.astype(np.float32 if exact else np.float64)

    @classmethod
    def prepare(cls, sums_a: np.ndarray, sums_b: np.ndarray, counts: np.ndarray, observed: np.ndarray,
                layout: CellLayout, size: np.ndarray | None = None) -> PairedTest:
        """sums_a, sums_b (U, T, K_a | K_b, C) correct counts; counts (U, C) images; observed (T, M) the difference;
        size (U,) subjects per unit (None: one each)."""
        n_seeds = math.lcm(sums_a.shape[2], sums_b.shape[2])
        a, b = tile_seeds(sums_a, n_seeds), tile_seeds(sums_b, n_seeds)
        n = a.shape[0]
        if size is None:
            total_a, total_b, cell_n = a.sum(axis=0).reshape(-1), b.sum(axis=0).reshape(-1), counts.sum(axis=0)
        else:
            weights = size.astype(np.float64)
            total_a, total_b, cell_n = weights @ a.reshape(n, -1), weights @ b.reshape(n, -1), weights @ counts
        return cls((a - b).reshape(n, -1), total_a, total_b, cell_n, observed, layout, n_seeds)

    def exceedances(self, exchanged: np.ndarray) -> np.ndarray:
        """How many of the permutations ``exchanged`` (P, U: subjects of each unit exchanged) give a statistic at
        least as extreme as the observed one: (T, M) int64."""
        n_tasks = self.observed.shape[0]
        exceed = np.zeros(self.observed.shape, dtype=np.int64)
        delta = self.operand
        for part in chunks(len(exchanged), self.delta.shape[1] * 4):
            moved = (exchanged[part].astype(delta.dtype) @ delta).astype(np.float64)
            shape = (len(moved), n_tasks, self.n_seeds, self.layout.n_cells)
            with np.errstate(invalid="ignore", divide="ignore"):
                statistic = seed_mean_difference(100.0 * (self.total_a - moved).reshape(shape) / self.cell_n,
                                                 100.0 * (self.total_b + moved).reshape(shape) / self.cell_n,
                                                 self.layout)
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


def permutation_p(sums_a: np.ndarray, sums_b: np.ndarray, counts: np.ndarray, flips: np.ndarray,
                  observed: np.ndarray, layout: CellLayout) -> np.ndarray:
    """Two-sided subject-level permutation p of metric(a) - metric(b), shape (T, n_metrics), for one subject per
    row of ``sums_a``/``sums_b`` (n_subjects, T, K, C) and ``flips`` (P, n_subjects) bool: the subjects whose
    predictions are exchanged in each permutation (:class:`PairedTest`)."""
    test = PairedTest.prepare(sums_a, sums_b, counts, observed, layout)
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
    """McNemar p for every (task, metric): cells on their own images, macro on all images, NaN for the others."""
    entries = metric_entries(design.layout)
    out = np.full((majority_a.shape[0], len(entries)), np.nan)
    for t in range(majority_a.shape[0]):
        for j, (metric, _, _) in enumerate(entries):
            if metric == "macro":
                out[t, j] = mcnemar_exact(majority_a[t], majority_b[t])
            elif metric == "cell":
                mask = design.image_cell == j
                out[t, j] = mcnemar_exact(majority_a[t, mask], majority_b[t, mask])
    return out
