"""The report's figures (matplotlib, Agg backend), each readable without the text: title, axis labels with units,
legend. Every function takes rows of ``results/stats.parquet`` (or ``results/confusion.parquet``) for one evaluation
group and returns a Figure; nothing here computes a statistic."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from benchmark.labels import DATASET_EMOTIONS, GENDERS  # noqa: E402
from benchmark.metrics import TASKS  # noqa: E402

__all__ = ["cell_bars", "confusion_matrices", "forest", "gap_bars", "save_png"]

GENDER_COLOURS = {"female": "#c2185b", "male": "#1565c0"}
HEADLINE = (("macro", "macro accuracy"), ("largest_gap", "largest gap"), ("average_gap", "average gap"))
_METHOD_CMAP = plt.get_cmap("tab10")


def _draw_ci(ax, position: np.ndarray, low: pd.Series, high: pd.Series, *, horizontal: bool = False) -> None:
    """Confidence intervals as lines with end caps (a percentile interval need not contain the estimate, e.g. a gap)."""
    low, high = low.to_numpy(dtype=float), high.to_numpy(dtype=float)
    keep = np.isfinite(low) & np.isfinite(high)
    position, low, high = np.asarray(position)[keep], low[keep], high[keep]
    if horizontal:
        ax.hlines(position, low, high, color="black", linewidth=1.0, zorder=2)
        ax.plot(np.r_[low, high], np.r_[position, position], "|", color="black", markersize=6, zorder=2)
    else:
        ax.vlines(position, low, high, color="black", linewidth=0.8, zorder=3)
        ax.plot(np.r_[position, position], np.r_[low, high], "_", color="black", markersize=3, zorder=3)


def _cells(stats: pd.DataFrame, method: str, task: str, gender: str) -> pd.DataFrame:
    rows = stats[(stats["method"] == method) & (stats["task"] == task) & (stats["metric"] == "cell")
                 & (stats["gender"] == gender)]
    return rows.set_index("emotion").reindex(list(DATASET_EMOTIONS))


def cell_bars(stats: pd.DataFrame, *, reference: str, methods: list[str], title: str, ci: float) -> Figure:
    """Per-cell accuracy bars: rows tasks, one column per method; per emotion female then male, reference beside method.

    Parameters
    ----------
    stats : stats rows of one evaluation group.
    reference : the method drawn light and hatched beside each other method (alone when ``methods`` is empty).
    methods : the compared methods, one column each.
    """
    columns = methods or [reference]
    fig, axes = plt.subplots(len(TASKS), len(columns), figsize=(5.2 * len(columns), 3.9 * len(TASKS) + 0.6),
                             squeeze=False, sharey=True, layout="constrained")
    x = np.arange(len(DATASET_EMOTIONS))
    for col, method in enumerate(columns):
        shown = [reference] if method == reference else [reference, method]
        width = 0.8 / (len(GENDERS) * len(shown))
        for row, task in enumerate(TASKS):
            ax = axes[row, col]
            k = 0
            for gender in ("female", "male"):
                for name in shown:
                    cells = _cells(stats, name, task, gender)
                    is_ref = name == reference and len(shown) > 1
                    where = x - 0.4 + width * (k + 0.5)
                    ax.bar(where, cells["estimate"], width, color=GENDER_COLOURS[gender], alpha=0.35 if is_ref else 0.9,
                           hatch="//" if is_ref else None, edgecolor="black", linewidth=0.4,
                           label=f"{gender}, {name}" if name == reference else f"{gender}, method of the panel")
                    _draw_ci(ax, where, cells["ci_low"], cells["ci_high"])
                    k += 1
            ax.set_xticks(x, DATASET_EMOTIONS)
            ax.set_ylim(0, 105)
            ax.set_title(f"{task} task: {method}" + ("" if method == reference else f" vs {reference}"), fontsize=10)
            ax.set_xlabel("true emotion")
            if col == 0:
                ax.set_ylabel(f"{task} accuracy (%)")
            ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8,
               title="bars: true gender, method (hatched: reference); lines: CI")
    fig.suptitle(f"{title}: accuracy per true gender x true emotion cell, {ci:.0%} CI (subject bootstrap)")
    return fig


def gap_bars(stats: pd.DataFrame, *, methods: list[str], title: str, ci: float) -> Figure:
    """Per-emotion gender gaps |male - female| and the largest and average gap, one bar per method, with CIs."""
    labels = list(DATASET_EMOTIONS) + ["largest", "average"]
    fig, axes = plt.subplots(1, len(TASKS), figsize=(7.0 * len(TASKS), 3.9), squeeze=False, sharey=True)
    x = np.arange(len(labels))
    width = 0.8 / len(methods)
    for col, task in enumerate(TASKS):
        ax = axes[0, col]
        for k, method in enumerate(methods):
            rows = stats[(stats["method"] == method) & (stats["task"] == task)]
            gaps = rows[rows["metric"] == "gap"].set_index("emotion").reindex(list(DATASET_EMOTIONS))
            summary = rows[rows["metric"].isin(["largest_gap", "average_gap"])].set_index("metric").reindex(
                ["largest_gap", "average_gap"])
            values = pd.concat([gaps[["estimate", "ci_low", "ci_high"]], summary[["estimate", "ci_low", "ci_high"]]])
            where = x - 0.4 + width * (k + 0.5)
            ax.bar(where, values["estimate"], width, color=_METHOD_CMAP(k), edgecolor="black", linewidth=0.4, label=method)
            _draw_ci(ax, where, values["ci_low"], values["ci_high"])
        ax.axvline(len(DATASET_EMOTIONS) - 0.5, color="grey", linewidth=0.8)
        ax.set_xticks(x, labels)
        ax.set_xlabel("true emotion (per-emotion gap) | summary")
        ax.set_title(f"{task} task", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("|male - female| accuracy gap (pp)")
    axes[0, 0].legend(fontsize=8, title="method")
    fig.suptitle(f"{title}: gender gaps per emotion, {ci:.0%} CI (subject bootstrap; lower is fairer)")
    fig.tight_layout()
    return fig


def forest(stats: pd.DataFrame, *, reference: str, methods: list[str], title: str, ci: float, alpha: float) -> Figure:
    """Differences method - reference of the headline metrics with CIs; filled marker: Holm-adjusted p < alpha."""
    fig, axes = plt.subplots(len(TASKS), len(HEADLINE), figsize=(4.2 * len(HEADLINE), 0.55 * len(methods) * 2 + 2.4),
                             squeeze=False)
    y = np.arange(len(methods))[::-1]
    for row, task in enumerate(TASKS):
        for col, (metric, label) in enumerate(HEADLINE):
            ax = axes[row, col]
            rows = stats[(stats["task"] == task) & (stats["metric"] == metric)].set_index("method").reindex(methods)
            diff = rows["diff"].to_numpy(dtype=float)
            significant = (rows["p_holm"] < alpha).to_numpy()
            _draw_ci(ax, y, rows["diff_ci_low"], rows["diff_ci_high"], horizontal=True)
            ax.scatter(diff[significant], y[significant], color="black", zorder=3, label=f"Holm p < {alpha:g}")
            ax.scatter(diff[~significant], y[~significant], facecolor="white", edgecolor="black", zorder=3,
                       label="not significant")
            ax.axvline(0.0, color="grey", linestyle="--", linewidth=0.8)
            ax.set_yticks(y, methods)
            ax.set_ylim(-0.7, len(methods) - 0.3)
            better = "higher is better" if metric == "macro" else "lower is fairer"
            ax.set_xlabel(f"difference to {reference} (pp; {better})")
            ax.set_title(f"{task}: {label}", fontsize=10)
            if col == 0:
                ax.set_ylabel("method")
            ax.grid(axis="x", alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8)
    fig.suptitle(f"{title}: method - {reference}, {ci:.0%} CI (paired subject bootstrap)")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def confusion_matrices(confusion: pd.DataFrame, *, methods: list[str], title: str) -> Figure:
    """Row-normalised emotion confusion matrices (% of each true emotion), rows methods, columns female and male."""
    predicted = list(dict.fromkeys(confusion["predicted"]))
    fig, axes = plt.subplots(len(methods), 2, figsize=(11.0, 3.6 * len(methods) + 1.0), squeeze=False,
                             layout="constrained")
    image = None
    for row, method in enumerate(methods):
        for col, gender in enumerate(("female", "male")):
            ax = axes[row, col]
            rows = confusion[(confusion["method"] == method) & (confusion["gender"] == gender)]
            matrix = rows.pivot(index="true", columns="predicted", values="count").reindex(
                index=list(DATASET_EMOTIONS), columns=predicted).to_numpy(dtype=float)
            totals = matrix.sum(axis=1, keepdims=True)
            percent = np.divide(100.0 * matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
            image = ax.imshow(percent, cmap="Blues", vmin=0, vmax=100, aspect="auto")
            for (i, j), value in np.ndenumerate(percent):
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if value > 60 else "black")
            ax.set_xticks(np.arange(len(predicted)), predicted if row == len(methods) - 1 else [],
                          rotation=45, ha="right")
            ax.set_yticks(np.arange(len(DATASET_EMOTIONS)), DATASET_EMOTIONS if col == 0 else [])
            if row == len(methods) - 1:
                ax.set_xlabel("predicted emotion")
            if col == 0:
                ax.set_ylabel("true emotion")
            ax.set_title(f"{method}, {gender} subjects (n = {int(round(totals.sum()))} images)", fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="% of the true emotion's images (seed mean)")
    fig.suptitle(f"{title}: emotion confusion per true gender")
    return fig


def save_png(fig: Figure, path) -> None:
    """Save ``fig`` as a PNG (fixed dpi and metadata, so equal inputs give equal files) and close it."""
    fig.savefig(path, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
