"""Macro accuracy: the mean of the cell accuracies (every cell counts equally, whatever its size)."""

from __future__ import annotations

import numpy as np

from benchmark.core.metrics.metric import CellRates, Metric


class MacroAccuracy(Metric):
    name = "macro"
    label = "macro accuracy"
    short = "macro"
    headline = True
    compared = True
    mcnemar = "all"
    bound = "linear"

    def values(self, rates: CellRates) -> np.ndarray:
        return rates.cells.mean(axis=-1, keepdims=True)
