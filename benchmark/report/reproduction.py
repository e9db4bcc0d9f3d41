"""The reproduction table: the paper's numbers beside ours, in the paper's layout."""

from __future__ import annotations

from typing import Any

import pandas as pd

from benchmark.metrics import SUMMARY_METRICS
from benchmark.paper import PAPER_METHOD, PAPER_PARTITION, PAPER_SPLIT, PAPER_TABLE

COLUMN_LABELS = {"macro": "macro", "largest_gap": "largest gap", "average_gap": "avg gap"}


def reproduction_rows(metrics_doc: dict[str, Any]) -> pd.DataFrame:
    """One row per (dataset, task, column): the paper's value and ours (seed mean) for uncorrected and corrected.

    ``ours_corrected`` is NaN when the paper's method did not run.
    """
    split = metrics_doc["results"].get(PAPER_SPLIT, {})
    rows = []
    for (dataset, task), paper in PAPER_TABLE.items():
        slot = f"{dataset}_{PAPER_PARTITION[dataset]}"
        for i, metric in enumerate(SUMMARY_METRICS):
            ours = {}
            for label, method in (("uncorrected", "uncorrected"), ("corrected", PAPER_METHOD)):
                value = split.get(method, {}).get(slot, {}).get(task, {}).get(metric)
                ours[label] = float("nan") if value is None else value
            rows.append({"dataset": dataset, "task": task, "metric": COLUMN_LABELS[metric],
                         "paper_uncorrected": paper["uncorrected"][i], "ours_uncorrected": ours["uncorrected"],
                         "paper_corrected": paper["corrected"][i], "ours_corrected": ours["corrected"]})
    return pd.DataFrame(rows)
