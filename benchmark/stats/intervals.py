"""Bootstrap confidence intervals of many statistics at once: percentile and BCa (with a per-column fallback)."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

__all__ = ["bootstrap_intervals", "sorted_quantiles"]


def sorted_quantiles(ordered: np.ndarray, n_valid: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per-column linear-interpolation quantiles (numpy's default) of column-sorted values, NaNs sorted last.

    ordered (R, m); n_valid (m,) finite values per column (>= 1); probs (m,) one level per column -> (m,).
    """
    position = probs * (n_valid - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, n_valid - 1)
    columns = np.arange(ordered.shape[1])
    below, above = ordered[low, columns], ordered[high, columns]
    return below + (position - low) * (above - below)


def bootstrap_intervals(boot: np.ndarray, point: np.ndarray, jack: np.ndarray, *, ci: float, method: str,
                        jack_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Percentile or BCa confidence intervals of each column.

    boot (R, m) bootstrap values (NaN: a resample with an empty cell); point (m,); jack (n, m) leave-one-subject-out
    values, each row standing for ``jack_weights`` (n,) subjects (None: one each). Returns low (m,), high (m,), the
    method used per column and a note per column (object arrays of shape (m,)).
    """
    alpha = 1.0 - ci
    m = boot.shape[1]
    finite = np.isfinite(boot)
    n_valid = finite.sum(axis=0)
    usable = (n_valid > 0) & np.isfinite(point)
    ordered = np.sort(boot, axis=0)
    levels = np.tile(np.array([[alpha / 2], [1 - alpha / 2]]), (1, m))
    used = np.where(usable, "percentile", "").astype(object)
    notes = np.array([f"{len(boot) - v} resample(s) with an empty cell left out" if 0 < v < len(boot) else ""
                      for v in n_valid], dtype=object)
    if method == "bca":
        adjusted, why = _bca_levels(boot, finite, n_valid, point, jack, levels, jack_weights)
        ok = usable & (why == "")
        levels[:, ok] = adjusted[:, ok]
        used[ok] = "bca"
        for j in np.flatnonzero(usable & ~ok):
            notes[j] = "; ".join(filter(None, [notes[j], f"BCa degenerate ({why[j]}): percentile interval"]))
    safe = np.maximum(n_valid, 1)
    low = np.where(usable, sorted_quantiles(ordered, safe, levels[0]), np.nan)
    high = np.where(usable, sorted_quantiles(ordered, safe, levels[1]), np.nan)
    return low, high, used, notes


def _bca_levels(boot: np.ndarray, finite: np.ndarray, n_valid: np.ndarray, point: np.ndarray, jack: np.ndarray,
                levels: np.ndarray, jack_weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """BCa-adjusted quantile levels (2, m) and, per column, why BCa is undefined ("" where it is fine)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        below = (np.sum(finite & (boot < point), axis=0) + 0.5 * np.sum(finite & (boot == point), axis=0)) / n_valid
        jack_ok = np.isfinite(jack)
        w = np.ones((len(jack), 1)) if jack_weights is None else jack_weights[:, None]
        jack_mean = np.where(jack_ok, w * jack, 0.0).sum(axis=0) / np.where(jack_ok, w, 0.0).sum(axis=0)
        spread = np.where(jack_ok, jack_mean - jack, 0.0)
        denominator = 6.0 * np.sum(w * spread ** 2, axis=0) ** 1.5
        acceleration = np.sum(w * spread ** 3, axis=0) / denominator
        z0 = sps.norm.ppf(below)
        z = sps.norm.ppf(levels)
        adjusted = sps.norm.cdf(z0 + (z0 + z) / (1.0 - acceleration * (z0 + z)))
    why = np.full(boot.shape[1], "", dtype=object)
    why[~np.all(np.isfinite(adjusted), axis=0)] = "non-finite adjusted levels"
    why[denominator == 0.0] = "constant jackknife values"
    why[(below <= 0.0) | (below >= 1.0)] = "every resample on one side of the estimate"
    return adjusted, why
