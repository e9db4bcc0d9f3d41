"""Subject resampling: stratified bootstrap multiplicities, and every metric of weighted subject sets as one matrix
product of exact integer counts (chunked to bound memory): of given weights (:func:`seed_cells`), of an evaluation
group's resamples drawn chunk by chunk (:func:`resampled_cells`, :mod:`benchmark.stats.draws`), and leaving one
subject out (:func:`jackknife_metrics`)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from benchmark.core.design import CellLayout
from benchmark.stats.cells import seed_mean_summary, summary_metrics
from benchmark.stats.draws import Draws, rows_within
from benchmark.stats.units import Units

__all__ = ["chunks", "exact_product", "jackknife_metrics", "resampled_cells", "seed_cells", "seed_mean_metrics",
           "seed_metrics", "subject_resamples"]

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


def chunks(n_rows: int, n_cols: int) -> Iterator[slice]:
    """Row slices so that one chunk of an (n_rows, n_cols) product holds at most a few million floats."""
    step = max(1, _CHUNK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def _integral(x: np.ndarray) -> bool:
    return x.dtype.kind in "biu" or bool(np.array_equal(x, np.round(x)))


def _float32_exact(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether every partial sum of ``a @ b`` (integers) is below 2^24 in magnitude, so float32 gets it exactly: it
    is at most max|a| x the largest column sum of |b|, and at most the largest row sum of |a| x max|b|."""
    if a.size == 0 or b.size == 0:
        return True
    abs_a, abs_b = np.abs(a), np.abs(b)
    return min(float(abs_a.max()) * float(abs_b.sum(axis=0).max()),
               float(abs_a.sum(axis=1).max()) * float(abs_b.max())) < 2 ** 24


def exact_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in float64; computed in float32 (twice as fast) when both hold integers small enough that every
    partial sum is exact there (multiplicities and correct counts), so the result is the same number."""
    if _integral(a) and _integral(b) and _float32_exact(a, b):
        return (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float64)
    return a.astype(np.float64) @ b.astype(np.float64)


def seed_metrics(weights: np.ndarray, sums: np.ndarray, counts: np.ndarray, layout: CellLayout) -> np.ndarray:
    """Per-seed metrics of weighted subject sets (for the seed sd).

    weights (R, n_subjects); sums (n_subjects, T, K, n_cells); counts (n_subjects, n_cells) -> (R, T, K, n_metrics)
    percent.
    """
    n, n_tasks, n_seeds, n_cells = sums.shape
    cell_sums = (weights @ sums.reshape(n, -1)).reshape(len(weights), n_tasks, n_seeds, n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        return summary_metrics(100.0 * cell_sums / (weights @ counts)[:, None, None, :], layout)


def seed_cells(weights: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-seed cell accuracies of weighted subject sets: (R, n_subjects) weights -> (R, T, K, n_cells) percent, in
    memory-bounded chunks.

    sums (n_subjects, T, K, n_cells) correct counts; counts (n_subjects, n_cells) images. An empty cell gives NaN.
    """
    weights = np.asarray(weights, dtype=np.float64)
    n, n_tasks, n_seeds, n_cells = sums.shape
    flat = sums.reshape(n, -1)
    out = np.empty((len(weights), n_tasks, n_seeds, n_cells))
    for part in chunks(len(weights), flat.shape[1] * 3):
        cell_sums = exact_product(weights[part], flat).reshape(-1, n_tasks, n_seeds, n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[part] = 100.0 * cell_sums / exact_product(weights[part], counts)[:, None, None, :]
    return out


def seed_mean_metrics(weights: np.ndarray, sums: np.ndarray, counts: np.ndarray, layout: CellLayout) -> np.ndarray:
    """Seed-mean metrics of weighted subject sets, (R, n_subjects) weights -> (R, T, n_metrics) percent.

    sums (n_subjects, T, K, n_cells) correct counts; counts (n_subjects, n_cells) images. An empty cell gives NaN.
    """
    return seed_mean_summary(seed_cells(weights, sums, counts), layout)


def resampled_cells(draws: Draws, sums: list[np.ndarray], layout: CellLayout) -> list[np.ndarray]:
    """Per-seed cell accuracies of every bootstrap resample of ``draws``, for several methods on the same resamples
    (drawn once, chunk by chunk).

    sums : per method, correct counts (U, T, K_m, C) of the units of ``draws`` (:func:`benchmark.stats.units.unit_sums`).
    Returns per method (R, T, K_m, C) percent; a cell empty in a resample is NaN. A unit of stratum g only has images
    in g's cells, so each stratum's draws fill its own cells.
    """
    units, n_emotions = draws.units, len(layout.emotions)
    out = [np.full((draws.n_resamples,) + s.shape[1:], np.nan) for s in sums]
    stratum, dtype, counts, flats = None, np.float64, np.empty(0), []
    for g, rows, weights in draws.resamples():
        if g != stratum:  # a stratum's operands, once: cast to float32 where every partial sum is an exact integer
            stratum, members, cells = g, units.members(g), slice(g * n_emotions, (g + 1) * n_emotions)
            counts = units.counts[members, cells]
            flats = [s[members][..., cells].reshape(len(members), -1) for s in sums]
            largest = max(float(np.abs(b).max(initial=0)) for b in [counts, *flats])
            exact = float(units.size[members].sum()) * largest < 2 ** 24  # a resample draws the stratum's subjects
            dtype = np.float32 if exact else np.float64
            counts, flats = counts.astype(dtype), [f.astype(dtype) for f in flats]
        w = weights.astype(dtype)
        with np.errstate(invalid="ignore", divide="ignore"):
            n = (w @ counts).astype(np.float64)[:, None, None, :]
            for o, flat in zip(out, flats):
                cell_sums = (w @ flat).astype(np.float64).reshape((len(w),) + o.shape[1:3] + (-1,))
                o[rows, :, :, cells] = 100.0 * cell_sums / n
    return out


def jackknife_metrics(sums: np.ndarray, units: Units, layout: CellLayout, *, budget_bytes: int) -> np.ndarray:
    """Seed-mean metrics leaving one subject out, per unit: (U, T, K, C) correct counts -> (U, T, M) percent.

    The sums without one subject of unit u are the total minus u's (no subjects x subjects weights); every subject
    of a unit gives the same values (:attr:`Units.jackknife_weights` says how many). Computed in chunks of units
    within ``budget_bytes``.
    """
    n_units, n_tasks, n_seeds, n_cells = sums.shape
    flat = sums.reshape(n_units, -1)
    size = units.size.astype(np.float64)
    total, total_n = size @ flat, size @ units.counts
    out = np.empty((n_units, n_tasks, len(summary_metrics(np.zeros(n_cells), layout))))
    for start in range(0, n_units, step := rows_within(budget_bytes, flat.shape[1], 32, n_units)):
        part = slice(start, min(n_units, start + step))
        with np.errstate(invalid="ignore", divide="ignore"):
            cells = (100.0 * (total - flat[part]).reshape(-1, n_tasks, n_seeds, n_cells)
                     / (total_n - units.counts[part])[:, None, None, :])
        out[part] = seed_mean_summary(cells, layout)
    return out
