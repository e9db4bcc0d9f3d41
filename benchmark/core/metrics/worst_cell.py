"""Worst-cell accuracy: the lowest cell accuracy, the accuracy of the worst-served group x emotion.

The fairness literature's "levelling up" criterion (Mittelstadt, Wachter & Russell 2023, "The Unfairness of Fair
Machine Learning: Levelling down and strict egalitarianism by default"): a gap can shrink because the best-served
cells get worse; the worst cell's accuracy says whether the worst-off gained. A method improves it when it is higher.
Its ``bound`` family is ``sup``: the minimum moves by at most the largest cell error (:mod:`benchmark.stats.bounds`).
"""

from __future__ import annotations

import numpy as np

from benchmark.core.metrics.metric import CellRates, Metric


class WorstCellAccuracy(Metric):
    name = "worst_cell"
    label = "worst-cell accuracy"
    short = "worst cell"
    smooth = False
    bound = "sup"
    headline = True
    compared = True

    def values(self, rates: CellRates) -> np.ndarray:
        return rates.cells.min(axis=-1, keepdims=True)
