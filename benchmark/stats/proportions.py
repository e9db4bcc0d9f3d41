"""Intervals for proportions from clustered samples: Clopper-Pearson and mid-p on a Korn-Graubard effective size.

A cell accuracy (or a group's accuracy over several cells) is a proportion of images, but the images come in persons
(clusters). Korn & Graubard (1998, Survey Methodology 24:193-201) turn a clustered proportion into a binomial one:

- the **effective size** n_eff = p (1 - p) / v, v the design-based variance of p (here the unbiased variance of the
  mean of the persons' own accuracies, the stratified jackknife variance of a balanced design), kept between the
  number of persons (a person's images all agree) and the number of images (they are independent);
- the **degrees of freedom** of v, persons - 1: n_eff is multiplied by (z / t(df))^2;
- the binomial interval at x = p n_eff successes out of n_eff (continuous in x through the incomplete beta function).

Two places where the design effect is *known* rather than estimated:

- a person has at most one image in the proportion (ADFES cells): the count is binomial over the images, n_eff = n;
- p = 0 or 1 with several images per person: the design effect is not identified (no person disagrees with itself);
  the interval is the binomial one over **persons**, which is exact whatever the correlation: seeing every person
  all correct has probability at most q^persons, q = P(a person is all correct) <= p.

Binomial intervals: ``exact`` is Clopper & Pearson (1934), never below nominal; ``midp`` is Lancaster's mid-p version
of it (Agresti & Gottard 2007; Brown, Cai & DasGupta 2001), whose coverage averages the nominal level more closely
at the price of dips a few points below it for some true values (exact binomial sums: docs/STATISTICS.md).
"""

from __future__ import annotations

import numpy as np
from scipy import special
from scipy import stats as sps

__all__ = ["PROPORTION_KINDS", "binomial_interval", "effective_size", "proportion_interval"]

PROPORTION_KINDS: tuple[str, ...] = ("exact", "midp")
_BISECTIONS = 60


def binomial_interval(x: np.ndarray, n: np.ndarray, *, level: float, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided ``level`` interval for a binomial proportion with (possibly non-integer) x successes in n trials.

    x, n : arrays of one shape, 0 <= x <= n, n > 0. kind : ``exact`` (Clopper-Pearson) or ``midp``.
    Returns low, high as proportions in [0, 1]; low = 0 at x = 0 and high = 1 at x = n.
    """
    if kind not in PROPORTION_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {PROPORTION_KINDS}")
    x, n = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(n, dtype=np.float64))
    alpha = 1.0 - level
    at_zero, at_n = x <= 0.0, x >= n
    xs = np.clip(x, 1e-12, None)  # safe parameters where the closed form is not used
    if kind == "exact":
        with np.errstate(invalid="ignore"):
            low = np.where(at_zero, 0.0, special.betaincinv(xs, np.maximum(n - x + 1.0, 1e-12), alpha / 2))
            high = np.where(at_n, 1.0, special.betaincinv(x + 1.0, np.maximum(n - x, 1e-12), 1.0 - alpha / 2))
        return low, high
    # mid-p: P(X > x) + P(X = x) / 2 = (I_p(x, n - x + 1) + I_p(x + 1, n - x)) / 2, increasing in p;
    # low solves it = alpha / 2, high solves it = 1 - alpha / 2 (i.e. P(X < x) + P(X = x) / 2 = alpha / 2)
    def tail(p: np.ndarray) -> np.ndarray:
        upper_x = np.where(at_zero, 1.0, special.betainc(xs, np.maximum(n - x + 1.0, 1e-12), p))
        upper_x1 = np.where(at_n, 0.0, special.betainc(x + 1.0, np.maximum(n - x, 1e-12), p))
        return 0.5 * (upper_x + upper_x1)

    def solve(target: float) -> np.ndarray:
        lo, hi = np.zeros(x.shape), np.ones(x.shape)
        for _ in range(_BISECTIONS):
            mid = 0.5 * (lo + hi)
            below = tail(mid) < target
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    low = np.where(at_zero, 0.0, solve(alpha / 2))
    high = np.where(at_n, 1.0, solve(1.0 - alpha / 2))
    return low, high


def effective_size(p: np.ndarray, variance: np.ndarray, n_images: np.ndarray, n_subjects: np.ndarray,
                   max_per_subject: np.ndarray, *, level: float, df_adjusted: bool = True,
                   fallback_deff: np.ndarray | None = None) -> np.ndarray:
    """Korn-Graubard effective size, degrees-of-freedom adjusted (see the module docstring).

    p (...) proportion in [0, 1]; variance (...) of p (proportion^2); n_images, n_subjects, max_per_subject (...)
    images, persons and the most images one person has in the proportion; df_adjusted: Korn & Graubard's
    degrees-of-freedom factor (False only for comparison); fallback_deff (...): a design effect to use where this
    one is not identified (NaN: none, the persons), e.g. borrowed from the other proportions of the same task.
    Returns n_eff (...) > 0.
    """
    p, variance = np.asarray(p, dtype=np.float64), np.asarray(variance, dtype=np.float64)
    n_images = np.asarray(n_images, dtype=np.float64)
    n_subjects = np.maximum(np.asarray(n_subjects, dtype=np.float64), 1.0)
    binomial = p * (1.0 - p)
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = np.where((binomial > 0) & (variance > 0), binomial / variance, n_images)
    z = sps.norm.ppf(0.5 + level / 2)
    df = np.maximum(n_subjects - 1.0, 1.0)
    factor = (z / sps.t.ppf(0.5 + level / 2, df)) ** 2 if df_adjusted else 1.0
    adjusted = np.clip(raw, n_subjects, n_images) * factor
    clustered = np.asarray(max_per_subject) > 1
    boundary = (binomial <= 0) | ~(variance > 0)
    fallback = n_subjects
    if fallback_deff is not None:
        most = np.maximum(np.asarray(max_per_subject, dtype=np.float64), 1.0)
        borrowed = n_images / np.clip(np.nan_to_num(np.asarray(fallback_deff, dtype=np.float64), nan=np.inf), 1.0, most)
        fallback = borrowed * factor
        fallback = np.where(np.isfinite(np.asarray(fallback_deff, dtype=np.float64)), fallback, n_subjects)
    return np.where(~clustered, n_images, np.where(boundary, fallback, adjusted))


def proportion_interval(p: np.ndarray, variance: np.ndarray, n_images: np.ndarray, n_subjects: np.ndarray,
                        max_per_subject: np.ndarray, *, level: float, kind: str, df_adjusted: bool = True,
                        fallback_deff: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Interval of a clustered proportion: :func:`binomial_interval` at x = p n_eff of n_eff =
    :func:`effective_size`. Arguments as there (p in [0, 1]); returns low, high in [0, 1], low <= p <= high."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    n = effective_size(p, variance, n_images, n_subjects, max_per_subject, level=level, df_adjusted=df_adjusted,
                       fallback_deff=fallback_deff)
    low, high = binomial_interval(p * n, n, level=level, kind=kind)
    return np.minimum(low, p), np.maximum(high, p)
