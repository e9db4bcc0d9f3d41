"""The outputs table: one row per image, the frozen models' outputs beside the true labels.

Columns (see docs/ARCHITECTURE.md): ``dataset``, ``image_id``, ``subject`` (person id; the image id for a dataset
declared without subjects), ``emotion`` (true), one column per declared protected attribute holding the true group
(``gender``, ``age_group`` ...), the attribute models' probabilities in the declared output columns (``p_male``,
``p_female``; FairFace's age bins ``p_age_0-2`` ...), ``emo_<class>`` for each class of the emotion model (raw logits,
model order; EmoNet's 8 by default), plus optional extra columns. The dataset's declaration, the emotion class list,
the source and checksums travel in the parquet file's metadata, so nothing downstream assumes one design.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.core import design as designs
from benchmark.core.design import Attribute, DatasetDesign
from benchmark.core.labels import EMONET_EMOTIONS, canonical_emotion, emotion_column
from benchmark.infra import parquet
from benchmark.infra.errors import BenchmarkError

ID_COLUMNS: tuple[str, ...] = ("dataset", "image_id", "subject", "emotion")
PROBABILITY_SUM_TOLERANCE = 1e-3
DESIGN_KEY = "design"
#: the largest raw logit magnitude accepted: trained classifiers' logits are within tens, and beyond this bound the
#: softmax is exactly one-hot and standardising the inputs overflows (1e308 ends in scikit-learn's "contains NaN")
MAX_ABS_LOGIT = 1e6


@dataclass
class OutputsTable:
    """A validated outputs table of one dataset.

    Attributes
    ----------
    frame : DataFrame of shape (n_images, n_columns)
        The rows, in the column layout described in the module docstring.
    design : DatasetDesign
        The dataset's declaration (emotion labels, attributes and their groups and output columns).
    emotion_classes : tuple of str
        The emotion model's classes in model order; column ``emo_<c>`` holds the raw logit of class c.
    metadata : dict
        Free-form provenance (source, scenario, checksums, model weights' sha256 ...).
    """

    frame: pd.DataFrame
    design: DatasetDesign
    emotion_classes: tuple[str, ...] = EMONET_EMOTIONS
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def emotion_columns(self) -> list[str]:
        """Names of the logit columns, in model order."""
        return [emotion_column(c) for c in self.emotion_classes]

    def emotion_logits(self) -> np.ndarray:
        """Raw emotion logits, shape (n_images, n_emotion_classes), columns in model order."""
        return self.frame[self.emotion_columns].to_numpy(dtype=np.float64)

    def subset(self, mask: np.ndarray | pd.Series) -> OutputsTable:
        """Rows where ``mask`` is true, with the same design, classes and metadata."""
        return OutputsTable(self.frame[np.asarray(mask)].reset_index(drop=True), self.design, self.emotion_classes,
                            dict(self.metadata))


def _fail_row(where: str, df: pd.DataFrame, bad: np.ndarray, message: str) -> BenchmarkError:
    return BenchmarkError(f"{where}: image {df.loc[bad, 'image_id'].iloc[0]!r} {message}")


def _check_labels(df: pd.DataFrame, column: str, allowed: tuple[str, ...], *, where: str, key: str) -> None:
    values = df[column]
    blank = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
    if blank.any():
        raise _fail_row(where, df, blank, f"has no {column} label; every image needs one of {', '.join(allowed)}")
    bad = sorted(set(values.astype(str)) - set(allowed))
    if bad:
        raise BenchmarkError(f"{where}: column '{column}' has label(s) {bad} outside the declared {key} "
                             f"({', '.join(allowed)})")


def _check_probabilities(df: pd.DataFrame, columns: list[str], *, where: str) -> None:
    """Numeric probabilities in [0, 1] whose row sums are 1 (one model's outputs)."""
    if not all(pd.api.types.is_numeric_dtype(df[c]) for c in columns):
        raise BenchmarkError(f"{where}: columns {', '.join(columns)} must be numeric probabilities")
    values = df[columns].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values).all(axis=1) | (values < 0).any(axis=1) | (values > 1).any(axis=1)
    if bad.any():
        raise _fail_row(where, df, bad, f"has {', '.join(columns)} outside [0, 1] ({values[bad][0].tolist()}); "
                                        "expected probabilities")
    sums = values.sum(axis=1)
    off = np.abs(sums - 1.0) > PROBABILITY_SUM_TOLERANCE
    if off.any():
        raise _fail_row(where, df, off, f"has {' + '.join(columns)} = {sums[off][0]:.6f}; expected 1 within "
                                        f"{PROBABILITY_SUM_TOLERANCE}")


def check_attribute(table: OutputsTable, attribute: Attribute, *, where: str) -> None:
    """The attribute's truth and output columns, one group per subject, every cell of groups x emotions non-empty."""
    df, name = table.frame, table.design.name
    required = list(attribute.truth_columns) + list(attribute.outputs)
    missing = [c for c in required if c not in df.columns]
    if missing:
        source = table.metadata.get("source", "its source")
        raise BenchmarkError(f"{where}: missing column(s) {', '.join(missing)} that data.attribute "
                             f"{attribute.name!r} needs (its truth and model outputs); {source} does not provide "
                             "them: fetch from a source that does, or choose another attribute")
    for part in attribute.parts:
        _check_probabilities(df, list(part.outputs), where=where)
    truth = attribute.truth(df)
    per_subject = pd.Series(truth).groupby(df["subject"].astype(str).to_numpy()).nunique()
    if (per_subject > 1).any():
        subject = per_subject[per_subject > 1].index[0]
        raise BenchmarkError(f"{where}: subject {subject!r} of {name} has images in two {attribute.name} groups; "
                             "a subject belongs to one group")
    present = set(zip(truth, df["emotion"].astype(str)))
    for group in attribute.groups:
        for emotion in table.design.emotions:
            if (group, emotion) not in present:
                raise BenchmarkError(f"{where}: dataset {name!r} has no image in cell ({group}, {emotion}); every "
                                     f"cell of the {len(attribute.groups)} x {len(table.design.emotions)} "
                                     f"({attribute.name} x emotion) design needs images")


def validate(table: OutputsTable, *, where: str, attribute: str | None = None) -> OutputsTable:
    """Check the contract; raise BenchmarkError with one line naming ``where`` and the first problem.

    Rules: required columns present; emotion labels and every present attribute's labels within the dataset's
    declaration; finite logits of plausible magnitude (at most ``MAX_ABS_LOGIT``); unique image ids; and, for
    ``attribute`` (``data.attribute``) when given, its truth and probability columns (in [0, 1], summing to 1 within
    1e-3), one group per subject and every cell of groups x emotions non-empty.
    """
    df, design = table.frame, table.design
    classes = list(table.emotion_classes)
    if len(set(classes)) != len(classes) or not classes:
        raise BenchmarkError(f"{where}: emotion classes {classes} must be non-empty and unique")
    required = list(ID_COLUMNS) + table.emotion_columns
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise BenchmarkError(f"{where}: missing column(s) {', '.join(missing)}; an outputs table needs {', '.join(required)}")
    if df.empty:
        raise BenchmarkError(f"{where}: the table has no rows")
    others = sorted(set(df["dataset"].astype(str)) - {design.name})
    if others:
        raise BenchmarkError(f"{where}: rows of dataset {others[0]!r} in the table of {design.name!r}; one table per dataset")
    _check_labels(df, "emotion", design.emotions, where=where, key=f"emotions of {design.name}")
    for name, declared in design.attributes.items():
        if name in df.columns:
            _check_labels(df, name, declared.groups, where=where, key=f"{name} groups of {design.name}")
    logits = df[table.emotion_columns]
    if not all(pd.api.types.is_numeric_dtype(logits[c]) for c in logits):
        raise BenchmarkError(f"{where}: emotion columns {', '.join(table.emotion_columns)} must be numeric logits")
    finite = np.isfinite(logits.to_numpy(dtype=np.float64)).all(axis=1)
    if not finite.all():
        raise _fail_row(where, df, ~finite, "has non-finite emotion logits; expected finite raw logits")
    check_logit_magnitudes(table, where=where)
    dup = df.duplicated(["image_id"])
    if dup.any():
        raise BenchmarkError(f"{where}: duplicate image id {df.loc[dup, 'image_id'].iloc[0]!r}; each image must appear once")
    if attribute is not None:
        check_attribute(table, designs.attribute_of(design, attribute), where=where)
    if not any((canonical_emotion(c) or c) in design.emotions for c in classes):
        raise BenchmarkError(f"{where}: no emotion class of the model ({classes}) maps to an emotion of "
                             f"{design.name} ({', '.join(design.emotions)})")
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


def write(table: OutputsTable, path: Path | str, *, attribute: str | None = None) -> None:
    """Validate ``table`` and write it as parquet atomically; the design, classes and metadata go in the file's
    metadata."""
    validate(table, where=str(path), attribute=attribute)
    parquet.write_parquet(table.frame, path, emotion_classes=table.emotion_classes,
                         metadata={**table.metadata, DESIGN_KEY: designs.to_dict(table.design)})


def read(path: Path | str, *, attribute: str | None = None) -> OutputsTable:
    """Read and validate an outputs table written by :func:`write` (for ``attribute`` when given)."""
    frame, classes, meta = parquet.read_parquet(path, what="outputs table", producer="benchmark fetch")
    raw_design = meta.pop(DESIGN_KEY, None)
    if raw_design is None:
        raise BenchmarkError(f"{path}: no dataset declaration in its metadata (written by an older `benchmark fetch`); "
                             "rerun `benchmark fetch`")
    name = str(frame["dataset"].iloc[0]) if len(frame) else Path(path).stem
    design = designs.dataset_from_dict(name, raw_design, where=f"{path} metadata")
    return validate(OutputsTable(frame, design, classes, meta), where=str(path), attribute=attribute)
