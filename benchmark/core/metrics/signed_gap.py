"""The signed difference A(g, e) - A(h, e) of every pair of groups per emotion (group ``"g vs h"``): the gap's
direction, and a smooth quantity whose interval and test have no fold bias."""

from __future__ import annotations

import numpy as np

from benchmark.core.design import CellLayout
from benchmark.core.metrics.metric import CellRates, Metric, Row, pair_names


class SignedGap(Metric):
    name = "signed_gap"
    label = "signed gap"
    short = "signed gap"
    bound = "linear"
    lower = -100.0

    def rows(self, layout: CellLayout) -> list[Row]:
        return [(pair, e) for pair in pair_names(layout) for e in layout.emotions]

    def values(self, rates: CellRates) -> np.ndarray:
        return rates.signed

    def seed_mean(self, rates: CellRates) -> np.ndarray:
        """The mean of the per-seed differences (equal to the difference of the seed means)."""
        return rates.signed.mean(axis=-2)
