"""The report's tables as formatted strings: the reproduction table and the methods comparison (from stats.parquet)."""

from __future__ import annotations

import math

import pandas as pd

from benchmark.metrics import SUMMARY_METRICS
from benchmark.paper import PAPER_METHOD, PAPER_SPLIT
from benchmark.report.reproduction import OUTSIDE, RUN_OUTSIDE

__all__ = ["FLAGS", "fmt_ci", "fmt_diff", "group_label", "methods_table", "ordered_groups", "reproduction_table"]

METRIC_LABELS = {"macro": "macro", "largest_gap": "largest gap", "average_gap": "avg gap"}
#: Cells the report emphasises: the paper's value lies outside our CI, or outside the spread of one run.
FLAGS: tuple[str, ...] = (OUTSIDE, RUN_OUTSIDE)


def _num(value: float, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.2f}" if sign else f"{value:.2f}"


def fmt_ci(estimate: float, low: float, high: float) -> str:
    """``95.98 [93.73, 97.50]`` (percent, 2 decimals); ``n/a`` for a missing estimate."""
    if pd.isna(estimate):
        return "n/a"
    return f"{_num(estimate)} [{_num(low)}, {_num(high)}]"


def fmt_p(p: float) -> str:
    """A p-value with 4 decimals (``n/a`` when missing)."""
    return "n/a" if pd.isna(p) else f"{p:.4f}"


def fmt_diff(diff: float, low: float, high: float, p_holm: float, *, alpha: float) -> str:
    """``+1.80 [-0.50, 4.10] p=0.0123 *``: the difference, its CI, the Holm-adjusted p and ``*`` when p < alpha."""
    if pd.isna(diff):
        return "n/a"
    mark = " *" if not pd.isna(p_holm) and p_holm < alpha else ""
    return f"{_num(diff, True)} [{_num(low, True)}, {_num(high, True)}] p={fmt_p(p_holm)}{mark}"


def ordered_groups(stats: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(split, dataset, partition) of every evaluation group: the paper's split first, test partitions first."""
    groups = stats[["split", "dataset", "partition"]].drop_duplicates().itertuples(index=False, name=None)
    return sorted(groups, key=lambda g: (g[0] != PAPER_SPLIT, g[0], g[2] != "test", g[1]))


def group_label(split: str, dataset: str, partition: str) -> str:
    """``ADFES test, split faces->adfes`` (``train``: in-sample, the method was fitted on these images)."""
    kind = "test" if partition == "test" else "train (in-sample)"
    return f"{dataset.upper()} {kind}, split {split}"


def reproduction_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The reproduction rows (:func:`benchmark.report.reproduction.reproduction_rows`) as formatted strings."""
    out = pd.DataFrame({
        "dataset": rows["dataset"], "task": rows["task"], "metric": rows["metric"],
        "paper uncorrected": rows["paper_uncorrected"].map(_num),
        "ours uncorrected [95% CI]": [fmt_ci(*v) for v in rows[["ours_uncorrected", "ours_uncorrected_ci_low", "ours_uncorrected_ci_high"]].itertuples(index=False)],
        "uncorrected check": rows["check_uncorrected"],
        "paper corrected": rows["paper_corrected"].map(_num),
        f"ours corrected ({PAPER_METHOD}) [95% CI]": [fmt_ci(*v) for v in rows[["ours_corrected", "ours_corrected_ci_low", "ours_corrected_ci_high"]].itertuples(index=False)],
        "corrected check": rows["check_corrected"],
        "one run of ours [95% PI]": [fmt_ci(*v) for v in rows[["ours_corrected", "ours_corrected_pi_low", "ours_corrected_pi_high"]].itertuples(index=False)],
        "corrected run check": rows["check_corrected_run"],
    })
    return out


def methods_table(stats: pd.DataFrame, *, reference: str, alpha: float) -> pd.DataFrame:
    """Every method of one evaluation group: headline metrics with CIs, differences to the reference with CIs and
    Holm-adjusted p (``*`` below alpha), seeds and seed sd. One row per (task, method); reference first."""
    headline = stats[stats["metric"].isin(SUMMARY_METRICS)]
    methods = sorted(headline["method"].unique(), key=lambda m: (m != reference, m))
    tasks = sorted(dict.fromkeys(headline["task"]), key=lambda t: t == "emotion")
    rows = []
    for task in tasks:
        for method in methods:
            by_metric = headline[(headline["task"] == task) & (headline["method"] == method)].set_index("metric")
            row = {"task": task, "method": method, "seeds": str(int(by_metric["n_seeds"].iloc[0]))}
            for metric in SUMMARY_METRICS:
                r = by_metric.loc[metric]
                row[METRIC_LABELS[metric]] = fmt_ci(r["estimate"], r["ci_low"], r["ci_high"])
                row[f"Δ {METRIC_LABELS[metric]}"] = ("(reference)" if method == reference else
                                                     fmt_diff(r["diff"], r["diff_ci_low"], r["diff_ci_high"], r["p_holm"], alpha=alpha))
            row["seed sd (macro / largest / avg)"] = " / ".join(_num(by_metric.loc[m, "seed_sd"]) for m in SUMMARY_METRICS)
            rows.append(row)
    return pd.DataFrame(rows)

