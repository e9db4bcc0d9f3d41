"""The default intervals (``ci_method: bound``): score intervals for cells, error bounds for the rest.

Why (docs/STATISTICS.md, "Intervals", has the measured coverage): at 10-12 people per group a plain subject bootstrap
is too narrow (it underestimates the variance by (n - 1) / n and has normal tails), collapses to a point where a cell
is seen at 0 or 100 %, and follows the upward bias of the gaps (|x| and the max of noisy quantities).

**Calibrated error draws.** The stratified subject-bootstrap deviations of every method's per-seed cell accuracies
from their estimates, scaled by sqrt(n_g / (n_g - 1)) in each group (unbiased variance) and by t(df) / z, df =
subjects - groups (tails at few subjects), plus normal noise wherever a cell's spread is below its score floor
(Agresti-Coull's sd at the number of subjects), so that a cell seen at 100 % still has an error. The noise is one draw
per attribute group for all its cells (an unseen failure is a person, in every cell of the group), drawn once per
evaluation group and shared by its methods, so methods that predict alike keep alike errors.

**Channels.** A metric reads the rates of one channel (:data:`benchmark.core.metrics.CHANNELS`): the cell
accuracies (``recall``) or the false-positive rates (``fpr``). Each channel a ``bound`` metric reads gets its own
calibrated error draws, made the same way from that channel's resampled rates (for ``fpr`` the score floor counts the
subjects behind each rate's denominator); a metric's interval reads its channel's draws.

**Estimates.** Cells: a Wilson score interval with the cluster design effect and the same t(df) quantile. Every other metric f: f_hat +- Q, Q the
(level) quantile of a bound on |f_hat - f| over the draws: |f(e)| for the linear metrics (signed gaps, macro; exact),
and f(e) for the gaps, because the per-emotion gap (max - min over groups, of either channel: the false-positive-rate
gap is the gap of the ``fpr`` rates), the pair gaps, the largest gap and the average gap are 1-Lipschitz in their own
seminorm: |gap(p + e) - gap(p)| <= gap(e). These hold whatever the true gaps, so the upward bias of a gap near 0 is
inside the interval (a single gap's interval is the fold of its signed interval). The worst cell (family ``sup``,
the minimum over cells) is 1-Lipschitz in the largest |cell error|: |min(p + e) - min(p)| <= max |e|, so Q is that
norm's quantile, whatever the ties among the lowest cells that bias the plug-in minimum down.

**Differences.** Linear metrics: diff +- Q of |f(eA - eB)| over the paired draws, with a floor of one discordant
image added in quadrature (Agresti and Min). Gaps: the error of f(pA_hat) - f(pB_hat) depends on where the true
signed gaps are (near 0, or tied with the largest, the plug-in is biased); the interval is the union, over pairs of
candidate truths for the two methods (the estimates; those whose own, or simultaneous, interval holds 0 set to 0;
the near-largest tied with the largest), of the basic intervals of the paired plug-in error, with the same floor.
This is approximate (not a bound); its coverage is measured by ``benchmark simulate coverage``. The worst cell's
difference is made the same way, with the lowest cell's plug-in error at candidate truths (the estimates; those with
the cells near the lowest tied to it, where the minimum is most biased down).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.core.metrics import signed_pairs
from benchmark.stats.cells import by_group, metric_entries

__all__ = ["MethodErrors", "channels", "difference_bounds", "difference_floors", "entry_channels", "estimate_bounds",
           "floor_draws", "method_errors", "reads_lowest", "score_floor", "stratified_jackknife_variance", "t_over_z",
           "wilson_cells"]


def stratified_jackknife_variance(jack: np.ndarray, strata: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Stratified delete-one-subject jackknife variance, sum_g (n_g - 1) / n_g * sum_{s in g} (J_s - mean_g J)^2.

    jack (n, ...) leave-one-subject-out values; strata (n,) int group of each row; weights (n,) how many subjects each
    row stands for (rows of alike subjects, :class:`benchmark.stats.units.Units`), None: one each -> (...).
    Unbiased for linear statistics (a cell accuracy of a balanced design). NaN values count as the group mean.
    """
    out = np.zeros(jack.shape[1:])
    weights = np.ones(len(jack)) if weights is None else weights
    for g in np.unique(strata):
        members = jack[strata == g]
        w = weights[strata == g].reshape((-1,) + (1,) * (jack.ndim - 1))
        n = float(w.sum())
        if n > 1:
            finite = np.isfinite(members)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(finite, w * members, 0.0).sum(axis=0) / np.where(finite, w, 0.0).sum(axis=0)
            deviation = np.where(finite, members - mean, 0.0)
            out += (n - 1) / n * (w * deviation ** 2).sum(axis=0)
    return out


@functools.lru_cache(maxsize=4096)
def _z(level: float) -> float:
    """The normal quantile of a two-sided ``level`` (remembered: scipy's ppf costs about 0.2 ms a call, and the verdict
    rule and the power study ask for the same few levels thousands of times)."""
    return float(sps.norm.ppf(0.5 + level / 2))


def wilson_cells(point: np.ndarray, variance: np.ndarray, n_images: np.ndarray, n_subjects: np.ndarray, *,
                 level: float, t_over_z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score intervals of cell accuracies with a cluster design effect and Student's quantile.

    point (T, C) percent; variance (T, C) percent^2 (stratified jackknife); n_images, n_subjects (C,) per cell;
    t_over_z (:func:`t_over_z`). The effective size is n_images / deff, deff = variance / binomial variance clipped
    to [1, images per subject] (the largest design effect of whole subjects); at 0 or 100 % or zero variance deff is
    that largest one. The quantile is t(df) as everywhere else: at 10 observations Wilson's coverage dips to 84 % for
    some true accuracies (below 93 % for 13 % of them in [50, 100] %), with t(20) for 4 % of them (exact binomial
    sums; docs/STATISTICS.md). Returns low, high (T, C) percent.
    """
    p = point / 100.0
    per_subject = n_images / np.maximum(n_subjects, 1)
    binomial = p * (1.0 - p) / n_images
    with np.errstate(invalid="ignore", divide="ignore"):
        deff = np.where((binomial > 0) & (variance > 0), (variance / 1e4) / binomial, per_subject)
    deff = np.clip(deff, 1.0, per_subject)
    n = n_images / deff
    z = _z(level) * t_over_z
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = np.clip(centre - half, 0.0, p), np.clip(centre + half, p, 1.0)
    return 100.0 * low, 100.0 * high


def score_floor(point: np.ndarray, n_images: np.ndarray, n_subjects: np.ndarray, *, level: float) -> np.ndarray:
    """The smallest sd (percent) a cell's error may have: Agresti-Coull's at the number of subjects, sqrt(q (1 - q) /
    (n + z^2)) with q = (x + z^2 / 2) / (n + z^2), x = p n; never 0, even at 0 or 100 %. point (T, C) -> (T, C)."""
    z = _z(level)
    n = np.maximum(n_subjects, 1).astype(float)
    q = (point / 100.0 * n + z * z / 2) / (n + z * z)
    return 100.0 * np.sqrt(q * (1 - q) / (n + z * z))


def difference_floors(layout: CellLayout, counts: np.ndarray) -> np.ndarray:
    """Per metric entry, the smallest sd (percent) of a difference of two methods: one discordant image among the
    metric's images, ||a||_1 * 100 / sqrt(images * subjects) over the cells the metric's linearisation a uses (a cell:
    a = 1; macro: 1 / C each; a signed or absolute gap of two groups: +-1; the average gap: +-1 / E each; the spread
    of more groups and the largest gap: like one emotion's gap): Agresti and Min's half pair on each side, for whole
    metrics. counts (n_subjects, C) images per subject and cell. Returns (M,)."""
    cells = np.arange(layout.n_cells).reshape(len(layout.groups), len(layout.emotions))
    index = {g: i for i, g in enumerate(layout.groups)}
    emotion = {e: j for j, e in enumerate(layout.emotions)}

    def floor(used: np.ndarray, norm: float) -> float:
        images = counts[:, used].sum()
        subjects = (counts[:, used].sum(axis=1) > 0).sum()
        return norm * 100.0 / np.sqrt(max(1.0, images) * max(1.0, subjects))

    out = []
    family = {m.name: m.bound for m in metrics.METRICS}
    for metric, group, e in metric_entries(layout):
        if family[metric] is None:
            out.append(np.nan)  # no bound construction: the metric's difference gets a bootstrap interval
        elif metric == "cell":
            out.append(floor(np.array([cells[index[group], emotion[e]]]), 1.0))
        elif metric == "macro":
            out.append(floor(cells.ravel(), 1.0))
        elif metric in ("signed_gap", "pair_gap"):
            a, b = (index[g] for g in group.split(" vs "))
            out.append(floor(cells[[a, b], emotion[e]], 2.0))
        elif metric in ("gap", "fpr_gap"):  # fpr: its rates' denominators are larger, so this floor is the wider
            out.append(floor(cells[:, emotion[e]], 2.0))
        elif metric == "worst_cell":  # any cell may be the lowest: the floor of the cell with the fewest images
            out.append(max(floor(np.array([c]), 1.0) for c in cells.ravel()))
        elif metric == "largest_gap":
            out.append(min(floor(cells[:, j], 2.0) for j in range(len(layout.emotions))))
        else:  # average_gap
            out.append(floor(cells.ravel(), 2.0))
    return np.array(out)


@functools.lru_cache(maxsize=4096)
def t_over_z(n_subjects: int, n_groups: int, level: float) -> float:
    """Student's over the normal quantile of a two-sided ``level`` with subjects - groups degrees of freedom
    (remembered, as :func:`_z`)."""
    df = max(1, n_subjects - n_groups)
    return float(sps.t.ppf(0.5 + level / 2, df)) / _z(level)


def floor_draws(n_draws: int, n_tasks: int, n_groups: int, rng: np.random.Generator) -> np.ndarray:
    """Standard normal draws (n_draws, T, 1, n_groups): the unseen part of the cells' errors where their bootstrap
    spread is below the score floor. One draw per group for all its cells, because an unseen failure is most likely a
    person the models get wrong, who is in every cell of the group (the clustering that makes a group seen at 100 %
    in every cell far less certain than independent cells would be); one set per evaluation group, shared by its
    methods, so that methods predicting alike keep alike errors and two identical prediction sets identical ones."""
    return rng.standard_normal((n_draws, n_tasks, 1, n_groups))


def channels() -> tuple[str, ...]:
    """The rate channels the ``bound`` metrics read, ``recall`` first: each gets its own error draws."""
    return tuple(dict.fromkeys(["recall", *(m.channel for m in metrics.METRICS if m.bound)]))


def reads_lowest(layout: CellLayout, entries: np.ndarray | None = None, channel: str | None = None) -> bool:
    """Whether the ``bound`` intervals of ``entries`` (None: all) read the worst cell's draws (family ``sup``), of
    ``channel`` (None: of any)."""
    wanted = set(range(len(metric_entries(layout)))) if entries is None else set(np.asarray(entries).tolist())
    return any(j in wanted for c in ([channel] if channel else channels()) for j in _sup_positions(layout, c))


def entry_channels(layout: CellLayout, entries: np.ndarray | None = None) -> tuple[str, ...]:
    """The channels whose error draws the ``bound`` intervals of ``entries`` (indices into :func:`metric_entries`;
    None: all) read, in :func:`channels` order."""
    read = {metrics.by_name(name).channel for j, (name, _, _) in enumerate(metric_entries(layout))
            if (entries is None or j in set(np.asarray(entries).tolist())) and metrics.by_name(name).bound}
    return tuple(c for c in channels() if c in read)


@dataclass(frozen=True)
class MethodErrors:
    """One method's calibrated error draws of one rate channel and what its intervals and differences need from them.

    mean (R, T, C): the seed mean of the per-seed cell errors; seminorms (R, T, G): the seed mean of each gap
    metric of the per-seed errors (its Lipschitz bound), G the channel's gap metrics in :func:`metric_entries` order;
    atoms (T, K, A) the estimated signed pair differences per seed and x (R, T, K, A) their errors; candidates: the
    candidate truths (T, K, A) (:func:`_candidates`, the estimates first) and gaps their seed-mean plug-in errors of
    the gap metrics (R, T, G); channel: the rates these are errors of; sup (R, T): the seed mean of the largest
    |cell error| (family ``sup``), and lowest: the seed-mean plug-in errors of the lowest cell, min(c + e) - min(c),
    (R, T) each, at the candidate truths c of :func:`_lowest_candidates` (the estimates first); both None where no
    ``sup`` metric reads the channel.
    """

    mean: np.ndarray
    seminorms: np.ndarray
    atoms: np.ndarray
    x: np.ndarray
    candidates: list[np.ndarray]
    gaps: list[np.ndarray]
    channel: str = "recall"
    sup: np.ndarray | None = None
    lowest: list[np.ndarray] | None = None


def method_errors(boot_cells: np.ndarray, point_cells: np.ndarray, *, layout: CellLayout, group_sizes: np.ndarray,
                  n_images: np.ndarray, n_subjects: np.ndarray, level: float, shared: np.ndarray,
                  channel: str = "recall", lowest: bool = True) -> MethodErrors:
    """Calibrated error draws of one method's rates of ``channel``.

    boot_cells (R, T, K, C) percent, per seed, from the stratified subject bootstrap; point_cells (T, K, C);
    group_sizes (n_groups,) subjects per group; n_images, n_subjects (C,) or (T, C) behind each rate's denominator;
    ``lowest``: with the worst cell's draws (``sup`` and ``lowest``) where a ``sup`` metric reads the channel;
    shared (R, T, 1, n_groups) the
    evaluation group's :func:`floor_draws`. The draws are the deviations from the estimate scaled by sqrt(n_g / (n_g - 1)) * t(df) / z,
    df = subjects - groups, plus ``shared`` times the sd missing to the score floor (:func:`score_floor` at the
    seed-mean accuracy).
    """
    group_of_cell = np.repeat(np.arange(len(layout.groups)), len(layout.emotions))
    n_g = group_sizes[group_of_cell].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(n_g > 1, np.sqrt(n_g / (n_g - 1)), np.nan)
    scale = scale * t_over_z(int(group_sizes.sum()), int((group_sizes > 0).sum()), level)
    errors = ((boot_cells - point_cells[None]) * scale).astype(np.float32)  # float32: memory-bound; 1e-5 pp
    spread = _std(errors).max(axis=1)  # (T, C): the widest seed
    floor = score_floor(point_cells.mean(axis=1), n_images, n_subjects, level=level)
    missing = np.sqrt(np.clip(floor ** 2 - spread ** 2, 0.0, None))  # (T, C)
    errors += (shared[..., group_of_cell] * missing[None, :, None, :]).astype(np.float32)
    x = _atoms(errors, layout)
    atoms = _atoms(point_cells, layout).astype(np.float32)
    candidates = _unique(_candidates(atoms, x, level=level))
    sup, lowest_errors = None, None
    if lowest and _sup_positions(layout, channel):
        sup = _seed_mean(_max_over(np.abs(errors), axis=-1)[..., None])[..., 0]
        cells = point_cells.astype(np.float32)
        lowest_errors = [_lowest_errors(c, errors) for c in _unique(_lowest_candidates(cells, errors, level=level))]
    return MethodErrors(_seed_mean(errors), _plugin_errors(np.zeros_like(atoms), x, layout, channel), atoms, x,
                        candidates, [_plugin_errors(c, x, layout, channel) for c in candidates], channel, sup,
                        lowest_errors)


def _std(values: np.ndarray) -> np.ndarray:
    """sd over axis 0, ignoring NaN only when there is one (nanstd copies)."""
    return np.nanstd(values, axis=0) if np.isnan(values).any() else values.std(axis=0)


def _quantile(values: np.ndarray, level: float | list[float]) -> np.ndarray:
    """Quantile(s) over axis 0 ignoring NaN (resamples with an empty cell): (R, ...) -> (...), or (n_levels, ...)."""
    with np.errstate(invalid="ignore"):
        return np.nanquantile(values, level, axis=0) if np.isnan(values).any() else np.quantile(values, level, axis=0)


def estimate_bounds(errors: dict[str, MethodErrors], point: np.ndarray, layout: CellLayout, *,
                    level: float) -> tuple[np.ndarray, np.ndarray]:
    """Intervals of one method's metrics: estimate +- the ``level`` quantile of the error bound.

    errors: channel -> :func:`method_errors`, every channel of :func:`channels`; point (T, M) seed-mean metrics. The
    bound of a seed-mean metric is |f(e)| for linear metrics, the seed mean of f(e_k) for gaps (each gap metric is
    1-Lipschitz in its own seminorm) and of max |e_k| for the worst cell. Returns low, high (T, M) clipped to the
    metric's range; the caller replaces the cell rows by Wilson intervals.
    """
    q = np.zeros(point.shape)
    linear = _linear_positions(layout, cells=False)
    q[:, linear] = _quantile(np.abs(_linear_values(errors["recall"].mean, layout, cells=False)), level)  # exact
    for channel, e in errors.items():
        q[:, _gap_positions(layout, channel)] = _quantile(e.seminorms, level)  # gaps: mean_k f(e_k) >= |error|
        if e.sup is not None:
            q[:, _sup_positions(layout, channel)] = _quantile(e.sup, level)[:, None]
    lower = {m.name: m.lower for m in metrics.METRICS}
    floor = np.array([lower[name] for name, _, _ in metric_entries(layout)])
    return np.clip(point - q, floor, None), np.clip(point + q, None, 100.0)


def difference_bounds(a: dict[str, MethodErrors], b: dict[str, MethodErrors], diff: np.ndarray, layout: CellLayout,
                      *, level: float, floors: np.ndarray, t_over_z: float,
                      entries: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Intervals of the difference of two methods' metrics on the same resamples (seeds need no pairing: every
    bound is of seed means).

    a, b: channel -> :func:`method_errors`, the channels :func:`entry_channels` names for ``entries``; diff (T, M) the
    seed-mean difference; floors (M,) :func:`difference_floors`; t_over_z the small-sample factor of the floors.

    Linear metrics: diff +- sqrt(q^2 + (t floor)^2), q the ``level`` quantile of |f(eA - eB)| (Agresti and Min's
    added half pair, in quadrature). Gaps: the union of the basic intervals of the paired plug-in error over the
    pairs of candidate truths where one method is at its estimates and the other at any of its candidates, moved to
    agree with the paired data (:func:`_paired_errors`): the extremes of the difference's bias (one method's gaps as
    biased as they can plausibly be, the other's not), each half widened by the same floor. The worst cell the same
    way, with the lowest cell's plug-in errors at its candidate truths (the estimates, and the estimates with the
    cells near the lowest tied to it: :func:`_lowest_candidates`). Returns low, high (T, M)
    clipped to [-100, 100]. ``entries`` (indices into M): only those metrics' intervals, the others NaN (their
    quantiles are most of the cost; the verdict rule's root search needs two metrics); None for all.
    """
    wanted = np.ones(diff.shape[-1], dtype=bool) if entries is None else np.isin(np.arange(diff.shape[-1]), entries)
    floor = _z(level) * t_over_z * floors
    half = np.where(wanted, floor, np.nan) * np.ones(diff.shape)
    linear = _linear_positions(layout, cells=True)
    keep = [k for k, j in enumerate(linear) if wanted[j]]
    if keep:
        columns = [linear[k] for k in keep]
        values = _linear_values(a["recall"].mean - b["recall"].mean, layout, cells=True)[..., keep]
        half[:, columns] = np.hypot(_quantile(np.abs(values), level), floor[columns])
    low, high = diff - half, diff + half
    for channel in entry_channels(layout, entries):
        columns = [j for j in _sup_positions(layout, channel) if wanted[j]]
        if columns:
            point = diff[:, columns]
            ea, eb = a[channel].lowest, b[channel].lowest
            errors = [(e - eb[0])[..., None] for e in ea] + [(ea[0] - e)[..., None] for e in eb[1:]]
            s_low, s_high = _union(point, errors, 1.0 - level)
            low[:, columns] = point - np.hypot(point - s_low, floor[columns])
            high[:, columns] = point + np.hypot(s_high - point, floor[columns])
        at = _gap_positions(layout, channel)
        keep = [k for k, j in enumerate(at) if wanted[j]]
        if keep:
            columns = [at[k] for k in keep]
            point = diff[:, columns]
            errors = [e[..., keep] for e in _paired_errors(a[channel], b[channel], layout, level=level)]
            g_low, g_high = _union(point, errors, 1.0 - level)
            low[:, columns] = point - np.hypot(point - g_low, floor[columns])
            high[:, columns] = point + np.hypot(g_high - point, floor[columns])
    return np.clip(low, -100.0, None), np.clip(high, None, 100.0)


def _paired_errors(a: MethodErrors, b: MethodErrors, layout: CellLayout, *, level: float) -> list[np.ndarray]:
    """The paired plug-in errors of the gap metrics' difference, eA - eB (R, T, G), over the candidate pairs: each
    candidate of one method with the other at its estimates. A candidate is first moved (by the same shift for every
    seed) into the range its true difference to the other method can have: the seed-mean estimated difference +- its
    simultaneous interval over the atoms (studentised maximum of the paired errors), so that two methods that
    predict alike are never assumed to have very different truths (two identical prediction sets: none at all)."""
    shift_range = _difference_range(a, b, level=level)  # (low, high) of mean(cA) - mean(cB), each (T, A)
    out = []
    for i, candidate in enumerate(a.candidates):
        moved = _into(candidate, b.atoms.mean(axis=1) + shift_range[0], b.atoms.mean(axis=1) + shift_range[1])
        errors = a.gaps[i] if moved is candidate else _plugin_errors(moved, a.x, layout, a.channel)
        out.append(errors - b.gaps[0])
    for j, candidate in enumerate(b.candidates[1:], start=1):
        moved = _into(candidate, a.atoms.mean(axis=1) - shift_range[1], a.atoms.mean(axis=1) - shift_range[0])
        errors = b.gaps[j] if moved is candidate else _plugin_errors(moved, b.x, layout, b.channel)
        out.append(a.gaps[0] - errors)
    return out


def _difference_range(a: MethodErrors, b: MethodErrors, *, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Simultaneous ``level`` interval (T, A) of the true seed-mean signed differences A - B per atom (studentised
    maximum). An atom on which the two methods agree has paired errors of float32 rounding only (a 10-seed mean
    against a 1-seed one): their sd is below :func:`_rounding_bound` and the atom counts as exactly 0, so rounding
    never enters the maximum (it did, moving intervals by up to 6.7 pp; docs/STATISTICS.md)."""
    estimate = a.atoms.mean(axis=1) - b.atoms.mean(axis=1)
    errors = _seed_mean(a.x) - _seed_mean(b.x)  # (R, T, A)
    s = _std(errors)
    noise = _rounding_bound(a.x) + _rounding_bound(b.x)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(s > noise, np.abs(errors) / s, 0.0)
    half = np.where(s > noise, s, 0.0) * _quantile(t.max(axis=-1), level)[:, None]
    return estimate - half, estimate + half


def _rounding_bound(x: np.ndarray) -> float:
    """An upper bound (percent) on the float32 rounding of the seed means of draws x (R, T, K, A): K eps max|x| (a
    sum of K terms in order, then a division). Measured on the default predictions: rounding sds up to 1.6e-6 pp,
    this bound 4e-5 to 2.3e-4 pp, the smallest sd of a real difference 0.11 pp."""
    return x.shape[2] * float(np.finfo(np.float32).eps) * float(np.nanmax(np.abs(x)))


def _into(candidate: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``candidate`` (T, K, A) shifted per atom, the same for every seed, so that its seed mean lies in [low, high]
    (T, A); the same object when no shift is needed."""
    mean = candidate.mean(axis=1)
    shift = np.clip(mean, low, high) - mean
    if not np.any(shift):
        return candidate
    return candidate + shift[:, None, :].astype(candidate.dtype)


# ---------------------------------------------------------------- differences of gaps: candidate truths


def _atoms(values: np.ndarray, layout: CellLayout) -> np.ndarray:
    """Signed pair differences of cell values, (..., C) -> (..., P * E), pair-major."""
    return signed_pairs(by_group(values, layout), layout)


def _spreads(atoms: np.ndarray, layout: CellLayout) -> tuple[np.ndarray, np.ndarray]:
    """|atoms| and the per-emotion gap (max over pairs of |A_i - A_j| = max - min over groups): (..., P * E) ->
    ((..., P * E), (..., E))."""
    a = np.abs(atoms)
    if len(layout.groups) == 2:
        return a, a
    by_pair = a.reshape(atoms.shape[:-1] + (len(layout.pairs()), len(layout.emotions)))
    return a, _max_over(by_pair, axis=-2)


def _max_over(values: np.ndarray, *, axis: int) -> np.ndarray:
    """The maximum over a short ``axis`` by elementwise maxima of its slices: the same values as ``values.max(axis)``,
    several times faster than numpy's reduction over a short axis (2-8 pairs or emotions) of 10^5-10^6 rows."""
    slices = np.moveaxis(values, axis, 0)
    out = slices[0].copy()
    for part in slices[1:]:
        np.maximum(out, part, out=out)
    return out


def _seed_mean(values: np.ndarray) -> np.ndarray:
    """``values.mean(axis=2)`` of (R, T, K, N) draws, (R, T, N), bit for bit (numpy reduces a middle axis by adding
    its slices in order, then divides), summed slice by slice: about 3x faster than numpy's reduction over a middle
    axis of a few seeds."""
    total = values[:, :, 0].copy()
    for k in range(1, values.shape[2]):
        total += values[:, :, k]
    return total / values.dtype.type(values.shape[2])


def _tie_with_largest(atoms: np.ndarray, s: np.ndarray, z: float) -> np.ndarray:
    """``atoms`` (T, K, A) with every |atom| within z * sqrt(s^2 + s_top^2) of the largest raised to tie with it
    (sign kept; where the max of noisy values is most biased)."""
    a = np.abs(atoms)
    top = a.argmax(axis=-1)[..., None]
    m, s_top = np.take_along_axis(a, top, -1), np.take_along_axis(s, top, -1)
    near = m - a <= z * np.sqrt(s ** 2 + s_top ** 2)
    return np.where(near, np.where(atoms < 0, -m, m), atoms)


def _lowest_candidates(cells: np.ndarray, errors: np.ndarray, *, level: float) -> list[np.ndarray]:
    """Candidate true cell rates (T, K, C) for the lowest cell's plug-in error: the estimates, and the estimates with
    every cell within z * sqrt(s^2 + s_low^2) of the lowest lowered to tie with it (where the minimum of noisy values
    is most biased down); s the sd of each cell's errors (R, T, K, C)."""
    s = _std(errors)
    low = cells.argmin(axis=-1)[..., None]
    m, s_low = np.take_along_axis(cells, low, -1), np.take_along_axis(s, low, -1)
    near = cells - m <= _z(level) * np.sqrt(s ** 2 + s_low ** 2)
    return [cells, np.where(near, m, cells)]


def _lowest_errors(candidate: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Per draw, the seed-mean plug-in error of the lowest cell at candidate truth c (T, K, C): min(c + e) - min(c),
    (R, T)."""
    moved = -_max_over(-(candidate[None] + errors), axis=-1)  # (R, T, K)
    return _seed_mean((moved - candidate.min(axis=-1)[None])[..., None])[..., 0]


def _candidates(d: np.ndarray, x: np.ndarray, *, level: float) -> list[np.ndarray]:
    """Candidate true signed differences (T, K, A) for the error distribution of one method: the estimates; the
    estimates with every difference whose own interval (+- z sd) holds 0 set to 0; the same with the simultaneous
    interval over all atoms and seeds (studentised maximum); and both with the near-largest tied to the largest.
    Zeros and ties are where |x| and the max of noisy values are most biased."""
    z = _z(level)
    s = _std(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(s > 0, np.abs(x) / s, 0.0)
    z_all = _quantile(t.max(axis=(-1, -2)), level)[:, None, None]  # (T, 1, 1)
    marginal = np.where(np.abs(d) <= z * s, 0.0, d)
    simultaneous = np.where(np.abs(d) <= z_all * s, 0.0, d)
    return [d, marginal, _tie_with_largest(marginal, s, z), simultaneous, _tie_with_largest(simultaneous, s, z)]


@functools.lru_cache(maxsize=64)
def _family_columns(layout: CellLayout, family: str, channel: str) -> dict[str, list[int]]:
    """Positions of the metrics of one ``bound`` family that read ``channel`` among :func:`metric_entries`, by metric
    name, in that order."""
    entries = metric_entries(layout)
    found = {m.name: [j for j, (name, _, _) in enumerate(entries) if name == m.name]
             for m in metrics.METRICS if m.bound == family and m.channel == channel}
    return {name: columns for name, columns in found.items() if columns}


def _gap_columns(layout: CellLayout, channel: str = "recall") -> dict[str, list[int]]:
    """Positions of the gap metrics (``bound`` family ``gap``) of ``channel``, by metric name, in table order."""
    return _family_columns(layout, "gap", channel)


#: what each gap metric is of the per-emotion spreads of its channel's rates (:func:`_plugin_errors`)
_GAP_FORM = {"gap": "spread", "fpr_gap": "spread", "pair_gap": "pairs", "largest_gap": "largest",
             "average_gap": "average"}


def _plugin_errors(candidate: np.ndarray, x: np.ndarray, layout: CellLayout, channel: str = "recall") -> np.ndarray:
    """Per draw, the plug-in error f(c + x) - f(c) of every gap metric of ``channel`` at candidate truth c (T, K, A),
    seed-mean: (R, T, G), the channel's gap metrics in :func:`metric_entries` order (for recall: gap, pair gap,
    largest, average; for fpr: the false-positive-rate gap, a spread per emotion)."""
    names = _gap_columns(layout, channel)
    moved_pairs, moved = _spreads(candidate[None] + x, layout)
    still_pairs, still = _spreads(candidate, layout)
    gap = _seed_mean(moved - still[None])  # (R, T, E)
    parts = {"spread": gap, "average": gap.mean(axis=-1, keepdims=True)}
    if any(_GAP_FORM[name] == "largest" for name in names):
        parts["largest"] = (_max_over(moved, axis=-1) - _max_over(still, axis=-1)[None]).mean(axis=2)[..., None]
    if len(layout.groups) > 2:
        parts["pairs"] = _seed_mean(moved_pairs - still_pairs[None])
    return np.concatenate([parts[_GAP_FORM[name]] for name in names], axis=-1)


def _unique(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """``arrays`` without repeats (candidates often coincide: nothing or everything thresholded)."""
    out: list[np.ndarray] = []
    for a in arrays:
        if not any(np.array_equal(a, b) for b in out):
            out.append(a)
    return out


def _union(point: np.ndarray, errors: list[np.ndarray], alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """The union over error distributions (R, T, G) of the basic intervals [point - q_hi, point - q_lo]."""
    low, high = np.full(point.shape, np.inf), np.full(point.shape, -np.inf)
    for e in errors:
        q_lo, q_hi = _quantile(e, [alpha / 2, 1 - alpha / 2])
        low, high = np.minimum(low, point - q_hi), np.maximum(high, point - q_lo)
    return low, high


def _linear_metrics(cells: bool) -> list[metrics.Metric]:
    """The metrics of the ``linear`` bound family (and the ``cell`` family if ``cells``), in table order."""
    return [m for m in metrics.METRICS if m.bound == "linear" or (cells and m.bound == "cell")]


@functools.lru_cache(maxsize=64)
def _linear_positions(layout: CellLayout, *, cells: bool) -> list[int]:
    """Positions of the linear metrics (signed gaps, macro, and the cells if ``cells``) among :func:`metric_entries`."""
    kept = {m.name for m in _linear_metrics(cells)}
    return [j for j, (m, _, _) in enumerate(metric_entries(layout)) if m in kept]


def _linear_values(cell_errors: np.ndarray, layout: CellLayout, *, cells: bool) -> np.ndarray:
    """The linear metrics of cell errors (..., C) at :func:`_linear_positions` (a linear metric of an error is the
    metric's error)."""
    view = metrics.CellRates(by_group(cell_errors, layout), layout)
    return np.concatenate([m.values(view) for m in _linear_metrics(cells)], axis=-1)


def _gap_positions(layout: CellLayout, channel: str = "recall") -> list[int]:
    """Positions of every gap metric of ``channel`` among :func:`metric_entries`, in that order (the G axis)."""
    return [j for columns in _gap_columns(layout, channel).values() for j in columns]


def _sup_positions(layout: CellLayout, channel: str = "recall") -> list[int]:
    """Positions of the metrics of family ``sup`` (1-Lipschitz in the largest |cell error|: the worst cell) of
    ``channel`` among :func:`metric_entries`."""
    return [j for columns in _family_columns(layout, "sup", channel).values() for j in columns]
