"""The run matrix: every method over every split, fold and seed, as prediction rows.

All folds x seeds of a (split, method) are handed to the method at once (the vectorised corrector trains them in one
loop); the method's results are checked against the method contract before they become rows. Two methods of a split
with equal :meth:`~benchmark.methods.method.Method.configuration` are fitted once: the second gets the first's results
under its own name (``corrector_tuned`` when the study chose ``train.corrector``'s configuration).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.core import design as designs
from benchmark.core import outputs, predictions
from benchmark.core.design import Attribute, CellLayout
from benchmark.core.outputs import OutputsTable
from benchmark.core.protocol import make_folds, parse_split, shared_attribute
from benchmark.core.settings import Settings
from benchmark.infra import paths
from benchmark.methods.method import FitTask, check_results
from benchmark.methods.method_registry import build_method

log = logging.getLogger(__name__)


@dataclass
class MethodRun:
    """One (split, method) cell of the run matrix: its prediction rows, what it fitted per job, and its time."""

    split: str
    method: str
    jobs: list[tuple[int, int]]                       # (fold, seed) per task
    rows: pd.DataFrame
    fitted: list[dict[str, np.ndarray]] = field(default_factory=list)
    seconds: float = 0.0
    shared_with: str | None = None  # the method of the same split whose equal configuration gave these results


def seeds_for(settings: Settings, stochastic: bool) -> list[int]:
    """Seeds a method runs with: ``n_seeds`` consecutive seeds from ``train.seed`` if stochastic, else [0]."""
    if not stochastic:
        return [0]
    return [settings.train.seed + i for i in range(settings.train.n_seeds)]


@dataclass(frozen=True)
class TrainInputs:
    """What the train stage resolves once at its start and hands down: the outputs tables of ``data.datasets``, each
    one's protected attribute (from the table's own declaration: it travels with the data) and cells, and the attribute
    of each split of ``train.splits``."""

    tables: dict[str, OutputsTable]
    attributes: dict[str, Attribute]
    splits: dict[str, Attribute]

    @property
    def layouts(self) -> dict[str, CellLayout]:
        """dataset -> its cells (attribute groups x emotions)."""
        return {d: designs.layout(t.design, self.attributes[d]) for d, t in self.tables.items()}


def train_inputs(settings: Settings, outputs_dir: Path = paths.OUTPUTS_DIR) -> TrainInputs:
    """Read and check the outputs tables of ``data.datasets`` for ``data.attribute``, once."""
    tables, attributes = {}, {}
    for dataset in settings.data.datasets:
        path = paths.outputs_table(dataset, outputs_dir)
        tables[dataset] = outputs.read(path)
        attributes[dataset] = designs.attribute_of(tables[dataset].design, settings.data.attribute)
        outputs.check_attribute(tables[dataset], attributes[dataset], where=str(path))
    return TrainInputs(tables, attributes, {split: shared_attribute(split, attributes) for split in settings.train.splits})


def train_all(settings: Settings, inputs: TrainInputs) -> list[MethodRun]:
    """Run every (split, method) over all its folds and seeds (all tasks of a split handed to the method at once)."""
    cv = settings.train.cv
    tables = inputs.tables
    runs = []
    for split in settings.train.splits:
        attribute = inputs.splits[split]
        folds = make_folds(split, tables, attribute=attribute, cv_folds=cv.folds_of(parse_split(split).train),
                           cv_seed=cv.seed)
        fitted_by: dict[Hashable, MethodRun] = {}  # (configuration, jobs) -> the run that fitted them, this split
        for name in settings.train.methods:
            method = build_method(name, settings)
            if (reason := method.skip_reason(split)) is not None:
                log.info("train: %s: %s skipped: %s", split, name, reason)
                continue
            jobs = [(fold, seed) for fold in folds for seed in seeds_for(settings, method.stochastic)]
            configuration = method.configuration()
            key = None if configuration is None else (configuration, tuple((f.fold, s) for f, s in jobs))
            if key is not None and key in fitted_by:
                first = fitted_by[key]
                runs.append(dataclasses.replace(first, method=name, rows=first.rows.assign(method=name), seconds=0.0,
                                                shared_with=first.method))
                log.info("train: %s: %s has the configuration of %s: its %d models' results are shared", split, name,
                         first.method, len(jobs))
                continue
            tasks = [FitTask(fold.train, fold.evaluate, seed, attribute) for fold, seed in jobs]
            start = time.perf_counter()
            results = check_results(name, tasks, method.run(tasks))
            seconds = time.perf_counter() - start
            pieces = [predictions.Predicted(fold.evaluate[partition], fold.fold, seed, partition, probs.attribute,
                                            probs.emotion)
                      for (fold, seed), result in zip(jobs, results) for partition, probs in result.items()]
            rows = predictions.rows_of(pieces, attribute=attribute, split=split, method=name)
            runs.append(MethodRun(split, name, [(f.fold, s) for f, s in jobs], rows, method.fitted_arrays(), seconds))
            if key is not None:
                fitted_by[key] = runs[-1]
            log.info("train: %s: %s, %d fold(s) x %d seed(s) in %.1f s", split, name, len(folds),
                     len(jobs) // len(folds), seconds)
    return runs
