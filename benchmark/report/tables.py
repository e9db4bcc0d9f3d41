"""The report's tables as formatted strings: the reproduction table and the methods comparison (from stats.parquet)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from benchmark.core import metrics
from benchmark.core.paper import PAPER_METHOD, PAPER_SPLIT
from benchmark.evaluation.contrasts import contrast_rows, method_rows
from benchmark.report.coverage_marks import APPROXIMATE
from benchmark.report.reproduction import OUTSIDE, RUN_OUTSIDE

__all__ = ["DEGENERATE", "DISAGREE", "FLAGS", "contrasts_table", "fmt_ci", "fmt_diff", "group_label",
           "methods_table", "ordered_groups", "per_emotion_tables", "reproduction_table", "scalar_headline"]
#: after an interval of zero width, or one the statistics noted (fallback, left-out resamples, none): see its note
DEGENERATE = "†"
#: after a difference whose interval and raw p disagree (one excludes 0 / rejects at alpha, the other not)
DISAGREE = "‡"
#: Cells the report emphasises: the paper's value lies outside our CI, or outside the spread of one run.
FLAGS: tuple[str, ...] = (OUTSIDE, RUN_OUTSIDE)


def _num(value: float, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.2f}" if sign else f"{value:.2f}"


def fmt_ci(estimate: float, low: float, high: float, note: str = "") -> str:
    """``95.98 [93.73, 97.50]`` (percent, 2 decimals); ``n/a`` for a missing estimate; :data:`DEGENERATE` after an
    interval of zero width or one with a note (a fallback, left-out resamples, none at all)."""
    if pd.isna(estimate):
        return "n/a"
    flag = f" {DEGENERATE}" if note or pd.isna(low) or low == high else ""
    return f"{_num(estimate)} [{_num(low)}, {_num(high)}]{flag}"


def fmt_p(p: float) -> str:
    """A p-value with 4 decimals (``n/a`` when missing)."""
    return "n/a" if pd.isna(p) else f"{p:.4f}"


def fmt_diff(diff: float, low: float, high: float, p_perm: float, p_holm: float, *, alpha: float) -> str:
    """``+1.80 [-0.50, +4.10] p=0.0123 (Holm 0.0492) *``: the difference, its interval, the raw and the Holm-adjusted
    p, ``*`` when the Holm-adjusted p < alpha, and :data:`DISAGREE` where the per-comparison interval and the raw p
    tell different stories (the interval excludes 0 and p >= alpha, or the reverse)."""
    if pd.isna(diff):
        return "n/a"
    mark = " *" if not pd.isna(p_holm) and p_holm < alpha else ""
    excludes = not pd.isna(low) and (low > 0 or high < 0)
    disagree = not pd.isna(p_perm) and excludes != (p_perm < alpha)
    return (f"{_num(diff, True)} [{_num(low, True)}, {_num(high, True)}] p={fmt_p(p_perm)} (Holm {fmt_p(p_holm)})"
            f"{mark}{' ' + DISAGREE if disagree else ''}")


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


def _mark(text: str, approximate: Callable[[str, str, str], bool] | None, task: str, metric: str, kind: str) -> str:
    """``text`` with :data:`~benchmark.report.coverage_marks.APPROXIMATE` when its interval family fell short."""
    return f"{text} {APPROXIMATE}" if approximate is not None and approximate(task, metric, kind) else text


def methods_table(stats: pd.DataFrame, *, reference: str, alpha: float,
                  approximate: Callable[[str, str, str], bool] | None = None) -> pd.DataFrame:
    """Every method of one evaluation group: headline metrics with intervals, differences to the reference with
    intervals, raw and Holm-adjusted p (``*``: Holm below alpha), seeds and seed sd. One row per (task, method);
    reference first. ``approximate(task, metric, kind)`` says which interval families to mark as approximate."""
    shown = scalar_headline(stats)
    headline = method_rows(stats)
    headline = headline[headline["metric"].isin([m.name for m in shown])]
    methods = sorted(headline["method"].unique(), key=lambda m: (m != reference, m))
    tasks = sorted(dict.fromkeys(headline["task"]), key=lambda t: t == "emotion")
    rows = []
    for task in tasks:
        for method in methods:
            by_metric = headline[(headline["task"] == task) & (headline["method"] == method)].set_index("metric")
            row = {"task": task, "method": method, "seeds": str(int(by_metric["n_seeds"].iloc[0]))}
            for m in shown:
                r = by_metric.loc[m.name]
                row[m.short] = _mark(fmt_ci(r["estimate"], r["ci_low"], r["ci_high"], _own_note(r["note"])),
                                     approximate, task, m.name, "estimate")
                row[f"Δ {m.short}"] = ("(reference)" if method == reference else _mark(
                    fmt_diff(r["diff"], r["diff_ci_low"], r["diff_ci_high"], r["p_perm"], r["p_holm"], alpha=alpha),
                    approximate, task, m.name, "difference"))
            row[f"seed sd ({' / '.join(m.short for m in shown)})"] = " / ".join(
                _num(by_metric.loc[m.name, "seed_sd"]) for m in shown)
            rows.append(row)
    return pd.DataFrame(rows)


def scalar_headline(stats: pd.DataFrame) -> list[metrics.Metric]:
    """The headline metrics with one row per task (macro, largest and average gap, worst cell) present in ``stats``,
    in table order."""
    scalar = stats[stats["group"].isna() & stats["emotion"].isna()]
    return [m for m in metrics.HEADLINE if m.name in set(scalar["metric"])]


def per_emotion_tables(stats: pd.DataFrame) -> dict[metrics.Metric, pd.DataFrame]:
    """Per headline metric with one row per emotion (the false-positive-rate gap): a table of every method's
    estimate [interval] per emotion, one row per (task, method)."""
    rows = method_rows(stats)
    out = {}
    for m in metrics.HEADLINE:
        mine = rows[(rows["metric"] == m.name) & rows["emotion"].notna()]
        if mine.empty or m in scalar_headline(stats):
            continue
        records = []
        for (task, method), part in mine.groupby(["task", "method"], sort=False):
            record = {"task": task, "method": method}
            for r in part.to_dict("records"):
                record[r["emotion"]] = fmt_ci(r["estimate"], r["ci_low"], r["ci_high"], _own_note(r["note"]))
            records.append(record)
        out[m] = pd.DataFrame(records)
    return out



def _own_note(note: str) -> str:
    """The part of a row's note about its own interval (not the difference's, which starts with ``diff:``)."""
    return "; ".join(part for part in str(note or "").split("; ") if part and not part.startswith("diff:"))


def contrasts_table(stats: pd.DataFrame, *, alpha: float,
                    approximate: Callable[[str, str, str], bool] | None = None) -> pd.DataFrame:
    """The contrasts of one evaluation group: one row per (task, contrast a - b) with the differences of the headline
    metrics, their intervals, raw and Holm-adjusted p (Holm over the contrasts of each metric row)."""
    shown = scalar_headline(stats)
    rows = contrast_rows(stats)
    rows = rows[rows["metric"].isin([m.name for m in shown])]
    out = []
    for task in sorted(dict.fromkeys(rows["task"]), key=lambda t: t == "emotion"):
        for name in dict.fromkeys(rows["method"]):
            by_metric = rows[(rows["task"] == task) & (rows["method"] == name)].set_index("metric")
            row = {"task": task, "contrast (a - b)": name.replace(" vs ", " - ")}
            for m in shown:
                r = by_metric.loc[m.name]
                row[f"Δ {m.short}"] = _mark(fmt_diff(r["diff"], r["diff_ci_low"], r["diff_ci_high"], r["p_perm"],
                                                     r["p_holm"], alpha=alpha), approximate, task, m.name, "difference")
            out.append(row)
    return pd.DataFrame(out)
