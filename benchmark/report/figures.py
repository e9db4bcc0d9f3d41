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

from benchmark.report.tables import scalar_headline  # noqa: E402

__all__ = ["cell_bars", "cell_heatmaps", "confusion_matrices", "forest", "gap_bars", "save_png", "task_order",
           "verdict_forest"]

#: the paper's gender colours; other attributes' groups take the palette in declared order
GROUP_COLOURS = {"female": "#c2185b", "male": "#1565c0"}
_GROUP_CMAP = plt.get_cmap("Dark2")
_METHOD_CMAP = plt.get_cmap("tab10")


#: how a degenerate interval (zero width) is drawn and named in legends, so that it is never mistaken for certainty
DEGENERATE_LABEL = "interval of zero width (degenerate)"


def _draw_ci(ax, position: np.ndarray, low: pd.Series, high: pd.Series, *, horizontal: bool = False) -> None:
    """Confidence intervals as lines with end caps (a percentile interval need not contain the estimate, e.g. a gap);
    an interval of zero width is marked with a red cross (:data:`DEGENERATE_LABEL`)."""
    low, high = low.to_numpy(dtype=float), high.to_numpy(dtype=float)
    keep = np.isfinite(low) & np.isfinite(high)
    position, low, high = np.asarray(position)[keep], low[keep], high[keep]
    point = low == high
    if point.any():
        xy = (low[point], position[point]) if horizontal else (position[point], low[point])
        ax.plot(*xy, "x", color="red", markersize=7, zorder=4, label=DEGENERATE_LABEL)
    if horizontal:
        ax.hlines(position, low, high, color="black", linewidth=1.0, zorder=2)
        ax.plot(np.r_[low, high], np.r_[position, position], "|", color="black", markersize=6, zorder=2)
    else:
        ax.vlines(position, low, high, color="black", linewidth=0.8, zorder=3)
        ax.plot(np.r_[position, position], np.r_[low, high], "_", color="black", markersize=3, zorder=3)


def _unique_legend(axes: np.ndarray) -> tuple[list, list[str]]:
    """Legend handles and labels of all panels, each label once (the first panel's order first)."""
    found: dict[str, object] = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            found.setdefault(label, handle)
    return list(found.values()), list(found)


def task_order(stats: pd.DataFrame) -> list[str]:
    """The tasks of stats rows: the protected attribute's first, then emotion."""
    tasks = list(dict.fromkeys(stats["task"]))
    return sorted(tasks, key=lambda t: t == "emotion")


def _layout(stats: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(groups, emotions) of one evaluation group's cells, in declared order (the order of the cell rows)."""
    cells = stats[stats["metric"] == "cell"]
    return list(dict.fromkeys(cells["group"])), list(dict.fromkeys(cells["emotion"]))


def _group_colours(groups: list[str]) -> dict[str, object]:
    if set(groups) <= set(GROUP_COLOURS):
        return {g: GROUP_COLOURS[g] for g in groups}
    return {g: _GROUP_CMAP(i % _GROUP_CMAP.N) for i, g in enumerate(groups)}


def _cells(stats: pd.DataFrame, method: str, task: str, group: str, emotions: list[str]) -> pd.DataFrame:
    rows = stats[(stats["method"] == method) & (stats["task"] == task) & (stats["metric"] == "cell")
                 & (stats["group"] == group)]
    return rows.set_index("emotion").reindex(emotions)


def cell_bars(stats: pd.DataFrame, *, reference: str, methods: list[str], title: str, ci: float) -> Figure:
    """Per-cell accuracy bars: rows tasks, one column per method; per emotion each group in turn (for gender: female
    then male), the reference beside the method.

    Parameters
    ----------
    stats : stats rows of one evaluation group.
    reference : the method drawn light and hatched beside each other method (alone when ``methods`` is empty).
    methods : the compared methods, one column each.
    """
    columns, tasks = methods or [reference], task_order(stats)
    groups, emotions = _layout(stats)
    shown_groups = sorted(groups, key=lambda g: g != "female") if set(groups) == {"female", "male"} else groups
    colours = _group_colours(groups)
    fig, axes = plt.subplots(len(tasks), len(columns),
                             figsize=(max(5.2, 0.9 * len(emotions) * max(1, len(groups) / 2)) * len(columns),
                                      3.9 * len(tasks) + 0.6),
                             squeeze=False, sharey=True, layout="constrained")
    x = np.arange(len(emotions))
    for col, method in enumerate(columns):
        shown = [reference] if method == reference else [reference, method]
        width = 0.8 / (len(groups) * len(shown))
        for row, task in enumerate(tasks):
            ax = axes[row, col]
            k = 0
            for group in shown_groups:
                for name in shown:
                    cells = _cells(stats, name, task, group, emotions)
                    is_ref = name == reference and len(shown) > 1
                    where = x - 0.4 + width * (k + 0.5)
                    ax.bar(where, cells["estimate"], width, color=colours[group], alpha=0.35 if is_ref else 0.9,
                           hatch="//" if is_ref else None, edgecolor="black", linewidth=0.4,
                           label=f"{group}, {name}" if name == reference else f"{group}, method of the panel")
                    _draw_ci(ax, where, cells["ci_low"], cells["ci_high"])
                    k += 1
            ax.set_xticks(x, emotions)
            ax.set_ylim(0, 105)
            ax.set_title(f"{task} task: {method}" + ("" if method == reference else f" vs {reference}"), fontsize=10)
            ax.set_xlabel("true emotion")
            if col == 0:
                ax.set_ylabel(f"{task} accuracy (%)")
            ax.grid(axis="y", alpha=0.3)
    handles, labels = _unique_legend(axes)
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8,
               title=f"bars: true {tasks[0]}, method (hatched: reference); lines: CI")
    fig.suptitle(f"{title}: accuracy per true {tasks[0]} x true emotion cell, {ci:.0%} CI (subject bootstrap)")
    return fig


def cell_heatmaps(stats: pd.DataFrame, *, reference: str, methods: list[str], title: str, ci: float) -> Figure:
    """Per-cell accuracy as heatmaps, for attributes with more than two groups (bars would need 2k bars per emotion):
    one row per method (the reference first), one column per task; each cell shows the accuracy and its CI.

    Parameters
    ----------
    stats : stats rows of one evaluation group.
    reference : drawn in the first row; methods : the others, one row each.
    """
    shown, tasks = [reference, *[m for m in methods if m != reference]], task_order(stats)
    groups, emotions = _layout(stats)
    fig, axes = plt.subplots(len(shown), len(tasks),
                             figsize=(1.1 * len(emotions) * len(tasks) + 2.5, 0.55 * len(groups) * len(shown) + 1.4),
                             squeeze=False, layout="constrained")
    image = None
    for row, method in enumerate(shown):
        for col, task in enumerate(tasks):
            ax = axes[row, col]
            cells = [_cells(stats, method, task, g, emotions) for g in groups]
            value = np.array([c["estimate"].to_numpy(dtype=float) for c in cells])
            image = ax.imshow(value, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
            for i, c in enumerate(cells):
                for j, (est, low, high) in enumerate(c[["estimate", "ci_low", "ci_high"]].itertuples(index=False)):
                    ax.text(j, i, f"{est:.0f}\n[{low:.0f}, {high:.0f}]", ha="center", va="center", fontsize=6.5,
                            in_layout=False)  # inside the axes: the layout need not measure it
            ax.set_xticks(np.arange(len(emotions)), emotions if row == len(shown) - 1 else [], rotation=30, ha="right")
            ax.set_yticks(np.arange(len(groups)), groups if col == 0 else [], fontsize=8)
            ax.set_title(f"{task} task: {method}" + (" (reference)" if method == reference else ""), fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.5, label="accuracy (%)")
    fig.suptitle(f"{title}: accuracy per true {tasks[0]} x true emotion cell [{ci:.0%} CI, subject bootstrap]")
    return fig


def gap_bars(stats: pd.DataFrame, *, methods: list[str], title: str, ci: float) -> Figure:
    """Per-emotion gaps (max - min over the groups; for gender |male - female|) and the largest and average gap, one
    bar per method, with CIs."""
    tasks = task_order(stats)
    groups, emotions = _layout(stats)
    labels = emotions + ["largest", "average"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(7.0, 0.9 * len(labels)) * len(tasks), 3.9), squeeze=False,
                             sharey=True)
    x = np.arange(len(labels))
    width = 0.8 / len(methods)
    for col, task in enumerate(tasks):
        ax = axes[0, col]
        for k, method in enumerate(methods):
            rows = stats[(stats["method"] == method) & (stats["task"] == task)]
            gaps = rows[rows["metric"] == "gap"].set_index("emotion").reindex(emotions)
            summary = rows[rows["metric"].isin(["largest_gap", "average_gap"])].set_index("metric").reindex(
                ["largest_gap", "average_gap"])
            values = pd.concat([gaps[["estimate", "ci_low", "ci_high"]], summary[["estimate", "ci_low", "ci_high"]]])
            where = x - 0.4 + width * (k + 0.5)
            ax.bar(where, values["estimate"], width, color=_METHOD_CMAP(k), edgecolor="black", linewidth=0.4, label=method)
            _draw_ci(ax, where, values["ci_low"], values["ci_high"])
        ax.axvline(len(emotions) - 0.5, color="grey", linewidth=0.8)
        ax.set_xticks(x, labels)
        ax.set_xlabel("true emotion (per-emotion gap) | summary")
        ax.set_title(f"{task} task", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    spread = " - ".join(groups) if len(groups) == 2 else f"max - min over {len(groups)} groups"
    axes[0, 0].set_ylabel(f"|{spread}| accuracy gap (pp)" if len(groups) == 2 else f"{spread} (pp)")
    axes[0, 0].legend(*_unique_legend(axes), fontsize=8, title="method")
    fig.suptitle(f"{title}: {tasks[0]} gaps per emotion, {ci:.0%} CI (subject bootstrap; lower is fairer)")
    fig.tight_layout()
    return fig


def forest(stats: pd.DataFrame, *, reference: str, methods: list[str], title: str, ci: float, alpha: float) -> Figure:
    """Differences method - reference of the headline metrics with one row per task (:func:`scalar_headline`) with
    CIs; filled marker: Holm-adjusted p < alpha."""
    tasks = task_order(stats)
    shown = scalar_headline(stats)
    fig, axes = plt.subplots(len(tasks), len(shown), figsize=(4.2 * len(shown), 0.55 * len(methods) * 2 + 2.4),
                             squeeze=False)
    y = np.arange(len(methods))[::-1]
    for row, task in enumerate(tasks):
        for col, m in enumerate(shown):
            ax = axes[row, col]
            rows = stats[(stats["task"] == task) & (stats["metric"] == m.name)].set_index("method").reindex(methods)
            diff = rows["diff"].to_numpy(dtype=float)
            significant = (rows["p_holm"] < alpha).to_numpy()
            _draw_ci(ax, y, rows["diff_ci_low"], rows["diff_ci_high"], horizontal=True)
            ax.scatter(diff[significant], y[significant], color="black", zorder=3, label=f"Holm p < {alpha:g}")
            ax.scatter(diff[~significant], y[~significant], facecolor="white", edgecolor="black", zorder=3,
                       label="not significant")
            ax.axvline(0.0, color="grey", linestyle="--", linewidth=0.8)
            ax.set_yticks(y, methods)
            ax.set_ylim(-0.7, len(methods) - 0.3)
            ax.set_xlabel(f"difference to {reference} (pp; {m.better} is better)")
            ax.set_title(f"{task}: {m.label}", fontsize=10)
            if col == 0:
                ax.set_ylabel("method")
            ax.grid(axis="x", alpha=0.3)
    handles, labels = _unique_legend(axes)
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.suptitle(f"{title}: method - {reference}, {ci:.0%} CI (paired subject bootstrap)")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def verdict_forest(rows: pd.DataFrame, *, title: str) -> Figure:
    """The first screen's forest figure of one held-out design: one panel per metric, one line per verdict (columns
    ``label``, ``metric``, ``diff``, ``low``, ``high``: the interval the verdict reads, ``rejected``, ``primary``,
    ``better``), in the verdict table's order; filled marker: rejected; primary rows black, exploratory grey."""
    panels = list(dict.fromkeys(rows["metric"]))
    labels = list(dict.fromkeys(rows["label"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 0.32 * len(labels) + 1.6), squeeze=False,
                             sharey=True)
    y = {label: len(labels) - 1 - i for i, label in enumerate(labels)}
    for ax, metric in zip(axes[0], panels):
        part = rows[rows["metric"] == metric]
        for primary, colour, name in ((True, "black", "primary (Holm-stepped interval)"),
                                      (False, "grey", "exploratory (unadjusted)")):
            sub = part[part["primary"] == primary]
            if sub.empty:
                continue
            pos = sub["label"].map(y).to_numpy(dtype=float)
            ax.hlines(pos, sub["low"], sub["high"], color=colour, linewidth=1.2)
            rejected = sub["rejected"].to_numpy(dtype=bool)
            ax.scatter(sub["diff"].to_numpy()[rejected], pos[rejected], color=colour, zorder=3, label=f"{name}, rejected")
            ax.scatter(sub["diff"].to_numpy()[~rejected], pos[~rejected], facecolor="white", edgecolor=colour, zorder=3,
                       label=f"{name}, not rejected")
        ax.axvline(0.0, color="grey", linestyle="--", linewidth=0.8)
        ax.set_yticks(list(y.values()), list(y))
        ax.set_xlabel(f"difference (pp; {part['better'].iloc[0]} is better)")
        ax.set_title(metric, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    handles, names = _unique_legend(axes)
    fig.legend(handles, names, loc="lower center", ncol=2, fontsize=8)
    fig.suptitle(f"{title}: verdicts (difference a - b)")
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    return fig


def confusion_matrices(confusion: pd.DataFrame, *, methods: list[str], title: str) -> Figure:
    """Row-normalised emotion confusion matrices (% of each true emotion), rows methods, one column per true group
    (for gender: female, male)."""
    predicted = list(dict.fromkeys(confusion["predicted"]))
    emotions = list(dict.fromkeys(confusion["true"]))
    groups = list(dict.fromkeys(confusion["group"]))
    if set(groups) == {"female", "male"}:
        groups = ["female", "male"]
    fig, axes = plt.subplots(len(methods), len(groups), figsize=(5.5 * len(groups), 3.6 * len(methods) + 1.0),
                             squeeze=False, layout="constrained")
    image = None
    for row, method in enumerate(methods):
        for col, group in enumerate(groups):
            ax = axes[row, col]
            rows = confusion[(confusion["method"] == method) & (confusion["group"] == group)]
            matrix = rows.pivot(index="true", columns="predicted", values="count").reindex(
                index=emotions, columns=predicted).to_numpy(dtype=float)
            totals = matrix.sum(axis=1, keepdims=True)
            percent = np.divide(100.0 * matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
            image = ax.imshow(percent, cmap="Blues", vmin=0, vmax=100, aspect="auto")
            for (i, j), value in np.ndenumerate(percent):
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if value > 60 else "black", in_layout=False)  # inside the axes: not measured
            ax.set_xticks(np.arange(len(predicted)), predicted if row == len(methods) - 1 else [],
                          rotation=45, ha="right")
            ax.set_yticks(np.arange(len(emotions)), emotions if col == 0 else [])
            if row == len(methods) - 1:
                ax.set_xlabel("predicted emotion")
            if col == 0:
                ax.set_ylabel("true emotion")
            ax.set_title(f"{method}, {group} subjects (n = {int(round(totals.sum()))} images)", fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="% of the true emotion's images (seed mean)")
    fig.suptitle(f"{title}: emotion confusion per true group")
    return fig


def save_png(fig: Figure, path) -> None:
    """Save ``fig`` as a PNG (fixed dpi and metadata, so equal inputs give equal files) and close it."""
    fig.savefig(path, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
