"""Subject resampling: stratified bootstrap multiplicities, and every metric of weighted subject sets as one matrix
product of exact integer counts (chunked to bound memory)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from benchmark.core.design import CellLayout
from benchmark.stats.cells import Rates, metric_values, seed_mean_values

__all__ = ["chunks", "exact_product", "jackknife_weights", "seed_cells", "seed_mean_metrics", "seed_metrics",
           "seed_rates", "subject_resamples"]

_CHUNK_ELEMENTS = 4_000_000  # bound on the floats of one matrix-product chunk (memory, not results)


def subject_resamples(subject_group: np.ndarray, *, groups: tuple[str, ...], n_resamples: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Subject multiplicities of ``n_resamples`` stratified bootstrap resamples.

    Parameters
    ----------
    subject_group : array of shape (n_subjects,)
        Each subject's attribute group; the strata.
    groups : the groups in declared order (the order of the draws, so a design gives the same resamples whatever
        order its subjects come in).
    n_resamples : int
    rng : numpy Generator

    Returns
    -------
    int array of shape (n_resamples, n_subjects): how often each subject is drawn. Within each group the counts sum to
    that group's number of subjects (draws with replacement, equal probability). A drawn subject stands for all of
    its images, so an image's multiplicity is its subject's.
    """
    subject_group = np.asarray(subject_group)
    weights = np.zeros((n_resamples, len(subject_group)), dtype=np.int64)
    for group in groups:
        members = np.flatnonzero(subject_group == group)
        n = len(members)
        if n:
            draws = rng.integers(0, n, size=(n_resamples, n)) + n * np.arange(n_resamples)[:, None]
            weights[:, members] = np.bincount(draws.ravel(), minlength=n_resamples * n).reshape(n_resamples, n)
    return weights


def jackknife_weights(n_subjects: int) -> np.ndarray:
    """Leave-one-subject-out weights: (n_subjects, n_subjects), row s is every subject but s once."""
    return np.ones((n_subjects, n_subjects)) - np.eye(n_subjects)


def chunks(n_rows: int, n_cols: int) -> Iterator[slice]:
    """Row slices so that one chunk of an (n_rows, n_cols) product holds at most a few million floats."""
    step = max(1, _CHUNK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def exact_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in float64; computed in float32 (twice as fast) when both hold integers small enough that every
    partial sum is exact there (multiplicities and correct counts), so the result is the same number."""
    def integral(x: np.ndarray) -> bool:
        return x.dtype.kind in "biu" or bool(np.array_equal(x, np.round(x)))

    if (integral(a) and integral(b)
            and float(np.abs(a).max(initial=0)) * float(np.abs(b).sum(axis=0).max(initial=0)) < 2 ** 24):
        return (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float64)
    return a.astype(np.float64) @ b.astype(np.float64)


def seed_metrics(weights: np.ndarray, sums: Rates, totals: Rates, layout: CellLayout) -> np.ndarray:
    """Per-seed metrics of weighted subject sets (for the seed sd).

    weights (R, n_subjects); sums channel -> (n_subjects, T, K, C); totals channel -> (n_subjects, T, C) ->
    (R, T, K, n_metrics) percent.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return metric_values(seed_rates(weights, sums, totals), layout)


def seed_cells(weights: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-seed cell accuracies of weighted subject sets: (R, n_subjects) weights -> (R, T, K, n_cells) percent, in
    memory-bounded chunks.

    sums (n_subjects, T, K, n_cells) correct counts; counts (n_subjects, n_cells) images. An empty cell gives NaN.
    """
    n_tasks = sums.shape[1]
    return _rates(weights, sums, np.repeat(counts[:, None, :], n_tasks, axis=1))


def _rates(weights: np.ndarray, sums: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """100 * (weights @ sums) / (weights @ totals), chunked: (R, n) x (n, T, K, C) / (n, T, C) -> (R, T, K, C)."""
    weights = np.asarray(weights, dtype=np.float64)
    n, n_tasks, n_seeds, n_cells = sums.shape
    flat = sums.reshape(n, -1)
    out = np.empty((len(weights), n_tasks, n_seeds, n_cells))
    for part in chunks(len(weights), flat.shape[1] * 3):
        cell_sums = exact_product(weights[part], flat).reshape(-1, n_tasks, n_seeds, n_cells)
        denominator = exact_product(weights[part], totals.reshape(n, -1)).reshape(-1, n_tasks, 1, n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[part] = 100.0 * cell_sums / denominator
    return out


def seed_rates(weights: np.ndarray, sums: Rates, totals: Rates) -> Rates:
    """Per-seed rates of every channel of weighted subject sets: channel -> (R, T, K, n_cells) percent (NaN where a
    cell has no image to count)."""
    return {channel: _rates(weights, sums[channel], totals[channel]) for channel in sums}


def seed_mean_metrics(weights: np.ndarray, sums: Rates, totals: Rates, layout: CellLayout) -> np.ndarray:
    """Seed-mean metrics of weighted subject sets, (R, n_subjects) weights -> (R, T, n_metrics) percent.

    sums channel -> (n_subjects, T, K, C) numerators; totals channel -> (n_subjects, T, C). An empty cell gives NaN.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return seed_mean_values(seed_rates(weights, sums, totals), layout)
