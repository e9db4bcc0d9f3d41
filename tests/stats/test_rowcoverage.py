"""Row-level coverage (benchmark.stats.rowcoverage): every metric row's own coverage with the side of each miss, and a
family's lowest row, counted on hand-built records."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.stats import rowcoverage


def _records(truth: list[float], low: list[float], high: list[float], *, emotion: str = "happy") -> pd.DataFrame:
    n = len(truth)
    covered = [float(lo <= t <= hi) for t, lo, hi in zip(truth, low, high)]
    return pd.DataFrame({"method": "m", "task": "emotion", "metric": "cell", "group": "female", "emotion": emotion,
                         "truth": truth, "ci_low": low, "ci_high": high, "covered": covered,
                         "width": np.subtract(high, low), "truth_diff": np.nan, "diff_ci_low": np.nan,
                         "diff_ci_high": np.nan, "diff_covered": np.nan, "diff_width": np.nan, "rejected": np.nan,
                         "ci_method": "calibrated", "estimate": [50.0] * n, "estimate_debiased": np.nan})


def test_row_table_counts_each_rows_misses_on_the_side_they_fall():
    records = _records([50.0] * 4, [40.0, 55.0, 45.0, 20.0], [60.0, 70.0, 49.0, 80.0])
    row = rowcoverage.row_table(records).iloc[0]
    assert (row["n"], row["coverage"], row["miss_low"], row["miss_high"]) == (4, 0.5, 0.25, 0.25)
    assert row["median_width"] == 17.5


def test_a_familys_lowest_row_is_its_least_covered_row_not_its_mean():
    records = pd.concat([_records([50.0] * 4, [40.0] * 4, [60.0] * 4, emotion="happy"),
                         _records([50.0] * 4, [40.0, 40.0, 55.0, 55.0], [60.0] * 4, emotion="sad")])
    family = rowcoverage.family_table(records).iloc[0]
    assert (family["rows"], family["coverage"], family["lowest_row"], family["highest_row"]) == (2, 0.75, 0.5, 1.0)
    assert (family["below_93"], family["below_90"]) == (1, 1)
