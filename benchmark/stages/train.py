"""Stage ``train``: every method over every split, fold and seed -> ``results/predictions.parquet``."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from benchmark import outputs, paths, predictions
from benchmark.config import Settings
from benchmark.methods.base import FitTask
from benchmark.methods.registry import build_method
from benchmark.protocol import make_folds

log = logging.getLogger(__name__)


def seeds_for(settings: Settings, stochastic: bool) -> list[int]:
    """Seeds a method runs with: ``n_seeds`` consecutive seeds from ``train.seed`` if stochastic, else [0]."""
    if not stochastic:
        return [0]
    return [settings.train.seed + i for i in range(settings.train.n_seeds)]


def run(settings: Settings, outputs_dir: Path = paths.OUTPUTS_DIR, target: Path = paths.PREDICTIONS) -> Path:
    """Train and predict every (split, method, fold, seed); write the predictions table atomically."""
    tables = {d: outputs.read(paths.outputs_table(d, outputs_dir)) for d in settings.data.datasets}
    classes = next(iter(tables.values())).emotion_classes
    parts: list[pd.DataFrame] = []
    for split in settings.train.splits:
        folds = make_folds(split, tables)
        for name in settings.train.methods:
            method = build_method(name, settings)
            seeds = seeds_for(settings, method.stochastic)
            jobs = [(fold, seed) for fold in folds for seed in seeds]
            results = method.run([FitTask(fold.train, fold.evaluate, seed) for fold, seed in jobs])
            for (fold, seed), result in zip(jobs, results):
                for partition, probs in result.items():
                    parts.append(predictions.make_rows(fold.evaluate[partition], split=split, fold=fold.fold,
                                                       method=name, seed=seed,
                                                       partition=partition, gender_probs=probs.gender,
                                                       emotion_probs=probs.emotion))
            log.info("train: %s: %s, %d fold(s) x %d seed(s)", split, name, len(folds), len(seeds))
    predictions.write(pd.concat(parts, ignore_index=True), target, emotion_classes=classes,
                      metadata={"source": settings.data.source})
    return target
