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
from benchmark.infra import atomic, paths, processes
from benchmark.infra.parquet import METADATA_KEY

log = logging.getLogger(__name__)

#: stats.parquet columns copied into metrics.json per headline metric, with the suffix they get there.
HEADLINE_STATS: dict[str, str] = {"ci_low": "_ci_low", "ci_high": "_ci_high", "diff": "_diff",
                                  "diff_ci_low": "_diff_ci_low", "diff_ci_high": "_diff_ci_high",
                                  "p_perm": "_p_perm", "p_holm": "_p_holm"}


def seed_aggregate(summaries: pd.DataFrame) -> pd.DataFrame:
    """Seed mean and sd (ddof=1; 0 for one seed) of each summary metric per (split, method, partition, dataset, task)."""
    keys = ["split", "method", "partition", "dataset", "task"]
    grouped = summaries.groupby(keys, observed=True, sort=True)[list(metrics.SUMMARY_METRICS)]
    mean = grouped.mean()
    sd = grouped.std(ddof=1).fillna(0.0).add_suffix("_seed_sd")
    n = grouped.size().rename("n_seeds")
    return pd.concat([mean, sd, n], axis=1).reset_index()


def stats_config(settings: Settings) -> stats.StatsConfig:
    """The statistics' budgets from the ``evaluate`` section."""
    e = settings.evaluate
    return stats.StatsConfig(n_resamples=e.n_resamples, ci=e.ci, ci_method=e.ci_method,
                             n_permutations=e.n_permutations, seed=e.seed, memory_budget_mb=e.memory_budget_mb)


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


def metrics_document(aggregate: pd.DataFrame, table: pd.DataFrame, settings: Settings, meta: dict[str, Any], *,
                     attribute: str, design: dict[str, Any]) -> dict[str, Any]:
    """The nested metrics.json: results[split][method][<dataset>_<partition>][task] -> numbers.

    Per headline metric m (macro, largest_gap, average_gap): m (seed mean), m_seed_sd, m_ci_low/high, and for methods
    compared with the reference m_diff, m_diff_ci_low/high, m_p_perm and m_p_holm; n_seeds. Percent to 2 decimals,
    p-values to 4; a value that does not apply is null.
    """
    headline = table[table["metric"].isin(metrics.SUMMARY_METRICS)].set_index(
        ["split", "method", "partition", "dataset", "task", "metric"])
    results: dict[str, Any] = {}
    for row in aggregate.to_dict("records"):
        slot = results.setdefault(row["split"], {}).setdefault(row["method"], {}).setdefault(
            f"{row['dataset']}_{row['partition']}", {})
        numbers = {k: _rounded(k, row[k]) for k in row if k.startswith(metrics.SUMMARY_METRICS)}
        for metric in metrics.SUMMARY_METRICS:
            found = headline.loc[(row["split"], row["method"], row["partition"], row["dataset"], row["task"], metric)]
            for column, suffix in HEADLINE_STATS.items():
                if column.startswith("diff") or column.startswith("p_"):
                    if pd.isna(found["reference"]) or row["method"] == settings.evaluate.reference:
                        continue
                numbers[metric + suffix] = _rounded(column, found[column])
        slot[row["task"]] = {**numbers, "n_seeds": int(row["n_seeds"])}
    e = settings.evaluate
    document = {"source": meta.get("source", "unknown"), "attribute": attribute, "design": design, "units": "percent",
                "reference": e.reference,
                "statistics": {"n_resamples": e.n_resamples, "ci": e.ci, "ci_method": e.ci_method,
                               "n_permutations": e.n_permutations, "seed": e.seed, "alpha": e.alpha,
                               "resampling": f"subjects, by {attribute} group",
                               "seeds": "held fixed; CI of the seed mean; seed sd separate"},
                "results": results}
    if meta.get("scenario") is not None:
        document["scenario"] = meta["scenario"]
    return document


def cells_plot_table(cells: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Seed-mean cell accuracies with their CIs, one row per (split, method, partition, dataset, task, cell)."""
    keys = ["split", "method", "partition", "dataset", "task", "group", "emotion"]
    mean = cells.groupby(keys, observed=True, sort=True)["accuracy"].mean().round(4).reset_index()
    ci = table[table["metric"] == "cell"][keys + ["ci_low", "ci_high"]].round({"ci_low": 4, "ci_high": 4})
    out = mean.merge(ci, on=keys, how="left", validate="one_to_one")
    out["cell"] = out["group"] + "/" + out["emotion"]
    return out


def _write_parquet(frame: pd.DataFrame, path: Path, metadata: dict[str, Any]) -> None:
    arrow = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})
    atomic.write_with(path, lambda tmp: pq.write_table(arrow, tmp))


def _log_runs(settings: Settings, aggregate: pd.DataFrame, table: pd.DataFrame, cells: pd.DataFrame, *,
              predictions_path: Path, source: str, attribute: str) -> None:
    mlflow = tracking.setup(settings.tracking)
    params = flatten(as_dict(settings))
    common = {"source": source, "attribute": attribute, "git_commit": tracking.git_commit(),
              "params_hash": tracking.params_hash(params), "stage": "evaluate"}
    headline = table[table["metric"].isin(metrics.SUMMARY_METRICS)]
    inputs = tracking.table_inputs({"predictions": predictions_path}, context="evaluation")
    for (split, method), rows in aggregate.groupby(["split", "method"], sort=True):
        with tracking.mlflow_run(mlflow, f"evaluate:{split}:{method}", tags={**common, "split": split, "method": method}):
            tracking.log_inputs(mlflow, inputs.values())
            values = {}
            for row in rows.to_dict("records"):
                for key in row:
                    if key.startswith(metrics.SUMMARY_METRICS) and not math.isnan(row[key]):
                        values[tracking.metric_name(f"{row['dataset']}_{row['partition']}.{row['task']}.{key}")] = float(row[key])
            for row in headline[(headline["split"] == split) & (headline["method"] == method)].to_dict("records"):
                for column, suffix in HEADLINE_STATS.items():
                    if not pd.isna(row[column]):
                        values[tracking.metric_name(f"{row['dataset']}_{row['partition']}.{row['task']}.{row['metric']}{suffix}")] = float(row[column])
            subset = cells[(cells["split"] == split) & (cells["method"] == method)]
            tables = tracking.log_tables(mlflow, {"cells.json": subset.reset_index(drop=True)})
            tracking.log_batch(mlflow, params={k: str(v)[:500] for k, v in params.items()}, metrics=values, tags=tables)


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
    cells = metrics.cells_by_group(frame, tasks=read.tasks, layouts=layouts)
    aggregate = seed_aggregate(metrics.summaries_by_group(cells))
    config = stats_config(settings)
    pairs = contrasts.pairs(settings.evaluate.contrasts)
    audit_config = audit.AuditConfig(n_resamples=config.n_resamples, ci=config.ci, seed=config.seed)
    full, gaps, accuracy = processes.run_jobs([  # one pool: no core waits while the other ends a piece
        stats.analysis_job(frame, reference=settings.evaluate.reference, layouts=layouts, attribute=attribute,
                             config=config, contrasts=pairs),
        audit.gap_job(frame, attribute=attribute, layouts=layouts, config=audit_config),
        audit.attribute_job(frame, attribute=attribute, layouts=layouts, config=audit_config)],
        meanwhile=tracking.deferred_setup(settings.tracking))
    table = contrasts.method_rows(full)  # every output below but stats.parquet and metrics.json's contrasts
    meta = {**read.metadata, "attribute": attribute}
    stats_meta = {"reference": settings.evaluate.reference, "alpha": settings.evaluate.alpha,
                  "contrasts": [list(pair) for pair in pairs],
                  **{k: getattr(config, k) for k in ("n_resamples", "ci", "ci_method", "n_permutations", "seed")}}
    _write_parquet(full, stats_path, {**meta, **stats_meta})
    _write_parquet(confusion.emotion_confusion(frame, emotion_classes=read.emotion_classes, attribute=attribute,
                                               layouts=layouts), confusion_path, meta)
    plot_cells = cells_plot_table(cells, table)
    atomic.write_text(cells_path, plot_cells.to_csv(index=False))
    atomic.write_json(metrics_path, {**metrics_document(aggregate, table, settings, meta, attribute=attribute,
                                                        design=design_summary(read)),
                                     **contrasts.metrics_entries(full, pairs)})
    headline.write(table, reference=settings.evaluate.reference, reports_dir=metrics_path.parent)
    audited = audit.write(gaps, accuracy, results_dir=stats_path.parent)
    if settings.tracking.enabled:
        _log_runs(settings, aggregate, table, plot_cells, predictions_path=source, source=meta.get("source", "unknown"),
                  attribute=attribute)
    log.info("evaluate: %d statistics rows over %d group(s)", len(table), table.groupby(list(stats.GROUP_COLUMNS)).ngroups)
    return [stats_path, confusion_path, metrics_path, cells_path, *audited]
