"""Label columns through Arrow (benchmark.infra.columns): codes with sorted distinct values, positions in a key set
and row-wise equality, the same for object, Arrow-backed and categorical columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.infra import columns

VALUES = ["b10", "a", "b9", "a", "é", "b10"]


@pytest.fixture(params=["object", "str", "category"])
def column(request) -> pd.Series:
    return pd.Series(VALUES, dtype=request.param)


def test_encode_gives_codes_into_the_distinct_values_sorted_as_python_sorts_them(column):
    codes, uniques = columns.encode(column)
    assert list(uniques) == sorted(set(VALUES))  # code points: "b10" before "b9", "é" last
    assert list(uniques[codes]) == VALUES


def test_positions_find_each_value_in_the_keys_and_minus_one_for_the_others(column):
    keys = np.array(["a", "b10", "x"], dtype=object)
    assert columns.positions(column, keys).tolist() == [1, 0, -1, 0, -1, 1]


def test_equal_compares_row_by_row_and_missing_is_never_equal():
    a = pd.Series(["x", "y", None, "z"], dtype="str")
    b = pd.Series(["x", "n", "q", None], dtype=object)
    assert columns.equal(a, b).tolist() == [True, False, False, False]
    assert columns.missing(a) == 1 and columns.missing(b) == 1
