"""Confusion matrices of the emotion task per true gender, seed-averaged, for every group of a predictions table."""

from __future__ import annotations

import pandas as pd

from benchmark.labels import DATASET_EMOTIONS, GENDERS, canonical_emotion

__all__ = ["CONFUSION_KEYS", "emotion_confusion"]

#: One confusion matrix per (split, partition, dataset, method, gender).
CONFUSION_KEYS: tuple[str, ...] = ("split", "partition", "dataset", "method", "gender")


def emotion_confusion(frame: pd.DataFrame, *, emotion_classes: tuple[str, ...]) -> pd.DataFrame:
    """Seed-mean counts of (true emotion, predicted emotion) per group and true gender.

    Parameters
    ----------
    frame : predictions table (CV folds of one seed pooled).
    emotion_classes : the emotion model's classes (model order); predictions may name any of them.

    Returns
    -------
    Long DataFrame with columns ``CONFUSION_KEYS + (true, predicted, count)``: every true emotion of
    ``DATASET_EMOTIONS`` x every predicted class (canonical names, dataset emotions first, then the model's other
    classes), zero-filled; ``count`` is the number of images averaged over the method's seeds.
    """
    canonical = [canonical_emotion(c) or c for c in emotion_classes]
    predicted_order = list(DATASET_EMOTIONS) + [c for c in canonical if c not in DATASET_EMOTIONS]
    keys = list(CONFUSION_KEYS)
    n_seeds = frame.groupby(keys[:-1], observed=True)["seed"].nunique().rename("n_seeds")
    counts = (frame.groupby(keys + ["emotion", "pred_emotion"], observed=True).size().rename("total").reset_index()
              .rename(columns={"emotion": "true", "pred_emotion": "predicted"}))
    groups = frame[keys[:-1]].drop_duplicates().sort_values(keys[:-1])
    full = pd.MultiIndex.from_tuples(
        [(*g, gender, true, pred) for g in groups.itertuples(index=False) for gender in GENDERS
         for true in DATASET_EMOTIONS for pred in predicted_order],
        names=keys + ["true", "predicted"])
    table = counts.set_index(keys + ["true", "predicted"])["total"].reindex(full, fill_value=0).reset_index()
    table = table.join(n_seeds, on=keys[:-1])
    table["count"] = table["total"] / table["n_seeds"]
    return table.drop(columns=["total", "n_seeds"])
