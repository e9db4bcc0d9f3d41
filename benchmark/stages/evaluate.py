"""Stage ``evaluate``: the paper's metrics for every (split, method, partition, dataset), seed mean and sd,
-> ``reports/metrics.json`` (DVC metrics) and ``reports/cells.csv`` (DVC plots), one MLflow run per (split, method)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark import atomic, metrics, paths, predictions, tracking
from benchmark.config import Settings, as_dict, flatten

log = logging.getLogger(__name__)


def seed_aggregate(summaries: pd.DataFrame) -> pd.DataFrame:
    """Seed mean and sd (ddof=1; 0 for one seed) of each summary metric per (split, method, partition, dataset, task)."""
    keys = ["split", "method", "partition", "dataset", "task"]
    grouped = summaries.groupby(keys, observed=True, sort=True)[list(metrics.SUMMARY_METRICS)]
    mean = grouped.mean()
    sd = grouped.std(ddof=1).fillna(0.0).add_suffix("_seed_sd")
    n = grouped.size().rename("n_seeds")
    return pd.concat([mean, sd, n], axis=1).reset_index()


def metrics_document(aggregate: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """The nested metrics.json: results[split][method][<dataset>_<partition>][task] -> numbers (percent, 2 decimals)."""
    results: dict[str, Any] = {}
    for row in aggregate.to_dict("records"):
        slot = results.setdefault(row["split"], {}).setdefault(row["method"], {}).setdefault(
            f"{row['dataset']}_{row['partition']}", {})
        slot[row["task"]] = {k: round(float(row[k]), 2) for k in row if k.startswith(metrics.SUMMARY_METRICS)}
        slot[row["task"]]["n_seeds"] = int(row["n_seeds"])
    return {"source": settings.data.source, "units": "percent", "results": results}


def _log_runs(settings: Settings, aggregate: pd.DataFrame, cells: pd.DataFrame) -> None:
    mlflow = tracking.setup(settings.tracking)
    params = flatten(as_dict(settings))
    common = {"source": settings.data.source, "git_commit": tracking.git_commit(),
              "params_hash": tracking.params_hash(params), "stage": "evaluate"}
    for (split, method), rows in aggregate.groupby(["split", "method"], sort=True):
        with tracking.run(mlflow, f"evaluate:{split}:{method}", tags={**common, "split": split, "method": method}):
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            values = {}
            for row in rows.to_dict("records"):
                for key in row:
                    if key.startswith(metrics.SUMMARY_METRICS) and not math.isnan(row[key]):
                        values[f"{row['dataset']}_{row['partition']}.{row['task']}.{key}"] = float(row[key])
            mlflow.log_metrics(values)
            subset = cells[(cells["split"] == split) & (cells["method"] == method)]
            mlflow.log_table(subset.reset_index(drop=True), artifact_file="cells.json")


def run(settings: Settings, source: Path = paths.PREDICTIONS, metrics_path: Path = paths.METRICS_JSON,
        cells_path: Path = paths.CELLS_CSV) -> Path:
    """Score the predictions table and write metrics.json and cells.csv atomically."""
    frame, _, _ = predictions.read(source)
    cells = metrics.cells_by_group(frame)
    aggregate = seed_aggregate(metrics.summaries_by_group(cells))
    seed_mean_cells = (cells.groupby(["split", "method", "partition", "dataset", "task", "gender", "emotion"],
                                     observed=True, sort=True)["accuracy"].mean().round(4).reset_index())
    seed_mean_cells["cell"] = seed_mean_cells["gender"] + "/" + seed_mean_cells["emotion"]
    atomic.write_text(cells_path, seed_mean_cells.to_csv(index=False))
    atomic.write_json(metrics_path, metrics_document(aggregate, settings))
    if settings.tracking.enabled:
        _log_runs(settings, aggregate, seed_mean_cells)
    log.info("evaluate: %d (split, method, partition, task) rows -> %s", len(aggregate), metrics_path)
    return metrics_path
