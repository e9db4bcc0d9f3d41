"""Parquet files that carry the benchmark's metadata (emotion classes, provenance) in their schema, written
atomically and read with one clear error per problem. Used by the outputs and predictions tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmark.infra import atomic
from benchmark.infra.errors import BenchmarkError

METADATA_KEY = b"benchmark"


def write_parquet(frame: pd.DataFrame, path: Path | str, *, emotion_classes: tuple[str, ...], metadata: dict[str, Any]) -> None:
    """Write ``frame`` atomically with ``emotion_classes`` and ``metadata`` as JSON in the schema metadata."""
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(arrow.schema.metadata or {})
    meta[METADATA_KEY] = json.dumps({"emotion_classes": list(emotion_classes), **metadata}, sort_keys=True).encode()
    arrow = arrow.replace_schema_metadata(meta)
    atomic.write_with(path, lambda tmp: pq.write_table(arrow, tmp))


def read_parquet(path: Path | str, *, what: str, producer: str) -> tuple[pd.DataFrame, tuple[str, ...], dict[str, Any]]:
    """Read a file written by :func:`write_parquet`: (frame, emotion classes, metadata).

    ``what`` names the table in messages (e.g. "outputs table"); ``producer`` is the command that writes it.
    """
    path = Path(path)
    if not path.exists():
        raise BenchmarkError(f"{path}: {what} not found; run `{producer}` (or `dvc repro`) first")
    try:
        arrow = pq.read_table(path)
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise BenchmarkError(f"{path}: not a readable parquet file ({type(err).__name__}); delete it and rerun "
                             f"`{producer}`") from err
    raw = (arrow.schema.metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise BenchmarkError(f"{path}: parquet file has no benchmark metadata (emotion classes); it was not written by "
                             f"`{producer}`")
    meta = json.loads(raw)
    return arrow.to_pandas(), tuple(meta.pop("emotion_classes")), meta
