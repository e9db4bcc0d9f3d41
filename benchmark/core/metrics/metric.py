"""What a metric is: one object that names itself, says which way is better, computes its values from per-cell rates
and says whether it is smooth (which interval family applies) and how it is shown.

Every metric of a task is a function of per-cell **rates** of one **channel** over the declared cells (attribute
groups x emotions, :class:`~benchmark.core.design.CellLayout`), in percent:

- ``recall``: the cell's accuracy, the share of its images whose label (the task's) is predicted right (the paper's
  per-cell accuracy; the true-positive rate of the cell's class within its group);
- ``fpr``: the false-positive rate of the cell's class: for the emotion task, the share of the group's images of
  *other* emotions predicted as this cell's emotion; for the attribute task, the share of the emotion's images of
  *other* groups predicted as this cell's group.

Rates arrive as :class:`CellRates` of shape (..., n_groups, n_emotions) (NaN for a cell without images), which compute
what several metrics share (the per-emotion spread, the signed pair differences, the seed mean) once; a metric returns
(..., n_rows), one value per row of :meth:`Metric.rows`. A new metric is one module defining a subclass and one line
in :mod:`benchmark.core.metrics` (or a ``module:factory`` plug-in, ``evaluate.metrics``).
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np

from benchmark.core.design import CellLayout

__all__ = ["CHANNELS", "CellRates", "Metric", "Row", "pair_names", "signed_pairs", "spread"]

#: the per-cell rates a metric can read (see the module docstring)
CHANNELS: tuple[str, ...] = ("recall", "fpr")
#: a metric row: (group, emotion), either None where the row is not per group or per emotion
Row = tuple[str | None, str | None]
#: how a pairwise row names its two groups in the ``group`` column
PAIR_SEPARATOR = " vs "


def spread(rates: np.ndarray) -> np.ndarray:
    """Per-emotion spread over the groups, max - min: (..., G, E) -> (..., E); for two groups |A_0 - A_1| (the same
    floating-point number, computed without a reduction over a strided axis). NaN propagates."""
    if rates.shape[-2] == 2:
        return np.abs(rates[..., 0, :] - rates[..., 1, :])
    return rates.max(axis=-2) - rates.min(axis=-2)


def pair_names(layout: CellLayout) -> list[str]:
    """``"a vs b"`` for every pair of groups (i < j), in :meth:`CellLayout.pairs` order."""
    return [f"{layout.groups[i]}{PAIR_SEPARATOR}{layout.groups[j]}" for i, j in layout.pairs()]


def signed_pairs(rates: np.ndarray, layout: CellLayout) -> np.ndarray:
    """A_i - A_j per emotion for every pair of groups (i < j): (..., G, E) -> (..., pairs * E), pair-major."""
    if rates.shape[-2] == 2:
        return rates[..., 0, :] - rates[..., 1, :]
    return np.concatenate([rates[..., i, :] - rates[..., j, :] for i, j in layout.pairs()], axis=-1)


class CellRates:
    """Per-cell rates of one channel, ``array`` of shape (..., n_groups, n_emotions) percent over ``layout``, with the
    quantities several metrics derive from them computed once (the caller's seed axis, where there is one, is -3)."""

    def __init__(self, array: np.ndarray, layout: CellLayout) -> None:
        self.array, self.layout = array, layout

    @property
    def cells(self) -> np.ndarray:
        """(..., n_cells), group-major."""
        return self.array.reshape(self.array.shape[:-2] + (self.layout.n_cells,))

    @functools.cached_property
    def spread(self) -> np.ndarray:
        """Per-emotion max - min over the groups, (..., E)."""
        return spread(self.array)

    @functools.cached_property
    def signed(self) -> np.ndarray:
        """A_i - A_j per emotion for every pair of groups, (..., pairs * E), pair-major."""
        return signed_pairs(self.array, self.layout)

    @functools.cached_property
    def seed_mean(self) -> CellRates:
        """The rates averaged over the seed axis (-3)."""
        return CellRates(self.array.mean(axis=-3), self.layout)


class Metric:
    """One metric of a task over declared cells.

    Class attributes a metric declares: ``name`` (its rows' ``metric`` in stats.parquet), ``label`` (in words),
    ``short`` (a table column), ``better`` (``"higher"`` or ``"lower"``: which direction is the improvement),
    ``smooth`` (a linear function of the rates: the smooth interval family applies, and its seed mean is its value at
    the seed-mean rates; otherwise the non-smooth family, and its seed mean is the mean of the per-seed values),
    ``channel`` (the rates it reads), ``headline`` (reported beside stats.parquet: metrics.json, MLflow, the report's
    summary tables), ``compared`` (one of the few numbers DVC compares across experiments, reports/headline.json),
    ``mcnemar`` (``"cell"``: McNemar on its cell's images, ``"all"``: on all images, None: no McNemar), ``bound``
    (the family of ``ci_method: bound``'s construction that applies, on the metric's channel: ``"cell"``, ``"linear"``,
    ``"gap"`` (spreads over groups, whose plug-in errors :mod:`benchmark.stats.bounds` knows), ``"sup"`` (1-Lipschitz
    in the largest |cell error|), or None: BCa there), ``lower`` (the
    smallest value the metric can take, percent; the largest is 100).
    """

    name: ClassVar[str]
    label: ClassVar[str]
    short: ClassVar[str]
    better: ClassVar[str] = "higher"
    smooth: ClassVar[bool] = True
    channel: ClassVar[str] = "recall"
    headline: ClassVar[bool] = False
    compared: ClassVar[bool] = False
    mcnemar: ClassVar[str | None] = None
    bound: ClassVar[str | None] = None
    lower: ClassVar[float] = 0.0

    def rows(self, layout: CellLayout) -> list[Row]:
        """The metric's rows over ``layout``; a scalar metric has one row (None, None)."""
        return [(None, None)]

    def key(self, row: Row) -> str:
        """The row's name where rows are keys (metrics.json, MLflow): ``macro``, ``fpr_gap_anger``."""
        return "_".join([self.name, *(part for part in row if part is not None)])

    def values(self, rates: CellRates) -> np.ndarray:
        """Values of every row: rates (..., G, E) percent -> (..., n_rows) percent."""
        raise NotImplementedError

    def seed_mean(self, rates: CellRates) -> np.ndarray:
        """Seed-mean values: per-seed rates (..., K, G, E) -> (..., n_rows). A smooth metric is taken at the seed-mean
        rates, any other per seed, then averaged."""
        if self.smooth:
            return self.values(rates.seed_mean)
        return self.values(rates).mean(axis=-2)

    def improvement(self, difference: float) -> bool:
        """Whether a difference (method - reference) moves this metric in its better direction."""
        return difference > 0 if self.better == "higher" else difference < 0

    def __repr__(self) -> str:
        return f"<metric {self.name}>"
