"""What the trained methods see and predict: input features and class targets built from an outputs table.

Feature order (the authors' code): the emotion model's values first (raw logits, or their softmax), then the protected
attribute model's probabilities (its declared output columns: the paper's two gender probabilities, FairFace's 9 age
bins, or both side by side for an intersection). Emotion targets index the emotion model's classes, attribute targets
the attribute's groups.
"""

from __future__ import annotations

import numpy as np

from benchmark.core.design import Attribute
from benchmark.core.labels import canonical_emotion
from benchmark.core.outputs import OutputsTable
from benchmark.core.scores import softmax
from benchmark.infra.errors import BenchmarkError

INPUTS: tuple[str, ...] = ("logits", "probs")


def emotion_values(table: OutputsTable, *, input: str) -> np.ndarray:
    """Emotion inputs, shape (n_images, n_emotion_classes): raw logits, or their softmax for ``input='probs'``."""
    assert input in INPUTS, input
    logits = table.emotion_logits()
    return logits if input == "logits" else softmax(logits)


def features(table: OutputsTable, attribute: Attribute, *, input: str) -> np.ndarray:
    """Both models' outputs side by side, shape (n_images, n_emotion_classes + n_attribute_outputs), float64."""
    return np.hstack([emotion_values(table, input=input), attribute.model_outputs(table.frame)])


def attribute_targets(table: OutputsTable, attribute: Attribute) -> np.ndarray:
    """True group as an index into ``attribute.groups``, shape (n_images,), int64."""
    return _index(attribute.truth(table.frame), attribute.groups, what=attribute.name)


def emotion_targets(table: OutputsTable) -> np.ndarray:
    """True emotion as an index into the emotion model's classes, shape (n_images,), int64.

    Raises BenchmarkError when a true emotion is not among the model's classes (it cannot be a training target).
    """
    canonical = tuple(canonical_emotion(c) or c for c in table.emotion_classes)
    return _index(table.frame["emotion"].to_numpy(), canonical, what="emotion", classes=table.emotion_classes)


def _index(labels: np.ndarray, order: tuple[str, ...], *, what: str,
           classes: tuple[str, ...] | None = None) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(order)}
    missing = sorted(set(map(str, labels)) - set(lookup))
    if missing:
        shown = ", ".join(classes or order)
        raise BenchmarkError(f"true {what} label(s) {missing} are not among the model's classes ({shown}); "
                             f"a trained method needs every training label to be a class of the model")
    return np.array([lookup[str(v)] for v in labels], dtype=np.int64)
