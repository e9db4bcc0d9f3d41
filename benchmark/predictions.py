"""The predictions table: one row per (split, fold, method, seed, partition, image).

Columns: ``split`` (e.g. ``faces->adfes``), ``fold`` (0 for whole-dataset splits), ``method``, ``seed`` (0 for
deterministic methods), ``partition`` (``test``; ``train`` for in-sample numbers such as the paper's FACES rows),
``dataset``, ``image_id``, ``subject``, ``gender``, ``emotion`` (true labels, copied from the outputs table),
``pred_gender``, ``pred_emotion`` (canonical names; the emotion argmax is over all the model's classes), and the
probabilities ``pg_<gender>`` and ``pe_<class>``. Metrics are always computed from this table, never stored beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import tables
from benchmark.errors import BenchmarkError
from benchmark.labels import GENDERS, canonical_emotion
from benchmark.outputs import OutputsTable

KEY_COLUMNS: tuple[str, ...] = ("split", "fold", "method", "seed", "partition", "dataset", "image_id")
LABEL_COLUMNS: tuple[str, ...] = ("subject", "gender", "emotion", "pred_gender", "pred_emotion")
PARTITIONS: tuple[str, ...] = ("test", "train")


def gender_prob_column(gender: str) -> str:
    """Column of the predicted probability of ``gender``."""
    return f"pg_{gender}"


def emotion_prob_column(emotion_class: str) -> str:
    """Column of the predicted probability of emotion class ``emotion_class``."""
    return f"pe_{emotion_class}"


def make_rows(table: OutputsTable, *, split: str, fold: int, method: str, seed: int, partition: str,
              gender_probs: np.ndarray, emotion_probs: np.ndarray) -> pd.DataFrame:
    """Prediction rows for every image of ``table``.

    Parameters
    ----------
    gender_probs : array of shape (n_images, 2), rows sum to 1, columns in ``GENDERS`` order.
    emotion_probs : array of shape (n_images, n_emotion_classes), rows sum to 1, model class order.
    """
    n = len(table.frame)
    assert gender_probs.shape == (n, len(GENDERS)), gender_probs.shape
    assert emotion_probs.shape == (n, len(table.emotion_classes)), emotion_probs.shape
    canonical = np.array([canonical_emotion(c) or c for c in table.emotion_classes], dtype=object)
    src = table.frame
    frame = pd.DataFrame({
        "split": split, "fold": np.int64(fold), "method": method, "seed": np.int64(seed), "partition": partition,
        "dataset": src["dataset"].to_numpy(), "image_id": src["image_id"].to_numpy(),
        "subject": src["subject"].astype(str).to_numpy(), "gender": src["gender"].to_numpy(), "emotion": src["emotion"].to_numpy(),
        "pred_gender": np.array(GENDERS, dtype=object)[gender_probs.argmax(axis=1)],
        "pred_emotion": canonical[emotion_probs.argmax(axis=1)],
    })
    for i, g in enumerate(GENDERS):
        frame[gender_prob_column(g)] = gender_probs[:, i].astype(np.float32)
    for i, c in enumerate(table.emotion_classes):
        frame[emotion_prob_column(c)] = emotion_probs[:, i].astype(np.float32)
    return frame


def write(frame: pd.DataFrame, path: Path | str, *, emotion_classes: tuple[str, ...], metadata: dict | None = None) -> None:
    """Write predictions atomically, sorted by key so equal runs give byte-identical files."""
    dup = frame.duplicated(list(KEY_COLUMNS))
    assert not dup.any(), frame[dup].head()
    ordered = frame.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)
    tables.write_parquet(ordered, path, emotion_classes=emotion_classes, metadata=metadata or {})


def read(path: Path | str) -> tuple[pd.DataFrame, tuple[str, ...], dict]:
    """Read predictions: (frame, emotion classes, metadata)."""
    frame, classes, meta = tables.read_parquet(path, what="predictions", producer="benchmark train")
    missing = [c for c in KEY_COLUMNS + LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise BenchmarkError(f"{path}: missing column(s) {', '.join(missing)}; rerun `benchmark train`")
    return frame, classes, meta
