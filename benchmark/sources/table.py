"""The ``table`` source: a user's own per-image outputs, one CSV or parquet file per dataset, in our column layout.

``data.input`` is a folder holding ``<dataset>.csv`` (or ``<dataset>.parquet``) with the columns ``image_id``,
``subject``, ``gender``, ``emotion``, ``p_male``, ``p_female`` and one ``emo_<class>`` column per class of the user's
emotion model (raw logits, in the model's order; any label space), plus optional extras. ``dataset`` may be omitted
(it is the file's name). This is how other frozen models' outputs enter the benchmark without writing code.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.errors import BenchmarkError
from benchmark.labels import canonical_emotion, canonical_gender
from benchmark.outputs import OutputsTable, validate

EMOTION_PREFIX = "emo_"
SUFFIXES = (".parquet", ".csv")


def locate(folder: Path, dataset: str) -> Path:
    """The table file of ``dataset`` in ``folder`` (parquet preferred over CSV)."""
    for suffix in SUFFIXES:
        path = folder / f"{dataset}{suffix}"
        if path.exists():
            return path
    raise BenchmarkError(f"{folder}: no {dataset}.parquet or {dataset}.csv; data.input must be a folder holding one "
                         f"table per dataset in the outputs-table layout (see docs/ARCHITECTURE.md)")


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as err:  # pandas/pyarrow raise many types for unreadable files
        raise BenchmarkError(f"{path}: not a readable {path.suffix[1:]} file ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:120]})") from err


def load(folder: Path | str, dataset: str) -> OutputsTable:
    """Read and validate the user's table of ``dataset``; labels may use the datasets' spellings (angry, joy, F ...)."""
    path = locate(Path(folder), dataset)
    frame = _read(path)
    classes = tuple(c[len(EMOTION_PREFIX):] for c in frame.columns if c.startswith(EMOTION_PREFIX))
    if "dataset" not in frame.columns:
        frame.insert(0, "dataset", dataset)
    for column, canonical in (("gender", canonical_gender), ("emotion", canonical_emotion)):
        if column in frame.columns:
            frame[column] = [canonical(v) or v for v in frame[column].astype(str)]
    if "subject" in frame.columns:
        frame["subject"] = frame["subject"].astype(str)
    return validate(OutputsTable(frame, classes, {"source": "table", "file": path.name}), where=str(path))
