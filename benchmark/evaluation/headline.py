"""The few numbers DVC compares across experiments, taken from the statistics table (``results/stats.parquet``).

``reports/headline.json`` (DVC metrics): per held-out split and task, the corrector's and the reference's value of every
metric row DVC compares (:attr:`~benchmark.core.metrics.Metric.compared`: macro accuracy, average gap, worst-cell
accuracy, the per-emotion false-positive-rate gaps) and the corrector's difference to the reference (percent, 2
decimals)::

    {"reference": "uncorrected",
     "faces-to-adfes": {"emotion": {"corrector": {"macro": 83.1, "average_gap": 9.4},
                                    "reference": {"macro": 80.7, "average_gap": 13.1},
                                    "difference": {"macro": 2.4, "average_gap": -3.7}}, ...}, ...}

``reports/plots/<split>_<task>.csv`` (DVC plots): per held-out split and task, one row per true attribute group x emotion
cell with the corrector's and the reference's seed-mean accuracy (columns ``cell``, ``corrector``, ``reference``).

Held out means partition ``test`` (the in-sample ``train`` rows of a cross-dataset split are left to the report).
Roles, not method names, are the keys, so the columns stay the same when ``evaluate.reference`` changes between
experiments; any task names work (``gender``, ``age_group``, ``emotion`` ...). The full table stays in stats.parquet.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.core import metrics
from benchmark.infra import atomic, paths

__all__ = ["HEADLINE_METHOD", "cell_plot_tables", "headline_metrics", "slug", "write"]

#: the method whose numbers the headline shows beside the reference's
HEADLINE_METHOD = "corrector"
#: the partition of held-out predictions
HELD_OUT = "test"


def slug(split: str) -> str:
    """A split name as a file-name and metric-key part: ``faces->adfes`` -> ``faces-to-adfes``, ``cv:faces`` ->
    ``cv-faces`` (the report's figure names use the same rule)."""
    return re.sub(r"[^a-z0-9]+", "-", split.lower().replace("->", "-to-")).strip("-")


def _rounded(value: Any) -> float | None:
    return None if pd.isna(value) else round(float(value), 2)


def _held_out(stats: pd.DataFrame, metrics: tuple[str, ...], *, method: str, reference: str) -> pd.DataFrame:
    return stats[(stats["partition"] == HELD_OUT) & stats["metric"].isin(metrics)
                 & stats["method"].isin([method, reference])]


def headline_metrics(stats: pd.DataFrame, *, reference: str, method: str = HEADLINE_METHOD) -> dict[str, Any]:
    """The headline document from a stats table (stats.parquet layout: ``split``, ``partition``, ``method``,
    ``task``, ``metric``, ``estimate``, ``diff`` ...).

    Returns ``{"reference": <name>, <split slug>: {<task>: {"corrector"|"reference"|"difference": {<metric>: x}}}}``
    with a role only where its rows exist (no corrector among the methods: no ``corrector`` nor ``difference``).
    """
    compared = tuple(m.name for m in metrics.METRICS if m.compared)
    rows = _held_out(stats, compared, method=method, reference=reference)
    document: dict[str, Any] = {"reference": reference}
    for row in rows.to_dict("records"):
        slot = document.setdefault(slug(row["split"]), {}).setdefault(str(row["task"]), {})
        key = metrics.row_key(row["metric"], row["group"], row["emotion"])
        if row["method"] == reference:
            slot.setdefault("reference", {})[key] = _rounded(row["estimate"])
        else:
            slot.setdefault("corrector", {})[key] = _rounded(row["estimate"])
            slot.setdefault("difference", {})[key] = _rounded(row["diff"])
    return document


def cell_plot_tables(stats: pd.DataFrame, *, reference: str,
                     method: str = HEADLINE_METHOD) -> dict[tuple[str, str], pd.DataFrame]:
    """(split slug, task) -> per-cell seed-mean accuracies of the corrector and the reference (percent, 2 decimals),
    columns ``cell`` (``<group>/<emotion>``), ``corrector``, ``reference``; cells in the table's order."""
    rows = _held_out(stats, ("cell",), method=method, reference=reference)
    tables = {}
    for (split, task), group in rows.groupby(["split", "task"], sort=True):
        group = group.assign(cell=group["group"].astype(str) + "/" + group["emotion"].astype(str),
                             role=group["method"].map({method: "corrector", reference: "reference"}))
        wide = group.pivot(index="cell", columns="role", values="estimate").reindex(group["cell"].unique())
        wide = wide.reindex(columns=[c for c in ("corrector", "reference") if c in wide.columns]).round(2)
        tables[(slug(split), str(task))] = wide.reset_index()
    return tables


def write(stats: pd.DataFrame, *, reference: str, reports_dir: Path = paths.REPORTS_DIR) -> list[Path]:
    """Write ``headline.json`` and the ``plots`` folder into ``reports_dir`` (the folder is replaced as a whole, so
    no stale split survives); returns both paths."""
    metrics_path, plots_dir = reports_dir / paths.HEADLINE_JSON.name, reports_dir / paths.PLOTS_DIR.name
    atomic.write_json(metrics_path, headline_metrics(stats, reference=reference))
    fresh = atomic.fresh_dir(plots_dir)
    try:
        for (split, task), table in cell_plot_tables(stats, reference=reference).items():
            table.to_csv(fresh / f"{split}_{task}.csv", index=False)
        atomic.replace_dir(fresh, plots_dir)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return [metrics_path, plots_dir]
