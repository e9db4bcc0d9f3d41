"""The average gap: the mean of the per-emotion gaps."""

from __future__ import annotations

import numpy as np

from benchmark.core.metrics.metric import CellRates, Metric


class AverageGap(Metric):
    name = "average_gap"
    label = "average gap"
    short = "avg gap"
    better = "lower"
    smooth = False
    headline = True
    compared = True
    bound = "gap"

    def values(self, rates: CellRates) -> np.ndarray:
        return rates.spread.mean(axis=-1, keepdims=True)

    def seed_mean(self, rates: CellRates) -> np.ndarray:
        """The mean over seeds and emotions of the per-seed gaps."""
        return rates.spread.mean(axis=(-1, -2))[..., None]
