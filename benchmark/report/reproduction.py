"""The reproduction table: the paper's numbers beside ours with their CIs, in the paper's layout."""

from __future__ import annotations

from typing import Any

import pandas as pd

from benchmark.metrics import SUMMARY_METRICS
from benchmark.paper import PAPER_METHOD, PAPER_PARTITION, PAPER_SPLIT, PAPER_TABLE

COLUMN_LABELS = {"macro": "macro", "largest_gap": "largest gap", "average_gap": "avg gap"}
WITHIN, OUTSIDE, MISSING = "within CI", "OUTSIDE CI", "not run"


def _check(paper: float, low: float, high: float) -> str:
    if pd.isna(low) or pd.isna(high):
        return MISSING
    return WITHIN if low <= paper <= high else OUTSIDE


def reproduction_rows(metrics_doc: dict[str, Any]) -> pd.DataFrame:
    """One row per (dataset, task, metric) of the paper's table: the paper's value and ours for uncorrected and
    corrected (method ``corrector``), ours as the seed mean with its CI, and whether the paper's value lies in our CI.

    Columns: dataset, task, metric, then for side in (uncorrected, corrected): ``paper_<side>``, ``ours_<side>``,
    ``ours_<side>_ci_low``, ``ours_<side>_ci_high``, ``check_<side>`` (``within CI``, ``OUTSIDE CI`` or ``not run``).
    Ours are NaN where the method did not run on the paper's split.
    """
    split = metrics_doc["results"].get(PAPER_SPLIT, {})
    rows = []
    for (dataset, task), paper in PAPER_TABLE.items():
        slot = f"{dataset}_{PAPER_PARTITION[dataset]}"
        for i, metric in enumerate(SUMMARY_METRICS):
            row: dict[str, Any] = {"dataset": dataset, "task": task, "metric": COLUMN_LABELS[metric]}
            for side, method in (("uncorrected", "uncorrected"), ("corrected", PAPER_METHOD)):
                found = split.get(method, {}).get(slot, {}).get(task, {})
                values = [found.get(k) for k in (metric, f"{metric}_ci_low", f"{metric}_ci_high")]
                ours, low, high = (float("nan") if v is None else float(v) for v in values)
                row.update({f"paper_{side}": paper[side][i], f"ours_{side}": ours, f"ours_{side}_ci_low": low,
                            f"ours_{side}_ci_high": high, f"check_{side}": _check(paper[side][i], low, high)})
            rows.append(row)
    return pd.DataFrame(rows)
