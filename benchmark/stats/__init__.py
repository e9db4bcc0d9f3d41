"""Statistics over a predictions table: how certain is each number, and does a method really differ?

The unit of resampling is the **subject** (person): FACES has 12 images per person and ADFES 6, so a person's images
are not independent. Every metric over the declared cells (:func:`metric_entries`, one row per metric object of
:mod:`benchmark.core.metrics` and its rows: cell accuracies, per-emotion gaps, pairwise and signed pairwise gaps,
macro accuracy, largest and average gap, worst-cell accuracy, per-emotion false-positive-rate gaps, for both tasks)
gets

- an **interval** of the seed-mean estimate (``ci_method``): by default score intervals for cells and error-bound
  intervals for everything else (:mod:`benchmark.stats.bounds`), from a **subject-cluster paired bootstrap**
  stratified by the protected attribute's group; ``bca`` and ``percentile`` are the plain bootstrap intervals;
- for every method other than the reference, and for every configured **contrast** pair, the paired **difference**
  with its interval, a **subject-level permutation test** (the subject-level sign flip; two-sided, +1 correction),
  **Holm**'s adjustment within each family (:data:`~benchmark.stats.analysis.HOLM_FAMILY`) and an exact **McNemar**
  test on image-level correctness for accuracies (a secondary check that ignores the clustering).

Seeds are held fixed, not resampled: in each resample every seed's metric is computed and the seed mean taken, so the
estimate is exactly the seed-mean metric of ``reports/metrics.json``. The seed sd is reported separately.
Everything is vectorised: a resample is a vector of subject multiplicities, and all cell sums of all resamples are one
matrix product of exact integer counts. Modules: :mod:`~benchmark.stats.cells` (metric arrays, channels and the subject design),
:mod:`~benchmark.stats.units` (what is resampled: subjects, or classes of alike images without person ids),
:mod:`~benchmark.stats.draws` (resamples and permutations in chunks within ``memory_budget_mb``, the same numbers),
:mod:`~benchmark.stats.resampling`, :mod:`~benchmark.stats.intervals` (bootstrap), :mod:`~benchmark.stats.bounds`
(the default intervals), :mod:`~benchmark.stats.significance` (tests), :mod:`~benchmark.stats.analysis` (the table).
See docs/STATISTICS.md.
"""

from benchmark.stats.analysis import (
                                      CONTRAST_SEPARATOR,
                                      GROUP_COLUMNS,
                                      HOLM_FAMILY,
                                      VERDICT_COLUMNS,
                                      analyse,
                                      analysis_job,
                                      compare,
                                      contrast_name,
                                      group_statistics,
                                      seed_values,
                                      weighted_metrics,
)
from benchmark.stats.cells import metric_entries, metric_values
from benchmark.stats.config import CI_METHODS, PrimaryFamily, StatsConfig
from benchmark.stats.resampling import subject_resamples
from benchmark.stats.significance import holm, mcnemar_exact

__all__ = [
    "CI_METHODS", "CONTRAST_SEPARATOR", "GROUP_COLUMNS", "HOLM_FAMILY", "VERDICT_COLUMNS", "PrimaryFamily", "StatsConfig", "analyse", "analysis_job",
    "compare", "contrast_name", "group_statistics", "holm", "mcnemar_exact", "metric_entries", "metric_values",
    "seed_values", "subject_resamples", "weighted_metrics",
]
