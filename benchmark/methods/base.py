"""The interface every correction method implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from benchmark.outputs import OutputsTable


@dataclass(frozen=True)
class FitTask:
    """One model to fit: its training rows, its seed, and the tables to predict (keyed by partition)."""

    train: OutputsTable
    evaluate: dict[str, OutputsTable]
    seed: int


@dataclass(frozen=True)
class Probabilities:
    """Predicted probabilities for the rows of one table.

    gender : array of shape (n_images, 2), ``GENDERS`` order.
    emotion : array of shape (n_images, n_emotion_classes), the emotion model's class order.
    """

    gender: np.ndarray
    emotion: np.ndarray


class Method(ABC):
    """A correction method. ``stochastic`` methods are run once per seed; the others once, with seed 0."""

    name: str = ""
    stochastic: bool = False

    @abstractmethod
    def run(self, tasks: list[FitTask]) -> list[dict[str, Probabilities]]:
        """Fit one model per task and predict its evaluation tables.

        Returns one mapping per task, partition -> probabilities, in task order. Methods that can train many models
        at once (the vectorised corrector) receive all tasks of a split together.
        """

    def skip_reason(self, split: str) -> str | None:
        """Why this method must not run on ``split`` (e.g. its configuration was chosen on that split's test data),
        or None when it may."""
        return None

    def fitted_arrays(self) -> list[dict[str, np.ndarray]]:
        """What the last :meth:`run` fitted, one mapping per task (name -> array), for tracking; empty when nothing
        is fitted."""
        return []


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``."""
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)
