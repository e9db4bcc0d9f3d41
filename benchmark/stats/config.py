"""The statistics' settings: budgets, confidence level and interval method (the ``evaluate`` section of params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.infra.errors import BenchmarkError

__all__ = ["CI_METHODS", "StatsConfig"]

#: ``bound``: score intervals for cells and error-bound intervals for every other row (:mod:`benchmark.stats.bounds`);
#: ``bca`` and ``percentile``: plain subject-bootstrap intervals of every row.
CI_METHODS: tuple[str, ...] = ("percentile", "bca", "bound")


@dataclass(frozen=True)
class StatsConfig:
    """Budgets and choices of the statistics (``evaluate`` section of params.yaml).

    n_resamples : int, default=10000. Bootstrap resamples of subjects.
    ci : float in (0, 1), default=0.95. Confidence level of every interval.
    ci_method : {'percentile', 'bca', 'bound'}, default='bound'.
    n_permutations : int, default=10000. Random subject-level exchanges per permutation test.
    seed : int, default=0. Seeds every draw; each evaluation group derives its own stream from it and its name.
    memory_budget_mb : int, default=64. The most memory (MiB) one chunk of resamples or permutations may take with
        its products (:mod:`benchmark.stats.draws`); larger designs are drawn in more chunks, with the same numbers.
    """

    n_resamples: int = 10_000
    ci: float = 0.95
    ci_method: str = "bound"
    n_permutations: int = 10_000
    seed: int = 0
    memory_budget_mb: int = 64

    def __post_init__(self) -> None:
        if self.n_resamples < 1 or self.n_permutations < 1:
            raise BenchmarkError(f"stats: n_resamples and n_permutations must be >= 1, got {self.n_resamples} and {self.n_permutations}")
        if not 0.0 < self.ci < 1.0:
            raise BenchmarkError(f"stats: ci must be in (0, 1), got {self.ci!r}")
        if self.ci_method not in CI_METHODS:
            raise BenchmarkError(f"stats: ci_method {self.ci_method!r} is not one of {', '.join(CI_METHODS)}")
        if self.memory_budget_mb < 1:
            raise BenchmarkError(f"stats: memory_budget_mb must be >= 1, got {self.memory_budget_mb}")

    @property
    def memory_budget_bytes(self) -> int:
        return self.memory_budget_mb * 2 ** 20
