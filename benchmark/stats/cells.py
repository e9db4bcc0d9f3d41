"""The metrics of one task over declared cells, and the subject design of one evaluation group.

A metric row is (metric, group, emotion) (:func:`metric_entries`); every metric is a function of the cell accuracies
(:func:`summary_metrics`). An evaluation group's images are indexed by subject and cell (:class:`SubjectDesign`), and
a method's predictions become per-subject correct counts per cell (:func:`subject_sums`), from which every resample
and permutation is one matrix product.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from benchmark.core.design import CellLayout
from benchmark.core.metrics import emotion_gaps
from benchmark.infra import columns
from benchmark.infra.errors import BenchmarkError

__all__ = ["ACCURACY_METRICS", "GAP_METRICS", "PAIR_SEPARATOR", "SubjectDesign", "by_group", "check_columns",
           "correctness", "metric_entries", "seed_mean_difference", "seed_mean_summary", "signed_pairs", "spread",
           "subject_design", "subject_sums", "summary_metrics"]

#: Metrics that are accuracies (image-level McNemar applies).
ACCURACY_METRICS: tuple[str, ...] = ("cell", "macro")
#: Metrics built from absolute differences between groups (biased upward by sampling noise).
GAP_METRICS: tuple[str, ...] = ("gap", "pair_gap", "largest_gap", "average_gap")
#: how a pairwise row names its two groups in the ``group`` column
PAIR_SEPARATOR = " vs "
REQUIRED = ("seed", "image_id", "subject", "emotion", "pred_emotion")
_STRING_TYPES = (pa.string(), pa.large_string())


def metric_entries(layout: CellLayout) -> list[tuple[str, str | None, str | None]]:
    """The metrics of one task, in the order of :func:`summary_metrics`' last axis: (metric, group, emotion).

    Every cell, the per-emotion gap (max - min over the groups), for more than two groups the gap of every pair of
    groups per emotion (``pair_gap``, group ``"a vs b"``), the signed difference of every pair of groups per emotion
    (``signed_gap``, group ``"a vs b"``: A(a) - A(b)), then macro, largest and average gap.
    """
    return list(_entries(layout))


@functools.lru_cache(maxsize=64)
def _entries(layout: CellLayout) -> tuple[tuple[str, str | None, str | None], ...]:
    pairs = [f"{layout.groups[i]}{PAIR_SEPARATOR}{layout.groups[j]}" for i, j in layout.pairs()]
    entries: list[tuple[str, str | None, str | None]] = [("cell", g, e) for g, e in layout.cells()]
    entries += [("gap", None, e) for e in layout.emotions]
    if len(layout.groups) > 2:
        entries += [("pair_gap", pair, e) for pair in pairs for e in layout.emotions]
    entries += [("signed_gap", pair, e) for pair in pairs for e in layout.emotions]
    return tuple(entries + [("macro", None, None), ("largest_gap", None, None), ("average_gap", None, None)])


def by_group(cell_accuracy: np.ndarray, layout: CellLayout) -> np.ndarray:
    """(..., n_cells) -> (..., n_groups, n_emotions)."""
    return cell_accuracy.reshape(cell_accuracy.shape[:-1] + (len(layout.groups), len(layout.emotions)))


def spread(acc: np.ndarray) -> np.ndarray:
    """Per-emotion gaps, max - min over the groups: (..., k, E) -> (..., E); for two groups |A_0 - A_1| (the same
    floating-point number as max - min, computed without a reduction over a strided axis)."""
    if acc.shape[-2] == 2:
        return np.abs(acc[..., 0, :] - acc[..., 1, :])
    return emotion_gaps(acc)


def signed_pairs(acc: np.ndarray, layout: CellLayout) -> np.ndarray:
    """A_i - A_j per emotion for every pair of groups (i < j): (..., k, E) -> (..., pairs * E), pair-major."""
    if acc.shape[-2] == 2:
        return acc[..., 0, :] - acc[..., 1, :]
    return np.concatenate([acc[..., i, :] - acc[..., j, :] for i, j in layout.pairs()], axis=-1)


def _pair_gaps(signed: np.ndarray, layout: CellLayout) -> np.ndarray:
    """|A_i - A_j| of every pair, only for more than two groups (else an empty last axis)."""
    return np.abs(signed) if len(layout.groups) > 2 else signed[..., :0]


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
    the pairwise gaps (more than two groups), the signed pairwise differences, macro, largest and average gap, in
    :func:`metric_entries` order (percent; NaN wherever an input cell is NaN).
    """
    acc = by_group(cell_accuracy, layout)
    gaps = spread(acc)
    signed = signed_pairs(acc, layout)
    return np.concatenate([cell_accuracy, gaps, _pair_gaps(signed, layout), signed,
                           cell_accuracy.mean(axis=-1, keepdims=True), gaps.max(axis=-1, keepdims=True),
                           gaps.mean(axis=-1, keepdims=True)], axis=-1)


def seed_mean_summary(accuracy: np.ndarray, layout: CellLayout) -> np.ndarray:
    """Seed-mean metrics: (..., n_seeds, n_cells) per-seed cell accuracies -> (..., n_metrics), as
    :func:`summary_metrics` averaged over the seed axis (cells, signed differences and macro are linear; gaps, their
    max and mean are taken per seed first)."""
    acc = by_group(accuracy, layout)
    gaps = spread(acc)
    signed = signed_pairs(acc, layout)
    cells = accuracy.mean(axis=-2)
    return np.concatenate([cells, gaps.mean(axis=-2), _pair_gaps(signed, layout).mean(axis=-2), signed.mean(axis=-2),
                           cells.mean(axis=-1, keepdims=True), gaps.max(axis=-1).mean(axis=-1)[..., None],
                           gaps.mean(axis=(-1, -2))[..., None]], axis=-1)


def seed_mean_difference(accuracy_a: np.ndarray, accuracy_b: np.ndarray, layout: CellLayout) -> np.ndarray:
    """``seed_mean_summary(accuracy_a) - seed_mean_summary(accuracy_b)`` (both (..., n_seeds, n_cells)), with the
    linear metrics (cells, signed gaps, macro) taken from the difference of the accuracies, which is cheaper; the
    gaps, their max and mean of each set per seed, as the estimate's."""
    cells = (accuracy_a - accuracy_b).mean(axis=-2)
    acc_a, acc_b = by_group(accuracy_a, layout), by_group(accuracy_b, layout)
    gaps_a, gaps_b = spread(acc_a), spread(acc_b)
    pair = (_pair_gaps(signed_pairs(acc_a, layout), layout).mean(axis=-2)
            - _pair_gaps(signed_pairs(acc_b, layout), layout).mean(axis=-2))
    return np.concatenate([cells, gaps_a.mean(axis=-2) - gaps_b.mean(axis=-2), pair,
                           signed_pairs(by_group(cells, layout), layout), cells.mean(axis=-1, keepdims=True),
                           (gaps_a.max(axis=-1).mean(axis=-1) - gaps_b.max(axis=-1).mean(axis=-1))[..., None],
                           (gaps_a.mean(axis=(-1, -2)) - gaps_b.mean(axis=(-1, -2)))[..., None]], axis=-1)


@dataclass(frozen=True)
class SubjectDesign:
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

    @property
    def subject_stratum(self) -> np.ndarray:
        """Each subject's group as an index into ``layout.groups``: int array of shape (n_subjects,)."""
        index = {g: i for i, g in enumerate(self.layout.groups)}
        return np.array([index[g] for g in self.subject_group], dtype=np.int64)


def check_columns(rows: pd.DataFrame, where: str) -> None:
    """Raise BenchmarkError unless ``rows`` are non-empty prediction rows with the columns statistics need."""
    missing = [c for c in REQUIRED if c not in rows.columns]
    if missing:
        raise BenchmarkError(f"{where}: missing column(s) {', '.join(missing)}; prediction rows need {', '.join(REQUIRED)}")
    if rows.empty:
        raise BenchmarkError(f"{where}: no prediction rows")


def _positions(values: np.ndarray | pd.Series, labels: tuple[str, ...]) -> np.ndarray:
    """Where each of ``values`` (n,) is in ``labels``, every value being one of them: int64 array of shape (n,).
    Looked up once per distinct value, not per value."""
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[v] for v in distinct], dtype=np.int64)[codes]


def subject_design(rows: pd.DataFrame, layout: CellLayout, tasks: tuple[str, str], where: str) -> SubjectDesign:
    """The subject x cell design of the images in ``rows`` (any methods and seeds over one image set)."""
    attribute = tasks[0]
    if attribute not in rows.columns or f"pred_{attribute}" not in rows.columns:
        raise BenchmarkError(f"{where}: no column {attribute!r} / 'pred_{attribute}'; prediction rows of attribute "
                             f"{attribute!r} need them")
    for column in ("image_id", "subject", attribute, "emotion"):
        if n_missing := columns.missing(rows[column]):
            raise BenchmarkError(f"{where}: column {column!r} is missing in {n_missing} row(s); every prediction row "
                                 "needs its image, subject and true labels")
    row_image, image_ids = columns.encode(rows["image_id"])  # image ids sorted
    first = np.unique(row_image, return_index=True)[1]  # each image's first row
    labels = {}
    conflict = np.zeros(len(image_ids), dtype=bool)
    for column in ("subject", attribute, "emotion"):
        values = rows[column]
        if column == "subject" and columns.arrow(values).type not in _STRING_TYPES:
            values = values.astype(str)  # subject ids are names: 10 sorts before 9
        codes, labels[column] = columns.encode(values)
        conflict[row_image[codes != codes[first][row_image]]] = True
        labels[column] = (labels[column], codes[first])  # distinct values, each image's code
    if conflict.any():
        raise BenchmarkError(f"{where}: image {image_ids[np.argmax(conflict)]!r} carries different true labels in "
                             "different rows; labels must agree")
    (groups, group_code), (emotions, emotion_code) = labels[attribute], labels["emotion"]
    bad_labels = sorted(set(groups) - set(layout.groups)) + sorted(set(emotions) - set(layout.emotions))
    if bad_labels:
        raise BenchmarkError(f"{where}: unknown true label(s) {bad_labels}; expected {attribute} groups "
                             f"{layout.groups} and emotions {layout.emotions}")
    subjects, image_subject = labels["subject"]
    image_group = _positions(groups, layout.groups)[group_code]
    subject_stratum = np.full(len(subjects), -1, dtype=np.int64)
    subject_stratum[image_subject] = image_group
    if (subject_stratum[image_subject] != image_group).any():
        bad = subjects[image_subject[np.argmax(subject_stratum[image_subject] != image_group)]]
        raise BenchmarkError(f"{where}: subject {bad!r} has images in two {attribute} groups; a subject has one group")
    image_cell = image_group * len(layout.emotions) + _positions(emotions, layout.emotions)[emotion_code]
    counts = np.zeros((len(subjects), layout.n_cells))
    np.add.at(counts, (image_subject, image_cell), 1.0)
    subject_group = np.array(layout.groups, dtype=object)[subject_stratum]
    return SubjectDesign(image_ids, image_subject, image_cell, subjects, subject_group, counts, layout, tasks)


def correctness(rows: pd.DataFrame, design: SubjectDesign, where: str) -> tuple[tuple[int, ...], np.ndarray]:
    """Seeds and per-image correctness of one method: bool array of shape (n_tasks, n_seeds, n_images)."""
    seed_of_row = rows["seed"].to_numpy()
    seeds, k = np.unique(seed_of_row, return_inverse=True)
    i = columns.positions(rows["image_id"], design.image_ids)
    if (i < 0).any():
        raise BenchmarkError(f"{where}: image {rows['image_id'].iloc[int(np.argmax(i < 0))]!r} is not in the group's image set")
    n_images = len(design.image_ids)
    seen = np.bincount(k * n_images + i, minlength=len(seeds) * n_images).reshape(len(seeds), n_images)
    if (seen > 1).any():
        seed, image = np.argwhere(seen > 1)[0]
        raise BenchmarkError(f"{where}: image {design.image_ids[image]!r} is predicted twice for seed {seeds[seed]}; "
                             "each image once per seed")
    if (seen == 0).any():
        seed = int(np.argmax((seen == 0).any(axis=1)))
        raise BenchmarkError(f"{where}: seed {seeds[seed]} does not predict every image of the group "
                             f"({int((seen[seed] == 0).sum())} of {n_images} missing); "
                             "methods compared must cover the same images")
    out = np.zeros((len(design.tasks), len(seeds), n_images), dtype=bool)
    for t, task in enumerate(design.tasks):
        out[t, k, i] = columns.equal(rows[f"pred_{task}"], rows[task])
    return tuple(int(x) for x in seeds), out


def subject_sums(correct: np.ndarray, design: SubjectDesign) -> np.ndarray:
    """Correct counts per subject and cell: (n_tasks, n_seeds, n_images) bool -> (n_subjects, n_tasks, n_seeds, n_cells)."""
    n_tasks, n_seeds, _ = correct.shape
    n_cells = design.layout.n_cells
    flat = design.image_subject * n_cells + design.image_cell
    size = len(design.subjects) * n_cells
    sums = np.stack([np.bincount(flat, weights=correct[t, k], minlength=size)
                     for t in range(n_tasks) for k in range(n_seeds)], axis=1)
    return sums.reshape(len(design.subjects), n_cells, n_tasks, n_seeds).transpose(0, 2, 3, 1)
