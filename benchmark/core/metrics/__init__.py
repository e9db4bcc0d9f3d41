"""The metrics of a task over declared cells, one object each (:class:`~benchmark.core.metrics.metric.Metric`).

:data:`METRICS` lists them in the order of every metric table (stats.parquet's rows, the bootstrap's columns): the
paper's (cells, per-emotion gaps, pairwise gaps for more than two groups, signed gaps, macro accuracy, largest and
average gap), then worst-cell accuracy and the per-emotion false-positive-rate gap. A new metric is a module defining
a :class:`Metric` subclass and one entry here; everything downstream (statistics, metrics.json, the report, MLflow,
DVC) iterates over this list. :mod:`benchmark.core.metrics.tables` computes per-group summaries from predictions.
"""

from __future__ import annotations

import functools

from benchmark.core.design import CellLayout
from benchmark.core.metrics.average_gap import AverageGap
from benchmark.core.metrics.cell import CellAccuracy
from benchmark.core.metrics.fpr_gap import FalsePositiveRateGap
from benchmark.core.metrics.gap import EmotionGap
from benchmark.core.metrics.largest_gap import LargestGap
from benchmark.core.metrics.macro import MacroAccuracy
from benchmark.core.metrics.metric import (
    CHANNELS,
    PAIR_SEPARATOR,
    CellRates,
    Metric,
    Row,
    pair_names,
    signed_pairs,
    spread,
)
from benchmark.core.metrics.pair_gap import PairGap
from benchmark.core.metrics.signed_gap import SignedGap
from benchmark.core.metrics.tables import (
    GROUP_KEYS,
    SUMMARY_METRICS,
    TaskSummary,
    cell_accuracies,
    cells_by_group,
    summaries_by_group,
    summarize,
)
from benchmark.core.metrics.worst_cell import WorstCellAccuracy

__all__ = ["CHANNELS", "GROUP_KEYS", "CellRates", "HEADLINE", "METRICS", "PAIR_SEPARATOR", "RECALL", "SUMMARY_METRICS", "Entry",
           "Metric", "Row", "TaskSummary", "by_name", "cell_accuracies", "cells_by_group", "channels", "entries",
           "pair_names", "row_key", "signed_pairs", "spread", "summaries_by_group", "summarize"]

#: every metric, in table order
METRICS: tuple[Metric, ...] = (CellAccuracy(), EmotionGap(), PairGap(), SignedGap(), MacroAccuracy(), LargestGap(),
                               AverageGap(), WorstCellAccuracy(), FalsePositiveRateGap())
#: the metrics reported beside stats.parquet (metrics.json, MLflow, the report's summary tables)
HEADLINE: tuple[Metric, ...] = tuple(m for m in METRICS if m.headline)
#: the metrics of the cell accuracies alone (channel ``recall``)
RECALL: tuple[Metric, ...] = tuple(m for m in METRICS if m.channel == "recall")
#: a metric row: (metric name, group, emotion)
Entry = tuple[str, str | None, str | None]


def by_name(name: str) -> Metric:
    """The metric called ``name``."""
    found = [m for m in METRICS if m.name == name]
    if not found:
        raise KeyError(f"no metric {name!r}; metrics: {', '.join(m.name for m in METRICS)}")
    return found[0]


@functools.lru_cache(maxsize=64)
def entries(layout: CellLayout) -> tuple[Entry, ...]:
    """Every metric row over ``layout``, in table order: (metric, group, emotion)."""
    return tuple((m.name, group, emotion) for m in METRICS for group, emotion in m.rows(layout))


def row_key(name: str, group: object, emotion: object) -> str:
    """The key of a metric row where rows are keys (metrics.json, MLflow, DVC): ``macro``, ``fpr_gap_anger``; a
    missing group or emotion (None, or NaN read from a table) is left out."""
    return by_name(name).key(tuple(v if isinstance(v, str) else None for v in (group, emotion)))


def channels() -> tuple[str, ...]:
    """The channels the metrics read, in :data:`CHANNELS` order."""
    used = {m.channel for m in METRICS}
    return tuple(c for c in CHANNELS if c in used)
