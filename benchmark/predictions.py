"""The predictions table: one row per (split, fold, method, seed, partition, image).

Columns: ``split`` (e.g. ``faces->adfes``), ``fold`` (0 for whole-dataset splits), ``method``, ``seed`` (0 for
deterministic methods), ``partition`` (``test``; ``train`` for in-sample numbers such as the paper's FACES rows),
``dataset``, ``image_id``, ``subject``, the true labels of the two tasks (``<attribute>``, e.g. ``gender``, and
``emotion``, copied from the outputs table), their predictions ``pred_<attribute>``, ``pred_emotion`` (canonical
names; the emotion argmax is over all the model's classes), and the probabilities ``pg_<group>`` (attribute groups)
and ``pe_<class>`` (emotion classes). The metadata carries the attribute, its groups and every dataset's declaration,
so evaluation reads the design from the table, never from params. Metrics are always computed from this table, never
stored beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import design as designs
from benchmark import tables
from benchmark.design import Attribute, DatasetDesign
from benchmark.errors import BenchmarkError
from benchmark.labels import canonical_emotion
from benchmark.outputs import OutputsTable

KEY_COLUMNS: tuple[str, ...] = ("split", "fold", "method", "seed", "partition", "dataset", "image_id")
PARTITIONS: tuple[str, ...] = ("test", "train")
EMOTION_TASK = "emotion"


def tasks(attribute: str) -> tuple[str, str]:
    """The two tasks of a run: the protected attribute's (its name) and the emotion task."""
    return (attribute, EMOTION_TASK)


def label_columns(attribute: str) -> tuple[str, ...]:
    """Columns every predictions table has besides its keys."""
    return ("subject", attribute, EMOTION_TASK, f"pred_{attribute}", f"pred_{EMOTION_TASK}")


def group_prob_column(group: str) -> str:
    """Column of the predicted probability of attribute group ``group``."""
    return f"pg_{group}"


def emotion_prob_column(emotion_class: str) -> str:
    """Column of the predicted probability of emotion class ``emotion_class``."""
    return f"pe_{emotion_class}"


def make_rows(table: OutputsTable, *, attribute: Attribute, split: str, fold: int, method: str, seed: int,
              partition: str, group_probs: np.ndarray, emotion_probs: np.ndarray) -> pd.DataFrame:
    """Prediction rows for every image of ``table``.

    Parameters
    ----------
    group_probs : array of shape (n_images, n_groups), rows sum to 1, columns in ``attribute.groups`` order.
    emotion_probs : array of shape (n_images, n_emotion_classes), rows sum to 1, model class order.
    """
    n = len(table.frame)
    assert group_probs.shape == (n, len(attribute.groups)), group_probs.shape
    assert emotion_probs.shape == (n, len(table.emotion_classes)), emotion_probs.shape
    canonical = np.array([canonical_emotion(c) or c for c in table.emotion_classes], dtype=object)
    src = table.frame
    frame = pd.DataFrame({
        "split": split, "fold": np.int64(fold), "method": method, "seed": np.int64(seed), "partition": partition,
        "dataset": src["dataset"].to_numpy(), "image_id": src["image_id"].to_numpy(),
        "subject": src["subject"].astype(str).to_numpy(), attribute.name: attribute.truth(src),
        EMOTION_TASK: src["emotion"].to_numpy(),
        f"pred_{attribute.name}": np.array(attribute.groups, dtype=object)[group_probs.argmax(axis=1)],
        f"pred_{EMOTION_TASK}": canonical[emotion_probs.argmax(axis=1)],
    })
    for i, g in enumerate(attribute.groups):
        frame[group_prob_column(g)] = group_probs[:, i].astype(np.float32)
    for i, c in enumerate(table.emotion_classes):
        frame[emotion_prob_column(c)] = emotion_probs[:, i].astype(np.float32)
    return frame


def metadata(attribute: str, datasets: dict[str, DatasetDesign], **extra: Any) -> dict[str, Any]:
    """What a predictions table carries: the attribute, each dataset's declaration (so its cells), and ``extra``
    (source, scenario ...)."""
    return {"attribute": attribute, "designs": {name: designs.to_dict(d) for name, d in sorted(datasets.items())},
            **extra}


def write(frame: pd.DataFrame, path: Path | str, *, emotion_classes: tuple[str, ...], metadata: dict) -> None:
    """Write predictions atomically, sorted by key so equal runs give byte-identical files."""
    dup = frame.duplicated(list(KEY_COLUMNS))
    assert not dup.any(), frame[dup].head()
    ordered = frame.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)
    tables.write_parquet(ordered, path, emotion_classes=emotion_classes, metadata=metadata)


class Predictions:
    """A predictions table read back with what it carries.

    frame : the rows; emotion_classes : the emotion model's classes; attribute : the protected attribute's name;
    layouts : dataset -> its cells (attribute groups x declared emotions); metadata : the rest (source, scenario ...).
    """

    def __init__(self, frame: pd.DataFrame, emotion_classes: tuple[str, ...], meta: dict[str, Any], *,
                 where: str) -> None:
        try:
            attribute, raw = meta.pop("attribute"), meta.pop("designs")
        except KeyError as err:
            raise BenchmarkError(f"{where}: no {err.args[0]!r} in its metadata (written by an older "
                                 "`benchmark train`); rerun `benchmark train`") from None
        self.frame, self.emotion_classes, self.attribute, self.metadata = frame, emotion_classes, attribute, meta
        self.designs = {name: designs.dataset_from_dict(name, d, where=f"{where} metadata") for name, d in raw.items()}
        self.layouts = {name: designs.layout(d, designs.attribute_of(d, attribute)) for name, d in self.designs.items()}

    @property
    def tasks(self) -> tuple[str, str]:
        return tasks(self.attribute)


def read(path: Path | str) -> Predictions:
    """Read predictions written by :func:`write`."""
    frame, classes, meta = tables.read_parquet(path, what="predictions", producer="benchmark train")
    result = Predictions(frame, classes, meta, where=str(path))
    missing = [c for c in KEY_COLUMNS + label_columns(result.attribute) if c not in frame.columns]
    if missing:
        raise BenchmarkError(f"{path}: missing column(s) {', '.join(missing)}; rerun `benchmark train`")
    return result
