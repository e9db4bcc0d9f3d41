"""The default intervals (``ci_method: bound``): score intervals for cells, and for every other metric an interval
estimate +- Q, where Q bounds the estimate's error with the promised probability.

Why (docs/STATISTICS.md, "Intervals", has the measured coverage): at 10-12 people per group a plain subject bootstrap
is too narrow (it underestimates the variance by (n - 1) / n and has normal tails), collapses to a point where a cell
is seen at 0 or 100 %, and follows the upward bias of the gaps (|x| and max of noisy quantities).

Every metric is a function f of the cell-accuracy vector p, and the gap metrics are 1-Lipschitz in their own
seminorm: the per-emotion gap (max - min over groups) satisfies |gap(p + e) - gap(p)| <= gap(e), and so do the pair
gaps, the largest gap (max over emotions) and the average gap (mean over emotions). So with e = p_hat - p,

- estimate:   |f(p_hat) - f(p)| <= |f(e)| for the linear metrics (signed gaps, macro; equality) and <= f(e) for gaps;
- difference: f(pA_hat) - f(pB_hat) - (f(pA) - f(pB)) is at most g(eA - eB) + 2 min(D, g(eA), g(eB)) in absolute
  value, g the seminorm and D >= g(pA - pB) an upper confidence bound at level 1 - gamma (the two methods' cells
  differ by little when they predict alike); per emotion for the per-emotion and average gaps.

The interval is the estimate +- the (1 - alpha) quantile of that bound (1 - alpha + gamma where D was estimated), over
**calibrated error draws**: the stratified subject-bootstrap deviations of the cell accuracies, scaled by
sqrt(n_g / (n_g - 1)) in each group (unbiased variance) and by t(df) / z (tails at few subjects), plus independent
normal noise wherever a cell's (or a paired cell difference's) spread is below its score floor, so that a cell seen
at 100 % still has an error. Cells themselves get a Wilson score interval with the cluster design effect.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

from benchmark.design import CellLayout
from benchmark.metrics import emotion_gaps
from benchmark.stats.cells import GAP_METRICS, by_group, metric_entries, signed_pairs, summary_metrics

__all__ = ["GAMMA_SHARE", "calibrated_errors", "difference_bounds", "estimate_bounds", "paired_floor",
           "stratified_jackknife_variance", "wilson_cells"]

#: gamma = GAMMA_SHARE * alpha: the error probability spent on the upper bound D of the methods' cell difference
GAMMA_SHARE = 0.2


def stratified_jackknife_variance(jack: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """Stratified delete-one-subject jackknife variance, sum_g (n_g - 1) / n_g * sum_{s in g} (J_s - mean_g J)^2.

    jack (n_subjects, ...) leave-one-subject-out values; strata (n_subjects,) int group of each subject -> (...).
    Unbiased for linear statistics (a cell accuracy of a balanced design). NaN values count as the group mean.
    """
    out = np.zeros(jack.shape[1:])
    for g in np.unique(strata):
        members = jack[strata == g]
        n = len(members)
        if n > 1:
            with np.errstate(invalid="ignore"):
                deviation = members - np.nanmean(members, axis=0)
            out += (n - 1) / n * np.nansum(deviation ** 2, axis=0)
    return out


def _z(level: float) -> float:
    return float(sps.norm.ppf(0.5 + level / 2))


def wilson_cells(point: np.ndarray, variance: np.ndarray, n_images: np.ndarray, n_subjects: np.ndarray, *,
                 level: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score intervals of cell accuracies with a cluster design effect.

    point (T, C) percent; variance (T, C) percent^2 (stratified jackknife); n_images, n_subjects (C,) per cell.
    The effective size is n_images / deff, deff = variance / binomial variance clipped to [1, images per subject]
    (the largest design effect of whole subjects); at 0 or 100 % or zero variance deff is that largest one.
    Returns low, high (T, C) percent.
    """
    p = point / 100.0
    per_subject = n_images / np.maximum(n_subjects, 1)
    binomial = p * (1.0 - p) / n_images
    with np.errstate(invalid="ignore", divide="ignore"):
        deff = np.where((binomial > 0) & (variance > 0), (variance / 1e4) / binomial, per_subject)
    deff = np.clip(deff, 1.0, per_subject)
    n = n_images / deff
    z = _z(level)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = np.clip(centre - half, 0.0, p), np.clip(centre + half, p, 1.0)
    return 100.0 * low, 100.0 * high


def _score_floor(point: np.ndarray, n_images: np.ndarray, n_subjects: np.ndarray, z: float) -> np.ndarray:
    """The smallest sd (percent) a cell's error may have: Agresti-Coull's at the number of subjects, sqrt(q (1 - q) /
    (n + z^2)) with q = (x + z^2 / 2) / (n + z^2), x = p n; never 0, even at 0 or 100 %."""
    n = np.maximum(n_subjects, 1).astype(float)
    q = (point / 100.0 * n + z * z / 2) / (n + z * z)
    return 100.0 * np.sqrt(q * (1 - q) / (n + z * z))


def paired_floor(n_images: np.ndarray, n_subjects: np.ndarray) -> np.ndarray:
    """The smallest sd (percent) of the difference of two methods' accuracy in a cell: one discordant image in
    either direction (Agresti and Min's half pair added to each side), sqrt(1 / (n_images * n_subjects))."""
    return 100.0 / np.sqrt(np.maximum(n_images, 1) * np.maximum(n_subjects, 1))


def _t_over_z(n_subjects: int, n_groups: int, level: float) -> float:
    df = max(1, n_subjects - n_groups)
    return float(sps.t.ppf(0.5 + level / 2, df)) / _z(level)


def _floor_noise(spread: np.ndarray, floor: np.ndarray, n_draws: int, rng: np.random.Generator) -> np.ndarray:
    """Independent normal noise (n_draws, T, 1, C), shared by the seeds, that brings a column whose sd ``spread``
    (T, C) is below ``floor`` (T, C) up to it; 0 where it is not below (and no draw is made when none is)."""
    missing = np.sqrt(np.clip(floor ** 2 - spread ** 2, 0.0, None))
    if not missing.any():
        return np.zeros((1,) + spread.shape[:1] + (1,) + spread.shape[1:])
    return rng.standard_normal((n_draws, spread.shape[0], 1, spread.shape[1])) * missing[None, :, None, :]


def _spread(errors: np.ndarray) -> np.ndarray:
    """sd over draws of each (task, cell), the widest seed: (R, T, K, C) -> (T, C)."""
    return np.nanstd(errors, axis=0).max(axis=1)


def calibrated_errors(boot_cells: np.ndarray, point_cells: np.ndarray, *, stratum_of_cell: np.ndarray,
                      group_sizes: np.ndarray, n_images: np.ndarray, n_subjects: np.ndarray, level: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Error draws of one method's per-seed cell accuracies.

    boot_cells (R, T, K, C) percent, per seed, from the stratified subject bootstrap; point_cells (T, K, C);
    stratum_of_cell (C,) group index; group_sizes (n_groups,) subjects per group; n_images, n_subjects (C,).
    Returns (R, T, K, C): deviations from the estimate scaled by sqrt(n_g / (n_g - 1)) * t(df) / z, plus noise up to
    the score floor (:func:`_score_floor` at the seed-mean accuracy), df = subjects - groups.
    """
    n_g = group_sizes[stratum_of_cell].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(n_g > 1, np.sqrt(n_g / (n_g - 1)), np.nan)
    scale = scale * _t_over_z(int(group_sizes.sum()), int((group_sizes > 0).sum()), level)
    errors = (boot_cells - point_cells[None]) * scale
    floor = _score_floor(point_cells.mean(axis=1), n_images, n_subjects, _z(level))
    return errors + _floor_noise(_spread(errors), floor, len(errors), rng)


def _quantile(values: np.ndarray, level: float) -> np.ndarray:
    """Quantile over axis 0 ignoring NaN (resamples with an empty cell): (R, ...) -> (...)."""
    with np.errstate(invalid="ignore"):
        return np.nanquantile(values, level, axis=0) if np.isnan(values).any() else np.quantile(values, level, axis=0)


def _is_gap(layout: CellLayout) -> np.ndarray:
    return np.array([m in GAP_METRICS for m, _, _ in metric_entries(layout)])


def _ranges(layout: CellLayout) -> dict[str, np.ndarray]:
    """Per metric entry, the range its values can take (percent): signed gaps and differences [-100, 100]."""
    signed = np.array([m == "signed_gap" for m, _, _ in metric_entries(layout)])
    return {"low": np.where(signed, -100.0, 0.0), "high": np.full(len(signed), 100.0)}


def estimate_bounds(errors: np.ndarray, point: np.ndarray, layout: CellLayout, *,
                    level: float) -> tuple[np.ndarray, np.ndarray]:
    """Intervals of one method's metrics: estimate +- the ``level`` quantile of the error bound.

    errors (R, T, K, C) calibrated per-seed cell errors; point (T, M) seed-mean metrics. The bound of a seed-mean
    metric is the seed mean of the per-seed bounds (|f(e)| for linear metrics, f(e) for gaps). Returns low, high (T, M)
    clipped to the metric's range; cell rows are replaced by Wilson intervals by the caller.
    """
    q = _quantile(_seed_mean_bound(summary_metrics(errors, layout), layout), level)
    limits = _ranges(layout)
    return np.clip(point - q, limits["low"], None), np.clip(point + q, None, limits["high"])


def _seed_mean_bound(per_seed: np.ndarray, layout: CellLayout) -> np.ndarray:
    """The bound of seed-mean metrics from per-seed metrics of the errors (R, T, K, M) -> (R, T, M): |seed mean| for
    linear metrics (exact), the seed mean of the seminorms for gaps (mean_k |f(p_k + e_k) - f(p_k)| <= mean_k f(e_k))."""
    return np.where(_is_gap(layout), np.abs(per_seed).mean(axis=2), np.abs(per_seed.mean(axis=2)))


def _nuisance(value: np.ndarray, errors: np.ndarray, gamma: float) -> np.ndarray:
    """Upper (1 - gamma) bounds of a seminorm of the methods' true cell difference, simultaneous over seeds and its
    last axis: value (T, K, E) seminorm of the estimated difference, errors (R, T, K, E) seminorm of its errors."""
    worst = errors.max(axis=(-1, -2))  # (R, T)
    return value + _quantile(worst, 1.0 - gamma)[:, None, None]


def difference_bounds(errors_a: np.ndarray, errors_b: np.ndarray, cells_a: np.ndarray, cells_b: np.ndarray,
                      diff: np.ndarray, layout: CellLayout, *, level: float,
                      paired_sd: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Intervals of the difference of two methods' metrics on the same resamples.

    errors_a, errors_b (R, T, K, C) calibrated per-seed cell errors, seeds already paired (tiled to a common count);
    cells_a, cells_b (T, K, C) per-seed cell accuracies; diff (T, M) the seed-mean difference; paired_sd (C,) the
    floor of the sd of a paired cell difference (:func:`paired_floor`). Linear metrics: diff +- the quantile of
    |f(eA - eB)|; gaps: diff +- the (level + gamma) quantile of the two-term bound (module docstring).
    Returns low, high (T, M) clipped to [-100, 100].
    """
    gamma = GAMMA_SHARE * (1.0 - level)
    floor = np.broadcast_to(paired_sd, errors_a.shape[1:2] + paired_sd.shape)
    errors_a = errors_a + _floor_noise(_spread(errors_a - errors_b), floor, len(errors_a), rng)
    q = _quantile(_seed_mean_bound(summary_metrics(errors_a - errors_b, layout), layout), level)
    gap = _is_gap(layout)
    if gap.any():
        q_gap = _quantile(_gap_difference_bound(errors_a, errors_b, cells_a - cells_b, layout, gamma), level + gamma)
        q = np.where(gap, q_gap, q)
    return np.clip(diff - q, -100.0, None), np.clip(diff + q, None, 100.0)


def _gap_difference_bound(errors_a: np.ndarray, errors_b: np.ndarray, cell_diff: np.ndarray, layout: CellLayout,
                          gamma: float) -> np.ndarray:
    """The two-term bound of every gap metric's difference, per draw: (R, T, M) (zeros in non-gap columns).

    errors (R, T, K, C); cell_diff (T, K, C) estimated per-seed cell difference A - B.
    """
    r_a, r_b = emotion_gaps(by_group(errors_a, layout)), emotion_gaps(by_group(errors_b, layout))  # (R, T, K, E)
    r_d = emotion_gaps(by_group(errors_a - errors_b, layout))
    d_e = _nuisance(emotion_gaps(by_group(cell_diff, layout)), r_d, gamma)  # (T, K, E)
    per_emotion = r_d + 2.0 * np.minimum(d_e[None], np.minimum(r_a, r_b))
    largest = r_d.max(axis=-1) + 2.0 * np.minimum(d_e.max(axis=-1)[None],
                                                  np.minimum(r_a.max(axis=-1), r_b.max(axis=-1)))
    parts = {"gap": per_emotion.mean(axis=2), "largest_gap": largest.mean(axis=2),
             "average_gap": per_emotion.mean(axis=-1).mean(axis=2)}
    if len(layout.groups) > 2:
        s_a = np.abs(signed_pairs(by_group(errors_a, layout), layout))
        s_b = np.abs(signed_pairs(by_group(errors_b, layout), layout))
        s_d = np.abs(signed_pairs(by_group(errors_a - errors_b, layout), layout))
        d_p = _nuisance(np.abs(signed_pairs(by_group(cell_diff, layout), layout)), s_d, gamma)
        parts["pair_gap"] = (s_d + 2.0 * np.minimum(d_p[None], np.minimum(s_a, s_b))).mean(axis=2)
    entries = metric_entries(layout)
    out = np.zeros(errors_a.shape[:2] + (len(entries),))
    position = {name: [j for j, (m, _, _) in enumerate(entries) if m == name] for name in parts}
    for name, values in parts.items():
        out[..., position[name]] = values if values.ndim == 3 else values[..., None]
    return out
