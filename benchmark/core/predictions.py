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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.core import design as designs
from benchmark.core.design import Attribute, DatasetDesign
from benchmark.core.labels import canonical_emotion
from benchmark.core.outputs import OutputsTable
from benchmark.infra import parquet
from benchmark.infra.errors import BenchmarkError

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


@dataclass(frozen=True)
class Predicted:
    """One model's predictions for every image of ``table``, and the fold, seed and partition its rows carry.

    group_probs : array of shape (n_images, n_groups), rows sum to 1, columns in the attribute's groups order.
    emotion_probs : array of shape (n_images, n_emotion_classes), rows sum to 1, model class order.
    """

    table: OutputsTable
    fold: int
    seed: int
    partition: str
    group_probs: np.ndarray
    emotion_probs: np.ndarray


def make_rows(table: OutputsTable, *, attribute: Attribute, split: str, fold: int, method: str, seed: int,
              partition: str, group_probs: np.ndarray, emotion_probs: np.ndarray) -> pd.DataFrame:
    """Prediction rows for every image of ``table`` (probabilities as in :class:`Predicted`)."""
    return rows_of([Predicted(table, fold, seed, partition, group_probs, emotion_probs)], attribute=attribute,
                   split=split, method=method)


def _copied_columns(table: OutputsTable, attribute: Attribute) -> dict[str, np.ndarray]:
    """The columns a row copies from its image in ``table``: arrays of shape (n_images,)."""
    src = table.frame
    return {"dataset": src["dataset"].to_numpy(), "image_id": src["image_id"].to_numpy(),
            "subject": src["subject"].astype(str).to_numpy(), attribute.name: attribute.truth(src),
            EMOTION_TASK: src["emotion"].to_numpy()}


def rows_of(pieces: Sequence[Predicted], *, attribute: Attribute, split: str, method: str) -> pd.DataFrame:
    """The prediction rows of every piece of one (split, method), piece after piece: :func:`make_rows` of each,
    concatenated, built as one frame from whole columns (a table shared by several pieces, one per seed, is read
    once). The pieces' tables have the same emotion classes."""
    classes = pieces[0].table.emotion_classes
    for p in pieces:
        assert p.group_probs.shape == (len(p.table.frame), len(attribute.groups)), p.group_probs.shape
        assert p.emotion_probs.shape == (len(p.table.frame), len(classes)), p.emotion_probs.shape
        assert p.table.emotion_classes == classes, (p.table.emotion_classes, classes)
    labels = {id(p.table): _copied_columns(p.table, attribute) for p in pieces}
    sizes = [len(p.table.frame) for p in pieces]
    group_probs = np.concatenate([p.group_probs for p in pieces])
    emotion_probs = np.concatenate([p.emotion_probs for p in pieces])
    canonical = np.array([canonical_emotion(c) or c for c in classes], dtype=object)
    columns = {
        "split": np.full(sum(sizes), split, dtype=object),
        "fold": np.repeat(np.array([p.fold for p in pieces], dtype=np.int64), sizes),
        "method": np.full(sum(sizes), method, dtype=object),
        "seed": np.repeat(np.array([p.seed for p in pieces], dtype=np.int64), sizes),
        "partition": np.repeat(np.array([p.partition for p in pieces], dtype=object), sizes),
        **{name: np.concatenate([labels[id(p.table)][name] for p in pieces]) for name in labels[id(pieces[0].table)]},
        f"pred_{attribute.name}": np.array(attribute.groups, dtype=object)[group_probs.argmax(axis=1)],
        f"pred_{EMOTION_TASK}": canonical[emotion_probs.argmax(axis=1)],
        **{group_prob_column(g): group_probs[:, i].astype(np.float32) for i, g in enumerate(attribute.groups)},
        **{emotion_prob_column(c): emotion_probs[:, i].astype(np.float32) for i, c in enumerate(classes)},
    }
    return pd.DataFrame(columns)


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
    parquet.write_parquet(ordered, path, emotion_classes=emotion_classes, metadata=metadata)


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
    frame, classes, meta = parquet.read_parquet(path, what="predictions", producer="benchmark train")
    result = Predictions(frame, classes, meta, where=str(path))
    missing = [c for c in KEY_COLUMNS + label_columns(result.attribute) if c not in frame.columns]
    if missing:
        raise BenchmarkError(f"{path}: missing column(s) {', '.join(missing)}; rerun `benchmark train`")
    return result
