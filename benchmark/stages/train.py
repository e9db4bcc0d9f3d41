"""Stage ``train``: every method over every split, fold and seed -> ``results/predictions.parquet``, and one MLflow
run per (split, method) with its parameters, per-seed and seed-aggregated metrics, and what it fitted."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import outputs, paths, predictions, tracking
from benchmark.config import Settings
from benchmark.methods.base import FitTask
from benchmark.methods.registry import build_method
from benchmark.protocol import make_folds

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


def seeds_for(settings: Settings, stochastic: bool) -> list[int]:
    """Seeds a method runs with: ``n_seeds`` consecutive seeds from ``train.seed`` if stochastic, else [0]."""
    if not stochastic:
        return [0]
    return [settings.train.seed + i for i in range(settings.train.n_seeds)]


def train_all(settings: Settings, tables: dict[str, outputs.OutputsTable]) -> list[MethodRun]:
    """Run every (split, method) over all its folds and seeds (all tasks of a split handed to the method at once)."""
    cv = settings.train.cv
    runs = []
    for split in settings.train.splits:
        folds = make_folds(split, tables, cv_folds={"faces": cv.faces, "adfes": cv.adfes}, cv_seed=cv.seed)
        for name in settings.train.methods:
            method = build_method(name, settings)
            if (reason := method.skip_reason(split)) is not None:
                log.info("train: %s: %s skipped: %s", split, name, reason)
                continue
            jobs = [(fold, seed) for fold in folds for seed in seeds_for(settings, method.stochastic)]
            start = time.perf_counter()
            results = method.run([FitTask(fold.train, fold.evaluate, seed) for fold, seed in jobs])
            seconds = time.perf_counter() - start
            rows = [predictions.make_rows(fold.evaluate[partition], split=split, fold=fold.fold, method=name,
                                          seed=seed, partition=partition, gender_probs=probs.gender,
                                          emotion_probs=probs.emotion)
                    for (fold, seed), result in zip(jobs, results) for partition, probs in result.items()]
            runs.append(MethodRun(split, name, [(f.fold, s) for f, s in jobs], pd.concat(rows, ignore_index=True),
                                  method.fitted_arrays(), seconds))
            log.info("train: %s: %s, %d fold(s) x %d seed(s) in %.1f s", split, name, len(folds),
                     len(jobs) // len(folds), seconds)
    return runs


def _scenario(tables: dict[str, outputs.OutputsTable]) -> dict[str, str]:
    """The simulated scenario the tables were sampled from, if any (carried on so every report can name it)."""
    names = sorted({str(t.metadata["scenario"]) for t in tables.values() if t.metadata.get("scenario")})
    return {"scenario": ", ".join(names)} if names else {}


def run(settings: Settings, outputs_dir: Path = paths.OUTPUTS_DIR, target: Path = paths.PREDICTIONS) -> Path:
    """Train and predict every (split, method, fold, seed); write the predictions table atomically; track the runs."""
    if settings.tracking.enabled:
        tracking.probe(settings.tracking)  # an unreachable store fails now, not after the training
    start = time.perf_counter()
    tables = {d: outputs.read(paths.outputs_table(d, outputs_dir)) for d in settings.data.datasets}
    classes = next(iter(tables.values())).emotion_classes
    runs = train_all(settings, tables)
    predictions.write(pd.concat([r.rows for r in runs], ignore_index=True), target, emotion_classes=classes,
                      metadata={"source": settings.data.source, **_scenario(tables)})
    if settings.tracking.enabled:
        from benchmark import training_log

        logged = time.perf_counter()
        training_log.log_runs(settings, runs)
        now = time.perf_counter()
        log.info("train: MLflow logging took %.1f s of the stage's %.1f s", now - logged, now - start)
    return target
