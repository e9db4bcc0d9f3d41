"""The calibrated intervals (``ci_method: calibrated``): exact-type intervals for every proportion, combined by
recovering variance estimates (MOVER), and pre-tested error bounds for the gaps.

The construction applies by the metric objects' ``bound`` family (:mod:`benchmark.core.metrics`), for metrics of the
``recall`` channel: ``cell`` and ``linear`` rows whose cell coefficients (their values at unit rates) split into one
equally weighted proportion per group get the smooth construction, the ``gap`` metrics it knows
(:data:`GAP_FORMS`) the gap construction; every other row (:func:`families` None: worst-cell accuracy, the
false-positive-rate gap) gets the statistics' BCa fallback with a note, as under ``bound``.

Every metric is a function of cell accuracies, and every cell is a proportion of one attribute group's images,
clustered in persons; groups are independent samples of persons (the resampling's strata).

**Cells** (:mod:`benchmark.stats.proportions`): Korn & Graubard's (1998) effective size with the cell's own degrees
of freedom (persons in its group - 1), then the binomial interval (``midp`` by default, ``exact`` Clopper-Pearson as
an option); the design effect is known (binomial) where a person has one image in the cell, and at 0 or 100 % with
several images per person the interval is the binomial one over persons (exact for any correlation).

**Smooth metrics** (signed per-emotion differences between groups, macro accuracy, and every difference of them or
of cells between two methods): each is sum_g c_g Q_g over the attribute groups g, Q_g a proportion of group g's
images (a cell, or the group's accuracy over all its cells for macro). Each Q_g gets the proportion interval above;
they are combined by the MOVER (Zou & Donner 2008, Statistics in Medicine 27:1693-1702; Newcombe 1998, Statistics in
Medicine 17:873-890 for a difference of two proportions): L = est - sqrt(sum_g (c_g (Q_g - l_g))^2) with the
lower limits of the positive terms and the upper limits of the negative ones, and U likewise. A difference of two
methods on the same persons is first taken per group with the correlation-corrected MOVER (the correlation of the two
estimates over the group's persons), then combined over groups as above. The limits recover the variance at each end
separately, so they are asymmetric near 0 and 100 % and never collapse there.

**Gaps** (absolute values and maxima of the signed differences, "atoms": per-emotion gap, pair gaps, largest and
average gap): non-differentiable where an atom is 0 or two atoms tie (Hirano & Porter 2012), so no bootstrap of the
plug-in is calibrated there. Two constructions with a stated guarantee:

- a single atom's absolute value (the two-group per-emotion gap, a pair gap; one seed): the image {|x| : x in
  [L, U]} of its signed MOVER interval, which holds |d| whenever [L, U] holds d (same coverage, never wider);
- everything else: the two-step construction of Romano, Shaikh & Wolf (2014, Econometrica 82:1979-2002): a
  simultaneous box at level 1 - beta for the atoms (studentised maximum over the calibrated error draws), then for
  each draw the largest and smallest error the metric can have for any truth in the box (exact: the functions are
  piecewise linear, so the extremes are at the box's ends and the kinks), and their alpha - beta quantiles. Where
  an atom's sign is settled the error is linear in it (the interval is as narrow as a smooth one); where it is not,
  the interval covers both the fold bias and its absence. Coverage >= 1 - alpha up to the error draws' accuracy.
  Differences of two methods' gaps use the box of (B's atoms, the paired differences of atoms) for the metrics that
  are sums over atoms, so that two methods that predict alike keep alike errors, the separate bounds of each method
  for the maxima; both are intersected with the trivially valid |gap(A) - gap(B)| <= gap(A - B) taken over the box.

The error draws are the stratified subject-bootstrap deviations of the per-seed cell accuracies, scaled by
sqrt(n_g / (n_g - 1)) (unbiased variance) and t(df) / z, df = persons - groups; only a cell whose deviations are all
0 (seen at 0 or 100 % by everyone) gets normal noise of its proportion interval's half width (one draw per attribute
group and evaluation group, shared by its methods).

**De-biased gaps** (``estimate_debiased``): the plug-in |d| is biased upward in small groups (Lum, Zhang & Bower 2022,
FAccT): E|d_hat| = E|N(d, V)| > |d|, most near d = 0. Each atom is estimated by the method of moments for the folded
normal: the delta >= 0 with E|N(delta, V)| = |d_hat| (0 where |d_hat| is below sd sqrt(2 / pi)), V its unbiased
variance; unlike sqrt(max(0, d_hat^2 - V)) (unbiased for d^2, Lum et al.'s correction of squared disparities) it
leaves a large gap unchanged. The gap metrics are then taken of these (max over pairs and emotions, mean over
emotions, per seed); the maxima keep part of their upward bias.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.core.metrics import CellRates, signed_pairs
from benchmark.stats.cells import by_group, metric_entries
from benchmark.stats.proportions import PROPORTION_KINDS, proportion_interval

__all__ = ["CI_METHOD", "VARIANTS", "Design", "MethodParts", "Options", "box_level", "debiased_gaps",
           "difference_intervals", "estimate_intervals", "folded_normal_mean_inverse", "method_parts", "options",
           "variant"]

CI_METHOD = "calibrated"


@dataclass(frozen=True)
class Options:
    """The choices inside ``calibrated`` (the default is what the measurements chose; docs/STATISTICS.md).

    cells : 'midp' | 'exact', the binomial interval of every proportion.
    smooth : 'mover' | 't' (estimate +- t(Welch df) x the unbiased stratified standard error; for comparison).
    paired : 'discordance' (per group, A - B = share of images only A gets right - share only B gets right, each a
        clustered proportion with its interval, combined by the correlation-corrected MOVER) | 't' (the paired
        differences' t interval with Welch df, the variance at least one discordant image's) |
        'mover' (the correlation-corrected MOVER of the two methods' intervals).
    gaps : 'bb' (Berger-Boos over a 1 - beta box) | 'gms' (moment selection: box +- sqrt(ln n) standard errors,
        no alpha spent; Andrews & Soares 2010).
    beta_share : the share of alpha (1 - level) spent on the gaps' pre-test box: beta = beta_share x alpha at every
        level, so the construction exists at any level (the verdict's stepped levels, :mod:`benchmark.stats.stepdown`).
    kg_df : Korn & Graubard's degrees-of-freedom factor on the effective sizes (False: for comparison).
    zero : where a proportion is at 0 or 1 with several images per person (its design effect not identified):
        'borrowed' (the largest design effect identified among the same task's proportions of the same kind: cells,
        or groups' accuracies; the persons if none) | 'persons' (the binomial interval over persons: exact for any
        correlation, measured too conservative for the groups' accuracies and the paired discordant shares).
    """

    cells: str = "midp"
    smooth: str = "mover"
    paired: str = "discordance"
    gaps: str = "bb"
    beta_share: float = 0.1
    kg_df: bool = True
    zero: str = "borrowed"

    def __post_init__(self) -> None:
        if (self.cells not in PROPORTION_KINDS or self.smooth not in ("mover", "t")
                or self.paired not in ("discordance", "t", "mover")
                or self.gaps not in ("bb", "gms") or not 0.0 < self.beta_share < 1.0):
            raise ValueError(f"calibrated options: {self}")


#: named variants for the coverage studies (``--ci-methods calibrated,calibrated-exact``)
VARIANTS: dict[str, Options] = {
    "calibrated": Options(),
    "calibrated-exact": Options(cells="exact"),
    "calibrated-t": Options(smooth="t"),
    "calibrated-gms": Options(gaps="gms"),
    "calibrated-mover": Options(paired="mover"),
    "calibrated-pairedt": Options(paired="t"),
    "calibrated-nodf": Options(kg_df=False),
    "calibrated-persons": Options(zero="persons"),
}
_ACTIVE: contextvars.ContextVar[Options | None] = contextvars.ContextVar("calibrated_options", default=None)


def options() -> Options:
    """The options in force (the default unless inside :func:`variant`)."""
    return _ACTIVE.get() or VARIANTS[CI_METHOD]


@contextlib.contextmanager
def variant(name: str) -> Iterator[Options]:
    """Run the statistics with the named variant of :data:`VARIANTS` (for coverage studies)."""
    token = _ACTIVE.set(VARIANTS[name])
    try:
        yield VARIANTS[name]
    finally:
        _ACTIVE.reset(token)


def _z(level: float) -> float:
    return float(sps.norm.ppf(0.5 + level / 2))


# ------------------------------------------------------------------------------------------------ layout structure


#: the gap family's metrics this construction knows (``bound`` family ``gap``), each a function of the atoms (signed
#: pair differences per emotion): the per-emotion spread over the groups, the pair gaps (one atom each), the largest
#: atom and the mean of the per-emotion spreads; the same forms as :mod:`benchmark.stats.bounds`' plug-in errors
GAP_FORMS: tuple[str, ...] = ("gap", "pair_gap", "largest_gap", "average_gap")


def families(layout: CellLayout) -> np.ndarray:
    """Each metric row's calibrated family (:attr:`Metric.bound`: ``cell``, ``linear``, ``gap``), None where
    ``calibrated`` has no construction (a metric of another channel, not a sum of proportions of the groups' images,
    or a gap it does not know): object array (M,) in :func:`metric_entries` order."""
    s = _structure(layout)
    return np.array([s.family.get(name) for name, _, _ in metric_entries(layout)], dtype=object)


@dataclass(frozen=True)
class _Structure:
    """Where every metric of a layout comes from.

    linear (J,) positions of the smooth metric rows (families ``cell`` and ``linear``) among the metric entries; the
    linear parts are these rows followed by the A atoms (signed pair differences per emotion, pair-major), L = J + A:
    weights (L, G, C) the normalised cell weights of each part in each group (0 where unused), coef (L, G) the part's
    coefficient (percent of a proportion: +-1 for cells and atoms, cells of g / C for macro); group_kind (L,) whether
    a part spans several cells (a group's accuracy) rather than one; atom_j (A,) the atoms' positions among the
    parts; cell_j (C,) each cell's position among the parts (its ``cell`` row); pairs (A, 2) group indices of each
    atom, atom_emotion (A,); gap_positions: gap metric name -> positions among the entries; family: metric name ->
    its calibrated family.
    """

    linear: np.ndarray
    weights: np.ndarray
    coef: np.ndarray
    group_kind: np.ndarray
    atom_j: np.ndarray
    cell_j: np.ndarray
    pairs: np.ndarray
    atom_emotion: np.ndarray
    gap_positions: dict[str, list[int]]
    family: dict[str, str]
    n_emotions: int
    n_groups: int


def _linear_coefficients(metric: metrics.Metric, layout: CellLayout) -> np.ndarray:
    """The cell coefficients of a linear metric's rows, (rows, C): its values at the unit rates."""
    unit = np.eye(layout.n_cells).reshape(layout.n_cells, len(layout.groups), len(layout.emotions))
    return metric.values(CellRates(unit, layout)).T


def _group_parts(coefficients: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A row's coefficients (C,) as sum_g coef_g x (a weighted proportion of group g's cells): weights (G, C), equal
    weights 1 / k over the k cells a group uses, coef (G,); None unless each group's nonzero coefficients are equal
    (a proportion of the group's images pooled over equally weighted cells). Coefficients are snapped to multiples of
    1 / C (they are the values at unit rates, e.g. macro's 1 / C summed), so the parts are exact."""
    n_cells = coefficients.size
    by = coefficients.reshape(n_groups, -1)
    weights, coef = np.zeros((n_groups, n_groups, by.shape[1])), np.zeros(n_groups)
    for g in range(n_groups):
        used = np.flatnonzero(by[g] != 0)
        if not len(used):
            continue
        if not np.allclose(by[g, used], by[g, used[0]], rtol=0.0, atol=1e-12):
            return None
        total = by[g, used].sum()
        snapped = round(total * n_cells) / n_cells
        coef[g] = snapped if abs(total - snapped) < 1e-9 else total
        weights[g, g, used] = 1.0 / len(used)
    return weights.reshape(n_groups, n_cells), coef


@functools.lru_cache(maxsize=64)
def _structure(layout: CellLayout) -> _Structure:
    entries = metric_entries(layout)
    n_groups, n_emotions = len(layout.groups), len(layout.emotions)
    position = {entry: j for j, entry in enumerate(entries)}
    family: dict[str, str] = {}
    linear, weights, coef = [], [], []
    for m in metrics.METRICS:
        if m.channel != "recall" or m.bound is None:
            continue
        if m.bound == "gap":
            if m.name in GAP_FORMS:
                family[m.name] = "gap"
            continue
        if not m.smooth:
            continue
        rows = m.rows(layout)
        parts = [_group_parts(c, n_groups) for c in _linear_coefficients(m, layout)]
        if not rows or any(p is None for p in parts):
            continue
        family[m.name] = m.bound
        for row, (w, c) in zip(rows, parts):
            linear.append(position[(m.name, *row)])
            weights.append(w)
            coef.append(c)
    if "cell" not in family.values():
        raise ValueError("ci_method calibrated needs a metric of bound family 'cell' (the cell accuracies)")
    cell_of = {layout.cells()[c]: c for c in range(layout.n_cells)}
    cell_j = np.empty(layout.n_cells, dtype=np.int64)
    for j, pos in enumerate(linear):
        name, group, emotion = entries[pos]
        if family[name] == "cell":
            cell_j[cell_of[(group, emotion)]] = j
    n_linear = len(linear)
    cell = np.arange(layout.n_cells).reshape(n_groups, n_emotions)
    for i, k in layout.pairs():
        for e in range(n_emotions):
            w, c = np.zeros((n_groups, layout.n_cells)), np.zeros(n_groups)
            w[i, cell[i, e]], c[i] = 1.0, 1.0
            w[k, cell[k, e]], c[k] = 1.0, -1.0
            weights.append(w)
            coef.append(c)
    weights_arr = np.array(weights)
    pairs = np.array([[i, j] for i, j in layout.pairs() for _ in range(n_emotions)], dtype=np.int64)
    atom_emotion = np.tile(np.arange(n_emotions), len(layout.pairs()))
    gap_positions = {name: [j for j, (m, _, _) in enumerate(entries) if m == name]
                     for name in GAP_FORMS if family.get(name) == "gap"}
    return _Structure(np.array(linear, dtype=np.int64), weights_arr, np.array(coef),
                      (weights_arr > 0).sum(axis=-1).max(axis=-1) > 1,
                      np.arange(n_linear, n_linear + len(pairs)), cell_j, pairs, atom_emotion,
                      {k: v for k, v in gap_positions.items() if v}, family, n_emotions, n_groups)


# ------------------------------------------------------------------------------------------------ one method


@dataclass(frozen=True)
class MethodParts:
    """What one method's calibrated intervals need (T tasks, K seeds, C cells, J linear metrics, G groups, A atoms).

    q (n_subjects, T, L) each person's value of its group's part of every linear part (the smooth rows, then the
    atoms: :class:`_Structure`; seed mean, proportion); part (T, L, G) the parts' estimates, part_var (T, L, G)
    their unbiased variances, part_low/part_high (T, L, G) their proportion intervals; box_low/box_high (T, L, G)
    the same at the pre-test box's level (:func:`box_level`); n_images (L, G) images in each part; atoms (T, K, A)
    per-seed signed differences (percent); draws (R, T, K, A) calibrated error draws of the atoms (float32); low, high (T, M) the method's intervals, point (T, M) its estimates; gap_boot (R, T, n_gap_metrics)
    the bootstrap deviations of its gap metrics (float32).
    """

    q: np.ndarray
    part: np.ndarray
    part_var: np.ndarray
    part_low: np.ndarray
    part_high: np.ndarray
    box_low: np.ndarray
    box_high: np.ndarray
    n_images: np.ndarray
    atoms: np.ndarray
    draws: np.ndarray
    low: np.ndarray
    high: np.ndarray
    point: np.ndarray
    gap_boot: np.ndarray


@dataclass(frozen=True)
class Design:
    """The evaluation group's persons: strata (n_subjects,) group index of each person; counts (n_subjects, C)."""

    strata: np.ndarray
    counts: np.ndarray
    layout: CellLayout

    @functools.cached_property
    def group_sizes(self) -> np.ndarray:
        return np.bincount(self.strata, minlength=len(self.layout.groups))


def _stratum_variance(values: np.ndarray, strata: np.ndarray, n_groups: int, valid: np.ndarray | None = None,
                      weights: np.ndarray | None = None) -> np.ndarray:
    """Unbiased variance of each stratum's mean: (n, ...) -> (G, ...), s_g^2 / n_g over the stratum's valid persons
    (0 where fewer than 2). ``weights`` (n,): how many alike persons each row stands for (None: one each; a weight
    of 1 multiplies exactly, so the result is the same bit for bit)."""
    out = np.zeros((n_groups,) + values.shape[1:])
    for g in range(n_groups):
        members = values[strata == g]
        ok = np.ones(members.shape, dtype=bool) if valid is None else valid[strata == g]
        if weights is None:
            w = np.ones(1)
            n = ok.sum(axis=0)
        else:
            w = weights[strata == g].astype(np.float64).reshape((-1,) + (1,) * (members.ndim - 1))
            n = np.where(ok, w, 0.0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(ok, members * w, 0.0).sum(axis=0) / np.maximum(n, 1)
            ss = (np.where(ok, members - mean, 0.0) ** 2 * w).sum(axis=0)
            out[g] = np.where(n > 1, ss / np.maximum(n - 1, 1) / np.maximum(n, 1), 0.0)
    return out


def _subject_accuracy(sums: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-person, per-seed cell accuracies (n, T, K, C) as proportions (0 where the person has no image), and where
    the person has images (n, 1, 1, C)."""
    has = (counts > 0)[:, None, None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(has, sums / np.maximum(counts, 1)[:, None, None, :], 0.0)
    return y, has


def method_parts(sums: np.ndarray, cells: np.ndarray, boot_cells: np.ndarray, design: Design, *, level: float,
                 shared: np.ndarray, point: np.ndarray, boot: np.ndarray) -> MethodParts:
    """One method's :class:`MethodParts`.

    sums (n, T, K, C) correct counts; cells (T, K, C) per-seed cell accuracies (percent); boot_cells (R, T, K, C)
    per-seed bootstrap cell accuracies; point (T, M) seed-mean metrics, boot (R, T, M) their bootstrap values; shared
    (R, T, 1, G) the evaluation group's standard normal floor draws.
    """
    layout, strata = design.layout, design.strata
    s = _structure(layout)
    n_groups = s.n_groups
    opts = options()
    y, _ = _subject_accuracy(sums, design.counts)
    y_mean = y.mean(axis=2)  # (n, T, C)
    # each person's value of its own group's part of every linear metric
    w_own = s.weights[:, strata, :]  # (L, n, C)
    q = np.einsum("jnc,ntc->ntj", w_own, y_mean)
    part_var = np.moveaxis(_stratum_variance(q, strata, n_groups), 0, -1)  # (T, L, G)
    part = np.einsum("jgc,tc->tjg", s.weights, cells.mean(axis=1) / 100.0)
    used = s.weights > 0  # (L, G, C)
    n_images_cell = design.counts.sum(axis=0)
    most_cell = design.counts.max(axis=0)
    n_images = (used * n_images_cell).sum(axis=-1)  # (L, G)
    most = (used * most_cell).sum(axis=-1)
    persons = np.broadcast_to(design.group_sizes[None, :], n_images.shape)
    fallback = _borrowed_deff([(part, part_var)], n_images, s) if opts.zero == "borrowed" else None
    low, high = proportion_interval(part, part_var, n_images[None], persons[None], most[None], level=level,
                                    kind=opts.cells, df_adjusted=opts.kg_df, fallback_deff=fallback)
    low, high = np.where(used.any(-1), low, part), np.where(used.any(-1), high, part)  # unused parts: 0 +- 0
    box_low, box_high = proportion_interval(part, part_var, n_images[None], persons[None], most[None],
                                            level=box_level(layout, level), kind=opts.cells, df_adjusted=opts.kg_df,
                                            fallback_deff=fallback)
    box_low, box_high = np.where(used.any(-1), box_low, part), np.where(used.any(-1), box_high, part)
    atoms = signed_pairs(by_group(cells, layout), layout)
    draws = _draws(boot_cells, cells, design, level=level, shared=shared,
                   half_width=100.0 * np.maximum(part - low, high - part), structure=s)
    parts = MethodParts(q, part, part_var, low, high, box_low, box_high, n_images, atoms, draws,
                        None, None, point, None)
    est_low, est_high = _estimates(parts, point, design, level=level)
    gaps = _gap_columns(s)
    return dataclasses.replace(parts, low=est_low, high=est_high,
                               gap_boot=(boot[..., gaps] - point[None][..., gaps]).astype(np.float32))


def _gap_columns(s: _Structure) -> list[int]:
    return [j for positions in s.gap_positions.values() for j in positions]


def _borrowed_deff(proportions: list[tuple[np.ndarray, np.ndarray]], n_images: np.ndarray, s: _Structure
                   ) -> np.ndarray:
    """Per part (T, L, G), the largest design effect identified (0 < p < 1, variance > 0) among the given
    proportions (each (p, variance), (T, L, G)) of the same task and kind (cell-type parts: cells, signed gaps and atoms;
    group-type: a group's accuracy over several cells, e.g. macro); NaN where none is."""
    out = np.full(proportions[0][0].shape, np.nan)
    for kind in (s.group_kind, ~s.group_kind):
        best = np.full(out.shape[0], np.nan)
        for p, v in proportions:
            pk, vk = p[:, kind], v[:, kind]
            binomial = pk * (1 - pk) / np.maximum(n_images[kind], 1.0)[None]
            with np.errstate(invalid="ignore", divide="ignore"):
                deff = np.where((binomial > 0) & (vk > 0), vk / binomial, np.nan)
            found = np.nanmax(np.where(np.isfinite(deff), deff, -np.inf).reshape(len(best), -1), axis=-1)
            best = np.fmax(best, np.where(np.isfinite(found), found, np.nan))
        out[:, kind] = best[:, None, None]
    return out


def beta(level: float) -> float:
    """The alpha spent on the gaps' pre-test box at ``level``: ``beta_share`` x (1 - level) (0.005 at 95 %)."""
    return options().beta_share * (1.0 - level)


def box_level(layout: CellLayout, level: float) -> float:
    """Level of each atom's interval in the gaps' pre-test box: 1 - beta / atoms (Bonferroni), so that the box holds
    every atom with probability >= 1 - beta."""
    return 1.0 - beta(level) / len(_structure(layout).pairs)


def _pair_sums(values: np.ndarray, layout: CellLayout) -> np.ndarray:
    """v_i + v_j per emotion for every pair (i, j): (..., C) -> (..., P * E), pair-major."""
    v = by_group(values, layout)
    return np.concatenate([v[..., i, :] + v[..., j, :] for i, j in layout.pairs()], axis=-1)


def _cell_variances(y: np.ndarray, has: np.ndarray, design: Design, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-seed unbiased variances (percent^2) of the cell accuracies, (T, K, C): the variance of the mean of the
    persons' own accuracies in the cell's group (exact for a balanced design); ``weights`` (n,) persons per row."""
    n_groups = len(design.layout.groups)
    by_stratum = _stratum_variance(y, design.strata, n_groups, np.broadcast_to(has, y.shape), weights)  # (G, T, K, C)
    group_of_cell = np.repeat(np.arange(n_groups), len(design.layout.emotions))
    return by_stratum[group_of_cell, :, :, np.arange(len(group_of_cell))].transpose(1, 2, 0) * 1e4


def _draws(boot_cells: np.ndarray, cells: np.ndarray, design: Design, *, level: float, shared: np.ndarray,
           half_width: np.ndarray, structure: _Structure) -> np.ndarray:
    """Calibrated error draws of the atoms, (R, T, K, A) float32 (see the module docstring)."""
    layout = design.layout
    sizes = design.group_sizes.astype(float)
    group_of_cell = np.repeat(np.arange(structure.n_groups), structure.n_emotions)
    n_g = sizes[group_of_cell]
    df = max(1.0, float(sizes.sum() - (sizes > 0).sum()))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(n_g > 1, np.sqrt(n_g / (n_g - 1)), 0.0) * sps.t.ppf(0.5 + level / 2, df) / _z(level)
    errors = ((boot_cells - cells[None]) * scale).astype(np.float32)  # (R, T, K, C)
    spread = np.nanstd(errors, axis=0).max(axis=1) if np.isnan(errors).any() else errors.std(axis=0).max(axis=1)
    degenerate = spread <= 0  # (T, C): every person at the cell's estimate in every seed
    if degenerate.any():
        # the cell's proportion interval, as the sd of normal noise (cells: the first C linear metrics)
        sd = half_width[:, structure.cell_j, group_of_cell] / _z(level)  # (T, C)
        noise = shared[..., group_of_cell] * np.where(degenerate, sd, 0.0)[None, :, None, :]
        errors += noise.astype(np.float32)
    return signed_pairs(by_group(errors, layout), layout)


# ------------------------------------------------------------------------------------------------ smooth metrics


def _mover_sum(point: np.ndarray, low: np.ndarray, high: np.ndarray, coef: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """MOVER limits of sum_g coef_g X_g for independent X_g with estimates ``point`` and limits low/high (..., G);
    coef (..., G). Returns the limits (...) of the sum."""
    pos = coef >= 0
    below = np.where(pos, coef * (point - low), -coef * (high - point))
    above = np.where(pos, coef * (high - point), -coef * (point - low))
    centre = (coef * point).sum(axis=-1)
    return centre - np.sqrt((below ** 2).sum(axis=-1)), centre + np.sqrt((above ** 2).sum(axis=-1))


def _correlation(a: MethodParts, b: MethodParts, strata: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group, the correlation of the two methods' part estimates over the group's persons (T, L, G), with
    Newcombe's (1998b, method 10) continuity correction: a positive covariance is reduced by half a discordant image,
    1 / (2 N^2) with N the part's images (so that two methods that agree on every sampled image still get an interval
    of one discordant image's width); 0 where either part has no variance (at 0 or 100 %)."""
    cov = np.zeros(a.part.shape)
    for g in range(n_groups):
        qa, qb = a.q[strata == g], b.q[strata == g]
        n = len(qa)
        if n > 1:
            cov[..., g] = ((qa - qa.mean(axis=0)) * (qb - qb.mean(axis=0))).sum(axis=0) / (n - 1) / n
    half = 0.5 / np.maximum(a.n_images, 1.0) ** 2
    cov = np.where(cov > half, cov - half, np.where(cov > 0, 0.0, cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where((a.part_var > 0) & (b.part_var > 0), cov / np.sqrt(a.part_var * b.part_var), 0.0)
    return np.clip(r, -1.0, 1.0)


def _paired_mover(a_part: np.ndarray, a_low: np.ndarray, a_high: np.ndarray, b_part: np.ndarray, b_low: np.ndarray,
                  b_high: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The correlation-corrected MOVER interval of A - B (Zou & Donner 2008): difference, low, high."""
    la, ua = a_part - a_low, a_high - a_part
    lb, ub = b_part - b_low, b_high - b_part
    diff = a_part - b_part
    low = diff - np.sqrt(np.clip(la ** 2 - 2 * r * la * ub + ub ** 2, 0.0, None))
    high = diff + np.sqrt(np.clip(ua ** 2 - 2 * r * ua * lb + lb ** 2, 0.0, None))
    return diff, low, high


def _discordance_parts(a: MethodParts, discordant: tuple[np.ndarray, np.ndarray], design: Design, *, level: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group and linear metric (T, L, G): the part of A - B as P+ - P-, P+ (P-) the share of the part's images
    only A (only B) gets right, each a clustered proportion with its Korn-Graubard interval, combined by the
    correlation-corrected MOVER (Newcombe 1998b's construction for paired proportions, on the discordant shares):
    difference, low, high as proportions. Where no person is discordant the share's interval is the binomial one at
    0 over persons (the design effect is not identified there)."""
    s = _structure(design.layout)
    strata = design.strata
    w_own = s.weights[:, strata, :]  # (L, n, C)
    used = s.weights > 0
    most = (used * design.counts.max(axis=0)).sum(axis=-1)
    persons = np.broadcast_to(design.group_sizes[None, :], a.n_images.shape)
    shares, q = [], []
    for counts in discordant:
        y = counts / np.maximum(design.counts, 1.0)[:, None, :]  # (n, T, C)
        qs = np.einsum("jnc,ntc->ntj", w_own, y)
        var = np.moveaxis(_stratum_variance(qs, strata, s.n_groups), 0, -1)  # (T, L, G)
        share = np.zeros(var.shape)
        for g in range(s.n_groups):
            share[..., g] = qs[strata == g].mean(axis=0) if (strata == g).any() else 0.0
        shares.append((share, var))
        q.append(qs)
    fallback = _borrowed_deff(shares, a.n_images, s) if options().zero == "borrowed" else None
    out = []
    for share, var in shares:
        low, high = proportion_interval(share, var, a.n_images[None], persons[None], most[None], level=level,
                                        kind=options().cells, df_adjusted=options().kg_df, fallback_deff=fallback)
        low, high = np.where(used.any(-1), low, share), np.where(used.any(-1), high, share)
        out.append((share, low, high, var))
    cov = np.zeros(out[0][0].shape)
    for g in range(s.n_groups):
        qa, qb = q[0][strata == g], q[1][strata == g]
        n = len(qa)
        if n > 1:
            cov[..., g] = ((qa - qa.mean(axis=0)) * (qb - qb.mean(axis=0))).sum(axis=0) / (n - 1) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where((out[0][3] > 0) & (out[1][3] > 0), cov / np.sqrt(out[0][3] * out[1][3]), 0.0)
    (p, pl, ph, _), (m, ml, mh, _) = out
    return _paired_mover(p, pl, ph, m, ml, mh, np.clip(r, -1.0, 1.0))


def _welch(var_parts: np.ndarray, coef: np.ndarray, sizes: np.ndarray, level: float) -> np.ndarray:
    """Half width t(Welch-Satterthwaite df) x SE of sum_g coef_g X_g, var_parts (..., G) the parts' variances."""
    v = coef ** 2 * var_parts
    total = v.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = total ** 2 / (v ** 2 / np.maximum(sizes - 1, 1)).sum(axis=-1)
    df = np.where(np.isfinite(df) & (df > 0), df, 1.0)
    return sps.t.ppf(0.5 + level / 2, np.maximum(df, 1.0)) * np.sqrt(total)


# ------------------------------------------------------------------------------------------------ gaps


def _f(d: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Error of |d| when d is estimated as d + h."""
    return np.abs(d + h) - np.abs(d)


def _signed_box(part: np.ndarray, low: np.ndarray, high: np.ndarray, s: _Structure
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The atoms' (signed pair differences') MOVER estimates and limits from part estimates and limits (T, J, G): (T, A) each,
    percent."""
    j = s.atom_j
    lo, hi = _mover_sum(part[:, j], low[:, j], high[:, j], s.coef[j][None])
    return 100.0 * (s.coef[j][None] * part[:, j]).sum(axis=-1), 100.0 * lo, 100.0 * hi


def _per_seed(centre: np.ndarray, low: np.ndarray, high: np.ndarray, atoms: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """The seed-mean box (T, A) moved to every seed's estimate (T, K, A): the seeds share the test persons, so their
    sampling errors are taken as equal."""
    shift = atoms - centre[:, None, :]
    return low[:, None, :] + shift, high[:, None, :] + shift


def _set_bounds(h: np.ndarray, low: np.ndarray, high: np.ndarray, sets: list[np.ndarray], *, lower: bool = False
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Largest (and, if ``lower``, smallest) error of max_{e in S} |d_e| over every truth d in the box, per draw, for
    each set S of atoms: h (R, T, K, A), low/high (T, K, A) -> upper, lower (R, T, K, n_sets).

    upper: max_{e in S} max_{d_e in box} |d_e + h_e| - max(|d_e|, l) with l = max_S distance of the box from 0 (a
    lower bound of the true maximum), at the box ends and kinks (for one atom: at the box's point nearest 0);
    lower: min over the atoms that can be the largest of min_{d in box} |d + h| - |d| (at the box's ends: monotone in
    d)."""
    dist = np.where((low <= 0) & (high >= 0), 0.0, np.minimum(np.abs(low), np.abs(high))).astype(h.dtype)
    reach = np.maximum(np.abs(low), np.abs(high))
    near = np.clip(0.0, low, high).astype(h.dtype)
    uppers, lowers = [], []
    f_min = np.minimum(_f(low[None].astype(h.dtype), h), _f(high[None].astype(h.dtype), h)) if lower else None
    for atoms in sets:
        if len(atoms) == 1:
            a = atoms[0]
            uppers.append(np.abs(near[..., a] + h[..., a]) - np.abs(near[..., a]))
        else:
            hh = h[..., atoms]
            lo, hi = low[..., atoms].astype(h.dtype), high[..., atoms].astype(h.dtype)
            ell = dist[..., atoms].max(axis=-1, keepdims=True)[None]  # (1, T, K, 1)
            best = np.abs(near[..., atoms] + hh) - np.maximum(np.abs(near[..., atoms]), ell)
            for point in (lo[None], hi[None], -hh, ell, -ell):
                d = np.clip(point, lo[None], hi[None])
                np.maximum(best, np.abs(d + hh) - np.maximum(np.abs(d), ell), out=best)
            uppers.append(best.max(axis=-1))
        if lower:
            ell = dist[..., atoms].max(axis=-1, keepdims=True)
            candidates = reach[..., atoms] >= ell  # (T, K, |S|)
            lowers.append(np.where(candidates[None], f_min[..., atoms], np.inf).min(axis=-1))
    return np.stack(uppers, axis=-1), (np.stack(lowers, axis=-1) if lower else None)


def _gap_sets(s: _Structure) -> dict[str, list[np.ndarray]]:
    """Atom sets of every gap metric, in the entries' order: per-emotion spread (the emotion's pairs), pair gaps
    (one atom), the largest gap (all atoms); the average gap is the mean of the per-emotion spreads."""
    n_atoms = len(s.pairs)
    out = {"gap": [np.flatnonzero(s.atom_emotion == e) for e in range(s.n_emotions)],
           "largest_gap": [np.arange(n_atoms)]}
    if "pair_gap" in s.gap_positions:
        out["pair_gap"] = [np.array([a]) for a in range(n_atoms)]
    return out


def _quantiles(values: np.ndarray, probs: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        q = np.nanquantile(values, probs, axis=0) if np.isnan(values).any() else np.quantile(values, probs, axis=0)
    return q[0], q[1]


# ------------------------------------------------------------------------------------------------ intervals


def estimate_intervals(parts: MethodParts) -> tuple[np.ndarray, np.ndarray]:
    """Intervals of one method's metrics, low, high (T, M) percent (computed with its parts)."""
    return parts.low, parts.high


def _estimates(parts: MethodParts, point: np.ndarray, design: Design, *, level: float
               ) -> tuple[np.ndarray, np.ndarray]:
    layout = design.layout
    s = _structure(layout)
    opts = options()
    low, high = np.full(point.shape, np.nan), np.full(point.shape, np.nan)
    if opts.smooth == "mover":
        l_lin, h_lin = _mover_sum(parts.part, parts.part_low, parts.part_high, s.coef[None])
        lin_low, lin_high = 100.0 * l_lin, 100.0 * h_lin
    else:
        half = 100.0 * _welch(parts.part_var, s.coef[None], design.group_sizes, level)
        centre = 100.0 * (s.coef[None] * parts.part).sum(axis=-1)
        centre[:, :len(s.linear)] = point[:, s.linear]
        lin_low, lin_high = centre - half, centre + half
        # cells keep their proportion interval (the part of their own group)
        own = np.repeat(np.arange(s.n_groups), s.n_emotions)
        lin_low[:, s.cell_j] = 100.0 * parts.part_low[:, s.cell_j, own]
        lin_high[:, s.cell_j] = 100.0 * parts.part_high[:, s.cell_j, own]
    low[:, s.linear], high[:, s.linear] = lin_low[:, :len(s.linear)], lin_high[:, :len(s.linear)]
    _gap_estimates(parts, point, s, level=level, spent=beta(level), low=low, high=high,
                   atom_low=lin_low[:, s.atom_j], atom_high=lin_high[:, s.atom_j])
    return np.clip(low, _lower(layout), None), np.clip(high, None, 100.0)


def _lower(layout: CellLayout) -> np.ndarray:
    """The smallest value of every metric row (:attr:`Metric.lower`), (M,)."""
    return np.array([metrics.by_name(name).lower for name, _, _ in metric_entries(layout)])


def _gap_estimates(parts: MethodParts, point: np.ndarray, s: _Structure, *, level: float, spent: float,
                   low: np.ndarray, high: np.ndarray, atom_low: np.ndarray, atom_high: np.ndarray) -> None:
    """Fill the gap metrics' intervals into low, high (T, M) in place; atom_low, atom_high (T, A) the atoms' own
    (signed) intervals.

    Berger & Boos (1994) over the box B (level 1 - ``spent``, :func:`beta`) of the atoms' truths, at level 1 - (alpha - spent): the
    interval is the union over truths d in B of [est - q_hi(E_d), est - q_lo(E_d)], E_d the plug-in's error at d.

    - q_hi: |d + h| - |d| <= |d_0 + h| - |d_0| for d_0 the point of the atom's box nearest 0, for every draw h (and
      likewise for a maximum, :func:`_set_bounds`), so the largest upper quantile is the one at that truth: exact
      for one atom and for the average gap, a pointwise bound for the maxima.
    - q_lo: |d + h| - |d| >= sign(d) h, and a maximum's error is at least that of its largest atom, so the smallest
      lower quantile is the smallest over the signs the box allows (and the atoms that can be the largest) of the
      linear error's: min over them of q_lo(sum s_e h_e); exact for one atom and the two-group average gap.
    """
    alpha = 1.0 - level
    if options().gaps == "gms":  # moment selection: +- sqrt(ln n) standard errors (MOVER half width / z), no beta
        centre, lo95, hi95 = _signed_box(parts.part, parts.part_low, parts.part_high, s)
        kappa = math.sqrt(math.log(max(3.0, float(parts.q.shape[0])))) / _z(level)
        box_low, box_high = _per_seed(centre, centre - kappa * (centre - lo95), centre + kappa * (hi95 - centre),
                                      parts.atoms)
        spent = 0.0
    else:
        box_low, box_high = _per_seed(*_signed_box(parts.part, parts.box_low, parts.box_high, s), parts.atoms)
    sets = _gap_sets(s)
    probs = ((alpha - spent) / 2, 1.0 - (alpha - spent) / 2)
    h = parts.draws
    single_seed = parts.atoms.shape[1] == 1
    folded = set(s.gap_positions.get("pair_gap", []) + (s.gap_positions["gap"] if s.n_groups == 2 else []))
    per_emotion_up, per_emotion_lo = _set_bounds(h, box_low, box_high, sets["gap"], lower=s.n_groups > 2)
    for name, positions in s.gap_positions.items():
        if single_seed and set(positions) <= folded:
            continue  # the fold of the signed interval, below
        if name == "average_gap":
            up = per_emotion_up.mean(axis=(-1, -2))[..., None]
            if s.n_groups == 2:
                q_lo = _pattern_minimum(h, box_low, box_high, probs[0])[:, None]
            else:
                q_lo, _ = _quantiles(per_emotion_lo.mean(axis=(-1, -2))[..., None], probs)
        else:
            up = per_emotion_up if name == "gap" else _set_bounds(h, box_low, box_high, sets[name])[0]
            up = up.mean(axis=2)  # seed mean: (R, T, n_sets)
            q_lo = np.stack([_largest_minimum(h, box_low, box_high, atoms, probs[0]) for atoms in sets[name]], -1)
        _, q_up = _quantiles(up, probs)
        low[:, positions] = point[:, positions] - q_up
        high[:, positions] = point[:, positions] - q_lo
    if single_seed and folded:
        # the image of each atom's signed interval under |.|
        signed_low, signed_high = atom_low, atom_high
        at = np.array(s.gap_positions.get("pair_gap", s.gap_positions["gap"]))
        inside = (signed_low <= 0) & (signed_high >= 0)
        low[:, at] = np.where(inside, 0.0, np.minimum(np.abs(signed_low), np.abs(signed_high)))
        high[:, at] = np.maximum(np.abs(signed_low), np.abs(signed_high))


def _allowed_signs(box_low: np.ndarray, box_high: np.ndarray) -> np.ndarray:
    """Per task and atom (T, A): +1 or -1 where the box settles the sign in every seed, 0 where both are possible."""
    positive, negative = (box_low > 0).all(axis=1), (box_high < 0).all(axis=1)
    return np.where(positive, 1, np.where(negative, -1, 0))


def _pattern_minimum(h: np.ndarray, box_low: np.ndarray, box_high: np.ndarray, prob: float,
                     max_free: int = 10) -> np.ndarray:
    """min over the sign patterns the box allows of the ``prob`` quantile of mean_e s_e h_e (seed mean), per task
    (T,). More than ``max_free`` unsettled atoms: the pointwise bound -|h| for the unsettled ones instead."""
    signs = _allowed_signs(box_low, box_high)
    out = np.empty(h.shape[1])
    for t in range(h.shape[1]):
        ht = h[:, t].mean(axis=1)  # (R, A) seed mean of the linear error
        free = np.flatnonzero(signs[t] == 0)
        settled = (ht * signs[t]).sum(axis=-1)
        if len(free) > max_free:
            out[t] = np.quantile((settled - np.abs(ht[:, free]).sum(axis=-1)) / ht.shape[-1], prob)
            continue
        patterns = np.array(list(itertools.product((-1.0, 1.0), repeat=len(free)))) if len(free) else np.ones((1, 0))
        totals = settled[:, None] + ht[:, free] @ patterns.T  # (R, n_patterns)
        out[t] = np.quantile(totals / ht.shape[-1], prob, axis=0).min()
    return out


def _largest_minimum(h: np.ndarray, box_low: np.ndarray, box_high: np.ndarray, atoms: np.ndarray,
                     prob: float) -> np.ndarray:
    """min over the atoms of ``atoms`` that can be the largest in the box, and their allowed signs, of the ``prob``
    quantile of s h_m (seed mean), per task (T,)."""
    dist = np.where((box_low <= 0) & (box_high >= 0), 0.0, np.minimum(np.abs(box_low), np.abs(box_high)))
    reach = np.maximum(np.abs(box_low), np.abs(box_high))
    ell = dist[..., atoms].max(axis=-1, keepdims=True)  # (T, K, 1)
    can = (reach[..., atoms] >= ell).any(axis=1)  # (T, |S|)
    signs = _allowed_signs(box_low, box_high)[:, atoms]
    hm = h[..., atoms].mean(axis=2)  # (R, T, |S|)
    q_pos, q_neg = np.quantile(hm, prob, axis=0), np.quantile(-hm, prob, axis=0)  # (T, |S|)
    q = np.where(signs > 0, q_pos, np.where(signs < 0, q_neg, np.minimum(q_pos, q_neg)))
    return np.where(can, q, np.inf).min(axis=-1)


def difference_intervals(a: MethodParts, b: MethodParts, diff: np.ndarray, design: Design, *, level: float,
                         discordant: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Intervals of metric(A) - metric(B) on the same persons, low, high (T, M) percent; diff (T, M) the seed-mean
    difference; discordant: per person and cell (n, T, C) the counts of images only A gets right and only B gets right
    (seed means)."""
    layout = design.layout
    s = _structure(layout)
    opts = options()
    low, high = np.full(diff.shape, np.nan), np.full(diff.shape, np.nan)
    if opts.paired in ("discordance", "mover"):
        if opts.paired == "discordance":
            part_diff, part_low, part_high = _discordance_parts(a, discordant, design, level=level)
        else:
            r = _correlation(a, b, design.strata, s.n_groups)
            part_diff, part_low, part_high = _paired_mover(a.part, a.part_low, a.part_high, b.part, b.part_low,
                                                           b.part_high, r)
        l_lin, h_lin = _mover_sum(part_diff, part_low, part_high, s.coef[None])
        lin_low, lin_high = 100.0 * l_lin, 100.0 * h_lin
    else:
        var = np.zeros(a.part.shape)
        for g in range(s.n_groups):
            members = design.strata == g
            d = a.q[members] - b.q[members]
            n = members.sum()
            if n > 1:
                var[..., g] = d.var(axis=0, ddof=1) / n
        # where no person's predictions differ the variance is not identified: one discordant image's, 1 / N^2
        var = np.maximum(var, np.where(a.n_images > 0, 1.0 / np.maximum(a.n_images, 1.0) ** 2, 0.0)[None])
        half = 100.0 * _welch(var, s.coef[None], design.group_sizes, level)
        centre = 100.0 * (s.coef[None] * (a.part - b.part)).sum(axis=-1)
        centre[:, :len(s.linear)] = diff[:, s.linear]
        lin_low, lin_high = centre - half, centre + half
    low[:, s.linear], high[:, s.linear] = lin_low[:, :len(s.linear)], lin_high[:, :len(s.linear)]
    _gap_differences(a, b, diff, s, design, low=low, high=high, atom_low=lin_low[:, s.atom_j],
                     atom_high=lin_high[:, s.atom_j])
    return np.clip(low, -100.0, None), np.clip(high, None, 100.0)


def _gap_differences(a: MethodParts, b: MethodParts, diff: np.ndarray, s: _Structure, design: Design, *,
                     low: np.ndarray, high: np.ndarray, atom_low: np.ndarray, atom_high: np.ndarray) -> None:
    """Fill the gap metrics' difference intervals into low, high (T, M) in place; atom_low, atom_high (T, A) the
    intervals of the atoms' differences.

    The correlation-corrected MOVER of the two methods' own gap intervals (which carry the fold bias), with the
    correlation of their bootstrap values less Newcombe's continuity correction (half a discordant image), then
    intersected with the trivially valid bound |gap(A) - gap(B)| <= gap(A - B), taken over the signed differences'
    intervals."""
    gaps = _gap_columns(s)
    point_a, point_b = a.point[:, gaps], b.point[:, gaps]
    ea, eb = a.gap_boot, b.gap_boot
    var_a, var_b = ea.var(axis=0), eb.var(axis=0)
    cov = (ea * eb).mean(axis=0) - ea.mean(axis=0) * eb.mean(axis=0)
    half = 0.5 * _continuity_variance(a, s, design)[:, gaps]
    cov = np.where(cov > half, cov - half, np.where(cov > 0, 0.0, cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.clip(np.where((var_a > 0) & (var_b > 0), cov / np.sqrt(var_a * var_b), 0.0), -1.0, 1.0)
    _, lo, hi = _paired_mover(point_a, a.low[:, gaps], a.high[:, gaps], point_b, b.low[:, gaps], b.high[:, gaps], r)
    lo, hi = lo - (point_a - point_b) + diff[:, gaps], hi - (point_a - point_b) + diff[:, gaps]
    # trivially valid bound from the signed differences' intervals, moved to every (tiled) seed
    k = math.lcm(a.atoms.shape[1], b.atoms.shape[1])
    delta = np.tile(a.atoms, (1, k // a.atoms.shape[1], 1)) - np.tile(b.atoms, (1, k // b.atoms.shape[1], 1))
    d_low, d_high = _per_seed(delta.mean(axis=1), atom_low, atom_high, delta)
    reach = np.maximum(np.abs(d_low), np.abs(d_high))  # (T, K, A)
    sets = _gap_sets(s)
    per_emotion = np.stack([reach[..., e].max(axis=-1) for e in sets["gap"]], -1)  # (T, K, E)
    bound = {"gap": per_emotion.mean(axis=1), "largest_gap": reach.max(axis=-1).mean(axis=1)[:, None],
             "average_gap": per_emotion.mean(axis=(1, 2))[:, None], "pair_gap": reach.mean(axis=1)}
    trivial = np.concatenate([bound[name] for name in s.gap_positions], axis=-1)
    low[:, gaps], high[:, gaps] = np.maximum(lo, -trivial), np.minimum(hi, trivial)


def _continuity_variance(parts: MethodParts, s: _Structure, design: Design) -> np.ndarray:
    """Per metric (T, M), the variance (percent^2) of one discordant image on each side of the cells a gap metric
    reads (Newcombe's continuity correction): per atom (100 / N_a)^2 + (100 / N_b)^2, N a cell's images; a spread
    and the largest gap read the estimated largest atom; the average gap the mean over emotions."""
    n = design.counts.sum(axis=0)
    per_cell = (100.0 / np.maximum(n, 1.0)) ** 2
    atom = _pair_sums(per_cell, design.layout)  # (A,)
    d = np.abs(parts.atoms.mean(axis=1))  # (T, A)
    out = np.zeros(parts.point.shape)
    sets = _gap_sets(s)
    per_emotion = np.stack([atom[e][np.argmax(d[:, e], axis=-1)] for e in sets["gap"]], -1)  # (T, E)
    out[:, s.gap_positions["gap"]] = per_emotion
    if "pair_gap" in s.gap_positions:
        out[:, s.gap_positions["pair_gap"]] = atom[None]
    out[:, s.gap_positions["largest_gap"]] = atom[np.argmax(d, axis=-1)][:, None]
    out[:, s.gap_positions["average_gap"]] = per_emotion.sum(axis=-1, keepdims=True) / s.n_emotions ** 2
    return out


# ------------------------------------------------------------------------------------------------ de-biased gaps


def folded_normal_mean_inverse(observed: np.ndarray, sd: np.ndarray, iterations: int = 60) -> np.ndarray:
    """The delta >= 0 whose folded normal mean E|N(delta, sd^2)| = sd sqrt(2 / pi) exp(-delta^2 / (2 sd^2)) +
    delta (1 - 2 Phi(-delta / sd)) equals ``observed`` (the method-of-moments estimate of |d| from |d_hat|;
    Leone, Nelson & Nottingham 1961); 0 where ``observed`` is below the mean at delta = 0, ``observed`` where sd = 0.
    Arrays of one shape."""
    observed, sd = np.broadcast_arrays(np.asarray(observed, dtype=np.float64), np.asarray(sd, dtype=np.float64))
    safe = np.where(sd > 0, sd, 1.0)

    def mean(delta: np.ndarray) -> np.ndarray:
        return (safe * np.sqrt(2 / np.pi) * np.exp(-0.5 * (delta / safe) ** 2)
                + delta * (1 - 2 * sps.norm.cdf(-delta / safe)))

    lo, hi = np.zeros(observed.shape), observed.copy()  # mean(delta) >= delta, so the root is <= observed
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = mean(mid) < observed
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    out = np.where(mean(np.zeros(observed.shape)) >= observed, 0.0, 0.5 * (lo + hi))
    return np.where(sd > 0, out, observed)


def debiased_gaps(sums: np.ndarray, cells: np.ndarray, design: Design, *,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """De-biased gap estimates (T, M) of one method: NaN except on the gap metrics (see the module docstring).

    sums (n, T, K, C) correct counts of each row's person; cells (T, K, C) per-seed cell accuracies (percent);
    weights (n,): how many alike persons (same stratum, counts and correct counts) each row stands for, None for one
    each. Classes of alike persons give the persons' variances without a row per person."""
    layout = design.layout
    s = _structure(layout)
    y, has = _subject_accuracy(sums, design.counts)
    cell_var = _cell_variances(y, has, design, weights)
    d = signed_pairs(by_group(cells, layout), layout)
    atoms = folded_normal_mean_inverse(np.abs(d), np.sqrt(_pair_sums(cell_var, layout)))  # (T, K, A)
    sets = _gap_sets(s)
    out = np.full((atoms.shape[0], len(metric_entries(layout))), np.nan)
    per_emotion = np.stack([atoms[..., e].max(axis=-1) for e in sets["gap"]], axis=-1)  # (T, K, E)
    out[:, s.gap_positions["gap"]] = per_emotion.mean(axis=1)
    if "pair_gap" in s.gap_positions:
        out[:, s.gap_positions["pair_gap"]] = atoms.mean(axis=1)
    out[:, s.gap_positions["largest_gap"]] = atoms.max(axis=-1).mean(axis=1)[:, None]
    out[:, s.gap_positions["average_gap"]] = per_emotion.mean(axis=(1, 2))[:, None]
    return out
