"""Evaluation protocol: which rows train a method and which rows it is evaluated on.

Splits:
- ``faces->adfes``: train on all FACES, test on ADFES; FACES itself is also evaluated (partition ``train``), as the
  paper reports it, labelled as training data.
- ``adfes->faces``: the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.errors import BenchmarkError
from benchmark.outputs import OutputsTable

CROSS_DATASET_SPLITS: dict[str, tuple[str, str]] = {"faces->adfes": ("faces", "adfes"), "adfes->faces": ("adfes", "faces")}
SPLITS: tuple[str, ...] = tuple(CROSS_DATASET_SPLITS)


@dataclass(frozen=True)
class Fold:
    """One train/evaluate assignment of a split. ``evaluate`` maps partition (test, train) -> rows."""

    split: str
    fold: int
    train: OutputsTable
    evaluate: dict[str, OutputsTable]


def make_folds(split: str, tables: dict[str, OutputsTable]) -> list[Fold]:
    """The folds of ``split`` over the per-dataset outputs ``tables``."""
    if split in CROSS_DATASET_SPLITS:
        source, target = CROSS_DATASET_SPLITS[split]
        for name in (source, target):
            if name not in tables:
                raise BenchmarkError(f"train.splits: split {split!r} needs dataset {name!r}; add it to data.datasets")
        return [Fold(split, 0, tables[source], {"test": tables[target], "train": tables[source]})]
    raise BenchmarkError(f"train.splits: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
