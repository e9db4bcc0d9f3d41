"""The interface every correction method implements: the contract a user's own method (``module:factory``) meets.

A method receives every model of a split at once, as :class:`FitTask` objects (training rows, the tables to predict
keyed by partition, a seed and the protected attribute), and returns, per task, the predicted probabilities of both
tasks for every row of every evaluation table (:class:`Probabilities`). See docs/METHODS.md for a worked example.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from benchmark.core.design import Attribute
from benchmark.core.outputs import OutputsTable
from benchmark.infra.errors import BenchmarkError

#: rows of predicted probabilities must sum to 1 within this
PROBABILITY_SUM_TOLERANCE = 1e-4


@dataclass(frozen=True)
class FitTask:
    """One model to fit.

    train : the training rows (an outputs table: true labels, the frozen models' outputs).
    evaluate : partition (``test``, ``train``) -> the rows to predict.
    seed : the model's seed (``train.seed`` + i for stochastic methods, 0 for deterministic ones).
    attribute : the protected attribute: its groups, its truth (``attribute.truth(table.frame)``), its frozen model's
        outputs (``attribute.model_outputs(table.frame)``) and their uncorrected group probabilities.
    """

    train: OutputsTable
    evaluate: dict[str, OutputsTable]
    seed: int
    attribute: Attribute


@dataclass(frozen=True)
class Probabilities:
    """Predicted probabilities for the rows of one table.

    attribute : array of shape (n_images, n_groups), rows sum to 1, ``FitTask.attribute.groups`` order.
    emotion : array of shape (n_images, n_emotion_classes), rows sum to 1, the emotion model's class order.
    """

    attribute: np.ndarray
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

    def configuration(self) -> Hashable | None:
        """What, beside the tasks, fully determines this method's results: two methods of a split whose
        configurations are equal give the same results, so the run matrix fits only the first (``corrector_tuned``
        when the study chose ``train.corrector``'s configuration). None (the default): never shared."""
        return None

    def fitted_arrays(self) -> list[dict[str, np.ndarray]]:
        """What the last :meth:`run` fitted, one mapping per task (name -> array), for tracking; empty when nothing
        is fitted."""
        return []


def check_results(method: str, tasks: list[FitTask], results: object) -> list[dict[str, Probabilities]]:
    """Raise BenchmarkError (one line naming ``method``, the task and what is expected) unless ``results`` keeps the
    contract of :meth:`Method.run` for ``tasks``: one mapping per task with every partition of its ``evaluate``, each
    :class:`Probabilities` of the right shapes, finite, non-negative, rows summing to 1."""
    where = f"train.methods: {method!r}"
    if not isinstance(results, list) or len(results) != len(tasks):
        got = f"{len(results)} results" if isinstance(results, list) else type(results).__name__
        raise BenchmarkError(f"{where}: run() returned {got} for {len(tasks)} tasks; expected a list with one "
                             "mapping partition -> Probabilities per task")
    for i, (task, result) in enumerate(zip(tasks, results)):
        if not isinstance(result, dict) or set(result) != set(task.evaluate):
            got = sorted(result) if isinstance(result, dict) else type(result).__name__
            raise BenchmarkError(f"{where}: task {i} result has partitions {got}; expected {sorted(task.evaluate)}")
        for part, table in task.evaluate.items():
            probs = result[part]
            if not isinstance(probs, Probabilities):
                raise BenchmarkError(f"{where}: task {i} {part}: {type(probs).__name__}, not Probabilities")
            n = len(table.frame)
            for what, array, width in (("attribute", probs.attribute, len(task.attribute.groups)),
                                       ("emotion", probs.emotion, len(table.emotion_classes))):
                array = np.asarray(array)
                if array.shape != (n, width):
                    raise BenchmarkError(f"{where}: task {i} {part}: {what} probabilities of shape {array.shape}; "
                                         f"expected ({n}, {width}) (images x {what} classes)")
                if (not np.isfinite(array).all() or (array < 0).any()
                        or (np.abs(array.sum(axis=1) - 1.0) > PROBABILITY_SUM_TOLERANCE).any()):
                    raise BenchmarkError(f"{where}: task {i} {part}: {what} probabilities are not finite, "
                                         f"non-negative rows summing to 1 (within {PROBABILITY_SUM_TOLERANCE})")
    return results

