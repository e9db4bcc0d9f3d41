"""The pairwise gap |A(g, e) - A(h, e)| of every pair of groups per emotion, for attributes of more than two groups
(for two it is the per-emotion gap itself); group ``"g vs h"``."""

from __future__ import annotations

import numpy as np

from benchmark.core.design import CellLayout
from benchmark.core.metrics.metric import CellRates, Metric, Row, pair_names


class PairGap(Metric):
    name = "pair_gap"
    label = "pairwise gap"
    short = "pair gap"
    better = "lower"
    smooth = False
    bound = "gap"

    def rows(self, layout: CellLayout) -> list[Row]:
        if len(layout.groups) <= 2:
            return []
        return [(pair, e) for pair in pair_names(layout) for e in layout.emotions]

    def values(self, rates: CellRates) -> np.ndarray:
        return np.abs(rates.signed) if len(rates.layout.groups) > 2 else rates.signed[..., :0]
