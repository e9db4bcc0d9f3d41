"""Cell accuracy: the share of a true-group x true-emotion cell's images whose label is predicted right."""

from __future__ import annotations

import numpy as np

from benchmark.core.design import CellLayout
from benchmark.core.metrics.metric import CellRates, Metric, Row


class CellAccuracy(Metric):
    name = "cell"
    label = "cell accuracy"
    short = "cell"
    mcnemar = "cell"
    bound = "cell"

    def rows(self, layout: CellLayout) -> list[Row]:
        return list(layout.cells())

    def values(self, rates: CellRates) -> np.ndarray:
        return rates.cells
