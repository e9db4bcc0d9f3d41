"""``group_recalibration``: a group-aware recalibration of both heads with a tunable fairness strength.

- Emotion head: the emotion logits plus class-wise offsets chosen by the image's **predicted** group (the attribute
  model's uncorrected argmax), so at test time it needs no true attribute.
- Attribute head: the log of the uncorrected group probabilities plus class-wise offsets chosen by the image's
  predicted emotion (the emotion model's argmax over all its classes): the cross-modal counterpart.

Each head's offsets are fitted on the training rows by :func:`benchmark.methods.group_offsets.fit_offsets`:
cross-entropy plus ``strength`` times the mean squared per-emotion gap of soft accuracies between the **true** groups
of the training rows (their labels are known there), plus a small ridge. ``strength`` 0 is a plain group-aware
recalibration; raising it trades accuracy for smaller gaps, so the method traces a curve (``group_recalibration@s``
in ``train.methods`` runs it at strength s; ``benchmark tune`` with ``tune.method: group_recalibration`` chooses s).
Deterministic: one run per fold, seed 0.
"""

from __future__ import annotations

import numpy as np

from benchmark.core.design import Attribute
from benchmark.core.outputs import OutputsTable
from benchmark.methods.group_offsets import OffsetProblem, apply_offsets, fit_offsets
from benchmark.methods.inputs import attribute_targets, emotion_targets
from benchmark.methods.method import FitTask, Method, Probabilities
from benchmark.methods.tuned import tuned_skip_reason

#: floor of a group probability before its log (FairFace's probabilities can be exactly 0 after rounding)
LOG_FLOOR = 1e-12


def predicted_group(table: OutputsTable, attribute: Attribute) -> np.ndarray:
    """The attribute model's uncorrected group per row, an index into ``attribute.groups``, shape (n,)."""
    return attribute.group_probabilities(table.frame).argmax(axis=1)


def predicted_emotion(table: OutputsTable) -> np.ndarray:
    """The emotion model's argmax over all its classes, an index into its classes, shape (n,)."""
    return table.emotion_logits().argmax(axis=1)


def group_scores(table: OutputsTable, attribute: Attribute) -> np.ndarray:
    """Log uncorrected group probabilities, shape (n, n_groups): the attribute head's base logits."""
    return np.log(np.maximum(attribute.group_probabilities(table.frame), LOG_FLOOR))


def cell_indices(table: OutputsTable, attribute: Attribute) -> tuple[np.ndarray, np.ndarray]:
    """Each training row's true group (index into the groups) and true emotion (index into the dataset's emotions)."""
    emotions = {e: i for i, e in enumerate(table.design.emotions)}
    return attribute_targets(table, attribute), np.array([emotions[e] for e in table.frame["emotion"]], dtype=np.int64)


class GroupRecalibration(Method):
    """Group-aware recalibration with a penalty on per-emotion gaps (module docstring)."""

    name = "group_recalibration"
    stochastic = False

    def __init__(self, *, strength: float, ridge: float) -> None:
        self.strength = strength
        self.ridge = ridge
        self.fitted: list[dict[str, np.ndarray]] = []

    def _fit(self, task: FitTask) -> tuple[np.ndarray, np.ndarray]:
        """(emotion offsets (n_groups, n_emotion_classes), attribute offsets (n_emotion_classes, n_groups))."""
        train, attribute = task.train, task.attribute
        group, emotion = cell_indices(train, attribute)
        n_classes = len(train.emotion_classes)
        emotion_head = OffsetProblem(train.emotion_logits(), predicted_group(train, attribute), emotion_targets(train),
                                     group, emotion, len(attribute.groups))
        attribute_head = OffsetProblem(group_scores(train, attribute), predicted_emotion(train), group, group, emotion,
                                       n_classes)
        return (fit_offsets(emotion_head, strength=self.strength, ridge=self.ridge),
                fit_offsets(attribute_head, strength=self.strength, ridge=self.ridge))

    def run(self, tasks: list[FitTask]) -> list[dict[str, Probabilities]]:
        results, self.fitted = [], []
        for task in tasks:
            emotion_offsets, attribute_offsets = self._fit(task)
            attribute = task.attribute
            results.append({part: Probabilities(
                apply_offsets(group_scores(t, attribute), predicted_emotion(t), attribute_offsets),
                apply_offsets(t.emotion_logits(), predicted_group(t, attribute), emotion_offsets))
                for part, t in task.evaluate.items()})
            self.fitted.append({"emotion_offsets": emotion_offsets, "attribute_offsets": attribute_offsets,
                                "strength": np.array(self.strength)})
        return results

    def fitted_arrays(self) -> list[dict[str, np.ndarray]]:
        return self.fitted


class TunedGroupRecalibration(GroupRecalibration):
    """``group_recalibration_tuned``: the strength a study chose for split ``tuned_for``, run on that split only (the
    study scored strengths by CV inside its training dataset; see ``corrector_tuned`` for why other splits are
    skipped)."""

    name = "group_recalibration_tuned"

    def __init__(self, *, strength: float, ridge: float, tuned_for: str) -> None:
        super().__init__(strength=strength, ridge=ridge)
        self.tuned_for = tuned_for

    def skip_reason(self, split: str) -> str | None:
        return tuned_skip_reason(split, self.tuned_for)
