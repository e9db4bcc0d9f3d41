"""Statistics over a predictions table: how certain is each number, and does a method really differ from the reference?

The unit of resampling is the **subject** (person): FACES has 12 images per person and ADFES 6, so a person's images
are not independent. Every metric of :mod:`benchmark.metrics` over the declared cells (groups x emotions: the cell
accuracies, the per-emotion gaps, for more than two groups every pairwise gap, macro accuracy, largest and average
gap, for both tasks) gets:

- a **subject-cluster paired bootstrap** CI: subjects are drawn with replacement within each group of the protected
  attribute (so every group is always present, each with its observed number of subjects); a drawn subject brings all
  of its images;
  every method of an evaluation group shares each draw, so the difference to the reference is paired. Percentile or
  BCa intervals; where BCa degenerates (e.g. a cell at 100 % in every resample) the percentile interval is used and
  the row says so;
- a **paired permutation test** of the difference: each subject's predictions are exchanged between the method and the
  reference with probability 1/2 (the subject-level sign flip; for the nonlinear gap metrics the statistic is recomputed
  on the exchanged sets), two-sided, with the +1 correction; **Holm** within each family (split x dataset x partition
  x task x metric x cell: the methods compared with the reference);
- an **exact McNemar** test on image-level correctness (seed majority) for accuracies, as a secondary check that
  ignores the clustering of images in subjects.

Seeds are held fixed, not resampled: in each resample every seed's metric is computed and the seed mean taken, so the
estimate is exactly the seed-mean metric of ``reports/metrics.json`` and the interval is the test-sampling (subject)
uncertainty of it. The seed sd is reported separately (``seed_sd``). See docs/STATISTICS.md.

Everything is vectorised: a resample is a vector of subject multiplicities, and all cell sums of all resamples are one
matrix product (n_resamples x n_subjects) @ (n_subjects x (tasks x seeds x cells)) of exact integer counts.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
from scipy import stats as sps

from benchmark.design import CellLayout
from benchmark.errors import BenchmarkError
from benchmark.metrics import emotion_gaps
from benchmark.predictions import tasks as run_tasks

__all__ = [
    "CI_METHODS", "GROUP_COLUMNS", "StatsConfig", "analyse", "compare", "holm", "mcnemar_exact", "metric_entries",
    "summary_metrics", "subject_resamples", "weighted_metrics",
]

CI_METHODS: tuple[str, ...] = ("percentile", "bca")
#: An evaluation group: the methods within it are compared on the same images and share every resample.
GROUP_COLUMNS: tuple[str, ...] = ("split", "partition", "dataset")
#: Metrics that are accuracies (image-level McNemar applies).
ACCURACY_METRICS: tuple[str, ...] = ("cell", "macro")
#: how a pairwise gap names its two groups in the ``group`` column
PAIR_SEPARATOR = " vs "
_REQUIRED = ("seed", "image_id", "subject", "emotion", "pred_emotion")


def metric_entries(layout: CellLayout) -> list[tuple[str, str | None, str | None]]:
    """The metrics of one task, in the order of :func:`summary_metrics`' last axis: (metric, group, emotion).

    Every cell, the per-emotion gap (max - min over the groups), for more than two groups the gap of every pair of
    groups per emotion (``pair_gap``, group ``"a vs b"``), then macro, largest and average gap.
    """
    entries: list[tuple[str, str | None, str | None]] = [("cell", g, e) for g, e in layout.cells()]
    entries += [("gap", None, e) for e in layout.emotions]
    if len(layout.groups) > 2:
        entries += [("pair_gap", f"{layout.groups[i]}{PAIR_SEPARATOR}{layout.groups[j]}", e)
                    for i, j in layout.pairs() for e in layout.emotions]
    return entries + [("macro", None, None), ("largest_gap", None, None), ("average_gap", None, None)]
_CHUNK_ELEMENTS = 4_000_000  # bound on the floats of one matrix-product chunk (memory, not results)
_TIE_TOLERANCE = 1e-9  # percent; permutation statistics this close to the observed one count as "as extreme"
#: Estimates, intervals and differences are rounded to 1e-9 percent, far below any reported precision, so that
#: floating-point noise (the mean of ten identical seeds) never shows as a nonzero difference or seed sd.
_DECIMALS = 9


@dataclass(frozen=True)
class StatsConfig:
    """Budgets and choices of the statistics (``evaluate`` section of params.yaml).

    n_resamples : int, default=10000. Bootstrap resamples of subjects.
    ci : float in (0, 1), default=0.95. Confidence level of every interval.
    ci_method : {'percentile', 'bca'}, default='bca'.
    n_permutations : int, default=10000. Random subject-level exchanges per permutation test.
    seed : int, default=0. Seeds every draw; each evaluation group derives its own stream from it and its name.
    """

    n_resamples: int = 10_000
    ci: float = 0.95
    ci_method: str = "bca"
    n_permutations: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_resamples < 1 or self.n_permutations < 1:
            raise BenchmarkError(f"stats: n_resamples and n_permutations must be >= 1, got {self.n_resamples} and {self.n_permutations}")
        if not 0.0 < self.ci < 1.0:
            raise BenchmarkError(f"stats: ci must be in (0, 1), got {self.ci!r}")
        if self.ci_method not in CI_METHODS:
            raise BenchmarkError(f"stats: ci_method {self.ci_method!r} is not one of {', '.join(CI_METHODS)}")


# ---------------------------------------------------------------------------------------------------------------------
# Metrics from cell accuracies, and the subject design of one evaluation group


def _by_group(cell_accuracy: np.ndarray, layout: CellLayout) -> np.ndarray:
    """(..., n_cells) -> (..., n_groups, n_emotions)."""
    return cell_accuracy.reshape(cell_accuracy.shape[:-1] + (len(layout.groups), len(layout.emotions)))


def _pair_gaps(acc: np.ndarray, layout: CellLayout) -> np.ndarray:
    """|A_i - A_j| per emotion for every pair of groups (none for two groups): (..., k, E) -> (..., pairs * E)."""
    if len(layout.groups) <= 2:
        return acc[..., :0, :].reshape(acc.shape[:-2] + (0,))
    return np.concatenate([np.abs(acc[..., i, :] - acc[..., j, :]) for i, j in layout.pairs()], axis=-1)


def summary_metrics(cell_accuracy: np.ndarray, layout: CellLayout) -> np.ndarray:
    """All metrics of one task from its cell accuracies.

    Parameters
    ----------
    cell_accuracy : array of shape (..., n_cells)
        Percent, cells in ``layout`` order (groups x emotions; NaN for an empty cell).
    layout : the cells.

    Returns
    -------
    array of shape (..., len(metric_entries(layout))): the cells, the per-emotion gaps (max - min over the groups),
    the pairwise gaps (more than two groups), macro, largest and average gap, in :func:`metric_entries` order
    (percent; NaN wherever an input cell is NaN).
    """
    acc = _by_group(cell_accuracy, layout)
    gaps = emotion_gaps(acc)
    return np.concatenate([cell_accuracy, gaps, _pair_gaps(acc, layout), cell_accuracy.mean(axis=-1, keepdims=True),
                           gaps.max(axis=-1, keepdims=True), gaps.mean(axis=-1, keepdims=True)], axis=-1)


@dataclass(frozen=True)
class _Design:
    """The images of one evaluation group, indexed by subject and cell.

    image_ids : (n_images,) sorted; image_subject, image_cell : (n_images,) int indices into subjects and the
    layout's cells; subjects, subject_group : (n_subjects,); counts : (n_subjects, n_cells) images per subject and
    cell (float); layout : the cells; tasks : (attribute, "emotion").
    """

    image_ids: np.ndarray
    image_subject: np.ndarray
    image_cell: np.ndarray
    subjects: np.ndarray
    subject_group: np.ndarray
    counts: np.ndarray
    layout: CellLayout
    tasks: tuple[str, str]


def _seed_mean_summary(accuracy: np.ndarray, layout: CellLayout) -> np.ndarray:
    """Seed-mean metrics: (..., n_seeds, n_cells) per-seed cell accuracies -> (..., n_metrics), as
    :func:`summary_metrics` averaged over the seed axis (cells and macro are linear; gaps, their max and mean are
    taken per seed first)."""
    acc = _by_group(accuracy, layout)
    gaps = emotion_gaps(acc)
    cells = accuracy.mean(axis=-2)
    return np.concatenate([cells, gaps.mean(axis=-2), _pair_gaps(acc, layout).mean(axis=-2),
                           cells.mean(axis=-1, keepdims=True), gaps.max(axis=-1).mean(axis=-1)[..., None],
                           gaps.mean(axis=(-1, -2))[..., None]], axis=-1)


def _check_columns(rows: pd.DataFrame, where: str) -> None:
    missing = [c for c in _REQUIRED if c not in rows.columns]
    if missing:
        raise BenchmarkError(f"{where}: missing column(s) {', '.join(missing)}; prediction rows need {', '.join(_REQUIRED)}")
    if rows.empty:
        raise BenchmarkError(f"{where}: no prediction rows")


def _design(rows: pd.DataFrame, layout: CellLayout, tasks: tuple[str, str], where: str) -> _Design:
    attribute = tasks[0]
    if attribute not in rows.columns or f"pred_{attribute}" not in rows.columns:
        raise BenchmarkError(f"{where}: no column {attribute!r} / 'pred_{attribute}'; prediction rows of attribute "
                             f"{attribute!r} need them")
    images = rows[["image_id", "subject", attribute, "emotion"]].drop_duplicates().sort_values("image_id", kind="stable")
    if images["image_id"].duplicated().any():
        bad = images.loc[images["image_id"].duplicated(), "image_id"].iloc[0]
        raise BenchmarkError(f"{where}: image {bad!r} carries different true labels in different rows; labels must agree")
    bad_labels = (sorted(set(images[attribute]) - set(layout.groups))
                  + sorted(set(images["emotion"]) - set(layout.emotions)))
    if bad_labels:
        raise BenchmarkError(f"{where}: unknown true label(s) {bad_labels}; expected {attribute} groups "
                             f"{layout.groups} and emotions {layout.emotions}")
    subjects, image_subject = np.unique(images["subject"].astype(str).to_numpy(), return_inverse=True)
    groups = images[attribute].to_numpy()
    subject_group = np.empty(len(subjects), dtype=object)
    subject_group[image_subject] = groups
    if (subject_group[image_subject] != groups).any():
        bad = subjects[image_subject[subject_group[image_subject] != groups][0]]
        raise BenchmarkError(f"{where}: subject {bad!r} has images in two {attribute} groups; a subject has one group")
    group_index = {g: i for i, g in enumerate(layout.groups)}
    emotion_index = {e: i for i, e in enumerate(layout.emotions)}
    image_cell = (np.array([group_index[g] for g in groups]) * len(layout.emotions)
                  + np.array([emotion_index[e] for e in images["emotion"]]))
    counts = np.zeros((len(subjects), layout.n_cells))
    np.add.at(counts, (image_subject, image_cell), 1.0)
    return _Design(images["image_id"].to_numpy(), image_subject, image_cell, subjects, subject_group, counts, layout,
                   tasks)


def _correctness(rows: pd.DataFrame, design: _Design, where: str) -> tuple[tuple[int, ...], np.ndarray]:
    """Seeds and per-image correctness of one method: bool array of shape (n_tasks, n_seeds, n_images)."""
    seed_of_row = rows["seed"].to_numpy()
    seeds = np.unique(seed_of_row)
    k = np.searchsorted(seeds, seed_of_row)
    i = pd.Index(design.image_ids).get_indexer(rows["image_id"])
    if (i < 0).any():
        raise BenchmarkError(f"{where}: image {rows['image_id'].iloc[int(np.argmax(i < 0))]!r} is not in the group's image set")
    seen = np.zeros((len(seeds), len(design.image_ids)), dtype=np.int64)
    np.add.at(seen, (k, i), 1)
    if (seen > 1).any():
        seed, image = np.argwhere(seen > 1)[0]
        raise BenchmarkError(f"{where}: image {design.image_ids[image]!r} is predicted twice for seed {seeds[seed]}; "
                             "each image once per seed")
    if (seen == 0).any():
        seed = int(np.argmax((seen == 0).any(axis=1)))
        raise BenchmarkError(f"{where}: seed {seeds[seed]} does not predict every image of the group "
                             f"({int((seen[seed] == 0).sum())} of {len(design.image_ids)} missing); "
                             "methods compared must cover the same images")
    out = np.zeros((len(design.tasks), len(seeds), len(design.image_ids)), dtype=bool)
    for t, task in enumerate(design.tasks):
        out[t, k, i] = rows[f"pred_{task}"].to_numpy() == rows[task].to_numpy()
    return tuple(int(x) for x in seeds), out


def _subject_sums(correct: np.ndarray, design: _Design) -> np.ndarray:
    """Correct counts per subject and cell: (n_tasks, n_seeds, n_images) bool -> (n_subjects, n_tasks, n_seeds, n_cells)."""
    n_tasks, n_seeds, _ = correct.shape
    n_cells = design.layout.n_cells
    flat = design.image_subject * n_cells + design.image_cell
    size = len(design.subjects) * n_cells
    sums = np.stack([np.bincount(flat, weights=correct[t, k], minlength=size)
                     for t in range(n_tasks) for k in range(n_seeds)], axis=1)
    return sums.reshape(len(design.subjects), n_cells, n_tasks, n_seeds).transpose(0, 2, 3, 1)


# ---------------------------------------------------------------------------------------------------------------------
# Resampling


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


def _chunks(n_rows: int, n_cols: int) -> Iterator[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def _seed_metrics(weights: np.ndarray, sums: np.ndarray, counts: np.ndarray, layout: CellLayout) -> np.ndarray:
    """Per-seed metrics of weighted subject sets (for the seed sd).

    weights (R, n_subjects); sums (n_subjects, T, K, n_cells); counts (n_subjects, n_cells) -> (R, T, K, n_metrics)
    percent.
    """
    n, n_tasks, n_seeds, n_cells = sums.shape
    cell_sums = (weights @ sums.reshape(n, -1)).reshape(len(weights), n_tasks, n_seeds, n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        return summary_metrics(100.0 * cell_sums / (weights @ counts)[:, None, None, :], layout)


def _seed_mean_metrics(weights: np.ndarray, sums: np.ndarray, counts: np.ndarray, layout: CellLayout) -> np.ndarray:
    """Seed-mean metrics of weighted subject sets, (R, n_subjects) weights -> (R, T, n_metrics), in memory-bounded
    chunks.

    sums (n_subjects, T, K, n_cells) correct counts; counts (n_subjects, n_cells) images. An empty cell gives NaN.
    """
    weights = np.asarray(weights, dtype=np.float64)
    n, n_tasks, n_seeds, n_cells = sums.shape
    flat = sums.reshape(n, -1)
    out = np.empty((len(weights), n_tasks, len(metric_entries(layout))))
    for part in _chunks(len(weights), flat.shape[1] * 3):
        cell_sums = (weights[part] @ flat).reshape(-1, n_tasks, n_seeds, n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[part] = _seed_mean_summary(100.0 * cell_sums / (weights[part] @ counts)[:, None, None, :], layout)
    return out


def _tile_seeds(sums: np.ndarray, n_seeds: int) -> np.ndarray:
    """Repeat the seed axis (axis 2) cyclically to ``n_seeds`` (a multiple of it): the seed mean is unchanged."""
    return np.tile(sums, (1, 1, n_seeds // sums.shape[2], 1))


def _permutation_p(sums_a: np.ndarray, sums_b: np.ndarray, counts: np.ndarray, flips: np.ndarray,
                   observed: np.ndarray, layout: CellLayout) -> np.ndarray:
    """Two-sided subject-level permutation p of metric(a) - metric(b), shape (T, n_metrics).

    ``flips`` (P, n_subjects) bool: the subjects whose predictions are exchanged in each permutation. Seeds are paired
    by their order after tiling both methods to the least common multiple of their seed counts (a one-seed method
    pairs with every seed of the other).
    """
    n_seeds = math.lcm(sums_a.shape[2], sums_b.shape[2])
    a, b = _tile_seeds(sums_a, n_seeds), _tile_seeds(sums_b, n_seeds)
    n, n_tasks = a.shape[:2]
    delta = (a - b).reshape(n, -1)
    total_a, total_b = a.sum(axis=0).reshape(-1), b.sum(axis=0).reshape(-1)
    cell_n = counts.sum(axis=0)
    exceed = np.zeros(observed.shape, dtype=np.int64)
    for part in _chunks(len(flips), delta.shape[1] * 4):
        moved = flips[part].astype(np.float64) @ delta
        shape = (len(moved), n_tasks, n_seeds, layout.n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            metric_a = _seed_mean_summary(100.0 * (total_a - moved).reshape(shape) / cell_n, layout)
            metric_b = _seed_mean_summary(100.0 * (total_b + moved).reshape(shape) / cell_n, layout)
        exceed += (np.abs(metric_a - metric_b) >= np.abs(observed) - _TIE_TOLERANCE).sum(axis=0)
    p = (1.0 + exceed) / (1.0 + len(flips))
    return np.where(np.isnan(observed), np.nan, p)


# ---------------------------------------------------------------------------------------------------------------------
# Intervals and tests


def _sorted_quantiles(ordered: np.ndarray, n_valid: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per-column linear-interpolation quantiles (numpy's default) of column-sorted values, NaNs sorted last.

    ordered (R, m); n_valid (m,) finite values per column (>= 1); probs (m,) one level per column -> (m,).
    """
    position = probs * (n_valid - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, n_valid - 1)
    columns = np.arange(ordered.shape[1])
    below, above = ordered[low, columns], ordered[high, columns]
    return below + (position - low) * (above - below)


def _intervals(boot: np.ndarray, point: np.ndarray, jack: np.ndarray, *, ci: float,
               method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Confidence intervals of each column.

    boot (R, m) bootstrap values (NaN: a resample with an empty cell); point (m,); jack (n_subjects, m)
    leave-one-subject-out values. Returns low (m,), high (m,), the method used per column and a note per column
    (object arrays of shape (m,)).
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
        adjusted, why = _bca_levels(boot, finite, n_valid, point, jack, levels)
        ok = usable & (why == "")
        levels[:, ok] = adjusted[:, ok]
        used[ok] = "bca"
        for j in np.flatnonzero(usable & ~ok):
            notes[j] = "; ".join(filter(None, [notes[j], f"BCa degenerate ({why[j]}): percentile interval"]))
    safe = np.maximum(n_valid, 1)
    low = np.where(usable, _sorted_quantiles(ordered, safe, levels[0]), np.nan)
    high = np.where(usable, _sorted_quantiles(ordered, safe, levels[1]), np.nan)
    return low, high, used, notes


def _bca_levels(boot: np.ndarray, finite: np.ndarray, n_valid: np.ndarray, point: np.ndarray, jack: np.ndarray,
                levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BCa-adjusted quantile levels (2, m) and, per column, why BCa is undefined ("" where it is fine)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        below = (np.sum(finite & (boot < point), axis=0) + 0.5 * np.sum(finite & (boot == point), axis=0)) / n_valid
        jack_ok = np.isfinite(jack)
        jack_mean = np.nanmean(np.where(jack_ok, jack, np.nan), axis=0)
        spread = np.where(jack_ok, jack_mean - jack, 0.0)
        denominator = 6.0 * np.sum(spread ** 2, axis=0) ** 1.5
        z0 = sps.norm.ppf(below)
        acceleration = np.sum(spread ** 3, axis=0) / denominator
        z = sps.norm.ppf(levels)
        adjusted = sps.norm.cdf(z0 + (z0 + z) / (1.0 - acceleration * (z0 + z)))
    why = np.full(boot.shape[1], "", dtype=object)
    why[~np.all(np.isfinite(adjusted), axis=0)] = "non-finite adjusted levels"
    why[denominator == 0.0] = "constant jackknife values"
    why[(below <= 0.0) | (below >= 1.0)] = "every resample on one side of the estimate"
    return adjusted, why


def holm(p_values: np.ndarray | list[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order.

    With m non-NaN p-values sorted ascending, p_(i) is adjusted to max over j <= i of min(1, (m - j + 1) p_(j)).
    NaN entries stay NaN and do not count in m.
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Exact (binomial) two-sided McNemar p on paired image-level correctness; 1.0 when no pair is discordant."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:
        return 1.0
    return float(sps.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def _seed_majority(correct: np.ndarray) -> np.ndarray:
    """Image-level correctness over seeds: (T, K, n_images) -> (T, n_images); a tie goes to the first seed."""
    fraction = correct.mean(axis=1)
    return (fraction > 0.5) | ((fraction == 0.5) & correct[:, 0])


def _mcnemar_table(majority_a: np.ndarray, majority_b: np.ndarray, design: _Design) -> np.ndarray:
    """McNemar p for every (task, metric): cells on their own images, macro on all images, NaN for gap metrics."""
    out = np.full((majority_a.shape[0], len(metric_entries(design.layout))), np.nan)
    for t in range(majority_a.shape[0]):
        for j, (metric, _, _) in enumerate(metric_entries(design.layout)):
            if metric == "macro":
                out[t, j] = mcnemar_exact(majority_a[t], majority_b[t])
            elif metric == "cell":
                mask = design.image_cell == j
                out[t, j] = mcnemar_exact(majority_a[t, mask], majority_b[t, mask])
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class _MethodStats:
    seeds: tuple[int, ...]
    correct: np.ndarray  # (T, K, n_images) bool
    sums: np.ndarray  # (n_subjects, T, K, n_cells)
    point: np.ndarray  # (T, n_metrics) seed-mean metrics on all subjects
    seed_sd: np.ndarray  # (T, n_metrics)
    boot: np.ndarray  # (R, T, n_metrics)
    jack: np.ndarray  # (n_subjects, T, n_metrics)


def _rng(config: StatsConfig, key: str) -> np.random.Generator:
    return np.random.default_rng([config.seed, zlib.crc32(key.encode("utf-8"))])


def _method_stats(rows: pd.DataFrame, design: _Design, weights: np.ndarray, jack_weights: np.ndarray,
                  where: str) -> _MethodStats:
    """Correctness, subject sums, estimate, seed sd, bootstrap and jackknife values of one method."""
    seeds, correct = _correctness(rows, design, where)
    sums = _subject_sums(correct, design)
    everyone = np.ones((1, len(design.subjects)))
    layout = design.layout
    seed_values = _seed_metrics(everyone, sums, design.counts, layout)[0]  # (T, K, n_metrics)
    seed_sd = seed_values.std(axis=1, ddof=1) if len(seeds) > 1 else np.zeros(seed_values[:, 0].shape)
    return _MethodStats(seeds, correct, sums, _seed_mean_metrics(everyone, sums, design.counts, layout)[0], seed_sd,
                        _seed_mean_metrics(weights, sums, design.counts, layout),
                        _seed_mean_metrics(jack_weights, sums, design.counts, layout))


def _comparison(ms: _MethodStats, ref: _MethodStats, design: _Design, flips: np.ndarray,
                config: StatsConfig) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Difference to the reference with its interval and p-values (flattened over tasks x metrics)."""
    point = ms.point - ref.point
    n_resamples, n = len(ms.boot), len(design.subjects)
    low, high, used, notes = _intervals((ms.boot - ref.boot).reshape(n_resamples, -1), point.reshape(-1),
                                        (ms.jack - ref.jack).reshape(n, -1), ci=config.ci, method=config.ci_method)
    p_perm = _permutation_p(ms.sums, ref.sums, design.counts, flips, point, design.layout)
    p_mcnemar = _mcnemar_table(_seed_majority(ms.correct), _seed_majority(ref.correct), design)
    columns = dict(diff=point.reshape(-1), diff_ci_low=low, diff_ci_high=high, p_perm=p_perm.reshape(-1),
                   p_mcnemar=p_mcnemar.reshape(-1))
    return columns, used, notes


def _group_stats(rows_by_method: dict[str, pd.DataFrame], *, reference: str | None, config: StatsConfig,
                 key: str, layout: CellLayout, tasks: tuple[str, str]) -> pd.DataFrame:
    """Statistics of every method of one evaluation group (rows already restricted to it). No family correction."""
    design = _design(pd.concat(list(rows_by_method.values()), ignore_index=True), layout, tasks, key)
    rng = _rng(config, key)
    weights = subject_resamples(design.subject_group, groups=layout.groups, n_resamples=config.n_resamples, rng=rng)
    flips = rng.random((config.n_permutations, len(design.subjects))) < 0.5
    n = len(design.subjects)
    jack_weights = np.ones((n, n)) - np.eye(n)
    per_method = {name: _method_stats(rows, design, weights, jack_weights, f"{key}: method {name!r}")
                  for name, rows in rows_by_method.items()}
    ref = per_method.get(reference) if reference is not None else None
    frames = []
    for name, ms in per_method.items():
        low, high, used, notes = _intervals(ms.boot.reshape(len(weights), -1), ms.point.reshape(-1),
                                            ms.jack.reshape(n, -1), ci=config.ci, method=config.ci_method)
        nan = np.full(low.shape, np.nan)
        diff = dict(diff=nan, diff_ci_low=nan, diff_ci_high=nan, p_perm=nan, p_mcnemar=nan)
        diff_used, diff_notes = np.full(low.shape, "", dtype=object), np.full(low.shape, "", dtype=object)
        if ref is not None and name != reference:
            diff, diff_used, diff_notes = _comparison(ms, ref, design, flips, config)
        frame = pd.DataFrame([(task, *entry) for task in tasks for entry in metric_entries(layout)],
                             columns=["task", "metric", "group", "emotion"])
        frame.insert(0, "method", name)
        frame["reference"] = reference if ref is not None else None
        frame["n_subjects"] = np.int64(n)
        frame["n_images"] = np.int64(len(design.image_ids))
        frame["n_seeds"] = np.int64(len(ms.seeds))
        values = {"estimate": ms.point.reshape(-1), "seed_sd": ms.seed_sd.reshape(-1), "ci_low": low, "ci_high": high,
                  **diff}
        for column, value in values.items():
            frame[column] = value if column.startswith("p_") else np.round(value, _DECIMALS) + 0.0  # no -0.0
        frame["ci_method"] = used
        frame["diff_ci_method"] = diff_used
        frame["note"] = ["; ".join(filter(None, (note, "diff: " + d if d else ""))) for note, d in zip(notes, diff_notes)]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def weighted_metrics(rows: pd.DataFrame, weights: pd.DataFrame, *, layout: CellLayout, attribute: str) -> np.ndarray:
    """Seed-mean metrics of one method's prediction rows with every subject counted ``weights`` times.

    Parameters
    ----------
    rows : prediction rows of one method over one image set (any number of seeds).
    weights : DataFrame of shape (n_sets, n_subjects), columns the subject ids of ``rows``; non-negative multiplicities
        (one bootstrap resample per row, as from :func:`subject_resamples`).
    layout : the cells; attribute : the protected attribute (its truth and prediction columns).

    Returns
    -------
    array of shape (n_sets, 2, n_metrics): percent, tasks (attribute, emotion), metrics in :func:`metric_entries` order.
    """
    _check_columns(rows, "rows")
    design = _design(rows, layout, run_tasks(attribute), "rows")
    missing = sorted(set(design.subjects) - set(map(str, weights.columns)))
    if missing:
        raise BenchmarkError(f"weights: no column for subject(s) {missing[:5]}; one column per subject is needed")
    matrix = weights.rename(columns=str)[list(design.subjects)].to_numpy(dtype=np.float64)
    _, correct = _correctness(rows, design, "rows")
    return _seed_mean_metrics(matrix, _subject_sums(correct, design), design.counts, layout)


def _family_holm(table: pd.DataFrame, family: list[str]) -> pd.Series:
    adjusted = pd.Series(np.nan, index=table.index)
    for _, members in table.groupby(family, dropna=False, sort=False):
        adjusted[members.index] = holm(members["p_perm"].to_numpy())
    return adjusted


def analyse(frame: pd.DataFrame, *, reference: str | None, layouts: dict[str, CellLayout], attribute: str,
            config: StatsConfig = StatsConfig()) -> pd.DataFrame:
    """Statistics of every (split, partition, dataset) group and method of a predictions table.

    Parameters
    ----------
    frame : predictions table (see :mod:`benchmark.predictions`); CV folds of one seed are pooled.
    reference : method every other method of a group is compared with (no comparisons in a group without it).
    layouts : dataset -> its cells (attribute groups x declared emotions), e.g. ``Predictions.layouts``.
    attribute : the protected attribute (the first task; its column holds the cells' groups).
    config : budgets and interval method.

    Returns
    -------
    DataFrame, one row per (split, partition, dataset, method, task, metric[, group][, emotion]), sorted, with
    ``estimate`` (seed-mean metric, percent), ``seed_sd``, ``ci_low``/``ci_high``, and for compared methods ``diff``
    (method - reference), ``diff_ci_low``/``diff_ci_high``, ``p_perm`` (permutation), ``p_holm`` (Holm-adjusted within
    the family split x partition x dataset x task x metric x cell) and ``p_mcnemar`` (accuracies only); plus counts,
    the interval method used per row and notes (e.g. a BCa fallback).
    """
    _check_columns(frame, "predictions")
    for column in GROUP_COLUMNS + ("method",):
        if column not in frame.columns:
            raise BenchmarkError(f"predictions: missing column {column!r}; analyse needs {', '.join(GROUP_COLUMNS)}, method")
    pieces = []
    for group, rows in frame.groupby(list(GROUP_COLUMNS), sort=True, observed=True):
        key = "|".join(str(v) for v in group)
        by_method = {str(m): r for m, r in rows.groupby("method", sort=True, observed=True)}
        dataset = group[GROUP_COLUMNS.index("dataset")]
        if dataset not in layouts:
            raise BenchmarkError(f"predictions: no declared design for dataset {dataset!r}; rerun `benchmark train`")
        table = _group_stats(by_method, reference=reference if reference in by_method else None, config=config, key=key,
                             layout=layouts[dataset], tasks=run_tasks(attribute))
        for column, value in reversed(list(zip(GROUP_COLUMNS, group))):
            table.insert(0, column, value)
        pieces.append(table)
    table = pd.concat(pieces, ignore_index=True)
    table.insert(table.columns.get_loc("p_perm") + 1, "p_holm",
                 _family_holm(table, list(GROUP_COLUMNS) + ["task", "metric", "group", "emotion"]))
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
        _check_columns(rows, name)
    if names[0] == names[1]:
        raise BenchmarkError(f"compare: names must differ, got {names!r}")
    table = _group_stats({names[0]: method_rows, names[1]: reference_rows}, reference=names[1], config=config,
                         key="|".join(names), layout=layout, tasks=run_tasks(attribute))
    table.insert(table.columns.get_loc("p_perm") + 1, "p_holm", table["p_perm"])
    return table
