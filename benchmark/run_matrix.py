"""The run matrix: every method over every split, fold and seed, as prediction rows.

All folds x seeds of a (split, method) are handed to the method at once (the vectorised corrector trains them in one
loop), and a method whose tasks are independent (the corrector on the CPU) gets those of every split with its
configuration in one call (fewer, larger stacks; each split's run then names the splits that shared the call and its
time); the method's results are checked against the method contract before they become rows. Two methods of a split
with equal :meth:`~benchmark.methods.base.Method.configuration` are fitted once: the second gets the first's results
under its own name (``corrector_tuned`` when the study chose ``train.corrector``'s configuration).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark import predictions
from benchmark.config import Settings
from benchmark.design import Attribute
from benchmark.methods.base import FitTask, Method, Probabilities, check_results
from benchmark.methods.registry import build_method
from benchmark.outputs import OutputsTable
from benchmark.params import split_attribute
from benchmark.protocol import Fold, make_folds, parse_split

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
    #: the splits whose models were fitted in the same call as this run's (``seconds`` is that call's time, shared by
    #: them all); empty when this run's models were fitted alone
    trained_with: tuple[str, ...] = ()


@dataclass
class _Cell:
    """One (split, method) to run: the method, its number of folds, its (fold, seed) jobs and their fit tasks."""

    split: str
    name: str
    method: Method
    folds: int
    jobs: list[tuple[Fold, int]]
    tasks: list[FitTask]
    same_as: int | None  # the earlier cell of this split with equal configuration and jobs, whose results it shares


def seeds_for(settings: Settings, stochastic: bool) -> list[int]:
    """Seeds a method runs with: ``n_seeds`` consecutive seeds from ``train.seed`` if stochastic, else [0]."""
    if not stochastic:
        return [0]
    return [settings.train.seed + i for i in range(settings.train.n_seeds)]


def split_attribute_of(split: str, tables: dict[str, OutputsTable], attribute: str) -> Attribute:
    """The attribute of ``split`` from the tables' own declarations (they travel with the data)."""
    return split_attribute(split, {name: t.design for name, t in tables.items()}, attribute)


def train_all(settings: Settings, tables: dict[str, OutputsTable]) -> list[MethodRun]:
    """Run every (split, method) over all its folds and seeds. All tasks of a (split, method) go to the method at
    once; a method with :attr:`~benchmark.methods.base.Method.independent_tasks` gets the tasks of every split with
    its configuration in one call (the corrector trains them in fewer, larger stacks)."""
    cells = _plan(settings, tables)
    fitted: dict[int, MethodRun] = {}
    for batch in _batches(cells):
        fitted.update(zip(batch, _fit(cells, batch)))
    runs = []
    for i, cell in enumerate(cells):
        if cell.same_as is None:
            runs.append(fitted[i])
            continue
        first = fitted[cell.same_as]
        runs.append(dataclasses.replace(first, method=cell.name, rows=first.rows.assign(method=cell.name), seconds=0.0,
                                        shared_with=first.method, trained_with=()))
        log.info("train: %s: %s has the configuration of %s: its %d models' results are shared", cell.split,
                 cell.name, first.method, len(cell.jobs))
    return runs


def _plan(settings: Settings, tables: dict[str, OutputsTable]) -> list[_Cell]:
    """Every (split, method) that runs, in (split, method) order, with its jobs; a method of a split whose
    configuration and jobs equal an earlier one's there points at it (``same_as``)."""
    cv = settings.train.cv
    cells: list[_Cell] = []
    for split in settings.train.splits:
        attribute = split_attribute_of(split, tables, settings.data.attribute)
        folds = make_folds(split, tables, attribute=attribute, cv_folds=cv.folds_of(parse_split(split).train),
                           cv_seed=cv.seed)
        first_of: dict[Hashable, int] = {}  # (configuration, jobs) -> the cell of this split that fits them
        for name in settings.train.methods:
            method = build_method(name, settings)
            if (reason := method.skip_reason(split)) is not None:
                log.info("train: %s: %s skipped: %s", split, name, reason)
                continue
            jobs = [(fold, seed) for fold in folds for seed in seeds_for(settings, method.stochastic)]
            configuration = method.configuration()
            key = None if configuration is None else (configuration, tuple((f.fold, s) for f, s in jobs))
            tasks = [FitTask(fold.train, fold.evaluate, seed, attribute) for fold, seed in jobs]
            same_as = None if key is None else first_of.setdefault(key, len(cells))
            cells.append(_Cell(split, name, method, len(folds), jobs, tasks, None if same_as == len(cells) else same_as))
    return cells


def _batches(cells: list[_Cell]) -> list[list[int]]:
    """Indices of the cells to fit in one call, in order of their first cell: the cells of every split whose method
    has independent tasks and equal configuration, attribute and emotion classes together; any other cell alone.
    Cells that share an earlier cell's results (``same_as``) are in none."""
    batches: dict[Hashable, list[int]] = {}
    for i, cell in enumerate(cells):
        if cell.same_as is not None:
            continue
        configuration = cell.method.configuration()
        pooled = bool(cell.tasks) and configuration is not None and cell.method.independent_tasks
        key = (configuration, cell.tasks[0].attribute, cell.tasks[0].train.emotion_classes) if pooled else i
        batches.setdefault(key, []).append(i)
    return list(batches.values())


def _fit(cells: list[_Cell], batch: list[int]) -> list[MethodRun]:
    """Fit the tasks of the cells ``batch`` in one call of the first cell's method (equal configurations: equal
    results); one run per cell, with its share of the results and fitted arrays and the call's time."""
    method, name = cells[batch[0]].method, cells[batch[0]].name
    tasks = [task for i in batch for task in cells[i].tasks]
    start = time.perf_counter()
    results = check_results(name, tasks, method.run(tasks))
    seconds = time.perf_counter() - start
    fitted = method.fitted_arrays()
    splits = tuple(cells[i].split for i in batch)
    if len(batch) > 1:
        log.info("train: %s: %d models of %d splits (%s) fitted together in %.1f s", name, len(tasks), len(batch),
                 ", ".join(splits), seconds)
    runs, offset = [], 0
    for i in batch:
        cell, end = cells[i], offset + len(cells[i].tasks)
        runs.append(_method_run(cell, results[offset:end], fitted[offset:end], seconds,
                                splits if len(batch) > 1 else ()))
        offset = end
    return runs


def _method_run(cell: _Cell, results: list[dict[str, Probabilities]], fitted: list[dict[str, np.ndarray]],
                seconds: float, trained_with: tuple[str, ...]) -> MethodRun:
    """The run of ``cell`` from its tasks' results (in task order) and fitted arrays."""
    pieces = [predictions.Predicted(fold.evaluate[partition], fold.fold, seed, partition, probs.attribute,
                                    probs.emotion)
              for (fold, seed), result in zip(cell.jobs, results) for partition, probs in result.items()]
    rows = predictions.rows_of(pieces, attribute=cell.tasks[0].attribute, split=cell.split, method=cell.name)
    if not trained_with:
        log.info("train: %s: %s, %d fold(s) x %d seed(s) in %.1f s", cell.split, cell.name, cell.folds,
                 len(cell.jobs) // cell.folds, seconds)
    return MethodRun(cell.split, cell.name, [(f.fold, s) for f, s in cell.jobs], rows, fitted, seconds,
                     trained_with=trained_with)
