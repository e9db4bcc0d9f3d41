"""The per-emotion gap: the spread of the groups' accuracies for one emotion, max - min over the groups (for two
groups the paper's |A(male, e) - A(female, e)|)."""

from __future__ import annotations

import numpy as np

from benchmark.core.design import CellLayout
from benchmark.core.metrics.metric import CellRates, Metric, Row


class EmotionGap(Metric):
    name = "gap"
    label = "per-emotion gap"
    short = "gap"
    better = "lower"
    smooth = False
    bound = "gap"

    def rows(self, layout: CellLayout) -> list[Row]:
        return [(None, e) for e in layout.emotions]

    def values(self, rates: CellRates) -> np.ndarray:
        return rates.spread
