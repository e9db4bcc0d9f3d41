"""Stage ``fetch``: write one outputs table per declared dataset from the configured source, and, for the
``images`` source, its MLflow record (the frozen models' weights and the device)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from benchmark import sources
from benchmark.core import outputs
from benchmark.core.outputs import OutputsTable
from benchmark.core.settings import Settings, as_dict, flatten
from benchmark.experiment import params, tracking
from benchmark.infra import paths

log = logging.getLogger(__name__)


def run(settings: Settings, outputs_dir: Path = paths.OUTPUTS_DIR) -> list[Path]:
    """Load every dataset of ``data.datasets`` from ``data.source`` and write ``data/outputs/<dataset>.parquet``.

    Every table is validated (for ``data.attribute``) before the first is written, so a bad dataset leaves the
    previous tables in place.
    """
    if settings.data.source == "images" and settings.tracking.enabled:
        tracking.probe(settings.tracking)  # the images source logs a run after the (long) extraction
    designs = params.run_designs(settings)
    tables = {name: sources.load(settings.data, design) for name, design in designs.items()}
    targets = {name: paths.outputs_table(name, outputs_dir) for name in tables}
    for name, table in tables.items():
        outputs.validate(table, where=str(targets[name]), attribute=settings.data.attribute)
    for name, table in tables.items():
        outputs.write(table, targets[name], attribute=settings.data.attribute)
        log.info("fetch: %s: %d images from source %s -> %s", name, len(table.frame), settings.data.source, targets[name])
    paths.CHIPS_DIR.mkdir(parents=True, exist_ok=True)  # a persistent DVC output; only data.source: images fills it
    if settings.data.source == "images" and settings.tracking.enabled:
        log_images_provenance(tables, settings)
    return list(targets.values())


def log_images_provenance(tables: dict[str, OutputsTable], settings: Settings) -> None:
    """One MLflow run ``fetch:images`` with the data params, the models' weights sha256 and the device as tags."""
    mlflow = tracking.setup(settings.tracking)
    first = next(iter(tables.values())).metadata
    tags: dict[str, Any] = {"source": "images", "device": first["device"], "precision": first["precision"]}
    for role in ("gender_model", "emotion_model"):
        model = first[role]
        tags[role] = model["name"]
        if "weights_sha256" in model:
            tags[f"{role}_sha256"] = model["weights_sha256"]
    with tracking.stage_run(mlflow, settings.tracking, "fetch:images", stage="fetch", tags=tags):
        tracking.log_inputs(mlflow, tracking.table_inputs(
            {f"{d}-images": Path(t.metadata["manifest"]) for d, t in tables.items()}, context="source").values())
        mlflow.log_params({k: str(v)[:250] for k, v in flatten(as_dict(settings.data), "data.").items()})
        for dataset, table in tables.items():
            mlflow.log_metric(f"{dataset}_rows", len(table.frame))
            mlflow.log_metric(f"{dataset}_problems", table.metadata["problems"])
