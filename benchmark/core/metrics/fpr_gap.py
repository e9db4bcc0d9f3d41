"""The per-emotion false-positive-rate gap: the spread over the groups, max - min, of the false-positive rate of each
emotion's class (for two groups |FPR(male, e) - FPR(female, e)|).

With the per-cell accuracy (each class's true-positive rate within each group) it makes equalized odds (Hardt, Price &
Srebro 2016) measurable per emotion: equal true-positive and equal false-positive rates across groups. For the
emotion task, FPR(g, e) is the share of group g's images of other emotions predicted as e; for the attribute task, the
share of emotion e's images of other groups predicted as group g (for two groups its spread equals the accuracy gap).
A spread over groups like the accuracy gap, it takes the ``gap`` construction of ``bound`` on its own channel's draws.
"""

from __future__ import annotations

import numpy as np

from benchmark.core.design import CellLayout
from benchmark.core.metrics.metric import CellRates, Metric, Row


class FalsePositiveRateGap(Metric):
    name = "fpr_gap"
    label = "false-positive-rate gap"
    short = "FPR gap"
    better = "lower"
    smooth = False
    bound = "gap"
    channel = "fpr"
    headline = True
    compared = True

    def rows(self, layout: CellLayout) -> list[Row]:
        return [(None, e) for e in layout.emotions]

    def values(self, rates: CellRates) -> np.ndarray:
        return rates.spread
