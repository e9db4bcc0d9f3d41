"""Stage ``train``: every method over every split, fold and seed -> ``results/predictions.parquet``, and one MLflow
run per (split, method) with its parameters, per-seed and seed-aggregated metrics, and what it fitted."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pandas as pd

from benchmark.core import outputs, predictions
from benchmark.core.protocol import make_folds, parse_split
from benchmark.core.settings import Settings
from benchmark.experiment import logged_models, tracking, training_log
from benchmark.experiment.run_matrix import TrainInputs, train_all, train_inputs
from benchmark.infra import memory, paths, processes
from benchmark.methods import fork_server, training_footprint

log = logging.getLogger(__name__)

#: outputs-table metadata carried into the predictions table (what travels with the data)
CARRIED_METADATA: tuple[str, ...] = ("source", "scenario")


def _carried(tables: dict[str, outputs.OutputsTable]) -> dict[str, str]:
    """The source and, for simulated data, the scenario of the tables (so every report can name them)."""
    out = {}
    for key in CARRIED_METADATA:
        values = sorted({str(t.metadata[key]) for t in tables.values() if t.metadata.get(key)})
        if values:
            out[key] = ", ".join(values)
    return out


def _prepare_model_logging() -> threading.Thread:
    """:func:`benchmark.experiment.logged_models.prepare` in a thread of this process, which mostly waits while the
    trainer's worker processes train."""
    thread = threading.Thread(target=logged_models.prepare, name="prepare-model-logging", daemon=True)
    thread.start()
    return thread


def check_memory(settings: Settings, inputs: TrainInputs) -> float:
    """Refuse in one line, before any training, a corrector configuration whose stack of networks this machine cannot
    hold (:func:`benchmark.methods.training_footprint.stack_needs`, at the split with the most models); returns the
    estimate in bytes (0 without the ``corrector`` method). ``corrector_tuned`` trains within ``tune.space``, which
    the tune stage checks."""
    train, tables = settings.train, inputs.tables
    if "corrector" not in train.methods:
        return 0.0
    worst: tuple[float, list[memory.Need], float, str] | None = None
    for split in train.splits:
        attribute = inputs.splits[split]
        folds = make_folds(split, tables, attribute=attribute, cv_folds=train.cv.folds_of(parse_split(split).train),
                           cv_seed=train.cv.seed)
        n_emotion = len(next(iter(tables.values())).emotion_classes)
        needs, fixed = training_footprint.stack_needs(
            train.corrector, n_models=len(folds) * train.n_seeds, n_rows=max(len(f.train.frame) for f in folds),
            n_in=n_emotion + len(attribute.outputs), n_out=n_emotion + len(attribute.groups),
            workers=len(processes.available_cores()), models_value=train.n_seeds)
        total = fixed + sum(n.bytes for n in needs)
        if worst is None or total > worst[0]:
            worst = (total, needs, fixed, split)
    total, needs, fixed, split = worst
    return memory.check(needs, fixed=fixed, what=f"the corrector's networks of split {split}")


def run(settings: Settings, outputs_dir: Path = paths.OUTPUTS_DIR, target: Path = paths.PREDICTIONS) -> Path:
    """Train and predict every (split, method, fold, seed); write the predictions table atomically; track the runs."""
    if settings.tracking.enabled:
        tracking.probe(settings.tracking)  # an unreachable store fails now, not after the training
    start = time.perf_counter()
    if settings.train.device != "cuda":
        fork_server.start()  # the CPU trainer's workers: their torch import overlaps the reading and the baselines
    attribute = settings.data.attribute
    inputs = train_inputs(settings, outputs_dir)
    tables = inputs.tables
    classes = next(iter(tables.values())).emotion_classes
    check_memory(settings, inputs)
    ahead = _prepare_model_logging() if settings.tracking.enabled else None
    runs = train_all(settings, inputs)
    meta = predictions.metadata(attribute, {d: t.design for d, t in tables.items()}, **_carried(tables))
    predictions.write(pd.concat([r.rows for r in runs], ignore_index=True), target, emotion_classes=classes,
                      metadata=meta)
    if settings.tracking.enabled:
        ahead.join()
        logged = time.perf_counter()
        logged_inputs = tracking.table_inputs({d: paths.outputs_table(d, outputs_dir) for d in settings.data.datasets},
                                              context="training")
        training_log.log_runs(settings, runs, source=meta.get("source", "unknown"), attribute=attribute, train=inputs,
                              inputs=logged_inputs)
        now = time.perf_counter()
        log.info("train: MLflow logging took %.1f s of the stage's %.1f s", now - logged, now - start)
    return target
