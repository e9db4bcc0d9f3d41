"""Contrasts: pairs of methods compared directly on the same resamples (``evaluate.contrasts``).

The default pairs answer the benchmark's question (does the cross-modal information reduce bias beyond plain
recalibration?): ``corrector`` vs ``unimodal``, ``crossmodal_linear`` vs ``unimodal`` and ``corrector`` vs
``crossmodal_linear``. :func:`benchmark.stats.analyse` writes each pair's difference a - b as rows of
``results/stats.parquet`` with ``contrast`` true, ``method`` ``"a vs b"`` and ``reference`` b (no estimate; Holm
within the contrasts of each metric row). This module splits a stats table into method rows and contrast rows and
writes the contrasts' part of ``reports/metrics.json``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from benchmark.core import metrics
from benchmark.stats import CONTRAST_SEPARATOR, contrast_name

__all__ = ["CONTRAST_STATS", "computed", "contrast_rows", "document", "method_rows", "metrics_entries", "pairs",
           "split_name"]

#: stats.parquet columns copied into metrics.json per headline metric of a contrast, with their suffix there
CONTRAST_STATS: dict[str, str] = {"diff": "_diff", "diff_ci_low": "_diff_ci_low", "diff_ci_high": "_diff_ci_high",
                                  "p_perm": "_p_perm", "p_holm": "_p_holm"}


def pairs(raw: list) -> tuple[tuple[str, str], ...]:
    """``evaluate.contrasts`` (validated lists [a, b]) as a tuple of pairs."""
    return tuple((str(a), str(b)) for a, b in raw)


def _flag(table: pd.DataFrame) -> pd.Series:
    return table["contrast"].astype(bool) if "contrast" in table.columns else pd.Series(False, index=table.index)


def method_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of methods (estimates, and differences to the reference)."""
    return table[~_flag(table)]


def contrast_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of contrasts (differences a - b only)."""
    return table[_flag(table)]


def computed(table: pd.DataFrame, requested: tuple[tuple[str, str], ...]) -> dict[tuple[str, str], bool]:
    """For each requested pair, whether it has rows (both methods ran in at least one evaluation group)."""
    names = set(contrast_rows(table)["method"])
    return {pair: contrast_name(*pair) in names for pair in requested}


def _rounded(column: str, value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), 4 if column.startswith("p_") else 2)


def document(table: pd.DataFrame) -> dict[str, Any]:
    """The contrasts of metrics.json: ``{split: {"a vs b": {"<dataset>_<partition>": {task: {key_diff,
    key_diff_ci_low, key_diff_ci_high, key_p_perm, key_p_holm}}}}}`` for the headline metric rows (keys as
    :func:`benchmark.core.metrics.row_key`)."""
    rows = contrast_rows(table)
    rows = rows[rows["metric"].isin([m.name for m in metrics.HEADLINE])]
    out: dict[str, Any] = {}
    for row in rows.to_dict("records"):
        slot = (out.setdefault(row["split"], {}).setdefault(row["method"], {})
                .setdefault(f"{row['dataset']}_{row['partition']}", {}).setdefault(row["task"], {}))
        key = metrics.row_key(row["metric"], row["group"], row["emotion"])
        for column, suffix in CONTRAST_STATS.items():
            slot[key + suffix] = _rounded(column, row[column])
    return out


def split_name(name: str) -> tuple[str, str]:
    """``"a vs b"`` -> (a, b)."""
    a, _, b = name.partition(CONTRAST_SEPARATOR)
    return a, b


def metrics_entries(table: pd.DataFrame, requested: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The keys the evaluate stage adds to metrics.json: ``contrasts`` (:func:`document`) and
    ``contrasts_requested`` (each pair [a, b] with whether it was computed)."""
    done = computed(table, requested)
    return {"contrasts": document(table),
            "contrasts_requested": [{"pair": list(pair), "computed": done[pair]} for pair in requested]}
