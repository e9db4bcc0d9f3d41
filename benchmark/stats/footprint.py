"""The memory the statistics of one evaluation group hold, from its design and the budgets (for
:func:`benchmark.infra.memory.check`, before the evaluate stage starts them).

The draws are made in chunks (:mod:`benchmark.stats.draws`): one chunk of bootstrap multiplicities or permutation
exchanges, with what it is turned into for the products, holds at most ``evaluate.memory_budget_mb``, or the whole
draws when they are smaller (per drawn subject and row :data:`~benchmark.stats.draws.RESAMPLE_BYTES` /
:data:`~benchmark.stats.draws.EXCHANGE_BYTES`; the leave-one-out chunks of the jackknife are within the same
budget), and the permutation statistics of a chunk are computed in pieces of :data:`CHUNK_BYTES`
(:func:`benchmark.stats.resampling.chunks`). So the number of permutations costs time, not memory. What grows with
``evaluate.n_resamples`` is what the group keeps of every resample until it is done: per resample, the denominators
of every rate channel (T tasks x C cells per channel, float64, :func:`benchmark.core.metrics.channels`); per method,
its per-seed rates (T x K seeds x C, float64, one set per channel) and its metrics (T x M, float64) and, for
``bound`` intervals, per rate channel a ``bound`` metric reads, its mean cell errors (T x C, float32), their pair
differences (T x K x A, float32) and the gap metrics' errors at the estimate and at up to five candidate truths (6 x T
x G, float32; the worst cell's largest error and its plug-in errors at two candidates are counted like a gap's);
and while one method's ``bound`` errors are made, T x K x C float32 with a float64 difference beside them.

Measured against tracemalloc's peak for one FACES group (171 people; methods of 1, 1 and 3 seeds; 21,000 and 41,000
resamples and permutations at the default 64 MiB budget; docs/PERFORMANCE.md "Memory budgets"), the estimate with
:data:`CHUNK_BYTES` was 1.6-1.9x the peak (``bound``: 248.8 / 394.4 MiB against 135.0 / 211.0 MiB): high by the
draws' chunk, which a stratum's draws fill only in part.
"""

from __future__ import annotations

from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.stats.cells import metric_entries
from benchmark.stats.draws import EXCHANGE_BYTES, RESAMPLE_BYTES

__all__ = ["CHUNK_BYTES", "chunk_bytes", "group_bytes"]

_FLOAT64, _FLOAT32 = 8, 4
#: one piece of a product over permutations (or given weights) and what is computed from it, per worker
CHUNK_BYTES = 32 * 2**20


def chunk_bytes(*, n_subjects: int, n_resamples: int, n_permutations: int, memory_budget_bytes: int) -> float:
    """The most one chunk of an evaluation group's draws holds: the budget, or the whole draws when they are smaller
    (at least one row)."""
    row = max(RESAMPLE_BYTES, EXCHANGE_BYTES) * n_subjects
    return float(max(row, min(memory_budget_bytes, row * max(n_resamples, n_permutations))))


def group_bytes(layout: CellLayout, *, n_subjects: int, n_tasks: int, seeds: list[int], n_resamples: int,
                n_permutations: int, ci_method: str, memory_budget_bytes: int) -> dict[str, float]:
    """Bytes one evaluation group's statistics hold, by the budget key that makes them: ``evaluate.n_resamples``
    (what is kept per resample) and ``evaluate.memory_budget_mb`` (one chunk of draws, :func:`chunk_bytes`).
    ``seeds``: the number of seeds of each method in the group."""
    n_cells, n_metrics = layout.n_cells * len(metrics.channels()), len(metric_entries(layout))
    n_channels = len({"recall", *(m.channel for m in metrics.METRICS if m.bound)})  # each with its own error draws
    n_atoms = len(layout.pairs()) * len(layout.emotions) * n_channels
    gap_like = {m.name for m in metrics.METRICS if m.bound in ("gap", "sup")}
    n_gaps = sum(1 for m, _, _ in metric_entries(layout) if m in gap_like)
    bound = ci_method == "bound"
    per_resample = _FLOAT64 * n_tasks * n_cells  # the denominators
    for k in seeds:
        per_resample += n_tasks * (_FLOAT64 * k * n_cells + _FLOAT64 * n_metrics)
        if bound:
            per_resample += n_tasks * (_FLOAT32 * n_cells + _FLOAT32 * k * n_atoms + 6 * _FLOAT32 * n_gaps)
    if bound and seeds:
        per_resample += n_tasks * (_FLOAT32 + _FLOAT64) * max(seeds) * n_cells
    return {"evaluate.n_resamples": float(per_resample * n_resamples),
            "evaluate.memory_budget_mb": chunk_bytes(n_subjects=n_subjects, n_resamples=n_resamples,
                                                     n_permutations=n_permutations,
                                                     memory_budget_bytes=memory_budget_bytes)}
