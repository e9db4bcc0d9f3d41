"""Subject resampling: stratified bootstrap multiplicities, and every metric of weighted subject sets as one matrix
product per rate channel of exact integer counts (chunked to bound memory): of given weights (:func:`seed_rates`), of
an evaluation group's resamples drawn chunk by chunk (:func:`resampled_rates`, :mod:`benchmark.stats.draws`), and
leaving one subject out (:func:`jackknife_metrics`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.core.metrics import Metric
from benchmark.stats.cells import Rates, metric_entries, metric_values, seed_mean_values
from benchmark.stats.draws import Draws, rows_within
from benchmark.stats.units import Units

__all__ = ["chunks", "exact_product", "jackknife_metrics", "resampled_rates", "seed_cells", "seed_mean_metrics",
           "seed_metrics", "seed_rates", "subject_resamples", "weighted_total"]

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


def weighted_total(weights: np.ndarray, array: np.ndarray, *, chunk_bytes: int = 32 * 2**20) -> np.ndarray:
    """``weights @ array`` over the first axis in float64, (U,) x (U, ...) -> (...), in chunks of rows so that an
    integer ``array`` (int8 counts of a million classes) is never copied to float64 whole. Exact for integer weights
    and counts (every partial sum an integer below 2^53), so the same number as one product."""
    flat = array.reshape(len(array), -1)
    total = np.zeros(flat.shape[1])
    for start in range(0, len(flat), step := rows_within(chunk_bytes, flat.shape[1], 8, len(flat))):
        total += np.asarray(weights[start:start + step], dtype=np.float64) @ flat[start:start + step]
    return total.reshape(array.shape[1:])


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


def _stratum_operand(units: Units, stratum: int, sums: list[Rates], totals: Rates,
                     targets: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, list[tuple]]:
    """One stratum's operand of every product, side by side: per (channel, task), the cells its units have images to
    count in (a numerator is never above its denominator), their denominators (U_g, n) and every method's numerators
    (U_g, K * n); float32 where every partial sum is an exact integer (a resample draws the stratum's subjects), else
    float64. ``targets``: the denominators, then each method's sums, channel -> (R, T, [K,] C). Returns the operand
    (U_g, W) and where each of its column blocks goes: (target array, task, cells, columns)."""
    members = units.members(stratum)
    blocks, places, start, largest = [], [], 0, 0.0
    for channel, total in totals.items():
        for t in range(total.shape[1]):
            cells = np.flatnonzero(total[members, t].sum(axis=0) > 0)
            if not len(cells):
                continue
            for j, target in enumerate(targets):
                source = total if j == 0 else sums[j - 1][channel]
                width = len(cells) * (1 if j == 0 else source.shape[2])
                blocks.append((source, t, cells, slice(start, start + width)))
                places.append((target[channel], t, cells, slice(start, start + width)))
                largest = max(largest, float(np.abs(source[members, t]).max(initial=0)))
                start += width
    exact = float(units.size[members].sum()) * largest < 2 ** 24
    operand = np.empty((len(members), start), dtype=np.float32 if exact else np.float64)
    for source, t, cells, columns in blocks:
        operand[:, columns] = source[members, t][..., cells].reshape(len(members), -1)
    return operand, places


def resampled_rates(draws: Draws, sums: list[Rates], totals: Rates) -> list[Rates]:
    """Per-seed rates of every channel in every bootstrap resample of ``draws``, for several methods on the same
    resamples (drawn once, chunk by chunk).

    sums : per method, channel -> (U, T, K_m, C) numerators of the units of ``draws``; totals : channel -> (U, T, C)
    denominators (:func:`benchmark.stats.units.unit_sums`, :func:`~benchmark.stats.units.unit_totals`). Returns per
    method channel -> (R, T, K_m, C) percent; a cell with nothing to count in a resample is NaN. A stratum's draws
    only move the cells its units have images to count in (a cell accuracy: the stratum's own cells; the attribute
    task's false positives: the other groups' cells), so each chunk is one product of the stratum's multiplicities
    with those columns alone (:func:`_stratum_operand`); the exact integer sums of the strata add up before the
    division, the same numbers as one product over every unit (:func:`seed_rates`).
    """
    units, n_resamples = draws.units, draws.n_resamples
    out = [{c: np.zeros((n_resamples,) + s[c].shape[1:]) for c in totals} for s in sums]
    denominators = {c: np.zeros((n_resamples,) + total.shape[1:]) for c, total in totals.items()}
    stratum, operand, places = None, np.zeros((0, 0)), []
    for g, rows, weights in draws.resamples():
        if g != stratum:  # a stratum's operand, once
            stratum = g
            operand, places = _stratum_operand(units, g, sums, totals, [denominators, *out])
        product = (weights.astype(operand.dtype) @ operand).astype(np.float64)
        for target, t, cells, columns in places:
            view = target[rows, t]  # (rows, C) or (rows, K, C)
            if view.ndim == 2:
                view[:, cells] += product[:, columns]
            else:
                view[:, :, cells] += product[:, columns].reshape(len(product), -1, len(cells))
    with np.errstate(invalid="ignore", divide="ignore"):
        for o in out:
            for channel, rates in o.items():
                np.multiply(rates, 100.0, out=rates)
                np.divide(rates, denominators[channel][:, :, None, :], out=rates)
    return out


def jackknife_metrics(sums: Rates, totals: Rates, units: Units, layout: CellLayout, *, budget_bytes: int,
                      metric_set: Sequence[Metric] = metrics.METRICS) -> np.ndarray:
    """Seed-mean metrics leaving one subject out, per unit: channel -> (U, T, K, C) numerators over channel -> (U, T, C)
    denominators -> (U, T, M) percent.

    The sums without one subject of unit u are the total minus u's (no subjects x subjects weights); every subject
    of a unit gives the same values (:attr:`Units.jackknife_weights` says how many). Computed in chunks of units
    within ``budget_bytes``.
    """
    size = units.size.astype(np.float64)
    n_units = len(size)
    flat = {c: s.reshape(n_units, -1) for c, s in sums.items()}
    flat_totals = {c: totals[c].reshape(n_units, -1) for c in sums}
    total = {c: weighted_total(size, f, chunk_bytes=budget_bytes) for c, f in flat.items()}
    total_n = {c: weighted_total(size, f, chunk_bytes=budget_bytes) for c, f in flat_totals.items()}
    width = sum(f.shape[1] for f in flat.values())
    out = np.empty((n_units, next(iter(sums.values())).shape[1], len(metric_entries(layout, metric_set))))
    for start in range(0, n_units, step := rows_within(budget_bytes, width, 32, n_units)):
        part = slice(start, min(n_units, start + step))
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = {c: 100.0 * (total[c] - flat[c][part]).reshape((-1,) + sums[c].shape[1:])
                     / (total_n[c] - flat_totals[c][part]).reshape((-1, totals[c].shape[1], 1, totals[c].shape[2]))
                     for c in flat}
            out[part] = seed_mean_values(rates, layout, metric_set)
    return out
