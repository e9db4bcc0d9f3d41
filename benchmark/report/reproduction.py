"""The reproduction table: the paper's numbers beside ours with their CIs, in the paper's layout.

Two yardsticks. ``check`` asks whether the paper's value lies in the subject-bootstrap CI of ours (for the corrector,
the CI of the seed mean, seeds held fixed). The paper's corrected values come from one training run, and on the
same test images the gap between a single run and our seed mean is seed variation, which that CI leaves out; so the
corrected side also has ``run check``: whether the paper's value lies in the prediction interval of one more run
from our seeds, mean +- t(n - 1) * seed sd * sqrt(1 + 1 / n) (normal approximation).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from scipy import stats as scipy_stats

from benchmark.core import metrics
from benchmark.core.metrics import SUMMARY_METRICS
from benchmark.core.paper import PAPER_METHOD, PAPER_PARTITION, PAPER_SPLIT, PAPER_TABLE

WITHIN, OUTSIDE, MISSING = "within CI", "OUTSIDE CI", "not run"
RUN_WITHIN, RUN_OUTSIDE, RUN_UNDEFINED = "within one-run PI", "OUTSIDE one-run PI", "n/a (one seed)"


def _check(paper: float, low: float, high: float) -> str:
    if pd.isna(low) or pd.isna(high):
        return MISSING
    return WITHIN if low <= paper <= high else OUTSIDE


def one_run_interval(mean: float, seed_sd: float, n_seeds: int, *, level: float) -> tuple[float, float]:
    """Prediction interval (percent) for the metric of one more training run on the same test images, from the mean
    and sd of ``n_seeds`` runs: mean +- t_{(1 + level) / 2, n - 1} * sd * sqrt(1 + 1 / n), clipped to [0, 100] (every
    metric is a percentage). NaN for fewer than 2 seeds."""
    if n_seeds < 2 or any(pd.isna(v) for v in (mean, seed_sd)):
        return math.nan, math.nan
    half = float(scipy_stats.t.ppf((1 + level) / 2, n_seeds - 1)) * seed_sd * math.sqrt(1 + 1 / n_seeds)
    return max(0.0, mean - half), min(100.0, mean + half)


def _run_check(paper: float, low: float, high: float, ran: bool) -> str:
    if not ran:
        return MISSING
    if pd.isna(low):
        return RUN_UNDEFINED
    return RUN_WITHIN if low <= paper <= high else RUN_OUTSIDE


def reproduction_rows(metrics_doc: dict[str, Any]) -> pd.DataFrame:
    """One row per (dataset, task, metric) of the paper's table: the paper's value and ours for uncorrected and
    corrected (method ``corrector``), ours as the seed mean with its CI, and whether the paper's value lies in our CI.

    Columns: dataset, task, metric, then for side in (uncorrected, corrected): ``paper_<side>``, ``ours_<side>``,
    ``ours_<side>_ci_low``, ``ours_<side>_ci_high``, ``check_<side>`` (``within CI``, ``OUTSIDE CI`` or ``not run``);
    for the corrected side also ``ours_corrected_pi_low``/``_pi_high`` (:func:`one_run_interval`) and
    ``check_corrected_run``. Ours are NaN where the method did not run on the paper's split.
    """
    split = metrics_doc["results"].get(PAPER_SPLIT, {})
    level = float(metrics_doc.get("statistics", {}).get("ci", 0.95))
    rows = []
    for (dataset, task), paper in PAPER_TABLE.items():
        slot = f"{dataset}_{PAPER_PARTITION[dataset]}"
        for i, metric in enumerate(SUMMARY_METRICS):
            row: dict[str, Any] = {"dataset": dataset, "task": task, "metric": metrics.by_name(metric).short}
            for side, method in (("uncorrected", "uncorrected"), ("corrected", PAPER_METHOD)):
                found = split.get(method, {}).get(slot, {}).get(task, {})
                values = [found.get(k) for k in (metric, f"{metric}_ci_low", f"{metric}_ci_high")]
                ours, low, high = (float("nan") if v is None else float(v) for v in values)
                row.update({f"paper_{side}": paper[side][i], f"ours_{side}": ours, f"ours_{side}_ci_low": low,
                            f"ours_{side}_ci_high": high, f"check_{side}": _check(paper[side][i], low, high)})
                if side == "corrected":
                    sd = found.get(f"{metric}_seed_sd")
                    pi_low, pi_high = one_run_interval(ours, math.nan if sd is None else float(sd),
                                                       int(found.get("n_seeds", 0)), level=level)
                    row.update({"ours_corrected_pi_low": pi_low, "ours_corrected_pi_high": pi_high,
                                "check_corrected_run": _run_check(paper[side][i], pi_low, pi_high, bool(found))})
            rows.append(row)
    return pd.DataFrame(rows)
