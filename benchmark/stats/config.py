"""The statistics' settings: budgets, confidence level and interval method, as the ``evaluate`` section of params.yaml
declares them (defaults, ranges and the interval methods' names live there, once: :mod:`benchmark.core.settings`)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from benchmark.core.settings import CI_METHODS, EvaluateSettings
from benchmark.infra.errors import BenchmarkError

__all__ = ["CI_METHODS", "PrimaryFamily", "StatsConfig"]

_DEFAULTS = EvaluateSettings()


@dataclass(frozen=True)
class StatsConfig:
    """Budgets and choices of the statistics (``evaluate`` section of params.yaml; the defaults are its defaults).

    n_resamples : int. Bootstrap resamples of subjects.
    ci : float in (0, 1). Confidence level of every interval.
    ci_method : one of :data:`~benchmark.core.settings.CI_METHODS`.
    n_permutations : int. Random subject-level exchanges per permutation test.
    seed : int. Seeds every draw; each evaluation group derives its own stream from it and its name.
    memory_budget_mb : int. The most memory (MiB) one chunk of resamples or permutations may take with its
        products (:mod:`benchmark.stats.draws`); larger designs are drawn in more chunks, with the same numbers.
    """

    n_resamples: int = _DEFAULTS.n_resamples
    ci: float = _DEFAULTS.ci
    ci_method: str = _DEFAULTS.ci_method
    n_permutations: int = _DEFAULTS.n_permutations
    seed: int = _DEFAULTS.seed
    memory_budget_mb: int = _DEFAULTS.memory_budget_mb

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
        """``memory_budget_mb`` in bytes."""
        return self.memory_budget_mb * 2 ** 20

    @classmethod
    def from_settings(cls, evaluate: EvaluateSettings) -> StatsConfig:
        """The statistics' settings of params.yaml's ``evaluate`` section (the one translation, used by the evaluate
        stage, the coverage and the power studies)."""
        return cls(**{f.name: getattr(evaluate, f.name) for f in fields(cls)})


@dataclass(frozen=True)
class PrimaryFamily:
    """The hypotheses Holm runs over in each held-out evaluation group (``evaluate.primary`` and
    ``evaluate.primary_metrics``); every other comparison is exploratory.

    comparisons : stats.parquet ``method`` names: ``corrector`` (its difference to the reference) or a contrast
        ``"a vs b"``; those present in a group, x its tasks x ``metrics``, make that group's family.
    metrics : scalar metric names (``macro``, ``average_gap``).
    alpha : the family-wise error rate (``evaluate.alpha``).
    partition : the held-out partition the family applies to.
    """

    comparisons: tuple[str, ...]
    metrics: tuple[str, ...]
    alpha: float = _DEFAULTS.alpha
    partition: str = "test"

    @classmethod
    def from_settings(cls, evaluate: EvaluateSettings) -> PrimaryFamily:
        """The family params.yaml's ``evaluate`` section declares."""
        return cls(tuple(evaluate.primary), tuple(evaluate.primary_metrics), evaluate.alpha)
