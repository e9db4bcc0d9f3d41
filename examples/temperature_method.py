"""A user's own correction method, outside the package: per-task temperature scaling.

Plug it in with ``train.methods: [..., examples/temperature_method.py:make]`` (docs/METHODS.md). For each task it
fits one temperature T on the training rows (minimising the cross-entropy of softmax(scores / T)) and predicts with it:
a recalibration that keeps each model's ranking of the classes, so its argmax and accuracy never change. It shows
the method contract: ``run`` gets every (fold, seed) task of a split and returns, per task and partition, the
probabilities of the attribute's groups and of the emotion model's classes.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from benchmark.core.scores import softmax
from benchmark.methods.inputs import attribute_targets, emotion_targets
from benchmark.methods.method import FitTask, Method, Probabilities


def _fit_temperature(scores: np.ndarray, targets: np.ndarray, *, bounds: tuple[float, float]) -> float:
    """The T in ``bounds`` minimising the mean cross-entropy of softmax(scores / T); scores (n, k), targets (n,)."""
    def loss(t: float) -> float:
        z = scores / t
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), targets]))

    return float(optimize.minimize_scalar(loss, bounds=bounds, method="bounded").x)


class TemperatureScaling(Method):
    """One temperature per task, fitted on the training rows; deterministic (run once, seed 0)."""

    stochastic = False

    def __init__(self, *, low: float = 0.05, high: float = 20.0) -> None:
        self.bounds = (low, high)
        self.fitted: list[dict[str, np.ndarray]] = []

    def run(self, tasks: list[FitTask]) -> list[dict[str, Probabilities]]:
        results, self.fitted = [], []
        for task in tasks:
            attribute = task.attribute
            # the attribute model's group probabilities (through the dataset's declared rule) as log-scores
            log_groups = np.log(np.clip(attribute.group_probabilities(task.train.frame), 1e-12, None))
            t_attr = _fit_temperature(log_groups, attribute_targets(task.train, attribute), bounds=self.bounds)
            t_emo = _fit_temperature(task.train.emotion_logits(), emotion_targets(task.train), bounds=self.bounds)
            out = {}
            for partition, table in task.evaluate.items():
                groups = np.log(np.clip(attribute.group_probabilities(table.frame), 1e-12, None))
                out[partition] = Probabilities(softmax(groups / t_attr), softmax(table.emotion_logits() / t_emo))
            results.append(out)
            self.fitted.append({"attribute_temperature": np.array(t_attr), "emotion_temperature": np.array(t_emo)})
        return results

    def fitted_arrays(self) -> list[dict[str, np.ndarray]]:
        return self.fitted


def make(settings, **params) -> TemperatureScaling:
    """The factory ``train.methods`` names: the validated settings, plus ``train.method_params[<spec>]``."""
    return TemperatureScaling(**params)
