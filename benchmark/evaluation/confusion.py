"""Confusion matrices of the emotion task per true attribute group, seed-averaged, for every group of a predictions
table."""

from __future__ import annotations

import pandas as pd

from benchmark.core.design import CellLayout
from benchmark.core.labels import canonical_emotion

__all__ = ["CONFUSION_KEYS", "emotion_confusion"]

#: One confusion matrix per (split, partition, dataset, method, group).
CONFUSION_KEYS: tuple[str, ...] = ("split", "partition", "dataset", "method", "group")


def emotion_confusion(frame: pd.DataFrame, *, emotion_classes: tuple[str, ...], attribute: str,
                      layouts: dict[str, CellLayout]) -> pd.DataFrame:
    """Seed-mean counts of (true emotion, predicted emotion) per evaluation group and true attribute group.

    Parameters
    ----------
    frame : predictions table (CV folds of one seed pooled).
    emotion_classes : the emotion model's classes (model order); predictions may name any of them.
    attribute : the protected attribute (its column holds each image's true group).
    layouts : dataset -> its cells (groups x declared emotions).

    Returns
    -------
    Long DataFrame with columns ``CONFUSION_KEYS + (true, predicted, count)``: every group x true emotion of the
    dataset's layout x every predicted class (canonical names, the dataset's emotions first, then the model's other
    classes), zero-filled; ``count`` is the number of images averaged over the method's seeds.
    """
    canonical = [canonical_emotion(c) or c for c in emotion_classes]
    keys = list(CONFUSION_KEYS)
    rows = frame.rename(columns={attribute: "group"})
    n_seeds = rows.groupby(keys[:-1], observed=True)["seed"].nunique().rename("n_seeds")
    counts = (rows.groupby(keys + ["emotion", "pred_emotion"], observed=True).size().rename("total").reset_index()
              .rename(columns={"emotion": "true", "pred_emotion": "predicted"}))
    groups = rows[keys[:-1]].drop_duplicates().sort_values(keys[:-1])
    full = []
    for g in groups.itertuples(index=False):
        layout = layouts[g[keys.index("dataset")]]
        predicted_order = list(layout.emotions) + [c for c in canonical if c not in layout.emotions]
        full += [(*g, group, true, pred) for group in layout.groups for true in layout.emotions
                 for pred in predicted_order]
    index = pd.MultiIndex.from_tuples(full, names=keys + ["true", "predicted"])
    table = counts.set_index(keys + ["true", "predicted"])["total"].reindex(index, fill_value=0).reset_index()
    table = table.join(n_seeds, on=keys[:-1])
    table["count"] = table["total"] / table["n_seeds"]
    return table.drop(columns=["total", "n_seeds"])
