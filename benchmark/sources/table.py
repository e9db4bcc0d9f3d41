"""The ``table`` source: a user's own per-image outputs, one CSV or parquet file per declared dataset.

``data.input`` is a folder holding ``<dataset>.csv`` (or ``<dataset>.parquet``) in the layout of the dataset's
declaration: ``image_id``, the subject column the declaration names (none for a dataset without person ids: every
image is its own subject), ``emotion``, one column per declared attribute with the true group (``gender`` ...), the
attribute model's probabilities in the declared output columns (``p_male``, ``p_female`` ...), and one ``emo_<class>``
column per class of the user's emotion model (raw logits, in the model's order; any label space), plus optional
extras. ``dataset`` may be omitted (it is the file's name). This is how other frozen models' outputs, and other
datasets, enter the benchmark without writing code.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.core.design import DatasetDesign
from benchmark.core.labels import canonical_emotion, canonical_group
from benchmark.core.outputs import OutputsTable, validate
from benchmark.infra import textfiles
from benchmark.infra.errors import BenchmarkError

EMOTION_PREFIX = "emo_"
SUFFIXES = (".parquet", ".csv")


def locate(folder: Path, dataset: str) -> Path:
    """The table file of ``dataset`` in ``folder``: ``<dataset>.parquet`` or ``<dataset>.csv``, not both."""
    found = [folder / f"{dataset}{suffix}" for suffix in SUFFIXES if (folder / f"{dataset}{suffix}").exists()]
    if len(found) > 1:
        raise BenchmarkError(f"{folder}: both {dataset}.parquet and {dataset}.csv; keep the one you mean (the other "
                             f"is not guessed away)")
    if found:
        return found[0]
    raise BenchmarkError(f"{folder}: no {dataset}.parquet or {dataset}.csv; data.input must be a folder holding one "
                         f"table per dataset in the outputs-table layout (see docs/DATASETS.md)")


def _label_columns(design: DatasetDesign) -> list[str]:
    """Identifier and label columns of the dataset's layout: text, never empty."""
    return ["image_id", *([design.subject] if design.subject else []), "emotion", *design.attributes]


def _numeric_columns(design: DatasetDesign, columns: list[str]) -> list[str]:
    """The attribute models' outputs and the emotion logits among ``columns``: parsed as numbers."""
    outputs = {c for a in design.attributes.values() for c in a.outputs}
    return [c for c in columns if c in outputs or c.startswith(EMOTION_PREFIX)]


def _read(path: Path, design: DatasetDesign) -> pd.DataFrame:
    """The user's table, read strictly (:mod:`benchmark.infra.textfiles`): identifiers and labels stay text exactly as
    written, model outputs are parsed as numbers, and each problem names its row or line and column."""
    if path.suffix == ".csv":
        table = textfiles.read_csv(path)
        textfiles.check_identifiers(table.frame, _label_columns(design), where=table.where)
        return textfiles.to_numbers(table, _numeric_columns(design, list(table.frame.columns)))
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pandas/pyarrow raise many types for unreadable files
        raise BenchmarkError(f"{path}: not a readable {path.suffix[1:]} file ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:120]})") from err
    textfiles.check_identifiers(frame, _label_columns(design),
                                where=lambda row, column: f"{path} row {row + 1} column '{column}'")
    return frame


def _subjects(frame: pd.DataFrame, design: DatasetDesign, path: Path) -> pd.Series:
    """Person ids: the declared subject column, or each image's own id when the dataset declares none."""
    if design.subject is None:
        return frame["image_id"].astype(str)
    if design.subject not in frame.columns:
        raise BenchmarkError(f"{path}: missing column {design.subject!r} (the subject column that dataset "
                             f"{design.name!r} declares); declare subject: null if it has no person ids")
    return frame[design.subject].astype(str)


def load(folder: Path | str, design: DatasetDesign, *, attribute: str) -> OutputsTable:
    """Read and validate (for ``attribute``, with errors naming the user's file) the user's table of the dataset
    ``design`` declares; labels may use the datasets' spellings (angry, joy, F ...)."""
    path = locate(Path(folder), design.name)
    frame = _read(path, design)
    classes = tuple(c[len(EMOTION_PREFIX):] for c in frame.columns if c.startswith(EMOTION_PREFIX))
    if not classes:
        raise BenchmarkError(f"{path}: no {EMOTION_PREFIX}<class> columns (the emotion model's raw logits) among the "
                             f"columns {', '.join(map(str, frame.columns))[:200]}; expected one per emotion class")
    if not classes:
        raise BenchmarkError(f"{path}: no {EMOTION_PREFIX}<class> columns (the emotion model's raw logits) among the "
                             f"columns {', '.join(map(str, frame.columns))[:200]}; expected one per emotion class")
    if "dataset" not in frame.columns:
        frame.insert(0, "dataset", design.name)
    if "image_id" in frame.columns:
        frame["subject"] = _subjects(frame, design, path)
    if "emotion" in frame.columns:
        frame["emotion"] = [canonical_emotion(v) or str(v).strip() for v in frame["emotion"].astype(str)]
    for declared in design.attributes:
        if declared in frame.columns:
            frame[declared] = [canonical_group(declared, v) for v in frame[declared].astype(str)]
    meta = {"source": "table", "file": path.name}
    if design.subject is None:
        meta["subjects"] = "none declared: every image is its own subject"
    return validate(OutputsTable(frame, design, classes, meta), where=str(path), attribute=attribute)
