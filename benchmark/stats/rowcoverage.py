"""Row-level coverage: every metric row's own coverage (not a family's mean), with the side it misses on.

Input: the records of a coverage study (:func:`benchmark.studies.coverage_study.measure_coverage`, one row per
replicate, interval method and metric row, with the truth and the interval) or of a plasmode study
(:mod:`benchmark.studies.plasmode`). A family (task x
metric) keeps its promise only if its *least covered row* does: a family mean of 95 % can hide a cell at 80 %.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ROW_KEY", "family_table", "row_table"]

ROW_KEY = ["ci_method", "kind", "task", "metric", "method", "group", "emotion"]
_KINDS = {"estimate": ("truth", "ci_low", "ci_high", "covered", "width"),
          "difference": ("truth_diff", "diff_ci_low", "diff_ci_high", "diff_covered", "diff_width")}


def _long(records: pd.DataFrame) -> pd.DataFrame:
    """records -> one row per (replicate, ci_method, kind, metric row) with truth, low, high, covered, width."""
    records = records.fillna({"group": "", "emotion": ""})
    if "ci_method" not in records:
        records = records.assign(ci_method="")
    parts = []
    for kind, (truth, low, high, covered, width) in _KINDS.items():
        part = records[["ci_method", "task", "metric", "method", "group", "emotion"]].copy()
        part["kind"] = kind
        part["truth"], part["low"], part["high"] = records[truth], records[low], records[high]
        part["covered"], part["width"] = records[covered], records[width]
        part["rejected"] = records["rejected"] if kind == "difference" else np.nan
        for column in ("estimate", "estimate_debiased"):  # the estimates' bias (estimate rows only)
            part[column] = records[column] if kind == "estimate" and column in records else np.nan
        parts.append(part[part["covered"].notna()])
    return pd.concat(parts, ignore_index=True)


def row_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per metric row and interval method: ``n`` intervals, ``coverage``, ``miss_low`` (the truth below the
    interval), ``miss_high`` (above it), ``median_width``, ``rejection`` (differences), the mean ``truth`` and, for
    estimates, the mean error of the plug-in estimate (``bias``) and of the de-biased one (``bias_debiased``)."""
    long = _long(records)
    long["miss_low"] = (long["truth"] < long["low"] - 1e-9).astype(float)
    long["miss_high"] = (long["truth"] > long["high"] + 1e-9).astype(float)
    long["bias"] = long["estimate"] - long["truth"]
    long["bias_debiased"] = long["estimate_debiased"] - long["truth"]
    grouped = long.groupby(ROW_KEY, sort=False)
    out = grouped.agg(n=("covered", "size"), coverage=("covered", "mean"), miss_low=("miss_low", "mean"),
                      miss_high=("miss_high", "mean"), median_width=("width", "median"),
                      rejection=("rejected", "mean"), truth=("truth", "mean"), bias=("bias", "mean"),
                      bias_debiased=("bias_debiased", "mean"))
    return out.reset_index()


def family_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per family (interval method x kind x task x metric): ``rows``, the mean ``coverage``, the ``lowest_row`` and
    ``highest_row`` coverage, rows below 93 % and 90 %, the ``median_width`` over all its intervals and the
    ``rejection`` rate of its tests."""
    long = _long(records)
    rows = row_table(records)
    key = ["ci_method", "kind", "task", "metric"]
    width = long.groupby(key, sort=False)["width"].median().rename("median_width")
    fam = rows.groupby(key, sort=False).agg(rows=("coverage", "size"), coverage=("coverage", "mean"),
                                           lowest_row=("coverage", "min"), highest_row=("coverage", "max"),
                                           below_93=("coverage", lambda c: int((c < 0.93).sum())),
                                           below_90=("coverage", lambda c: int((c < 0.90).sum())),
                                           miss_low=("miss_low", "mean"), miss_high=("miss_high", "mean"),
                                           rejection=("rejection", "mean"))
    return fam.join(width).reset_index()
