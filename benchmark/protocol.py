"""Evaluation protocol: which rows train a method and which rows it is evaluated on.

Splits:
- ``faces->adfes``: train on all FACES, test on ADFES; FACES itself is also evaluated (partition ``train``), as the
  paper reports it, labelled as training data.
- ``adfes->faces``: the reverse.
- ``cv:faces``, ``cv:adfes``: subject-grouped K-fold cross-validation within one dataset. Subjects are dealt to folds
  at random (seeded) within each gender, so folds are gender-balanced and no subject is in two folds; 0 folds means
  leave one subject out. Only the held-out rows are evaluated (partition ``test``), so each image is predicted once
  per seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from benchmark.errors import BenchmarkError
from benchmark.labels import GENDERS
from benchmark.outputs import OutputsTable

CROSS_DATASET_SPLITS: dict[str, tuple[str, str]] = {"faces->adfes": ("faces", "adfes"), "adfes->faces": ("adfes", "faces")}
CV_SPLITS: dict[str, str] = {"cv:faces": "faces", "cv:adfes": "adfes"}
SPLITS: tuple[str, ...] = tuple(CROSS_DATASET_SPLITS) + tuple(CV_SPLITS)
#: folds per dataset of the ``cv:<dataset>`` splits when none are given (0 = leave one subject out)
DEFAULT_CV_FOLDS: dict[str, int] = {"faces": 5, "adfes": 0}


def split_datasets(split: str) -> tuple[str, ...]:
    """The datasets a split reads: (X, Y) for ``X->Y``, (X,) for ``cv:X``."""
    return CROSS_DATASET_SPLITS.get(split) or (CV_SPLITS[split],)


def test_dataset(split: str) -> str:
    """The dataset whose images a split tests on: Y for ``X->Y``, X for ``cv:X``."""
    return CROSS_DATASET_SPLITS[split][1] if split in CROSS_DATASET_SPLITS else CV_SPLITS[split]


@dataclass(frozen=True)
class Fold:
    """One train/evaluate assignment of a split. ``evaluate`` maps partition (test, train) -> rows."""

    split: str
    fold: int
    train: OutputsTable
    evaluate: dict[str, OutputsTable]


def subject_folds(table: OutputsTable, n_folds: int, *, seed: int, where: str = "train.cv") -> np.ndarray:
    """Fold number of every row, shape (n_images,): subjects are grouped, folds balanced by gender.

    ``n_folds = 0`` gives one fold per subject (leave one subject out, subjects in sorted order). Otherwise each
    gender's subjects are shuffled with ``seed`` and dealt to folds in turn, males first, continuing with females.
    """
    subjects = table.frame["subject"].astype(str).to_numpy()
    genders = table.frame["gender"].to_numpy()
    unique = sorted(set(subjects))
    if n_folds == 0:
        fold_of = {s: i for i, s in enumerate(unique)}
    else:
        if not 2 <= n_folds <= len(unique):
            dataset = table.frame["dataset"].iloc[0]
            raise BenchmarkError(f"{where}: {n_folds} folds for {dataset!r}, which has {len(unique)} subjects; "
                                 f"use 2 to {len(unique)} folds, or 0 for leave one subject out")
        rng = np.random.default_rng(seed)
        gender_of = dict(zip(subjects, genders))
        order = [s for g in GENDERS for s in rng.permutation([s for s in unique if gender_of[s] == g]).tolist()]
        fold_of = {s: i % n_folds for i, s in enumerate(order)}
    return np.array([fold_of[s] for s in subjects], dtype=np.int64)


def make_folds(split: str, tables: dict[str, OutputsTable], *, cv_folds: Mapping[str, int] | None = None,
               cv_seed: int = 0) -> list[Fold]:
    """The folds of ``split`` over the per-dataset outputs ``tables``.

    ``cv_folds`` maps dataset -> folds for the ``cv:<dataset>`` splits (default :data:`DEFAULT_CV_FOLDS`).
    """
    if split not in SPLITS:
        raise BenchmarkError(f"train.splits: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    needed = split_datasets(split)
    for name in needed:
        if name not in tables:
            raise BenchmarkError(f"train.splits: split {split!r} needs dataset {name!r}; add it to data.datasets")
    if split in CROSS_DATASET_SPLITS:
        source, target = CROSS_DATASET_SPLITS[split]
        return [Fold(split, 0, tables[source], {"test": tables[target], "train": tables[source]})]
    dataset = CV_SPLITS[split]
    table = tables[dataset]
    n_folds = (cv_folds or DEFAULT_CV_FOLDS)[dataset]
    fold_of = subject_folds(table, n_folds, seed=cv_seed, where=f"train.cv.{dataset}")
    return [Fold(split, int(f), table.subset(fold_of != f), {"test": table.subset(fold_of == f)})
            for f in np.unique(fold_of)]
