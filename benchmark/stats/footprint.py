"""The memory the statistics of one evaluation group hold, from its design and the budgets (for
:func:`benchmark.infra.memory.check`, before the evaluate stage starts them).

Two moments hold the most, and the larger counts. While the draws are made: per bootstrap resample
(``evaluate.n_resamples``) the subject multiplicities (n subjects, int64) and the draws and counts they are made from
(8 bytes x n x 3), and per permutation (``evaluate.n_permutations``) the uniform draws (n float64) that become the
flips (n bool). While the methods are scored, per resample: the multiplicities and the float64 copy a product takes
(8 x n x 2); per method, held until the group is done, its per-seed cell accuracies (T tasks x K seeds x C cells,
float64; one set per rate channel, :func:`benchmark.core.metrics.channels`), its metrics (T x M, float64) and, for ``bound`` intervals, its mean cell errors (T x C, float32), their
pair differences (T x K x A, float32) and the gap metrics' errors at the estimate and at up to five candidate truths
(6 x T x G, float32); and while one method's ``bound`` errors are made, T x K x C float32 with a float64 difference
beside them; per permutation, the flips (n bool).

Besides, each worker holds one chunk of a product over resamples or permutations
(:func:`benchmark.stats.resampling.chunks`: a few million floats): :data:`CHUNK_BYTES`. Measured against
tracemalloc's peak for one FACES group (171 people; methods of 1, 1 and 3 seeds; 21,000 and 41,000 resamples and
permutations; docs/PERFORMANCE.md "Memory budgets"), the estimate with the chunk was 3 % below to 20 % above it.
When the statistics work in chunks of resamples, this estimate becomes the chunk's.
"""

from __future__ import annotations

from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.stats.cells import metric_entries

__all__ = ["CHUNK_BYTES", "group_bytes"]

_FLOAT64, _FLOAT32, _INT64 = 8, 4, 8
#: one chunk of a product over resamples or permutations and what is computed from it, per worker
CHUNK_BYTES = 32 * 2**20


def group_bytes(layout: CellLayout, *, n_subjects: int, n_tasks: int, seeds: list[int], n_resamples: int,
                n_permutations: int, ci_method: str) -> dict[str, float]:
    """Bytes one evaluation group's statistics hold, by the budget key that makes them: ``evaluate.n_resamples``
    and ``evaluate.n_permutations``. ``seeds``: the number of seeds of each method in the group."""
    n_cells, n_metrics = layout.n_cells * len(metrics.channels()), len(metric_entries(layout))
    n_atoms = len(layout.pairs()) * len(layout.emotions)
    gap_like = {m.name for m in metrics.METRICS if m.bound == "gap"}
    n_gaps = sum(1 for m, _, _ in metric_entries(layout) if m in gap_like)
    bound = ci_method == "bound"
    scoring = _INT64 * n_subjects * 2
    for k in seeds:
        scoring += n_tasks * (_FLOAT64 * k * n_cells + _FLOAT64 * n_metrics)
        if bound:
            scoring += n_tasks * (_FLOAT32 * n_cells + _FLOAT32 * k * n_atoms + 6 * _FLOAT32 * n_gaps)
    if bound and seeds:
        scoring += n_tasks * (_FLOAT32 + _FLOAT64) * max(seeds) * n_cells
    drawing = (_INT64 * n_subjects * 3 * n_resamples, (_FLOAT64 + 1) * n_subjects * n_permutations)
    scored = (scoring * n_resamples, 1.0 * n_subjects * n_permutations)
    resamples, permutations = max(drawing, scored, key=sum)
    return {"evaluate.n_resamples": float(resamples), "evaluate.n_permutations": float(permutations)}
