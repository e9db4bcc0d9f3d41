"""Label columns of millions of rows (image ids, subjects, labels) handled through Arrow: dictionary codes, positions
in a set of keys and row-wise equality, without building a Python string per row (pandas' object conversions and
``Index.get_indexer`` cost several times more time and memory on string columns of this size)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["arrow", "encode", "equal", "missing", "positions"]


def arrow(values: pd.Series | np.ndarray | pa.Array | pa.ChunkedArray) -> pa.Array:
    """``values`` as one plain (not dictionary-encoded) Arrow array; zero-copy for Arrow-backed pandas columns."""
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        plain = isinstance(values, pd.Series) and values.dtype == object
        values = pa.array(values.to_numpy() if plain else values, from_pandas=True)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values


def missing(values: pd.Series | np.ndarray) -> int:
    """How many of ``values`` are missing (None, NaN)."""
    return int(arrow(values).null_count)


def encode(values: pd.Series | np.ndarray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Dictionary codes of ``values``, with the distinct values **sorted**: (codes int64 (n,), uniques (d,)), where
    ``uniques[codes]`` equals ``values`` (uniques as a numpy array: object for strings)."""
    encoded = pc.dictionary_encode(arrow(values))
    uniques = encoded.dictionary
    order = np.asarray(pc.sort_indices(uniques))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    codes = rank[np.asarray(encoded.indices.fill_null(0)).astype(np.int64)]
    return codes, uniques.take(pa.array(order)).to_numpy(zero_copy_only=False)


def positions(values: pd.Series | np.ndarray, keys: pd.Series | np.ndarray | pa.Array) -> np.ndarray:
    """Where each of ``values`` is in ``keys`` (distinct): int64 array of shape (n,), -1 where it is not."""
    found = pc.index_in(arrow(values), value_set=arrow(keys))
    return np.asarray(found.fill_null(-1)).astype(np.int64)


def equal(a: pd.Series | np.ndarray, b: pd.Series | np.ndarray) -> np.ndarray:
    """Row-wise ``a == b`` of two label columns: bool array of shape (n,) (False where either is missing)."""
    return np.asarray(pc.equal(arrow(a), arrow(b)).fill_null(False))
