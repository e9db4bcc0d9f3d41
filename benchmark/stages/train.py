"""Stage ``train``: every method over every split, fold and seed -> ``results/predictions.parquet``, and one MLflow
run per (split, method) with its parameters, per-seed and seed-aggregated metrics, and what it fitted."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pandas as pd

from benchmark.core import outputs, predictions
from benchmark.core.settings import Settings
from benchmark.experiment import logged_models, tracking, training_log
from benchmark.experiment.run_matrix import train_all, train_inputs
from benchmark.infra import paths
from benchmark.methods import fork_server

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
