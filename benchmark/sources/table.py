"""The ``table`` source: a user's own per-image outputs, one CSV or parquet file per dataset, in our column layout.

``data.input`` is a folder holding ``<dataset>.csv`` (or ``<dataset>.parquet``) with the columns ``image_id``,
``subject``, ``gender``, ``emotion``, ``p_male``, ``p_female`` and one ``emo_<class>`` column per class of the user's
emotion model (raw logits, in the model's order; any label space), plus optional extras. ``dataset`` may be omitted
(it is the file's name). This is how other frozen models' outputs enter the benchmark without writing code.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark import textfiles
from benchmark.errors import BenchmarkError
from benchmark.labels import GENDER_COLUMNS, canonical_emotion, canonical_gender
from benchmark.outputs import ID_COLUMNS, OutputsTable, validate

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
                         f"table per dataset in the outputs-table layout (see docs/ARCHITECTURE.md)")


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return _read_csv(path)
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pandas/pyarrow raise many types for unreadable files
        raise BenchmarkError(f"{path}: not a readable {path.suffix[1:]} file ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:120]})") from err
    textfiles.check_identifiers(frame, ID_COLUMNS, where=lambda row, column: f"{path} row {row + 1} column '{column}'")
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV read strictly (:mod:`benchmark.textfiles`): identifiers and labels stay text exactly as written, the
    probabilities and ``emo_`` logits are parsed as numbers, and each problem names its line and column."""
    table = textfiles.read_csv(path)
    textfiles.check_identifiers(table.frame, ID_COLUMNS, where=table.where)
    numbers = [c for c in table.frame.columns if c in GENDER_COLUMNS or c.startswith(EMOTION_PREFIX)]
    return textfiles.to_numbers(table, numbers)


def load(folder: Path | str, dataset: str) -> OutputsTable:
    """Read and validate the user's table of ``dataset``; labels may use the datasets' spellings (angry, joy, F ...)."""
    path = locate(Path(folder), dataset)
    frame = _read(path)
    classes = tuple(c[len(EMOTION_PREFIX):] for c in frame.columns if c.startswith(EMOTION_PREFIX))
    if not classes:
        raise BenchmarkError(f"{path}: no {EMOTION_PREFIX}<class> columns (the emotion model's raw logits) among the "
                             f"columns {', '.join(map(str, frame.columns))[:200]}; expected one per emotion class")
    if "dataset" not in frame.columns:
        frame.insert(0, "dataset", dataset)
    for column, canonical in (("gender", canonical_gender), ("emotion", canonical_emotion)):
        if column in frame.columns:
            frame[column] = [canonical(v) or v for v in frame[column].astype(str)]
    if "subject" in frame.columns:
        frame["subject"] = frame["subject"].astype(str)
    return validate(OutputsTable(frame, classes, {"source": "table", "file": path.name}), where=str(path))
