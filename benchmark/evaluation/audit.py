"""The predicted-attribute audit: how much of a gap the attribute model's own errors create or hide.

Every emotion-task metric of the cell accuracies (:data:`benchmark.core.metrics.RECALL`: cells, per-emotion gaps,
pairwise and signed gaps, macro, largest and average gap, worst cell) is computed twice for every method and
evaluation group (split x partition x dataset): with the cells' groups taken from the **true** attribute (as everywhere else in the benchmark) and from the attribute
model's **prediction** (the ``uncorrected`` method's, e.g. FairFace's gender), which is all a deployed system sees.
Their difference (predicted - true) gets an interval from the same subject resamples as both estimates
(:func:`benchmark.stats.subject_resamples`, stratified by true group, so a person's images move together; seeds held
fixed, the estimate is the seed mean, as in stats.parquet). Intervals are percentile intervals; a resample in which a
predicted-group cell is empty is left out of that row's interval (``n_valid``).

Beside it, the attribute model's accuracy per true emotion (its confusion, pooled over the groups, with the same kind
of interval), per dataset: FairFace's gender accuracy by expression.
"""

from __future__ import annotations

import functools
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import stats
from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.core.predictions import EMOTION_TASK
from benchmark.infra import atomic
from benchmark.infra.processes import Job, run_jobs
from benchmark.stats import StatsConfig

__all__ = ["ATTRIBUTE_MODEL", "ATTRIBUTE_FILE", "GAPS_FILE", "GROUPINGS", "attribute_accuracy",
           "attribute_job", "gap_audit", "gap_job", "write"]

#: the method whose attribute prediction is the attribute model's own
ATTRIBUTE_MODEL = "uncorrected"
#: the two ways of assigning an image to a cell, and their difference
GROUPINGS: tuple[str, ...] = ("true", "predicted", "difference")
_GROUP_COLUMNS = ["split", "partition", "dataset"]
#: the audit's files, beside stats.parquet (results/)
GAPS_FILE = "audit.parquet"
ATTRIBUTE_FILE = "attribute_audit.parquet"


def _rng(config: StatsConfig, key: str) -> np.random.Generator:
    return np.random.default_rng([config.seed, zlib.crc32(f"audit|{key}".encode())])


def _images(rows: pd.DataFrame, attribute: str) -> pd.DataFrame:
    """One row per image of an evaluation group: image_id, subject, true group, emotion and the attribute model's
    predicted group (from the ``uncorrected`` rows, which predict every image the same way in every seed)."""
    model = rows[rows["method"] == ATTRIBUTE_MODEL]
    images = model.drop_duplicates("image_id").sort_values("image_id", kind="stable")
    return images[["image_id", "subject", attribute, "emotion", f"pred_{attribute}"]].reset_index(drop=True)


def _cell_index(groups: np.ndarray, emotions: np.ndarray, layout: CellLayout) -> np.ndarray:
    g = {name: i for i, name in enumerate(layout.groups)}
    e = {name: i for i, name in enumerate(layout.emotions)}
    return np.array([g[a] for a in groups]) * len(layout.emotions) + np.array([e[b] for b in emotions])


def _sums(correct: np.ndarray, subject: np.ndarray, cell: np.ndarray, n_subjects: int, n_cells: int) -> np.ndarray:
    """(n_seeds, n_images) correctness -> per subject, seed and cell sums, shape (n_subjects, n_seeds * n_cells)."""
    flat = subject * n_cells + cell
    return np.stack([np.bincount(flat, weights=c, minlength=n_subjects * n_cells) for c in correct], axis=1) \
        .reshape(n_subjects, n_cells, len(correct)).transpose(0, 2, 1).reshape(n_subjects, -1)


def _metrics(weights: np.ndarray, sums: np.ndarray, counts: np.ndarray, layout: CellLayout, n_seeds: int) -> np.ndarray:
    """Seed-mean metrics (n_sets, n_metrics) of subject weights (n_sets, n_subjects)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = 100.0 * (weights @ sums).reshape(len(weights), n_seeds, -1) / (weights @ counts)[:, None, :]
    return stats.metric_values({"recall": accuracy}, layout, metrics.RECALL).mean(axis=1)


def _percentile(values: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile interval per column of (n_resamples, m) with NaN resamples left out; and the valid counts."""
    valid = np.isfinite(values).sum(axis=0)
    alpha = 1.0 - ci
    with np.errstate(invalid="ignore"):
        low, high = (np.nanquantile(np.where(np.isfinite(values), values, np.nan), q, axis=0)
                     if valid.any() else np.full(values.shape[1], np.nan) for q in (alpha / 2, 1 - alpha / 2))
    return low, high, valid


def _group_audit(rows: pd.DataFrame, *, attribute: str, layout: CellLayout, config: StatsConfig,
                 key: str) -> pd.DataFrame:
    images = _images(rows, attribute)
    subjects, subject = np.unique(images["subject"].astype(str).to_numpy(), return_inverse=True)
    subject_group = np.empty(len(subjects), dtype=object)
    subject_group[subject] = images[attribute].to_numpy()
    weights = stats.subject_resamples(subject_group, groups=layout.groups, n_resamples=config.n_resamples,
                                      rng=_rng(config, key)).astype(np.float64)
    everyone = np.ones((1, len(subjects)))
    cells = {grouping: _cell_index(images[column].to_numpy(), images["emotion"].to_numpy(), layout)
             for grouping, column in (("true", attribute), ("predicted", f"pred_{attribute}"))}
    counts = {g: _sums(np.ones((1, len(images))), subject, c, len(subjects), layout.n_cells) for g, c in cells.items()}
    position = pd.Index(images["image_id"])
    entries = stats.metric_entries(layout, metrics.RECALL)
    frames = []
    for method, method_rows in rows.groupby("method", sort=True, observed=True):
        seeds = np.unique(method_rows["seed"])
        correct = np.zeros((len(seeds), len(images)))
        i = position.get_indexer(method_rows["image_id"])
        k = np.searchsorted(seeds, method_rows["seed"].to_numpy())
        correct[k, i] = (method_rows[f"pred_{EMOTION_TASK}"].to_numpy() == method_rows[EMOTION_TASK].to_numpy())
        point, boot = {}, {}
        for grouping, cell in cells.items():
            sums = _sums(correct, subject, cell, len(subjects), layout.n_cells)
            point[grouping] = _metrics(everyone, sums, counts[grouping], layout, len(seeds))[0]
            boot[grouping] = _metrics(weights, sums, counts[grouping], layout, len(seeds))
        point["difference"] = point["predicted"] - point["true"]
        boot["difference"] = boot["predicted"] - boot["true"]
        for grouping in GROUPINGS:
            low, high, valid = _percentile(boot[grouping], config.ci)
            frame = pd.DataFrame(entries, columns=["metric", "group", "emotion"])
            frame.insert(0, "grouping", grouping)
            frame.insert(0, "method", str(method))
            frame = frame.assign(task=EMOTION_TASK, estimate=point[grouping], ci_low=low, ci_high=high,
                                 n_valid=valid.astype(np.int64), n_subjects=np.int64(len(subjects)),
                                 n_seeds=np.int64(len(seeds)))
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def gap_audit(frame: pd.DataFrame, *, attribute: str, layouts: dict[str, CellLayout],
              config: StatsConfig = StatsConfig()) -> pd.DataFrame:
    """Every emotion metric by true and by predicted group, and their difference, per evaluation group and method.

    Parameters
    ----------
    frame : predictions table (its ``uncorrected`` rows give the attribute model's prediction of each image).
    attribute : the protected attribute; layouts : dataset -> cells.

    Returns
    -------
    DataFrame with columns split, partition, dataset, method, grouping (true | predicted | difference), metric, group,
    emotion, task, estimate, ci_low, ci_high (percent; differences in percentage points), n_valid (resamples in the
    interval), n_subjects, n_seeds; empty when the table has no ``uncorrected`` rows.
    """
    return run_jobs([gap_job(frame, attribute=attribute, layouts=layouts, config=config)])[0]


def gap_job(frame: pd.DataFrame, *, attribute: str, layouts: dict[str, CellLayout],
              config: StatsConfig = StatsConfig()) -> Job:
    """:func:`gap_audit` as a :class:`~benchmark.infra.processes.Job`: one call per evaluation group."""
    if ATTRIBUTE_MODEL not in set(frame["method"]):
        return Job([], _concat)
    return Job([functools.partial(_keyed_group_audit, group, rows, attribute=attribute, layout=layouts[group[2]],
                                    config=config)
                  for group, rows in frame.groupby(_GROUP_COLUMNS, sort=True, observed=True)], _concat)


def _keyed_group_audit(group: tuple, rows: pd.DataFrame, *, attribute: str, layout: CellLayout,
                       config: StatsConfig) -> pd.DataFrame:
    """:func:`_group_audit` of one evaluation group, its key columns in front."""
    table = _group_audit(rows, attribute=attribute, layout=layout, config=config, key="|".join(map(str, group)))
    for column, value in reversed(list(zip(_GROUP_COLUMNS, group))):
        table.insert(0, column, value)
    return table


def _concat(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    """The pieces in one table; an empty table without pieces."""
    return pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame()


def attribute_accuracy(frame: pd.DataFrame, *, attribute: str, layouts: dict[str, CellLayout],
                       config: StatsConfig = StatsConfig()) -> pd.DataFrame:
    """The attribute model's confusion per dataset and true emotion.

    Returns
    -------
    DataFrame, per dataset and true emotion: ``accuracy`` (percent of images whose predicted group is the true one,
    pooled over groups) with a subject-bootstrap percentile interval, and per true group the percent predicted as each
    group (columns ``<true> -> <predicted>``), and the number of images. Empty without ``uncorrected`` rows.
    """
    return run_jobs([attribute_job(frame, attribute=attribute, layouts=layouts, config=config)])[0]


def attribute_job(frame: pd.DataFrame, *, attribute: str, layouts: dict[str, CellLayout],
                    config: StatsConfig = StatsConfig()) -> Job:
    """:func:`attribute_accuracy` as a :class:`~benchmark.infra.processes.Job`: one call per dataset, given only its
    images (:func:`_images`)."""
    if ATTRIBUTE_MODEL not in set(frame["method"]):
        return Job([], _records)
    return Job([functools.partial(_dataset_accuracy, dataset, _images(rows, attribute), attribute=attribute,
                                    layout=layouts[dataset], config=config)
                  for dataset, rows in frame.groupby("dataset", sort=True, observed=True)], _records)


def _dataset_accuracy(dataset: str, images: pd.DataFrame, *, attribute: str, layout: CellLayout,
                      config: StatsConfig) -> list[dict]:
    """:func:`attribute_accuracy`'s rows of one dataset, one per true emotion."""
    subjects, subject = np.unique(images["subject"].astype(str).to_numpy(), return_inverse=True)
    subject_group = np.empty(len(subjects), dtype=object)
    subject_group[subject] = images[attribute].to_numpy()
    weights = stats.subject_resamples(subject_group, groups=layout.groups, n_resamples=config.n_resamples,
                                      rng=_rng(config, f"attribute|{dataset}")).astype(np.float64)
    emotion_index = {e: i for i, e in enumerate(layout.emotions)}
    cell = np.array([emotion_index[e] for e in images["emotion"]])
    right = (images[attribute] == images[f"pred_{attribute}"]).to_numpy(dtype=float)
    sums = _sums(right[None], subject, cell, len(subjects), len(layout.emotions))
    counts = _sums(np.ones((1, len(images))), subject, cell, len(subjects), len(layout.emotions))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = 100.0 * (weights @ sums) / (weights @ counts)
    low, high, _ = _percentile(boot, config.ci)
    out = []
    for e, emotion in enumerate(layout.emotions):
        these = images[images["emotion"] == emotion]
        row = {"dataset": dataset, "emotion": emotion, "n_images": len(these),
               "accuracy": 100.0 * float(right[cell == e].mean()), "ci_low": low[e], "ci_high": high[e]}
        for true in layout.groups:
            of_group = these[these[attribute] == true]
            for predicted in layout.groups:
                row[f"{true} -> {predicted}"] = (100.0 * float((of_group[f"pred_{attribute}"] == predicted).mean())
                                                 if len(of_group) else np.nan)
        out.append(row)
    return out


def _records(pieces: list[list[dict]]) -> pd.DataFrame:
    """The pieces' rows in one table; an empty table without pieces."""
    return pd.DataFrame([row for rows in pieces for row in rows])


def write(gaps: pd.DataFrame, accuracy: pd.DataFrame, *, results_dir: Path) -> list[Path]:
    """Write both audits, ``gaps`` (:func:`gap_audit`) as :data:`GAPS_FILE` and ``accuracy``
    (:func:`attribute_accuracy`) as :data:`ATTRIBUTE_FILE`, atomically into ``results_dir``; returns them. Without
    ``uncorrected`` rows both are empty tables (the report then says the audit needs that method)."""
    written = []
    for name, table in ((GAPS_FILE, gaps), (ATTRIBUTE_FILE, accuracy)):
        target = results_dir / name
        atomic.write_with(target, lambda tmp, t=table: t.to_parquet(tmp, index=False))
        written.append(target)
    return written
