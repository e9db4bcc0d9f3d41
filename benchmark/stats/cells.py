"""The metrics of one task as arrays over declared cells, and the subject design of one evaluation group.

A metric row is (metric, group, emotion) (:func:`metric_entries`, from the metric objects of
:mod:`benchmark.core.metrics`); every metric is a function of per-cell rates of one channel (``recall``: the cell
accuracies; ``fpr``: the false-positive rates of the cells' classes), :func:`metric_values`. An evaluation group's
images are indexed by subject and cell (:class:`SubjectDesign`), and a method's predictions become per-subject counts
per cell and channel (:func:`channel_sums`) over the design's per-subject totals (:func:`channel_totals`), from which
every resample and permutation is one matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.core.metrics import CellRates, Entry, Metric
from benchmark.infra import columns
from benchmark.infra.errors import BenchmarkError

__all__ = ["Predicted", "SubjectDesign", "by_group", "channel_sums", "channel_totals", "check_columns", "correctness",
           "counts_totals",
           "metric_entries", "metric_values", "predicted", "seed_mean_difference", "seed_mean_values", "subject_design",
           "subject_sums"]

REQUIRED = ("seed", "image_id", "subject", "emotion", "pred_emotion")
#: channel -> per-cell rate arrays (..., C) or (..., K, C), percent
Rates = dict[str, np.ndarray]
_STRING_TYPES = (pa.string(), pa.large_string())


def metric_entries(layout: CellLayout, metric_set: Sequence[Metric] = metrics.METRICS) -> list[Entry]:
    """The rows of ``metric_set`` over ``layout``, in the order of :func:`metric_values`' last axis:
    (metric, group, emotion)."""
    if tuple(metric_set) == metrics.METRICS:
        return list(metrics.entries(layout))
    return [(m.name, group, emotion) for m in metric_set for group, emotion in m.rows(layout)]


def by_group(cell_values: np.ndarray, layout: CellLayout) -> np.ndarray:
    """(..., n_cells) -> (..., n_groups, n_emotions)."""
    return cell_values.reshape(cell_values.shape[:-1] + (len(layout.groups), len(layout.emotions)))


def metric_values(rates: Rates, layout: CellLayout, metric_set: Sequence[Metric] = metrics.METRICS) -> np.ndarray:
    """Every metric of ``metric_set`` from per-cell rates: channel -> (..., n_cells) percent (cells in ``layout``
    order, NaN for an empty cell) -> (..., n_rows) percent in :func:`metric_entries` order."""
    views = {channel: CellRates(by_group(array, layout), layout) for channel, array in rates.items()}
    return np.concatenate([m.values(views[m.channel]) for m in metric_set], axis=-1)


def seed_mean_values(rates: Rates, layout: CellLayout, metric_set: Sequence[Metric] = metrics.METRICS) -> np.ndarray:
    """Seed-mean metrics from per-seed rates: channel -> (..., n_seeds, n_cells) -> (..., n_rows) (each metric's
    :meth:`~benchmark.core.metrics.Metric.seed_mean`: smooth metrics at the seed-mean rates, the others per seed)."""
    views = {channel: CellRates(by_group(array, layout), layout) for channel, array in rates.items()}
    return np.concatenate([m.seed_mean(views[m.channel]) for m in metric_set], axis=-1)


def seed_mean_difference(rates_a: Rates, rates_b: Rates, layout: CellLayout,
                         metric_set: Sequence[Metric] = metrics.METRICS) -> np.ndarray:
    """``seed_mean_values(rates_a) - seed_mean_values(rates_b)`` (per-seed rates, both (..., n_seeds, n_cells)), the
    smooth metrics taken once from the difference of the rates (they are linear), the others of each side."""
    def view(rates: Rates) -> dict[str, CellRates]:
        return {channel: CellRates(by_group(array, layout), layout) for channel, array in rates.items()}

    a, b = view(rates_a), view(rates_b)
    difference = view({channel: rates_a[channel] - rates_b[channel] for channel in rates_a})
    return np.concatenate([m.seed_mean(difference[m.channel]) if m.smooth
                           else m.seed_mean(a[m.channel]) - m.seed_mean(b[m.channel]) for m in metric_set], axis=-1)


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


def _row_positions(rows: pd.DataFrame, design: SubjectDesign, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeds, and each row's seed index and image index, checking every image is predicted once per seed."""
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
    return seeds, k, i


def correctness(rows: pd.DataFrame, design: SubjectDesign, where: str) -> tuple[tuple[int, ...], np.ndarray]:
    """Seeds and per-image correctness of one method: bool array of shape (n_tasks, n_seeds, n_images)."""
    seeds, k, i = _row_positions(rows, design, where)
    out = np.zeros((len(design.tasks), len(seeds), len(design.image_ids)), dtype=bool)
    for t, task in enumerate(design.tasks):
        out[t, k, i] = columns.equal(rows[f"pred_{task}"], rows[task])
    return tuple(int(x) for x in seeds), out


@dataclass(frozen=True)
class Predicted:
    """One method's predictions over a design, per task, seed and image: ``correct`` (T, K, I) bool, and
    ``false_cell`` (T, K, I) int, the cell whose class an image was wrongly predicted as (emotion task: its group x
    the predicted emotion; attribute task: the predicted group x its emotion), -1 where it was right or the
    prediction is no declared class."""

    seeds: tuple[int, ...]
    correct: np.ndarray
    false_cell: np.ndarray


def predicted(rows: pd.DataFrame, design: SubjectDesign, where: str) -> Predicted:
    """Seeds, correctness and false-positive cells of one method's prediction rows (see :class:`Predicted`)."""
    seeds, k, i = _row_positions(rows, design, where)
    layout = design.layout
    n_emotions = len(layout.emotions)
    true_group, true_emotion = np.divmod(design.image_cell[i], n_emotions)
    shape = (len(design.tasks), len(seeds), len(design.image_ids))
    cell_type = np.int16 if layout.n_cells < 2 ** 15 else np.int64  # (T, K, I): a million images, ten seeds
    correct, false_cell = np.zeros(shape, dtype=bool), np.full(shape, -1, dtype=cell_type)
    for t, task in enumerate(design.tasks):
        is_emotion = t == len(design.tasks) - 1
        guess = columns.positions(rows[f"pred_{task}"], np.array(layout.emotions if is_emotion else layout.groups,
                                                                 dtype=object))
        right = columns.equal(rows[f"pred_{task}"], rows[task])
        cell = guess + true_group * n_emotions if is_emotion else guess * n_emotions + true_emotion
        correct[t, k, i] = right
        false_cell[t, k, i] = np.where(right | (guess < 0), -1, cell)
    return Predicted(tuple(int(x) for x in seeds), correct, false_cell)


def _per_subject(hits: np.ndarray, cell: np.ndarray, design: SubjectDesign) -> np.ndarray:
    """Per-subject counts per cell of (T, K, I) weights at cells (T, K, I) (-1: nowhere) -> (S, T, K, C)."""
    n_tasks, n_seeds, _ = hits.shape
    n_cells, n_subjects = design.layout.n_cells, len(design.subjects)
    size = n_subjects * n_cells
    sums = np.stack([np.bincount(np.where(cell[t, k] >= 0, design.image_subject * n_cells + cell[t, k], size),
                                 weights=hits[t, k], minlength=size + 1)[:size]
                     for t in range(n_tasks) for k in range(n_seeds)], axis=1)
    return sums.reshape(n_subjects, n_cells, n_tasks, n_seeds).transpose(0, 2, 3, 1).astype(np.int64)


def subject_sums(correct: np.ndarray, design: SubjectDesign) -> np.ndarray:
    """Correct counts per subject and cell: (n_tasks, n_seeds, n_images) bool -> (n_subjects, n_tasks, n_seeds, n_cells)."""
    n_tasks, n_seeds, _ = correct.shape
    n_cells = design.layout.n_cells
    flat = design.image_subject * n_cells + design.image_cell
    size = len(design.subjects) * n_cells
    sums = np.stack([np.bincount(flat, weights=correct[t, k], minlength=size)
                     for t in range(n_tasks) for k in range(n_seeds)], axis=1)
    return sums.reshape(len(design.subjects), n_cells, n_tasks, n_seeds).transpose(0, 2, 3, 1)


def channel_sums(prediction: Predicted, design: SubjectDesign, channels: Sequence[str]) -> Rates:
    """Per-subject numerators of each channel: ``recall`` the correct counts per cell, ``fpr`` the images wrongly
    predicted as each cell's class; channel -> (n_subjects, n_tasks, n_seeds, n_cells) int (exact integer products)."""
    out = {}
    for channel in channels:
        if channel == "recall":
            out[channel] = subject_sums(prediction.correct, design).astype(np.int64)
        elif channel == "fpr":
            out[channel] = _per_subject(np.ones(prediction.false_cell.shape), prediction.false_cell, design)
        else:
            raise ValueError(f"unknown channel {channel!r}")
    return out


def channel_totals(design: SubjectDesign, channels: Sequence[str]) -> Rates:
    """Per-subject denominators of each channel: channel -> (n_subjects, n_tasks, n_cells) int.

    ``recall``: the subject's images in the cell (both tasks). ``fpr``, emotion task: the subject's images of its
    group with another emotion than the cell's; attribute task: the subject's images of the cell's emotion when the
    subject is of another group than the cell's (the images that could be wrongly predicted as the cell's class).
    """
    return counts_totals(design.counts, design.layout, len(design.tasks), channels)


def counts_totals(counts: np.ndarray, layout: CellLayout, n_tasks: int, channels: Sequence[str]) -> Rates:
    """:func:`channel_totals` of rows of images per cell, (n, C) -> channel -> (n, n_tasks, C) int64."""
    per_cell = by_group(counts.astype(np.int64), layout)  # (n, G, E)
    out = {}
    for channel in channels:
        if channel == "recall":
            out[channel] = np.repeat(counts.astype(np.int64)[:, None, :], n_tasks, axis=1)
        elif channel == "fpr":
            attribute_task = per_cell.sum(axis=1, keepdims=True) - per_cell   # other groups, same emotion
            emotion_task = per_cell.sum(axis=2, keepdims=True) - per_cell     # same group, other emotions
            tasks = [attribute_task] * (n_tasks - 1) + [emotion_task]
            out[channel] = np.stack([t.reshape(len(counts), layout.n_cells) for t in tasks], axis=1)
        else:
            raise ValueError(f"unknown channel {channel!r}")
    return out
