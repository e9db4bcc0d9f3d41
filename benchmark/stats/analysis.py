"""Statistics of a predictions table: every metric of every method with its interval, the difference of each method to
the reference and of each configured contrast pair, with intervals and tests; one evaluation group at a time."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.core.predictions import tasks as run_tasks
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.processes import Job, run_jobs
from benchmark.stats import bounds, calibrated
from benchmark.stats.cells import (
    Predicted,
    Rates,
    SubjectDesign,
    channel_sums,
    channel_totals,
    check_columns,
    metric_entries,
    metric_values,
    predicted,
    seed_mean_values,
    subject_design,
    subject_sums,
)
from benchmark.stats.config import PrimaryFamily, StatsConfig
from benchmark.stats.draws import Draws, group_rng
from benchmark.stats.intervals import bootstrap_intervals
from benchmark.stats.resampling import (
    jackknife_metrics,
    resampled_rates,
    seed_mean_metrics,
    seed_metrics,
    weighted_total,
)
from benchmark.stats.significance import PairedTest, mcnemar_table, permutation_pvalues, seed_majority
from benchmark.stats.stepdown import IntervalAt, inversion_p, step_down
from benchmark.stats.units import Units, unit_sums, unit_totals, units_for

__all__ = ["CONTRAST_SEPARATOR", "GROUP_COLUMNS", "VERDICT_COLUMNS", "analyse", "analysis_job", "compare", "contrast_name",
           "difference_intervals", "group_statistics", "predicted_difference_intervals", "seed_values",
           "weighted_metrics"]

#: An evaluation group: the methods within it are compared on the same images and share every resample.
GROUP_COLUMNS: tuple[str, ...] = ("split", "partition", "dataset")
#: a contrast row's ``method``: ``"<a> vs <b>"`` (difference a - b; ``reference`` is b)
CONTRAST_SEPARATOR = " vs "
#: Estimates, intervals and differences are rounded to 1e-9 percent, far below any reported precision, so that
#: floating-point noise (the mean of ten identical seeds) never shows as a nonzero difference or seed sd.
_DECIMALS = 9


def contrast_name(a: str, b: str) -> str:
    """The ``method`` of the contrast rows a - b: ``corrector vs unimodal``."""
    return f"{a}{CONTRAST_SEPARATOR}{b}"


@dataclass(frozen=True)
class _MethodStats:
    """One method's data and resampled metrics in one evaluation group (T tasks, K seeds, C cells, M metrics)."""

    seeds: tuple[int, ...]
    correct: np.ndarray  # (T, K, n_images) bool
    sums: Rates  # channel -> (U, T, K, C) per resampling unit
    subject_recall: np.ndarray | None  # (n_subjects, T, K, C) correct counts per subject (ci_method calibrated)
    point: np.ndarray  # (T, M) seed-mean metrics on all subjects
    seed_sd: np.ndarray  # (T, M)
    boot: np.ndarray  # (R, T, M)
    jack: np.ndarray  # (U, T, M) leaving one subject of each unit out
    rates: Rates  # channel -> (T, K, C) per-seed rates on all subjects
    boot_rates: Rates  # channel -> (R, T, K, C) per-seed rates of every resample
    errors: dict[str, bounds.MethodErrors] | None  # ci_method bound: channel -> calibrated errors at config.ci,
    # made when first asked for (:func:`_errors_at`); else None
    parts: calibrated.MethodParts | None  # what ci_method calibrated needs, else None
    debiased: np.ndarray  # (T, M) de-biased gap estimates (NaN for the other metrics)

    @property
    def cells(self) -> np.ndarray:
        """(T, K, C) per-seed cell accuracies on all subjects."""
        return self.rates["recall"]

    @property
    def boot_cells(self) -> np.ndarray:
        """(R, T, K, C) per-seed cell accuracies of every resample."""
        return self.boot_rates["recall"]


@dataclass(frozen=True)
class _Group:
    """An evaluation group's design, resampling units and draws (bootstrap resamples and permutation exchanges,
    produced in chunks), the units' denominators of every channel the metrics read (channel -> (U, T, C)) and, for
    ``bound`` and ``calibrated`` intervals, the shared score-floor draws (R, T, 1, groups)
    (:func:`benchmark.stats.bounds.floor_draws`). ``recent_errors``: the ``bound`` errors of the last few (method,
    level, channel) asked for at levels other than ``config.ci`` (:func:`_errors_at`)."""

    design: SubjectDesign
    units: Units
    totals: Rates
    draws: Draws
    shared: np.ndarray | None
    config: StatsConfig
    recent_errors: OrderedDict = field(default_factory=OrderedDict, compare=False)


def _group(design: SubjectDesign, units: Units, config: StatsConfig, key: str) -> _Group:
    draws = Draws(units, config.n_resamples, config.n_permutations, config.seed, key, config.memory_budget_bytes)
    shared = None
    if config.ci_method in ("bound", calibrated.CI_METHOD):
        shared = bounds.floor_draws(config.n_resamples, len(design.tasks), len(design.layout.groups),
                                    group_rng(config.seed, key + "|floor"))
    return _Group(design, units, unit_totals(design, units, metrics.channels()), draws, shared, config)


def _cell_sizes(design: SubjectDesign) -> tuple[np.ndarray, np.ndarray]:
    """Images and subjects per cell, (C,) each."""
    return design.counts.sum(axis=0), (design.counts > 0).sum(axis=0)


def _rate_sizes(group: _Group, channel: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and subjects behind each rate's denominator: (C,) each for ``recall`` (the cells), (T, C) each for
    another channel (from the units' denominators, a unit counting for its subjects)."""
    if channel == "recall":
        return _cell_sizes(group.design)
    totals, size = group.totals[channel], group.units.size.astype(np.float64)[:, None, None]  # (U, T, C), (U, 1, 1)
    return (totals * size).sum(axis=0), ((totals > 0) * size).sum(axis=0)


def _method_stats(prediction: Predicted, sums: Rates, boot_rates: Rates, group: _Group, *,
                  debias: bool = True) -> _MethodStats:
    """Estimate, seed sd, bootstrap and jackknife values of one method from its predictions, unit sums (channel ->
    (U, T, K, C)) and resampled rates (channel -> (R, T, K, C)); ``debias``: with the de-biased gap estimates, else
    NaN there."""
    design, layout, units, totals = group.design, group.design.layout, group.units, group.totals
    size = units.size.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        everyone = {c: (100.0 * weighted_total(size, sums[c]) / weighted_total(size, totals[c])[:, None, :])[None]
                    for c in sums}  # channel -> (1, T, K, C): every subject counted once
        seed_values = metric_values(everyone, layout)[0]  # (T, K, M)
        rates = {c: r[0] for c, r in everyone.items()}  # channel -> (T, K, C)
        point, boot = seed_mean_values(rates, layout), seed_mean_values(boot_rates, layout)
    seed_sd = seed_values.std(axis=1, ddof=1) if len(prediction.seeds) > 1 else np.zeros(seed_values[:, 0].shape)
    cells, boot_cells = rates["recall"], boot_rates["recall"]
    errors = {} if group.config.ci_method == "bound" else None
    subject_recall, parts = None, None
    if group.config.ci_method == calibrated.CI_METHOD:
        subject_recall = _subject_recall(prediction, sums, design, units)
        parts = calibrated.method_parts(subject_recall, cells, boot_cells, _calibrated_design(design),
                                        level=group.config.ci, shared=group.shared, point=point, boot=boot)
    return _MethodStats(prediction.seeds, prediction.correct, sums, subject_recall, point, seed_sd, boot,
                        jackknife_metrics(sums, totals, units, layout, budget_bytes=group.config.memory_budget_bytes),
                        rates, boot_rates, errors, parts,
                        _debiased(sums, cells, design, units) if debias else np.full(point.shape, np.nan))


def _subject_recall(prediction: Predicted, sums: Rates, design: SubjectDesign, units: Units) -> np.ndarray:
    """Per-subject correct counts (n_subjects, T, K, C): the calibrated construction works on persons; the units'
    sums are those where units are subjects, else (classes of alike images) counted again."""
    if units.representative is None:
        return sums["recall"]
    return channel_sums(prediction, design, ["recall"])["recall"]


def _debiased(sums: Rates, cells: np.ndarray, design: SubjectDesign, units: Units) -> np.ndarray:
    """De-biased gap estimates (T, M) from the units' correct counts: a class of alike images is one row standing for
    its ``size`` persons (no row per person: at a million images that would be gigabytes)."""
    if units.representative is None:
        return calibrated.debiased_gaps(sums["recall"], cells, _calibrated_design(design))
    return calibrated.debiased_gaps(sums["recall"], cells, calibrated.Design(units.stratum, units.counts, design.layout),
                                    weights=units.size)  # a unit's sums are those of one of its subjects


def _calibrated_design(design: SubjectDesign) -> calibrated.Design:
    return calibrated.Design(design.subject_stratum, design.counts, design.layout)


def _discordant(a: _MethodStats, b: _MethodStats, design: SubjectDesign) -> tuple[np.ndarray, np.ndarray]:
    """Per subject and cell (n, T, C): the images only A gets right and only B gets right (seed means of
    correctness)."""
    delta = a.correct.mean(axis=1) - b.correct.mean(axis=1)  # (T, n_images)
    return tuple(subject_sums(np.clip(sign * delta, 0.0, None)[:, None, :], design)[:, :, 0, :]
                 for sign in (1.0, -1.0))


def _empty_cell_notes(boot: np.ndarray) -> np.ndarray:
    n_valid = np.isfinite(boot).sum(axis=0)
    return np.array([f"{len(boot) - v} resample(s) with an empty cell left out" if 0 < v < len(boot) else ""
                     for v in n_valid], dtype=object)


def _bound_families(layout: CellLayout, n_tasks: int) -> np.ndarray:
    """Each (task, metric) column's family of the ``bound`` construction (:attr:`Metric.bound`), None where the
    metric has none: object array (T * M,)."""
    family = {m.name: m.bound for m in metrics.METRICS}
    return np.tile(np.array([family[name] for name, _, _ in metric_entries(layout)], dtype=object), n_tasks)


def _calibrated_families(layout: CellLayout, n_tasks: int) -> np.ndarray:
    """Each (task, metric) column's family of the ``calibrated`` construction, None where it has none (T * M,)."""
    return np.tile(calibrated.families(layout), n_tasks)


def _without_bound(low: np.ndarray, high: np.ndarray, used: np.ndarray, notes: np.ndarray, families: np.ndarray,
                   boot: np.ndarray, point: np.ndarray, jack: np.ndarray, level: float,
                   jack_weights: np.ndarray | None, ci_method: str = "bound") -> None:
    """BCa intervals, in place, for the columns ``ci_method`` has no construction for (``families`` None), with a
    note saying so (``jack_weights``: the subjects each jackknife row stands for, :attr:`Units.jackknife_weights`)."""
    columns = np.flatnonzero(families == None)  # noqa: E711 (elementwise on an object array)
    if not len(columns):
        return
    b_low, b_high, b_used, b_notes = bootstrap_intervals(boot[:, columns], point[columns], jack[:, columns], ci=level,
                                                         method="bca", jack_weights=jack_weights)
    low[columns], high[columns], used[columns] = b_low, b_high, b_used
    for j, note in zip(columns, b_notes):
        notes[j] = "; ".join(filter(None, [notes[j], note,
                                           f"ci_method {ci_method} has no construction for this metric: BCa"]))


def _estimate_intervals(ms: _MethodStats, group: _Group) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """low, high, method used, note per (task, metric), flattened to (T * M,)."""
    design, config, units = group.design, group.config, group.units
    boot, point, jack = ms.boot.reshape(len(ms.boot), -1), ms.point.reshape(-1), ms.jack.reshape(len(units), -1)
    if config.ci_method == calibrated.CI_METHOD:
        low, high = (x.reshape(-1) for x in calibrated.estimate_intervals(ms.parts))
        families = _calibrated_families(design.layout, len(design.tasks))
        used, notes = np.full(low.size, calibrated.CI_METHOD, dtype=object), _empty_cell_notes(boot)
        _without_bound(low, high, used, notes, families, boot, point, jack, config.ci, units.jackknife_weights,
                       calibrated.CI_METHOD)
        return _finite(low, high, point, used, notes)
    if config.ci_method != "bound":
        return bootstrap_intervals(boot, point, jack, ci=config.ci, method=config.ci_method,
                                   jack_weights=units.jackknife_weights)
    layout = design.layout
    low, high = bounds.estimate_bounds(_errors_at(ms, group, config.ci, bounds.channels(), lowest=True), ms.point, layout,
                                       level=config.ci)
    cells = [j for j, (name, _, _) in enumerate(metric_entries(layout)) if name == "cell"]
    n_images, n_subjects = _cell_sizes(design)
    variance = bounds.stratified_jackknife_variance(ms.jack[:, :, cells], units.stratum, units.jackknife_weights)
    strata = np.bincount(design.subject_stratum, minlength=len(layout.groups))
    low[:, cells], high[:, cells] = bounds.wilson_cells(
        ms.point[:, cells], variance, n_images, n_subjects, level=config.ci,
        t_over_z=bounds.t_over_z(len(design.subjects), int((strata > 0).sum()), config.ci))
    families = _bound_families(layout, len(design.tasks))
    used = np.where(families == "cell", "wilson", "bound").astype(object)
    low, high, notes = low.reshape(-1), high.reshape(-1), _empty_cell_notes(boot)
    _without_bound(low, high, used, notes, families, boot, point, jack, config.ci, units.jackknife_weights)
    return _finite(low, high, point, used, notes)


def _finite(low: np.ndarray, high: np.ndarray, point: np.ndarray, used: np.ndarray,
            notes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """No interval (NaN, method '') where the estimate or an end is not finite (e.g. a group of one subject)."""
    bad = ~(np.isfinite(low) & np.isfinite(high) & np.isfinite(point))
    used = np.where(bad, "", used).astype(object)
    for j in np.flatnonzero(bad & np.isfinite(point)):
        notes[j] = "; ".join(filter(None, [notes[j], "no interval: a group has fewer than 2 subjects"]))
    return np.where(bad, np.nan, low), np.where(bad, np.nan, high), used, notes


#: how many (method, level, channel) errors a group remembers: Holm's steps evaluate every primary comparison at one level
#: in turn, and the comparisons share methods (about 10 MB each at 10,000 resamples and 10 seeds)
_REMEMBERED_ERRORS = 6


def _errors_at(ms: _MethodStats, group: _Group, level: float, channels: tuple[str, ...], *,
               lowest: bool) -> dict[str, bounds.MethodErrors]:
    """The ``bound`` construction's calibrated errors of one method's rates at ``level``, channel -> errors for
    ``channels``, each made when first asked for (those at ``config.ci`` are kept in :class:`_MethodStats`, the last
    few others in the group)."""
    return {channel: _channel_errors(ms, group, level, channel, lowest=lowest) for channel in channels}


def _channel_errors(ms: _MethodStats, group: _Group, level: float, channel: str, *,
                    lowest: bool) -> bounds.MethodErrors:
    """:func:`_errors_at` for one channel; ``lowest``: with the worst cell's draws (made again if those kept lack
    them: the verdict rule and the power study read macro and average gap only)."""
    recent, lowest = level != group.config.ci, lowest and bounds.reads_lowest(group.design.layout, channel=channel)
    kept, key = (group.recent_errors, (id(ms), level, channel)) if recent else (ms.errors, channel)
    if key in kept and (kept[key].lowest is not None or not lowest):  # the group holds its methods: ids not reused
        if recent:
            kept.move_to_end(key)
        return kept[key]
    design, layout = group.design, group.design.layout
    n_images, n_subjects = _rate_sizes(group, channel)
    kept[key] = bounds.method_errors(
        ms.boot_rates[channel], ms.rates[channel], layout=layout,
        group_sizes=np.bincount(design.subject_stratum, minlength=len(layout.groups)), n_images=n_images,
        n_subjects=n_subjects, level=level, shared=group.shared, channel=channel, lowest=lowest)
    if recent and len(kept) > _REMEMBERED_ERRORS:
        kept.popitem(last=False)
    return kept[key]


def _parts_at(ms: _MethodStats, group: _Group, level: float) -> calibrated.MethodParts:
    """The ``calibrated`` construction's pieces of one method at ``level`` (those at ``config.ci`` are kept in
    :class:`_MethodStats`)."""
    if level == group.config.ci:
        return ms.parts
    return calibrated.method_parts(ms.subject_recall, ms.cells, ms.boot_cells, _calibrated_design(group.design),
                                   level=level, shared=group.shared, point=ms.point, boot=ms.boot)


def _difference_interval(a: _MethodStats, b: _MethodStats, group: _Group, level: float,
                         columns: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The interval of a - b at ``level`` (the configured ``ci_method``, the group's draws): low, high, method used,
    note, each flattened over tasks x metrics (T * M,). ``columns`` (indices into T * M): the ones wanted, where
    ``bound`` computes those metrics only (the others NaN); None for all."""
    design, config, units = group.design, group.config, group.units
    point = a.point - b.point
    n_resamples = len(a.boot)
    boot, jack = (a.boot - b.boot).reshape(n_resamples, -1), (a.jack - b.jack).reshape(len(units), -1)
    if config.ci_method == calibrated.CI_METHOD:
        low, high = calibrated.difference_intervals(_parts_at(a, group, level), _parts_at(b, group, level), point,
                                                    _calibrated_design(design), level=level,
                                                    discordant=_discordant(a, b, design))
        used = np.full(low.size, calibrated.CI_METHOD, dtype=object)
        low, high, notes = low.reshape(-1), high.reshape(-1), _empty_cell_notes(boot)
        _without_bound(low, high, used, notes, _calibrated_families(design.layout, len(design.tasks)), boot,
                       point.reshape(-1), jack, level, units.jackknife_weights, calibrated.CI_METHOD)
        return _finite(low, high, point.reshape(-1), used, notes)
    if config.ci_method != "bound":
        return bootstrap_intervals(boot, point.reshape(-1), jack, ci=level, method=config.ci_method,
                                   jack_weights=units.jackknife_weights)
    strata = np.bincount(design.subject_stratum, minlength=len(design.layout.groups))
    n_metrics = point.shape[-1]
    entries = None if columns is None else np.unique(np.asarray(columns) % n_metrics)
    channels = bounds.entry_channels(design.layout, entries)
    lowest = bounds.reads_lowest(design.layout, entries)
    low, high = bounds.difference_bounds(
        _errors_at(a, group, level, channels, lowest=lowest), _errors_at(b, group, level, channels, lowest=lowest),
        point, design.layout,
        level=level, floors=bounds.difference_floors(design.layout, design.counts),
        t_over_z=bounds.t_over_z(len(design.subjects), int((strata > 0).sum()), level), entries=entries)
    used = np.full(low.size, "bound", dtype=object)
    low, high, notes = low.reshape(-1), high.reshape(-1), _empty_cell_notes(boot)
    families = _bound_families(design.layout, len(design.tasks))
    if columns is not None:  # not wanted: no BCa for them either
        families = np.where(np.isin(np.arange(families.size), columns), families, "not wanted")
    _without_bound(low, high, used, notes, families, boot, point.reshape(-1), jack, level, units.jackknife_weights)
    return _finite(low, high, point.reshape(-1), used, notes)


def _difference(a: _MethodStats, b: _MethodStats, group: _Group,
                p_perm: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """a - b with its interval and p-values (flattened over tasks x metrics), the interval method and notes;
    ``p_perm`` (T, M) its permutation p (:func:`_permutation_tests`)."""
    design = group.design
    point = a.point - b.point
    low, high, used, notes = _difference_interval(a, b, group, group.config.ci)
    p_mcnemar = mcnemar_table(seed_majority(a.correct), seed_majority(b.correct), design)
    columns = dict(diff=point.reshape(-1), diff_ci_low=low, diff_ci_high=high, p_perm=p_perm.reshape(-1),
                   p_mcnemar=p_mcnemar.reshape(-1))
    return columns, used, notes


def _frame(design: SubjectDesign, method: str, reference: str | None, n_seeds: int,
           values: dict[str, np.ndarray], used: np.ndarray, diff_used: np.ndarray, notes: np.ndarray,
           diff_notes: np.ndarray, contrast: bool) -> pd.DataFrame:
    frame = pd.DataFrame([(task, *entry) for task in design.tasks for entry in metric_entries(design.layout)],
                         columns=["task", "metric", "group", "emotion"])
    frame.insert(0, "method", method)
    frame["reference"] = reference
    frame["n_subjects"] = np.int64(len(design.subjects))
    frame["n_images"] = np.int64(len(design.image_ids))
    frame["n_seeds"] = np.int64(n_seeds)
    for column, value in values.items():
        frame[column] = value if column.startswith("p_") else np.round(value, _DECIMALS) + 0.0  # no -0.0
    frame["ci_method"] = used
    frame["diff_ci_method"] = diff_used
    frame["note"] = ["; ".join(filter(None, (note, "diff: " + d if d else ""))) for note, d in zip(notes, diff_notes)]
    frame["contrast"] = contrast
    return frame


def group_statistics(rows_by_method: dict[str, pd.DataFrame], *, reference: str | None,
                     contrasts: tuple[tuple[str, str], ...] = (), config: StatsConfig, key: str, layout: CellLayout,
                     tasks: tuple[str, str], primary: PrimaryFamily | None = None) -> pd.DataFrame:
    """Statistics of every method of one evaluation group (rows already restricted to it), and of every contrast
    (a, b) whose two methods are both present. ``primary``: this group's primary family (a held-out group), whose rows
    get Holm over the family with compatible intervals (:mod:`benchmark.stats.stepdown`); every other row with a
    difference is exploratory. ``p_holm`` (within a metric row) is added by the caller."""
    labels = ["image_id", "subject", *tasks, *(f"pred_{t}" for t in tasks)]
    design = subject_design(pd.concat([rows[[c for c in labels if c in rows.columns]] for rows in rows_by_method.values()],
                                      ignore_index=True), layout, tasks, key)
    observed = {name: predicted(rows, design, f"{key}: method {name!r}") for name, rows in rows_by_method.items()}
    units = units_for(design, list(observed.values()))
    group = _group(design, units, config, key)
    sums = {name: unit_sums(prediction, design, units, list(group.totals)) for name, prediction in observed.items()}
    boot = dict(zip(sums, resampled_rates(group.draws, list(sums.values()), group.totals)))
    per_method = {name: _method_stats(prediction, sums[name], boot.pop(name), group)
                  for name, prediction in observed.items()}
    ref = per_method.get(reference) if reference is not None else None
    pairs = [(name, reference) for name in per_method if ref is not None and name != reference]
    pairs += [(a, b) for a, b in contrasts if a in per_method and b in per_method]
    p_perm = _permutation_tests(pairs, per_method, group)
    nan = np.full(len(design.tasks) * len(metric_entries(layout)), np.nan)
    blank = np.full(nan.shape, "", dtype=object)
    frames, compared = [], {}
    for name, ms in per_method.items():
        low, high, used, notes = _estimate_intervals(ms, group)
        diff = dict(diff=nan, diff_ci_low=nan, diff_ci_high=nan, p_perm=nan, p_mcnemar=nan)
        diff_used, diff_notes = blank, blank
        if ref is not None and name != reference:
            diff, diff_used, diff_notes = _difference(ms, ref, group, p_perm[name, reference])
            compared[name] = (ms, ref)
        values = {"estimate": ms.point.reshape(-1), "estimate_debiased": ms.debiased.reshape(-1),
                  "seed_sd": ms.seed_sd.reshape(-1), "ci_low": low, "ci_high": high, **diff}
        frames.append(_frame(design, name, reference if ref is not None else None, len(ms.seeds), values, used,
                             diff_used, notes, diff_notes, contrast=False))
    for a, b in contrasts:
        if a in per_method and b in per_method:
            diff, diff_used, diff_notes = _difference(per_method[a], per_method[b], group, p_perm[a, b])
            compared[contrast_name(a, b)] = (per_method[a], per_method[b])
            values = {"estimate": nan, "estimate_debiased": nan, "seed_sd": nan, "ci_low": nan, "ci_high": nan,
                      **diff}
            n_seeds = math.lcm(len(per_method[a].seeds), len(per_method[b].seeds))
            frames.append(_frame(design, contrast_name(a, b), b, n_seeds, values, blank, diff_used, blank, diff_notes,
                                 contrast=True))
    table = _exploratory(pd.concat(frames, ignore_index=True), config.ci)
    if primary is not None:
        _primary(table, compared, group, primary)
    return table


#: the verdict columns of stats.parquet (:func:`_exploratory`, :func:`_primary`), in order
VERDICT_COLUMNS: tuple[str, ...] = ("family", "p_ci", "p_ci_holm", "holm_step", "verdict_level", "verdict_ci_low",
                                    "verdict_ci_high", "rejected")


def _exploratory(table: pd.DataFrame, ci: float) -> pd.DataFrame:
    """The verdict columns with every row with a difference exploratory: its verdict interval is the unadjusted
    ``ci`` interval, ``rejected`` whether that excludes 0; no p_ci, no Holm step."""
    has = table["diff"].notna() & table["diff_ci_low"].notna() & table["diff_ci_high"].notna()
    table["family"] = np.where(table["diff"].notna(), "exploratory", "")
    table["p_ci"] = np.nan
    table["p_ci_holm"] = np.nan
    table["holm_step"] = np.int64(0)
    table["verdict_level"] = np.where(has, ci, np.nan)
    table["verdict_ci_low"] = table["diff_ci_low"]
    table["verdict_ci_high"] = table["diff_ci_high"]
    table["rejected"] = has & ((table["diff_ci_low"] > 0) | (table["diff_ci_high"] < 0))
    return table


def _interval_function(a: _MethodStats, b: _MethodStats, group: _Group, columns: np.ndarray) -> IntervalAt:
    """level -> the interval (low, high) of a - b at ``columns`` (indices into tasks x metrics) and that level, from
    the group's draws; remembered per level. The bootstrap methods and ``bound`` evaluate those columns only (``bound``
    with its cell errors at that level); ``calibrated`` the whole construction (its pieces depend on the level)."""
    config = group.config
    if config.ci_method not in ("bound", calibrated.CI_METHOD):
        n_resamples, n = len(a.boot), len(group.units)
        boot = (a.boot - b.boot).reshape(n_resamples, -1)[:, columns]
        point = (a.point - b.point).reshape(-1)[columns]
        jack = (a.jack - b.jack).reshape(n, -1)[:, columns]

        def at(level: float) -> tuple[np.ndarray, np.ndarray]:
            low, high, _, _ = bootstrap_intervals(boot, point, jack, ci=level, method=config.ci_method,
                                                  jack_weights=group.units.jackknife_weights)
            return low, high
    else:
        def at(level: float) -> tuple[np.ndarray, np.ndarray]:
            low, high, _, _ = _difference_interval(a, b, group, level, columns)
            return low[columns], high[columns]
    return functools.lru_cache(maxsize=None)(at)


def _primary(table: pd.DataFrame, compared: dict[str, tuple[_MethodStats, _MethodStats]], group: _Group,
             primary: PrimaryFamily) -> None:
    """In place: the rows of the primary family (its comparisons present here x tasks x its metrics, with a finite
    interval) get p_ci (interval inversion), Holm over the family and their stepped intervals; ``rejected`` is Holm's
    decision (the stepped interval excludes 0)."""
    entries = metric_entries(group.design.layout)
    n_metrics = len(entries)
    tasks = list(group.design.tasks)
    members = table.index[table["method"].isin(primary.comparisons) & table["metric"].isin(primary.metrics)
                          & table["group"].isna() & table["emotion"].isna() & table["diff_ci_low"].notna()
                          & table["diff_ci_high"].notna() & table["method"].isin(list(compared))]
    if not len(members):
        return
    column = {(t, name): i * n_metrics + j for i, t in enumerate(tasks) for j, (name, g, e) in enumerate(entries)
              if g is None and e is None}
    by_comparison: dict[str, list[int]] = {}
    for k, row in enumerate(members):
        by_comparison.setdefault(table.at[row, "method"], []).append(k)
    functions, p_ci = {}, np.full(len(members), np.nan)
    for name, ks in by_comparison.items():
        columns = np.array([column[table.at[members[k], "task"], table.at[members[k], "metric"]] for k in ks])
        functions[name] = (_interval_function(*compared[name], group, columns), np.array(ks))
        p_ci[ks] = inversion_p(functions[name][0], len(ks), start=group.config.ci)

    def interval_at(level: float, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        low, high = np.full(len(members), np.nan), np.full(len(members), np.nan)
        for at, ks in functions.values():
            if np.isin(ks, wanted).any():
                low[ks], high[ks] = at(level)
        return low[wanted], high[wanted]

    stepped = step_down(p_ci, interval_at, alpha=primary.alpha)
    table.loc[members, "family"] = "primary"
    table.loc[members, "p_ci"] = p_ci
    table.loc[members, "p_ci_holm"] = stepped.adjusted
    table.loc[members, "holm_step"] = stepped.step
    table.loc[members, "verdict_level"] = stepped.level
    table.loc[members, "verdict_ci_low"] = stepped.low + 0.0  # not rounded: its sign is the decision
    table.loc[members, "verdict_ci_high"] = stepped.high + 0.0
    table.loc[members, "rejected"] = stepped.rejected


def _permutation_tests(pairs: list[tuple[str, str]], per_method: dict[str, _MethodStats],
                       group: _Group) -> dict[tuple[str, str], np.ndarray]:
    """The permutation p (T, M) of a - b for every pair (a, b), all on the same permutations, drawn once."""
    units, layout = group.units, group.design.layout
    tests = [PairedTest.prepare(per_method[a].sums, per_method[b].sums, group.totals,
                                per_method[a].point - per_method[b].point, layout, units.size) for a, b in pairs]
    if not tests:
        return {}
    return dict(zip(pairs, permutation_pvalues(tests, group.draws.exchanges(), group.config.n_permutations)))


def difference_intervals(reference: pd.DataFrame, others: list[pd.DataFrame], *, layout: CellLayout,
                         tasks: tuple[str, str], config: StatsConfig, level: float, key: str,
                         metrics: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The configured construction's interval (``config.ci_method``) of other - reference at ``level``, for many other
    methods on the same images, all from one evaluation group's draws (``key`` seeds them): the interval the verdict
    rule steps (:func:`_difference_interval`). ``metrics``: scalar metric names (``macro``, ``average_gap``).
    Returns low and high, each (len(others), T, len(metrics)) percent; NaN where the construction gives none.
    The group is drawn at confidence ``level`` (so ``bound``'s cell errors and ``calibrated``'s pieces are made once,
    at that level) without the de-biased gap estimates, which no interval reads."""
    labels = ["image_id", "subject", *tasks, *(f"pred_{t}" for t in tasks)]
    design = subject_design(reference[[c for c in labels if c in reference.columns]], layout, tasks, "reference")
    return predicted_difference_intervals(
        design, predicted(reference, design, "reference"),
        [predicted(rows, design, f"planted {k}") for k, rows in enumerate(others)],
        config=config, level=level, key=key, metrics=metrics)


def predicted_difference_intervals(design: SubjectDesign, reference: Predicted, others: list[Predicted], *,
                                   config: StatsConfig, level: float, key: str,
                                   metrics: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`difference_intervals` of predictions already placed on ``design`` (:func:`~benchmark.stats.cells.predicted`),
    for callers that make many methods from one (the power study plants 20 per replicate)."""
    layout, tasks = design.layout, design.tasks
    observed = [reference, *others]
    units = units_for(design, observed)
    group = _group(design, units, dataclasses.replace(config, ci=level, n_permutations=1), key)  # no test here
    sums = [unit_sums(prediction, design, units, list(group.totals)) for prediction in observed]
    boot = resampled_rates(group.draws, sums, group.totals)
    base, *planted = (_method_stats(prediction, s, b, group, debias=False)
                      for prediction, s, b in zip(observed, sums, boot))
    entries = metric_entries(layout)
    scalar = {name: j for j, (name, g, e) in enumerate(entries) if g is None and e is None}
    columns = np.array([t * len(entries) + scalar[m] for t in range(len(tasks)) for m in metrics])
    low = np.full((len(others), len(tasks) * len(metrics)), np.nan)
    high = low.copy()
    for k, ms in enumerate(planted):
        l_k, h_k, _, _ = _difference_interval(ms, base, group, level, columns)
        low[k], high[k] = l_k[columns], h_k[columns]
    shape = (len(others), len(tasks), len(metrics))
    return low.reshape(shape), high.reshape(shape)


def seed_values(rows: pd.DataFrame, *, layout: CellLayout, attribute: str) -> tuple[tuple[int, ...], np.ndarray]:
    """Every metric of one method's prediction rows (one image set), seed by seed: the seeds, and an array of shape
    (2, n_seeds, n_metrics) percent (tasks: attribute, emotion; metrics in :func:`metric_entries` order)."""
    check_columns(rows, "rows")
    design = subject_design(rows, layout, run_tasks(attribute), "rows")
    totals = channel_totals(design, metrics.channels())
    prediction = predicted(rows, design, "rows")
    sums = channel_sums(prediction, design, list(totals))
    return prediction.seeds, seed_metrics(np.ones((1, len(design.subjects))), sums, totals, layout)[0]


def weighted_metrics(rows: pd.DataFrame, weights: pd.DataFrame, *, layout: CellLayout, attribute: str) -> np.ndarray:
    """Seed-mean metrics of one method's prediction rows with every subject counted ``weights`` times.

    Parameters
    ----------
    rows : prediction rows of one method over one image set (any number of seeds).
    weights : DataFrame of shape (n_sets, n_subjects), columns the subject ids of ``rows``; non-negative multiplicities
        (one bootstrap resample per row, as from :func:`~benchmark.stats.resampling.subject_resamples`).
    layout : the cells; attribute : the protected attribute (its truth and prediction columns).

    Returns
    -------
    array of shape (n_sets, 2, n_metrics): percent, tasks (attribute, emotion), metrics in :func:`metric_entries` order.
    """
    check_columns(rows, "rows")
    design = subject_design(rows, layout, run_tasks(attribute), "rows")
    missing = sorted(set(design.subjects) - set(map(str, weights.columns)))
    if missing:
        raise BenchmarkError(f"weights: no column for subject(s) {missing[:5]}; one column per subject is needed")
    matrix = weights.rename(columns=str)[list(design.subjects)].to_numpy(dtype=np.float64)
    totals = channel_totals(design, metrics.channels())
    return seed_mean_metrics(matrix, channel_sums(predicted(rows, design, "rows"), design, list(totals)), totals, layout)


def _family_holm(table: pd.DataFrame, family: list[str]) -> pd.Series:
    """:func:`holm` of ``p_perm`` within every family, vectorised (the same arithmetic: sort within the family,
    min(1, (m - i) p), running maximum); NaN stays NaN and does not count."""
    family_id = table.groupby(family, dropna=False, sort=False).ngroup().to_numpy()
    p = table["p_perm"].to_numpy(dtype=np.float64)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.lexsort((p[valid], family_id[valid]))]  # by family, then p (stable)
    ids = family_id[order]
    start = np.r_[0, np.flatnonzero(np.diff(ids)) + 1]
    size = np.diff(np.r_[start, len(order)])
    rank = np.arange(len(order)) - np.repeat(start, size)
    scaled = pd.Series(np.minimum(1.0, (np.repeat(size, size) - rank) * p[order]))
    adjusted = np.full(len(table), np.nan)
    adjusted[order] = scaled.groupby(ids).cummax().to_numpy()
    return pd.Series(adjusted, index=table.index)


#: Holm's family: the comparisons of one metric row in one evaluation group; the methods compared with the reference
#: form one family, the contrasts another.
HOLM_FAMILY: tuple[str, ...] = GROUP_COLUMNS + ("task", "metric", "group", "emotion", "contrast")


def _group_table(job: tuple[tuple, dict[str, pd.DataFrame]], *, reference: str | None,
                 contrasts: tuple[tuple[str, str], ...], config: StatsConfig, layouts: dict[str, CellLayout],
                 attribute: str, primary: PrimaryFamily | None) -> pd.DataFrame:
    """:func:`group_statistics` of one (split, partition, dataset) group, its key columns in front; the primary
    family applies to the held-out groups (partition :attr:`PrimaryFamily.partition`)."""
    group, by_method = job
    dataset = group[GROUP_COLUMNS.index("dataset")]
    held_out = primary is not None and group[GROUP_COLUMNS.index("partition")] == primary.partition
    table = group_statistics(by_method, reference=reference if reference in by_method else None, contrasts=contrasts,
                             config=config, key="|".join(str(v) for v in group), layout=layouts[dataset],
                             tasks=run_tasks(attribute), primary=primary if held_out else None)
    for column, value in reversed(list(zip(GROUP_COLUMNS, group))):
        table.insert(0, column, value)
    return table


def analyse(frame: pd.DataFrame, *, reference: str | None, layouts: dict[str, CellLayout], attribute: str,
            config: StatsConfig = StatsConfig(), contrasts: tuple[tuple[str, str], ...] = (),
            primary: PrimaryFamily | None = None) -> pd.DataFrame:
    """Statistics of every (split, partition, dataset) group and method of a predictions table.

    Parameters
    ----------
    frame : predictions table (see :mod:`benchmark.core.predictions`); CV folds of one seed are pooled.
    reference : method every other method of a group is compared with (no comparisons in a group without it).
    layouts : dataset -> its cells (attribute groups x declared emotions), e.g. ``Predictions.layouts``.
    attribute : the protected attribute (the first task; its column holds the cells' groups).
    config : budgets and interval method.
    contrasts : pairs (a, b) of methods compared directly, a - b, in every group where both ran.
    primary : the primary family of every held-out group (None: every comparison is exploratory).

    Returns
    -------
    DataFrame, one row per (split, partition, dataset, method, task, metric[, group][, emotion]), sorted, with
    ``estimate`` (seed-mean metric, percent), ``seed_sd``, ``ci_low``/``ci_high``, and for compared methods ``diff``
    (method - reference), ``diff_ci_low``/``diff_ci_high``, ``p_perm`` (permutation), ``p_holm`` (Holm-adjusted within
    :data:`HOLM_FAMILY`) and ``p_mcnemar`` (accuracies only); plus counts, the interval method used per row and notes
    (e.g. a BCa fallback). Contrast rows (``contrast`` true) have ``method`` ``"a vs b"``, ``reference`` b, no
    estimate and the difference a - b. The verdict columns (:data:`VERDICT_COLUMNS`, docs/STATISTICS.md "One rule
    from test to verdict"): ``family`` (primary / exploratory), ``p_ci`` and ``p_ci_holm`` (interval inversion and
    Holm over the primary family), ``holm_step``, ``verdict_level``, ``verdict_ci_low``/``verdict_ci_high`` (the
    interval the verdict reads) and ``rejected``.
    """
    return run_jobs([analysis_job(frame, reference=reference, layouts=layouts, attribute=attribute, config=config,
                                  contrasts=contrasts, primary=primary)])[0]


def analysis_job(frame: pd.DataFrame, *, reference: str | None, layouts: dict[str, CellLayout], attribute: str,
                 config: StatsConfig = StatsConfig(), contrasts: tuple[tuple[str, str], ...] = (),
                 primary: PrimaryFamily | None = None) -> Job:
    """:func:`analyse` as a :class:`~benchmark.infra.processes.Job`: one call per evaluation group (groups are
    independent), combined into the table with ``p_holm``; for running beside other work on the cores."""
    check_columns(frame, "predictions")
    for column in GROUP_COLUMNS + ("method",):
        if column not in frame.columns:
            raise BenchmarkError(f"predictions: missing column {column!r}; analyse needs {', '.join(GROUP_COLUMNS)}, method")
    calls = []
    for group, rows in frame.groupby(list(GROUP_COLUMNS), sort=True, observed=True):
        dataset = group[GROUP_COLUMNS.index("dataset")]
        if dataset not in layouts:
            raise BenchmarkError(f"predictions: no declared design for dataset {dataset!r}; rerun `benchmark train`")
        job = (group, {str(m): r for m, r in rows.groupby("method", sort=True, observed=True)})
        calls.append(functools.partial(_group_table, job, reference=reference, contrasts=contrasts, config=config,
                                       layouts=layouts, attribute=attribute, primary=primary))
    return Job(calls, _with_holm)


def _with_holm(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    """The groups' tables in one, with ``p_holm`` after ``p_perm``."""
    table = pd.concat(pieces, ignore_index=True)
    table.insert(table.columns.get_loc("p_perm") + 1, "p_holm", _family_holm(table, list(HOLM_FAMILY)))
    return table.reset_index(drop=True)


def compare(method_rows: pd.DataFrame, reference_rows: pd.DataFrame, *, layout: CellLayout, attribute: str,
            config: StatsConfig = StatsConfig(), names: tuple[str, str] = ("method", "reference")) -> pd.DataFrame:
    """Paired statistics of any two prediction sets over the same images (e.g. two runs of one method).

    Parameters
    ----------
    method_rows, reference_rows : prediction rows (columns seed, image_id, subject, <attribute>, emotion,
        pred_<attribute>, pred_emotion), any number of seeds each, both covering the same images once per seed.
    layout : the cells; attribute : the protected attribute.
    config : budgets and interval method.
    names : labels of the two sets in the ``method`` column.

    Returns
    -------
    DataFrame as :func:`analyse` without the group columns: rows for both sets; the first carries the difference to the
    second, its CI and p-values (``p_holm`` equals ``p_perm``: a single comparison).
    """
    for rows, name in zip((method_rows, reference_rows), names):
        check_columns(rows, name)
    if names[0] == names[1]:
        raise BenchmarkError(f"compare: names must differ, got {names!r}")
    table = group_statistics({names[0]: method_rows, names[1]: reference_rows}, reference=names[1], config=config,
                             key="|".join(names), layout=layout, tasks=run_tasks(attribute))
    table.insert(table.columns.get_loc("p_perm") + 1, "p_holm", table["p_perm"])
    return table
