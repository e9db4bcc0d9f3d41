"""Evaluation protocol: which rows train a method and which rows it is evaluated on.

Splits, between any declared datasets (:mod:`benchmark.core.design`) that share the protected attribute:
- ``A->B``: train on all of A, test on B; A itself is also evaluated (partition ``train``), as the paper reports
  FACES, labelled as training data.
- ``cv:A``: subject-grouped K-fold cross-validation within A. Subjects are dealt to folds at random (seeded) within
  each attribute group, so folds are balanced by group and no subject is in two folds; 0 folds means leave one
  subject out. Only the held-out rows are evaluated (partition ``test``), so each image is predicted once per seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from benchmark.core.design import Attribute
from benchmark.core.outputs import OutputsTable
from benchmark.infra.errors import BenchmarkError

SPLIT_FORMS = "A->B (train on dataset A, test on B) or cv:A (subject-grouped CV within A)"
_CROSS = re.compile(r"^(?P<train>[^\s:>-][^\s:>]*)->(?P<test>[^\s:>-][^\s:>]*)$")
_CV = re.compile(r"^cv:(?P<dataset>[^\s:>]+)$")


@dataclass(frozen=True)
class Split:
    """A parsed split name: ``train`` is the dataset methods are fitted on, ``test`` the one they are tested on
    (the same dataset for ``cv:A``)."""

    name: str
    train: str
    test: str

    @property
    def is_cv(self) -> bool:
        return self.name.startswith("cv:")

    @property
    def datasets(self) -> tuple[str, ...]:
        """The datasets the split reads."""
        return (self.train,) if self.is_cv else (self.train, self.test)


def parse_split(name: str, *, where: str = "train.splits") -> Split:
    """``A->B`` or ``cv:A``; one line naming ``where`` otherwise."""
    if (m := _CV.match(name)) is not None:
        return Split(name, m["dataset"], m["dataset"])
    if (m := _CROSS.match(name)) is not None and m["train"] != m["test"]:
        return Split(name, m["train"], m["test"])
    raise BenchmarkError(f"{where}: {name!r} is not a split; expected {SPLIT_FORMS} between two different datasets")


def shared_attribute(split: str, attributes: dict[str, Attribute], *, where: str = "train.splits") -> Attribute:
    """The protected attribute of ``split`` given each dataset's (dataset -> :class:`Attribute`): both datasets must
    have it with the same groups and model outputs (a method trained on one predicts the other's groups from the same
    model's outputs)."""
    parsed = parse_split(split, where=where)
    missing = [d for d in parsed.datasets if d not in attributes]
    if missing:
        raise BenchmarkError(f"{where}: split {split!r} needs dataset {missing[0]!r}; add it to data.datasets")
    found, other = attributes[parsed.train], attributes[parsed.test]
    if (found.groups, found.outputs) != (other.groups, other.outputs):
        raise BenchmarkError(f"{where}: split {split!r}: attribute {found.name!r} has groups {list(found.groups)} "
                             f"(outputs {list(found.outputs)}) in {parsed.train} but {list(other.groups)} (outputs "
                             f"{list(other.outputs)}) in {parsed.test}; a split needs datasets that share the attribute")
    return found


def test_dataset(split: str) -> str:
    """The dataset whose images a split tests on: B for ``A->B``, A for ``cv:A``."""
    return parse_split(split).test


@dataclass(frozen=True)
class Fold:
    """One train/evaluate assignment of a split. ``evaluate`` maps partition (test, train) -> rows."""

    split: str
    fold: int
    train: OutputsTable
    evaluate: dict[str, OutputsTable]


def subject_folds(table: OutputsTable, attribute: Attribute, n_folds: int, *, seed: int,
                  where: str = "train.cv") -> np.ndarray:
    """Fold number of every row, shape (n_images,): subjects are grouped, folds balanced by attribute group.

    ``n_folds = 0`` gives one fold per subject (leave one subject out, subjects in sorted order). Otherwise each
    group's subjects are shuffled with ``seed`` and dealt to folds in turn, groups in declared order (for gender:
    males first, continuing with females).
    """
    subjects = table.frame["subject"].astype(str).to_numpy()
    groups = attribute.truth(table.frame)
    unique = sorted(set(subjects))
    if n_folds == 0:
        fold_of = {s: i for i, s in enumerate(unique)}
    else:
        if not 2 <= n_folds <= len(unique):
            raise BenchmarkError(f"{where}: {n_folds} folds for {table.design.name!r}, which has {len(unique)} "
                                 f"subjects; use 2 to {len(unique)} folds, or 0 for leave one subject out")
        rng = np.random.default_rng(seed)
        group_of = dict(zip(subjects, groups))
        order = [s for g in attribute.groups for s in rng.permutation([s for s in unique if group_of[s] == g]).tolist()]
        fold_of = {s: i % n_folds for i, s in enumerate(order)}
    return np.array([fold_of[s] for s in subjects], dtype=np.int64)


def make_folds(split: str, tables: dict[str, OutputsTable], *, attribute: Attribute, cv_folds: int = 5,
               cv_seed: int = 0) -> list[Fold]:
    """The folds of ``split`` over the per-dataset outputs ``tables``; ``cv_folds`` is the number of folds of a
    ``cv:`` split (0 = leave one subject out)."""
    parsed = parse_split(split)
    for name in parsed.datasets:
        if name not in tables:
            raise BenchmarkError(f"train.splits: split {split!r} needs dataset {name!r}; add it to data.datasets")
    if not parsed.is_cv:
        return [Fold(split, 0, tables[parsed.train], {"test": tables[parsed.test], "train": tables[parsed.train]})]
    table = tables[parsed.train]
    fold_of = subject_folds(table, attribute, cv_folds, seed=cv_seed, where=f"train.cv.folds.{parsed.train}")
    return [Fold(split, int(f), table.subset(fold_of != f), {"test": table.subset(fold_of == f)})
            for f in np.unique(fold_of)]
