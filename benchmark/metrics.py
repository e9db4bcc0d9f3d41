"""The paper's metrics, for each task (gender, emotion), in percent.

- cell accuracy: accuracy among images of one true-gender x true-emotion cell (12 cells);
- macro accuracy: the mean of the 12 cell accuracies;
- per-emotion gap: |A(male, e) - A(female, e)| for each of the 6 emotions;
- largest gap and average gap: the max and mean of the 6 per-emotion gaps.

Emotion predictions are the argmax over all of the emotion model's classes (the paper's rule): predicting surprise or
contempt, which no dataset image carries, counts as an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.labels import DATASET_EMOTIONS, GENDERS

TASKS: tuple[str, ...] = ("gender", "emotion")
SUMMARY_METRICS: tuple[str, ...] = ("macro", "largest_gap", "average_gap")


@dataclass(frozen=True)
class TaskSummary:
    """The paper's summary of one task on one dataset; all values in percent."""

    macro: float
    largest_gap: float
    average_gap: float
    gaps: pd.Series  # index: emotion (DATASET_EMOTIONS order), values: |A_male - A_female|

    def as_dict(self) -> dict[str, float]:
        """The three headline numbers."""
        return {"macro": self.macro, "largest_gap": self.largest_gap, "average_gap": self.average_gap}


def cell_accuracies(*, gender: np.ndarray, emotion: np.ndarray, correct: np.ndarray) -> pd.DataFrame:
    """Accuracy in each true-gender x true-emotion cell.

    Parameters
    ----------
    gender, emotion : arrays of shape (n_images,)
        True labels (canonical names).
    correct : bool array of shape (n_images,)
        Whether the prediction for each image was right.

    Returns
    -------
    DataFrame indexed by (gender, emotion) over the full 2 x 6 design, in label order, with columns ``n`` (images)
    and ``accuracy`` (percent; NaN for an empty cell).
    """
    frame = pd.DataFrame({"gender": np.asarray(gender), "emotion": np.asarray(emotion), "correct": np.asarray(correct, dtype=float)})
    grouped = frame.groupby(["gender", "emotion"], observed=True)["correct"].agg(["size", "mean"])
    full = pd.MultiIndex.from_product([GENDERS, DATASET_EMOTIONS], names=["gender", "emotion"])
    cells = grouped.reindex(full)
    return pd.DataFrame({"n": cells["size"].fillna(0).astype(int), "accuracy": 100.0 * cells["mean"]}, index=full)


def summarize(cells: pd.DataFrame) -> TaskSummary:
    """Macro accuracy and gaps from :func:`cell_accuracies` output."""
    acc = cells["accuracy"].unstack("gender").reindex(index=list(DATASET_EMOTIONS), columns=list(GENDERS))
    gaps = (acc["male"] - acc["female"]).abs()
    gaps.name = "gap"
    return TaskSummary(macro=float(cells["accuracy"].mean()), largest_gap=float(gaps.max()),
                       average_gap=float(gaps.mean()), gaps=gaps)


def task_cells(frame: pd.DataFrame, *, task: str, predicted: np.ndarray) -> pd.DataFrame:
    """Cell accuracies of ``task`` for predicted labels aligned with the rows of an outputs-table ``frame``."""
    correct = np.asarray(predicted) == frame[task].to_numpy()
    return cell_accuracies(gender=frame["gender"].to_numpy(), emotion=frame["emotion"].to_numpy(), correct=correct)


#: A predictions group that the paper's metrics are computed over (CV folds of one seed are pooled).
GROUP_KEYS: tuple[str, ...] = ("split", "method", "partition", "dataset", "seed")


def cells_by_group(frame: pd.DataFrame) -> pd.DataFrame:
    """Cell accuracies of both tasks for every group of a predictions table.

    Returns a long DataFrame with columns ``GROUP_KEYS + (task, gender, emotion, n, accuracy)``; every group has all
    2 x 6 cells of each task (NaN accuracy for an empty cell).
    """
    pieces = []
    for task in TASKS:
        correct = (frame[f"pred_{task}"].to_numpy() == frame[task].to_numpy()).astype(float)
        keyed = frame[list(GROUP_KEYS) + ["gender", "emotion"]].assign(correct=correct)
        agg = keyed.groupby(list(GROUP_KEYS) + ["gender", "emotion"], observed=True, sort=False)["correct"].agg(["size", "mean"])
        groups = agg.index.droplevel(["gender", "emotion"]).unique()
        full = pd.MultiIndex.from_tuples(
            [(*g, gender, emotion) for g in groups for gender in GENDERS for emotion in DATASET_EMOTIONS],
            names=list(GROUP_KEYS) + ["gender", "emotion"])
        agg = agg.reindex(full)
        pieces.append(pd.DataFrame({"task": task, "n": agg["size"].fillna(0).astype(int).to_numpy(),
                                    "accuracy": 100.0 * agg["mean"].to_numpy()}, index=full).reset_index())
    return pd.concat(pieces, ignore_index=True)


def summaries_by_group(cells: pd.DataFrame) -> pd.DataFrame:
    """Macro accuracy, largest and average gap for each (group, task) of :func:`cells_by_group` output.

    The same values as :func:`summarize` applied to each group, in a few vectorised operations.
    """
    keys = list(GROUP_KEYS) + ["task"]
    macro = cells.groupby(keys, observed=True)["accuracy"].mean()
    by_gender = cells.set_index(keys + ["emotion", "gender"])["accuracy"].unstack("gender")
    gaps = (by_gender["male"] - by_gender["female"]).abs().groupby(level=keys, observed=True)
    return pd.DataFrame({"macro": macro, "largest_gap": gaps.max(), "average_gap": gaps.mean()}).reset_index()
