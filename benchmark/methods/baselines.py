"""Baselines in the same run matrix as the corrector."""

from __future__ import annotations

from benchmark.methods.base import FitTask, Method, Probabilities, softmax


class Uncorrected(Method):
    """The frozen models as they are: gender probabilities as given, softmax of the emotion logits (argmax over all
    the emotion model's classes, the paper's rule)."""

    name = "uncorrected"
    stochastic = False

    def run(self, tasks: list[FitTask]) -> list[dict[str, Probabilities]]:
        return [{part: Probabilities(t.gender_probs(), softmax(t.emotion_logits())) for part, t in task.evaluate.items()}
                for task in tasks]
