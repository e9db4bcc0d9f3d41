"""Stage ``evaluate``: the paper's metrics and their statistics for every (split, method, partition, dataset).

Writes ``results/stats.parquet`` (every metric with its CI, the difference to the reference and of every contrast pair
(:mod:`benchmark.evaluation.contrasts`) with its CI and p-values; :mod:`benchmark.stats`), ``results/confusion.parquet`` (emotion confusion per attribute group),
``reports/metrics.json`` (the headline numbers with CIs and p-values), ``reports/cells.csv`` (per-cell accuracies
with CIs), the DVC metrics and plots (:mod:`benchmark.evaluation.headline`), the predicted-attribute audit beside stats.parquet
(``results/audit.parquet``, ``results/attribute_audit.parquet``; :mod:`benchmark.evaluation.audit`), and logs one MLflow run per (split, method). The
cells (attribute groups x declared emotions), the attribute and the data's source come from the predictions table's
metadata, not from params.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmark import stats
from benchmark.core import metrics, predictions
from benchmark.core.settings import Settings, as_dict, flatten
from benchmark.evaluation import audit, confusion, contrasts, headline
from benchmark.experiment import tracking
from benchmark.infra import atomic, memory, paths, processes
from benchmark.infra.parquet import METADATA_KEY
from benchmark.stats import footprint

log = logging.getLogger(__name__)

#: stats.parquet columns copied into metrics.json per headline metric row, with the suffix they get there.
HEADLINE_STATS: dict[str, str] = {"estimate": "", "seed_sd": "_seed_sd", "ci_low": "_ci_low", "ci_high": "_ci_high",
                                  "diff": "_diff", "diff_ci_low": "_diff_ci_low", "diff_ci_high": "_diff_ci_high",
                                  "p_perm": "_p_perm", "p_holm": "_p_holm"}
#: a method's rows in metrics.json: one (split, method, partition, dataset, task)
SLOT_KEYS = ["split", "method", "partition", "dataset", "task"]


def headline_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The stats rows of the headline metrics (:data:`benchmark.core.metrics.HEADLINE`), each with its ``key`` in
    metrics.json and MLflow (``macro``, ``fpr_gap_anger``)."""
    rows = table[table["metric"].isin([m.name for m in metrics.HEADLINE])]
    return rows.assign(key=[metrics.row_key(*entry) for entry in zip(rows["metric"], rows["group"], rows["emotion"])])


def _rounded(column: str, value: Any) -> float | None:
    """Percent to 2 decimals, p-values to 4; NaN (not applicable) -> None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 4 if column.startswith("p_") else 2)


def design_summary(read: predictions.Predictions) -> dict[str, Any]:
    """Per dataset: its cells (attribute groups x emotions) and how people are identified, for metrics.json."""
    return {name: {"groups": list(read.layouts[name].groups), "emotions": list(d.emotions),
                   "subjects": "declared" if d.subject is not None else "none: every image is its own subject"}
            for name, d in read.designs.items()}


def metrics_document(table: pd.DataFrame, settings: Settings, meta: dict[str, Any], *, attribute: str,
                     design: dict[str, Any]) -> dict[str, Any]:
    """The nested metrics.json: results[split][method][<dataset>_<partition>][task] -> numbers.

    Per headline metric row k (:func:`headline_rows`: macro, largest_gap, average_gap, worst_cell, fpr_gap_<emotion>):
    k (seed mean), k_seed_sd, k_ci_low/high, and for methods compared with the reference k_diff, k_diff_ci_low/high,
    k_p_perm and k_p_holm; n_seeds. Percent to 2 decimals, p-values to 4; a value that does not apply is null.
    """
    results: dict[str, Any] = {}
    for row in headline_rows(table).to_dict("records"):
        slot = results.setdefault(row["split"], {}).setdefault(row["method"], {}).setdefault(
            f"{row['dataset']}_{row['partition']}", {}).setdefault(row["task"], {})
        compared = not pd.isna(row["reference"]) and row["method"] != settings.evaluate.reference
        for column, suffix in HEADLINE_STATS.items():
            if compared or not (column.startswith("diff") or column.startswith("p_")):
                slot[row["key"] + suffix] = _rounded(column, row[column])
        slot["n_seeds"] = int(row["n_seeds"])
    e = settings.evaluate
    document = {"source": meta.get("source", "unknown"), "attribute": attribute, "design": design, "units": "percent",
                "reference": e.reference,
                "statistics": {"n_resamples": e.n_resamples, "ci": e.ci, "ci_method": e.ci_method,
                               "n_permutations": e.n_permutations, "seed": e.seed, "alpha": e.alpha,
                               "primary": list(e.primary), "primary_metrics": list(e.primary_metrics),
                               "resampling": f"subjects, by {attribute} group",
                               "seeds": "held fixed; CI of the seed mean; seed sd separate"},
                "results": results}
    if meta.get("scenario") is not None:
        document["scenario"] = meta["scenario"]
    return document


def cells_plot_table(table: pd.DataFrame) -> pd.DataFrame:
    """Seed-mean cell accuracies with their CIs, one row per (split, method, partition, dataset, task, cell)."""
    keys = ["split", "method", "partition", "dataset", "task", "group", "emotion"]
    out = (table[table["metric"] == "cell"][keys + ["estimate", "ci_low", "ci_high"]].rename(columns={"estimate": "accuracy"})
           .sort_values(keys, kind="stable").round({"accuracy": 4, "ci_low": 4, "ci_high": 4}).reset_index(drop=True))
    out["cell"] = out["group"] + "/" + out["emotion"]
    return out


def _write_parquet(frame: pd.DataFrame, path: Path, metadata: dict[str, Any]) -> None:
    arrow = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})
    atomic.write_with(path, lambda tmp: pq.write_table(arrow, tmp))


def pipeline_headline(table: pd.DataFrame, *, reference: str) -> dict[str, float]:
    """The DVC headline numbers (reports/headline.json) as metric keys ``<split>.<task>/<role>_<metric>``
    (``faces-to-adfes.emotion/corrector_macro``), for the pipeline run's parent."""
    document = headline.headline_metrics(table, reference=reference)
    return {tracking.metric_name(f"{split}.{task}/{role}_{metric}"): value
            for split, tasks in document.items() if isinstance(tasks, dict)
            for task, roles in tasks.items() for role, values in roles.items()
            for metric, value in values.items() if value is not None}


def _log_runs(settings: Settings, table: pd.DataFrame, cells: pd.DataFrame, *, predictions_path: Path, source: str,
              attribute: str) -> None:
    """The stage run ``evaluate`` (reading the predictions table) and under it one run per (split, method) with every
    headline metric row's numbers (:func:`headline_rows`)."""
    mlflow = tracking.setup(settings.tracking)
    params = flatten(as_dict(settings))
    common = {"source": source, "attribute": attribute, "params_hash": tracking.params_hash(params), "stage": "evaluate"}
    rows_by_method = headline_rows(table)
    inputs = tracking.table_inputs({"predictions": predictions_path}, context="evaluation")
    with tracking.stage_run(mlflow, settings.tracking, "evaluate", stage="evaluate", tags=common):
        tracking.log_inputs(mlflow, inputs.values())
        tracking.log_pipeline_metrics(mlflow, pipeline_headline(table, reference=settings.evaluate.reference))
        for (split, method), rows in rows_by_method.groupby(["split", "method"], sort=True):
            with tracking.mlflow_run(mlflow, f"evaluate:{split}:{method}", tags={**common, "split": split,
                                                                                 "method": method}, nested=True):
                tracking.log_inputs(mlflow, inputs.values())
                values = {}
                for row in rows.to_dict("records"):
                    for column, suffix in HEADLINE_STATS.items():
                        if not pd.isna(row[column]):
                            values[tracking.metric_key(f"{row['dataset']}_{row['partition']}", row["task"],
                                                       row["key"] + suffix)] = float(row[column])
                subset = cells[(cells["split"] == split) & (cells["method"] == method)]
                tables = tracking.log_tables(mlflow, {"cells.json": subset.reset_index(drop=True)})
                tracking.log_batch(mlflow, params={k: str(v)[:500] for k, v in params.items()}, metrics=values,
                                   tags=tables)


def check_memory(frame: pd.DataFrame, layouts: dict[str, Any], *, n_tasks: int, config: stats.StatsConfig) -> float:
    """Refuse in one line, before any statistic, resample and chunk budgets this machine cannot hold
    (:func:`benchmark.infra.memory.check`): each worker holds one evaluation group's arrays
    (:func:`benchmark.stats.footprint.group_bytes`: what it keeps per resample, and one chunk of its draws within
    ``evaluate.memory_budget_mb``), so the largest groups, one per core, are held at once. Returns the estimate in
    bytes."""
    groups = []
    for (split, partition, dataset), rows in frame.groupby(list(stats.GROUP_COLUMNS), sort=True, observed=True):
        seeds = rows.groupby("method", observed=True)["seed"].nunique().tolist()
        groups.append((f"{split} {dataset} ({partition})", footprint.group_bytes(
            layouts[dataset], n_subjects=int(rows["subject"].nunique()), n_tasks=n_tasks, seeds=seeds,
            n_resamples=config.n_resamples, n_permutations=config.n_permutations, ci_method=config.ci_method,
            memory_budget_bytes=config.memory_budget_bytes)))
    held = sorted(groups, key=lambda g: -sum(g[1].values()))[:len(processes.available_cores())]
    if not held:
        return 0.0
    needs = [memory.Need("evaluate.n_resamples", config.n_resamples,
                         sum(need["evaluate.n_resamples"] for _, need in held)),
             memory.Need("evaluate.memory_budget_mb", config.memory_budget_mb,
                         sum(need["evaluate.memory_budget_mb"] for _, need in held), linear=False)]
    others = f" with {len(held) - 1} other group(s) at once" if len(held) > 1 else ""
    return memory.check(needs, what=f"the statistics of {held[0][0]}{others}", fixed=footprint.CHUNK_BYTES * len(held))


def run(settings: Settings, source: Path = paths.PREDICTIONS, metrics_path: Path = paths.METRICS_JSON,
        cells_path: Path = paths.CELLS_CSV, stats_path: Path = paths.STATS,
        confusion_path: Path = paths.CONFUSION) -> list[Path]:
    """Score the predictions table; write stats.parquet, confusion.parquet, metrics.json and cells.csv atomically.

    Returns the paths written.
    """
    if settings.tracking.enabled:
        tracking.probe(settings.tracking)  # an unreachable store fails now, not after the statistics
    read = predictions.read(source)
    frame, attribute, layouts = read.frame, read.attribute, read.layouts
    config = stats.StatsConfig.from_settings(settings.evaluate)
    check_memory(frame, layouts, n_tasks=len(read.tasks), config=config)
    pairs = contrasts.pairs(settings.evaluate.contrasts, settings.evaluate.primary)
    full, gaps, accuracy = processes.run_jobs([  # one pool: no core waits while the other ends a piece
        stats.analysis_job(frame, reference=settings.evaluate.reference, layouts=layouts, attribute=attribute,
                           config=config, contrasts=pairs, primary=stats.PrimaryFamily.from_settings(settings.evaluate)),
        audit.gap_job(frame, attribute=attribute, layouts=layouts, config=config),
        audit.attribute_job(frame, attribute=attribute, layouts=layouts, config=config)],
        meanwhile=tracking.deferred_setup(settings.tracking))
    table = contrasts.method_rows(full)  # every output below but stats.parquet and metrics.json's contrasts
    meta = {**read.metadata, "attribute": attribute}
    stats_meta = {"reference": settings.evaluate.reference, "alpha": settings.evaluate.alpha,
                  "contrasts": [list(pair) for pair in pairs], "primary": list(settings.evaluate.primary),
                  "primary_metrics": list(settings.evaluate.primary_metrics),
                  **{k: getattr(config, k) for k in ("n_resamples", "ci", "ci_method", "n_permutations", "seed")}}
    _write_parquet(full, stats_path, {**meta, **stats_meta})
    _write_parquet(confusion.emotion_confusion(frame, emotion_classes=read.emotion_classes, attribute=attribute,
                                               layouts=layouts), confusion_path, meta)
    plot_cells = cells_plot_table(table)
    atomic.write_text(cells_path, plot_cells.to_csv(index=False))
    atomic.write_json(metrics_path, {**metrics_document(table, settings, meta, attribute=attribute,
                                                        design=design_summary(read)),
                                     **contrasts.metrics_entries(full, pairs)})
    headline.write(table, reference=settings.evaluate.reference, reports_dir=metrics_path.parent)
    audited = audit.write(gaps, accuracy, results_dir=stats_path.parent)
    if settings.tracking.enabled:
        _log_runs(settings, table, plot_cells, predictions_path=source, source=meta.get("source", "unknown"),
                  attribute=attribute)
    log.info("evaluate: %d statistics rows over %d group(s)", len(table), table.groupby(list(stats.GROUP_COLUMNS)).ngroups)
    return [stats_path, confusion_path, metrics_path, cells_path, *audited]
