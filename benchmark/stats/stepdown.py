"""One rule from test to verdict: Holm's step-down over a declared primary family, with p-values and intervals from
the same construction.

Each primary hypothesis (one comparison, task and metric of a held-out evaluation group) has the difference interval
of the configured ``ci_method``, which can be evaluated at any confidence level with the same bootstrap draws. Its
p-value is the interval's inversion, ``p_ci = inf {a : the 1 - a interval excludes 0}`` (a root search over log a;
the intervals are nested in the level). Holm (1979) over the family's p_ci is run on the intervals themselves: with r
hypotheses rejected, every remaining hypothesis's interval is taken at level ``1 - alpha / (m - r)``; the one with the
smallest p_ci among those that exclude 0 is rejected next; when none excludes 0 the procedure stops and every remaining
interval is printed at that level. So the hypothesis at step j is printed at ``1 - alpha / (m - min(j, j0) + 1)`` (j0
the first step not rejected) and "the printed interval excludes 0" is "Holm rejects", exactly, by construction (the
compatible step-down intervals of Strassburger and Bretz 2008, in their simple form: see docs/STATISTICS.md for the
coverage they have).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

__all__ = ["ALPHA_FLOOR", "IntervalAt", "Stepped", "inversion_p", "step_down"]

#: the smallest p_ci the root search resolves: a difference whose interval excludes 0 even at level 1 - ALPHA_FLOOR gets
#: p_ci = ALPHA_FLOOR (reported as "<="; with 10,000 resamples the bootstrap's tails end near there anyway)
ALPHA_FLOOR = 1e-6
#: the root of the exclusion margin is searched in z = the normal quantile of 1 - alpha / 2, where an interval's
#: half-width is close to linear (exactly so for a Wald interval), and found to this precision in z: p_ci to about 2 %
#: (relative, up to z = 5; it orders the hypotheses and is reported, decisions never read it)
_Z_TOLERANCE = 0.004
#: the same where the interval at the start level holds 0, so p_ci > 1 - start (>= alpha at the defaults): about 10 %
_Z_TOLERANCE_ABOVE = 0.04
#: the level taken as "about 0": the interval is (nearly) the estimate alone
_LEVEL_ZERO = 1e-9

#: a difference interval as a function of the confidence level: level -> (low, high), each (n,) over the hypotheses
IntervalAt = Callable[[float], tuple[np.ndarray, np.ndarray]]


def _excludes_zero(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return (low > 0) | (high < 0)


def _margin(low: float, high: float) -> float:
    """How far the interval lies from 0: positive when it excludes 0, negative when it holds it (continuous)."""
    return max(low, -high)


def _at(interval_at: IntervalAt, z: float) -> tuple[np.ndarray, np.ndarray]:
    """The interval at level 1 - alpha with z the normal quantile of 1 - alpha / 2: every call goes through here, so
    equal arguments give equal levels (and a remembering ``interval_at`` computes each level once)."""
    return interval_at(1.0 - 2.0 * float(sps.norm.sf(z)))


def _root(margin: Callable[[float], float], a: float, f_a: float, b: float, f_b: float, tolerance: float) -> float:
    """The root of a decreasing margin between a (f_a > 0: the interval excludes 0) and b (f_b <= 0, or NaN where the
    construction gives no interval at that level, which counts as holding 0) by the Illinois method (regula falsi
    that halves a stale end's value; Dowell and Jarratt 1971), bisecting while an end has no value: one or two
    evaluations when the margin is close to linear, never outside the bracket; stops when the estimate moves by less
    than ``tolerance``."""
    previous, side = None, 0
    for _ in range(60):
        c = b - f_b * (b - a) / (f_b - f_a) if np.isfinite(f_b) else 0.5 * (a + b)
        if previous is not None and abs(c - previous) < tolerance:
            return c
        f_c = margin(c)
        if f_c > 0:  # excludes 0 at c
            a, f_a = c, f_c
            f_b = f_b / 2.0 if side > 0 else f_b
            side = 1
        else:  # holds 0 at c, or no interval there
            b, f_b = c, f_c
            f_a = f_a / 2.0 if side < 0 else f_a
            side = -1
        previous = c
    return c


def inversion_p(interval_at: IntervalAt, n: int, *, start: float = 0.95) -> np.ndarray:
    """p_ci of n hypotheses (n,): the alpha at which the 1 - alpha interval's edge reaches 0, found by the Illinois method
    on the interval's distance from 0 (continuous and monotone for nested intervals) as a function of the normal
    quantile z of 1 - alpha / 2, bracketed by the interval at level ``start`` (the configured one): to about 2 % below
    1 - start, 10 % above (where Holm at alpha <= 1 - start cannot reject; the value only orders the unrejected ones).
    1.0 where even the interval of level ~0 holds 0 (a difference of exactly 0); :data:`ALPHA_FLOOR` where the
    interval at 1 - ALPHA_FLOOR still excludes 0; NaN where the interval at ``start`` is not finite. A level at which
    the construction gives no interval (NaN) counts as one that holds 0."""
    ends = {name: float(sps.norm.isf(alpha / 2)) for name, alpha in
            (("floor", ALPHA_FLOOR), ("start", 1.0 - start), ("zero", 1.0 - _LEVEL_ZERO))}
    values: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def value(end: str) -> tuple[np.ndarray, np.ndarray]:  # evaluated when a hypothesis needs that end
        if end not in values:
            values[end] = _at(interval_at, ends[end])
        return values[end]

    low, high = value("start")
    finite = np.isfinite(low) & np.isfinite(high)
    p = np.full(n, np.nan)
    for j in np.flatnonzero(finite):
        inside = not _excludes_zero(low[j], high[j])
        narrow, wide = ("zero", "start") if inside else ("start", "floor")  # excludes 0 at narrow, holds it at wide
        if not inside and _excludes_zero(value("floor")[0][j], value("floor")[1][j]):
            p[j] = ALPHA_FLOOR
        elif inside and not _excludes_zero(value("zero")[0][j], value("zero")[1][j]):
            p[j] = 1.0
        else:
            def margin(z: float, j: int = j) -> float:
                l_at, h_at = _at(interval_at, z)
                return _margin(float(l_at[j]), float(h_at[j]))
            f_narrow, f_wide = (_margin(float(value(end)[0][j]), float(value(end)[1][j])) for end in (narrow, wide))
            root = _root(margin, ends[narrow], f_narrow, ends[wide], f_wide,
                         _Z_TOLERANCE_ABOVE if inside else _Z_TOLERANCE)
            p[j] = 2.0 * float(sps.norm.sf(root))
    return p


@dataclass(frozen=True)
class Stepped:
    """Holm's step-down over one family of m hypotheses, each array (m,) in the family's order.

    step : 1-based step at which the hypothesis was decided (rejection order; the rest in p_ci order after them).
    level : the confidence level of its printed interval, ``1 - alpha / (m - min(step, j0) + 1)``.
    low, high : its printed interval. rejected : whether Holm rejects it (the printed interval excludes 0).
    adjusted : Holm-adjusted p_ci (max over earlier steps of min(1, (m - j + 1) p_ci)).
    """

    step: np.ndarray
    level: np.ndarray
    low: np.ndarray
    high: np.ndarray
    rejected: np.ndarray
    adjusted: np.ndarray


def step_down(p_ci: np.ndarray, interval_at: Callable[[float, np.ndarray], tuple[np.ndarray, np.ndarray]], *,
              alpha: float) -> Stepped:
    """Holm at ``alpha`` over m hypotheses with inversion p-values ``p_ci`` (m,), deciding each step on the intervals
    themselves: ``interval_at(level, members)`` gives the intervals (low, high) of the hypotheses ``members`` (indices)
    at ``level``."""
    m = len(p_ci)
    step, level = np.zeros(m, dtype=np.int64), np.full(m, np.nan)
    low, high, rejected = np.full(m, np.nan), np.full(m, np.nan), np.zeros(m, dtype=bool)
    remaining = list(np.argsort(p_ci, kind="stable"))
    done = 0
    while remaining:
        at = 1.0 - alpha / (m - done)
        members = np.array(remaining)
        r_low, r_high = interval_at(at, members)
        excluding = _excludes_zero(r_low, r_high)
        if not excluding.any():
            step[members], level[members], low[members], high[members] = done + 1 + np.arange(len(members)), at, r_low, r_high
            break
        first = int(np.flatnonzero(excluding)[0])  # remaining is in p_ci order
        j = members[first]
        step[j], level[j], low[j], high[j], rejected[j] = done + 1, at, r_low[first], r_high[first], True
        remaining.remove(j)
        done += 1
    order = np.argsort(step)
    adjusted = np.full(m, np.nan)
    adjusted[order] = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p_ci[order]))
    return Stepped(step, level, low, high, rejected, adjusted)
