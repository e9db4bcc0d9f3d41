"""The outputs table: one row per image, the frozen models' outputs beside the true labels.

Columns (see docs/ARCHITECTURE.md): ``dataset``, ``image_id``, ``subject``, ``gender`` (true), ``emotion`` (true),
``p_male``, ``p_female`` (gender-model probabilities, FairFace order), ``emo_<class>`` for each class of the emotion
model (raw logits, model order; EmoNet's 8 by default), plus optional extra columns. The emotion class list, the source
and checksums travel in the parquet file's metadata, so nothing downstream assumes exactly 8 emotions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark import tables
from benchmark.errors import BenchmarkError
from benchmark.labels import (
    DATASET_EMOTIONS, EMONET_EMOTIONS, GENDER_COLUMNS, GENDERS, canonical_emotion, emotion_column,
)

ID_COLUMNS: tuple[str, ...] = ("dataset", "image_id", "subject", "gender", "emotion")
PROBABILITY_SUM_TOLERANCE = 1e-3
#: the largest raw logit magnitude accepted: trained classifiers' logits are within tens, and beyond this bound the
#: softmax is exactly one-hot and standardising the inputs overflows (1e308 ends in scikit-learn's "contains NaN")
MAX_ABS_LOGIT = 1e6


@dataclass
class OutputsTable:
    """A validated outputs table.

    Attributes
    ----------
    frame : DataFrame of shape (n_images, n_columns)
        The rows, in the column layout described in the module docstring.
    emotion_classes : tuple of str
        The emotion model's classes in model order; column ``emo_<c>`` holds the raw logit of class c.
    metadata : dict
        Free-form provenance (source, scenario, checksums, model weights' sha256 ...).
    """

    frame: pd.DataFrame
    emotion_classes: tuple[str, ...] = EMONET_EMOTIONS
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def emotion_columns(self) -> list[str]:
        """Names of the logit columns, in model order."""
        return [emotion_column(c) for c in self.emotion_classes]

    def gender_probs(self) -> np.ndarray:
        """Gender probabilities, shape (n_images, 2), columns in ``GENDERS`` order."""
        return self.frame[list(GENDER_COLUMNS)].to_numpy(dtype=np.float64)

    def emotion_logits(self) -> np.ndarray:
        """Raw emotion logits, shape (n_images, n_emotion_classes), columns in model order."""
        return self.frame[self.emotion_columns].to_numpy(dtype=np.float64)

    def subset(self, mask: np.ndarray | pd.Series) -> "OutputsTable":
        """Rows where ``mask`` is true, with the same classes and metadata."""
        return OutputsTable(self.frame[np.asarray(mask)].reset_index(drop=True), self.emotion_classes, dict(self.metadata))


def concat(tables: list[OutputsTable]) -> OutputsTable:
    """Stack tables of the same emotion label space (e.g. FACES and ADFES) into one."""
    classes = {t.emotion_classes for t in tables}
    if len(classes) != 1:
        raise BenchmarkError(f"outputs tables use different emotion classes {sorted(classes)}; use one emotion model for all datasets")
    frame = pd.concat([t.frame for t in tables], ignore_index=True)
    meta = {t.frame["dataset"].iloc[0]: t.metadata for t in tables if len(t.frame)}
    return OutputsTable(frame, tables[0].emotion_classes, {"datasets": meta})


def validate(table: OutputsTable, *, where: str) -> OutputsTable:
    """Check the contract; raise BenchmarkError with one line naming ``where`` and the first problem.

    Rules: required columns present; labels known; probabilities in [0, 1] summing to 1 (within 1e-3); finite logits
    of plausible magnitude (at most ``MAX_ABS_LOGIT``);
    unique image ids per dataset; one gender per subject; every cell of the 2 x 6 (gender x emotion) design non-empty.
    """
    df = table.frame
    classes = list(table.emotion_classes)
    if len(set(classes)) != len(classes) or not classes:
        raise BenchmarkError(f"{where}: emotion classes {classes} must be non-empty and unique")
    required = list(ID_COLUMNS) + list(GENDER_COLUMNS) + table.emotion_columns
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise BenchmarkError(f"{where}: missing column(s) {', '.join(missing)}; an outputs table needs {', '.join(required)}")
    if df.empty:
        raise BenchmarkError(f"{where}: the table has no rows")
    for column, allowed in (("gender", GENDERS), ("emotion", DATASET_EMOTIONS)):
        bad = sorted(set(df[column].astype(str)) - set(allowed))
        if bad:
            raise BenchmarkError(f"{where}: column '{column}' has unknown label(s) {bad}; expected one of {', '.join(allowed)}")
    probs = df[list(GENDER_COLUMNS)]
    if not all(pd.api.types.is_numeric_dtype(probs[c]) for c in probs):
        raise BenchmarkError(f"{where}: columns {', '.join(GENDER_COLUMNS)} must be numeric probabilities")
    values = probs.to_numpy(dtype=np.float64)
    bad_rows = ~np.isfinite(values).all(axis=1) | (values < 0).any(axis=1) | (values > 1).any(axis=1)
    if bad_rows.any():
        row = df.loc[bad_rows, "image_id"].iloc[0]
        raise BenchmarkError(f"{where}: image {row!r} has gender probabilities outside [0, 1] ({values[bad_rows][0].tolist()}); expected probabilities")
    sums = values.sum(axis=1)
    off = np.abs(sums - 1.0) > PROBABILITY_SUM_TOLERANCE
    if off.any():
        row = df.loc[off, "image_id"].iloc[0]
        raise BenchmarkError(f"{where}: image {row!r} has p_male + p_female = {sums[off][0]:.6f}; expected 1 within {PROBABILITY_SUM_TOLERANCE}")
    logits = df[table.emotion_columns]
    if not all(pd.api.types.is_numeric_dtype(logits[c]) for c in logits):
        raise BenchmarkError(f"{where}: emotion columns {', '.join(table.emotion_columns)} must be numeric logits")
    finite = np.isfinite(logits.to_numpy(dtype=np.float64)).all(axis=1)
    if not finite.all():
        row = df.loc[~finite, "image_id"].iloc[0]
        raise BenchmarkError(f"{where}: image {row!r} has non-finite emotion logits; expected finite raw logits")
    check_logit_magnitudes(table, where=where)
    dup = df.duplicated(["dataset", "image_id"])
    if dup.any():
        raise BenchmarkError(f"{where}: duplicate image id {df.loc[dup, 'image_id'].iloc[0]!r}; each image must appear once")
    genders_per_subject = df.groupby(["dataset", "subject"], observed=True)["gender"].nunique()
    if (genders_per_subject > 1).any():
        ds, subject = genders_per_subject[genders_per_subject > 1].index[0]
        raise BenchmarkError(f"{where}: subject {subject!r} of {ds} has images labelled with two genders; a subject has one gender")
    for dataset, rows in df.groupby("dataset", observed=True):
        present = set(zip(rows["gender"].astype(str), rows["emotion"].astype(str)))
        for gender in GENDERS:
            for emotion in DATASET_EMOTIONS:
                if (gender, emotion) not in present:
                    raise BenchmarkError(f"{where}: dataset {dataset!r} has no image in cell ({gender}, {emotion}); every cell of the 2 x 6 design needs images")
    if not any(canonical_emotion(c) in DATASET_EMOTIONS for c in classes):
        raise BenchmarkError(f"{where}: no emotion class of the model ({classes}) maps to a dataset emotion ({', '.join(DATASET_EMOTIONS)})")
    return table


def check_logit_magnitudes(table: OutputsTable, *, where: str) -> None:
    """Refuse finite but impossible logits (|value| > ``MAX_ABS_LOGIT``), naming the first such image and column."""
    logits = table.emotion_logits()
    too_large = np.abs(logits) > MAX_ABS_LOGIT
    if too_large.any():
        row, column = np.argwhere(too_large)[0]
        raise BenchmarkError(
            f"{where}: image {table.frame['image_id'].iloc[row]!r} has emotion logit {logits[row, column]:g} in column "
            f"{table.emotion_columns[column]}; raw logits of a trained model lie within +/-{MAX_ABS_LOGIT:g} (a larger "
            f"value is a unit, scaling or parsing error)")


def write(table: OutputsTable, path: Path | str) -> None:
    """Validate ``table`` and write it as parquet atomically, classes and metadata in the file's metadata."""
    validate(table, where=str(path))
    tables.write_parquet(table.frame, path, emotion_classes=table.emotion_classes, metadata=table.metadata)


def read(path: Path | str) -> OutputsTable:
    """Read and validate an outputs table written by :func:`write`."""
    frame, classes, meta = tables.read_parquet(path, what="outputs table", producer="benchmark fetch")
    return validate(OutputsTable(frame, classes, meta), where=str(path))
