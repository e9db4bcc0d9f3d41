"""The accuracy-fairness frontier: per held-out evaluation group (split x test dataset) and task, every method's macro
accuracy against its average gap, both with their subject-bootstrap intervals from ``results/stats.parquet``; methods
with a fairness strength (``group_recalibration`` and its ``@<strength>`` variants) joined as a curve in order of
strength; and, for the split a ``pareto`` study tuned, the study's Pareto front (CV inside the training dataset, so
in its own panel). Nothing here computes a statistic. The report stage logs the figures to MLflow.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from benchmark.infra import paths, stored  # noqa: E402
from benchmark.infra.processes import Job, run_jobs  # noqa: E402
from benchmark.report import figures  # noqa: E402
from benchmark.report.document import Figure  # noqa: E402

__all__ = ["curve_of", "frontier_job", "frontier_figures", "pareto_front"]

HELD_OUT = "test"
#: built-in methods with a fairness strength (benchmark.methods.method_registry.WITH_STRENGTH), and the separator
CURVE_METHODS: tuple[str, ...] = ("group_recalibration",)
_SEPARATOR = "@"


def curve_of(method: str, default_strength: float) -> tuple[str, float] | None:
    """(curve name, strength) of a method on a fairness-strength curve, else None: ``group_recalibration@4`` ->
    (group_recalibration, 4.0); the bare name runs at ``default_strength`` (``train.fairness.strength``)."""
    base, _, value = method.partition(_SEPARATOR)
    if base not in CURVE_METHODS:
        return None
    return base, float(value) if value else default_strength


def pareto_front(tune_dir: Path) -> dict[str, Any] | None:
    """The study's split, method and Pareto front (list of {cv_macro, cv_average_gap}), from best_params.yaml, when
    the study there is a ``pareto`` study; else None."""
    best_path = tune_dir / paths.TUNE_BEST_PARAMS
    if not best_path.exists():
        return None
    best = stored.read_yaml(best_path, producer="benchmark tune")
    if best.get("objective") != "pareto" or not best.get("pareto"):
        return None
    return {"split": best["split"], "method": best.get("method", "corrector"), "front": best["pareto"],
            "chosen": (best["cv_average_gap"], best["cv_macro"])}


def _headline(rows: pd.DataFrame, task: str) -> pd.DataFrame:
    """One row per method: macro and average gap with their CIs."""
    picked = rows[(rows["task"] == task) & rows["metric"].isin(["macro", "average_gap"])]
    wide = picked.pivot_table(index="method", columns="metric", values=["estimate", "ci_low", "ci_high"],
                              aggfunc="first")
    wide.columns = [f"{metric}_{value}" for value, metric in wide.columns]
    return wide.reset_index()


def _panel(ax, points: pd.DataFrame, *, task: str, default_strength: float) -> None:
    cmap = plt.get_cmap("tab10")
    colours = {m: cmap(i % cmap.N) for i, m in enumerate(sorted(points["method"]))}
    for row in points.to_dict("records"):
        x, y = row["average_gap_estimate"], row["macro_estimate"]
        # lines from low to high: an interval of a gap need not contain its estimate (docs/STATISTICS.md)
        ax.hlines(y, row["average_gap_ci_low"], row["average_gap_ci_high"], color="0.6", lw=0.8)
        ax.vlines(x, row["macro_ci_low"], row["macro_ci_high"], color="0.6", lw=0.8)
        ax.plot(x, y, "o", ms=5, color=colours[row["method"]],
                label=None if curve_of(row["method"], default_strength) else row["method"])
    on_curve = points.assign(curve=[curve_of(m, default_strength) for m in points["method"]]).dropna(subset=["curve"])
    for name, members in on_curve.groupby(on_curve["curve"].map(lambda c: c[0])):
        members = members.assign(strength=members["curve"].map(lambda c: c[1])).sort_values("strength")
        ax.plot(members["average_gap_estimate"], members["macro_estimate"], "-", color="black", lw=1.2,
                label=f"{name} (strength {members['strength'].min():g} to {members['strength'].max():g})")
        for row in members.to_dict("records"):
            ax.annotate(f"{row['strength']:g}", (row["average_gap_estimate"], row["macro_estimate"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("average gap (percentage points; lower is fairer)")
    ax.set_ylabel("macro accuracy (%)")
    ax.set_title(f"{task} task")
    ax.grid(alpha=0.3)


def _slug(*parts: str) -> str:
    return "_".join(re.sub(r"[^a-z0-9]+", "-", p.lower().replace("->", "-to-")).strip("-") for p in parts)


def frontier_figures(stats: pd.DataFrame, *, out_dir: Path, default_strength: float, ci: float,
                     pareto: dict[str, Any] | None = None) -> list[Figure]:
    """One figure per held-out (split, dataset): a panel per task, and the Pareto front's panel for its split."""
    return run_jobs([frontier_job(stats, out_dir=out_dir, default_strength=default_strength, ci=ci,
                                       pareto=pareto)])[0]


def frontier_job(stats: pd.DataFrame, *, out_dir: Path, default_strength: float, ci: float,
                   pareto: dict[str, Any] | None = None) -> Job:
    """:func:`frontier_figures` as a :class:`~benchmark.infra.processes.Job`: one call per figure, given only its rows."""
    held_out = stats[stats["partition"] == HELD_OUT]
    return Job([functools.partial(_frontier_figure, split, dataset, rows, out_dir=out_dir,
                                    default_strength=default_strength, ci=ci,
                                    front=pareto if pareto is not None and pareto["split"] == split else None)
                  for (split, dataset), rows in held_out.groupby(["split", "dataset"], sort=True)], list)


def _pareto_panel(ax, front: dict[str, Any]) -> None:
    points = pd.DataFrame(front["front"]).sort_values("cv_average_gap")
    ax.plot(points["cv_average_gap"], points["cv_macro"], "o-", color="tab:blue", label="Pareto front")
    ax.scatter([front["chosen"][0]], [front["chosen"][1]], marker="*", s=160, color="tab:red", label="chosen")
    ax.set_xlabel("CV average gap (percentage points)")
    ax.set_ylabel("CV macro accuracy (%)")
    ax.set_title(f"Optuna Pareto front of {front['method']} (CV inside the training dataset)")
    ax.grid(alpha=0.3)


def _frontier_figure(split: str, dataset: str, rows: pd.DataFrame, *, out_dir: Path, default_strength: float,
                     ci: float, front: dict[str, Any] | None) -> Figure:
    """Draw and save the frontier figure of one held-out (split, dataset), with ``front``'s panel when given."""
    tasks = figures.task_order(rows)
    fig, axes = plt.subplots(1, len(tasks) + (front is not None), figsize=(6.2 * (len(tasks) + (front is not None)),
                                                                          4.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        _panel(ax, _headline(rows, task), task=task, default_strength=default_strength)
    if front is not None:
        _pareto_panel(axes[0, -1], front)
    handles: dict[str, object] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"Accuracy against fairness, {split}, held-out {dataset} (bars: {ci:.0%} CIs)")
    fig.tight_layout(rect=(0, 0.06 + 0.03 * (len(handles) // 4), 1, 1))
    name = f"frontier_{_slug(split, dataset)}.png"
    figures.save_png(fig, out_dir / name)
    return Figure(name, f"Accuracy-fairness frontier, {split}, held-out {dataset}",
                  "Macro accuracy against average gap per method and task, with subject-bootstrap intervals; "
                  "methods with a fairness strength form a line labelled by strength"
                  + ("; right: the study's Pareto front (CV scores inside the training dataset, not "
                     "comparable with the held-out axes)" if front is not None else "") + ".")


