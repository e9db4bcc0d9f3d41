"""The largest gap: the largest of the per-emotion gaps."""

from __future__ import annotations

import numpy as np

from benchmark.core.metrics.metric import CellRates, Metric


class LargestGap(Metric):
    name = "largest_gap"
    label = "largest gap"
    short = "largest gap"
    better = "lower"
    smooth = False
    headline = True
    bound = "gap"

    def values(self, rates: CellRates) -> np.ndarray:
        return rates.spread.max(axis=-1, keepdims=True)
