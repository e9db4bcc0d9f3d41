"""The paper's metrics as tables: cell accuracies and the paper's three summary numbers per task, from prediction
rows (the CV objective of a tuning study, the simulator's checks); in percent, over any declared cells.

- cell accuracy: accuracy among images of one true-group x true-emotion cell (the paper: 2 genders x 6 emotions);
- macro accuracy: the mean of the cell accuracies;
- per-emotion gap: the spread of the groups' accuracies for one emotion, max - min over the groups; for two groups
  this is the paper's |A(male, e) - A(female, e)| (docs/STATISTICS.md says why max - min for more groups);
- largest gap and average gap: the max and mean of the per-emotion gaps.

Emotion predictions are the argmax over all of the emotion model's classes (the paper's rule): predicting surprise or
contempt, which no FACES or ADFES image carries, counts as an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.core.design import CellLayout
from benchmark.core.metrics.metric import spread

#: the paper's summary of a task (its table's three numbers)
SUMMARY_METRICS: tuple[str, ...] = ("macro", "largest_gap", "average_gap")


@dataclass(frozen=True)
class TaskSummary:
    """The paper's summary of one task on one dataset; all values in percent."""

    macro: float
    largest_gap: float
    average_gap: float
    gaps: pd.Series  # index: emotion (layout order), values: max - min over the groups

    def as_dict(self) -> dict[str, float]:
        """The three headline numbers."""
        return {"macro": self.macro, "largest_gap": self.largest_gap, "average_gap": self.average_gap}


def cell_accuracies(*, group: np.ndarray, emotion: np.ndarray, correct: np.ndarray, layout: CellLayout) -> pd.DataFrame:
    """Accuracy in each true-group x true-emotion cell.

    Parameters
    ----------
    group, emotion : arrays of shape (n_images,)
        True labels (declared names).
    correct : bool array of shape (n_images,)
        Whether the prediction for each image was right.
    layout : the cells (groups x emotions).

    Returns
    -------
    DataFrame indexed by (group, emotion) over every cell of ``layout``, in its order, with columns ``n`` (images)
    and ``accuracy`` (percent; NaN for an empty cell).
    """
    frame = pd.DataFrame({"group": np.asarray(group), "emotion": np.asarray(emotion), "correct": np.asarray(correct, dtype=float)})
    grouped = frame.groupby(["group", "emotion"], observed=True)["correct"].agg(["size", "mean"])
    full = pd.MultiIndex.from_product([layout.groups, layout.emotions], names=["group", "emotion"])
    cells = grouped.reindex(full)
    return pd.DataFrame({"n": cells["size"].fillna(0).astype(int), "accuracy": 100.0 * cells["mean"]}, index=full)


def summarize(cells: pd.DataFrame, layout: CellLayout) -> TaskSummary:
    """Macro accuracy and gaps from :func:`cell_accuracies` output."""
    acc = cells["accuracy"].to_numpy(dtype=np.float64).reshape(len(layout.groups), len(layout.emotions))
    gaps = pd.Series(spread(acc), index=pd.Index(layout.emotions, name="emotion"), name="gap")
    return TaskSummary(macro=float(cells["accuracy"].mean()), largest_gap=float(gaps.max()),
                       average_gap=float(gaps.mean()), gaps=gaps)


#: A predictions group that the paper's metrics are computed over (CV folds of one seed are pooled).
GROUP_KEYS: tuple[str, ...] = ("split", "method", "partition", "dataset", "seed")


def cells_by_group(frame: pd.DataFrame, *, tasks: tuple[str, str], layouts: dict[str, CellLayout]) -> pd.DataFrame:
    """Cell accuracies of both tasks for every group of a predictions table.

    Parameters
    ----------
    frame : predictions table; ``tasks[0]`` is the attribute, whose truth column holds the cells' groups.
    tasks : (attribute, "emotion"), see :func:`benchmark.core.predictions.tasks`.
    layouts : dataset -> its cells.

    Returns a long DataFrame with columns ``GROUP_KEYS + (task, group, emotion, n, accuracy)``; every group has all
    cells of its dataset's layout for each task (NaN accuracy for an empty cell).
    """
    attribute = tasks[0]
    pieces = []
    for task in tasks:
        correct = (frame[f"pred_{task}"].to_numpy() == frame[task].to_numpy()).astype(float)
        keyed = frame[list(GROUP_KEYS)].assign(group=frame[attribute].to_numpy(), emotion=frame["emotion"].to_numpy(),
                                                correct=correct)
        agg = keyed.groupby(list(GROUP_KEYS) + ["group", "emotion"], observed=True, sort=False)["correct"].agg(["size", "mean"])
        groups = agg.index.droplevel(["group", "emotion"]).unique()
        position = list(GROUP_KEYS).index("dataset")
        full = pd.MultiIndex.from_tuples(
            [(*g, group, emotion) for g in groups for group, emotion in layouts[g[position]].cells()],
            names=list(GROUP_KEYS) + ["group", "emotion"])
        agg = agg.reindex(full)
        pieces.append(pd.DataFrame({"task": task, "n": agg["size"].fillna(0).astype(int).to_numpy(),
                                    "accuracy": 100.0 * agg["mean"].to_numpy()}, index=full).reset_index())
    return pd.concat(pieces, ignore_index=True)


def summaries_by_group(cells: pd.DataFrame) -> pd.DataFrame:
    """Macro accuracy, largest and average gap for each (group, task) of :func:`cells_by_group` output.

    The same values as :func:`summarize` applied to each group, in a few vectorised operations.
    """
    keys = list(GROUP_KEYS) + ["task"]
    macro = cells.groupby(keys, observed=True, sort=False)["accuracy"].mean()
    by_emotion = cells.groupby(keys + ["emotion"], observed=True, sort=False)["accuracy"]
    gaps = (by_emotion.max() - by_emotion.min()).where(by_emotion.count() == by_emotion.size())
    per_group = gaps.groupby(level=keys, observed=True, sort=False)
    out = pd.DataFrame({"macro": macro, "largest_gap": per_group.max(), "average_gap": per_group.mean()})
    return out.sort_index().reset_index()
