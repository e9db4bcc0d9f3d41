"""Baselines in the same run matrix as the corrector.

- ``uncorrected``: the frozen models' outputs as they are (the attribute's through its declared rule, e.g. FairFace's
  age bins summed into the dataset's age groups).
- ``label_mask``: the emotion argmax restricted to the emotions present in the training labels (no fitting).
- ``unimodal``: per task, multinomial logistic regression on that task's own outputs (recalibration without
  cross-modal information).
- ``crossmodal_linear``: per task, multinomial logistic regression on both models' outputs (the corrector's inputs).

The logistic regressions (scikit-learn, L-BFGS, L2 penalty ``C`` on standardised inputs) are deterministic, so they
run once per fold, with seed 0.
"""

from __future__ import annotations

import logging
import warnings
from abc import abstractmethod

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmark.core.design import Attribute
from benchmark.core.labels import canonical_emotion
from benchmark.core.outputs import OutputsTable
from benchmark.core.scores import softmax
from benchmark.core.settings import LinearSettings
from benchmark.methods.inputs import attribute_targets, emotion_targets, emotion_values, features
from benchmark.methods.method import FitTask, Method, Probabilities

log = logging.getLogger(__name__)


class Uncorrected(Method):
    """The frozen models as they are: the attribute's group probabilities by its declared rule (the gender
    probabilities as given), softmax of the emotion logits (argmax over all the emotion model's classes, the paper's
    rule)."""

    name = "uncorrected"
    stochastic = False

    def run(self, tasks: list[FitTask]) -> list[dict[str, Probabilities]]:
        return [{part: Probabilities(task.attribute.group_probabilities(t.frame), softmax(t.emotion_logits()))
                 for part, t in task.evaluate.items()} for task in tasks]


class LabelMask(Method):
    """Softmax of the emotion logits over only the classes that occur in the training labels (the others get
    probability 0; classes are matched by canonical name); the attribute as uncorrected. Nothing is fitted."""

    name = "label_mask"
    stochastic = False

    def run(self, tasks: list[FitTask]) -> list[dict[str, Probabilities]]:
        results = []
        for task in tasks:
            labels = set(task.train.frame["emotion"].astype(str))
            present = np.array([canonical_emotion(c) in labels for c in task.train.emotion_classes])
            out = {}
            for part, table in task.evaluate.items():
                logits = np.where(present, table.emotion_logits(), -np.inf)
                out[part] = Probabilities(task.attribute.group_probabilities(table.frame), softmax(logits))
            results.append(out)
        return results


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_eval: dict[str, np.ndarray], n_classes: int, *,
                 settings: LinearSettings) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """Multinomial logistic regression on standardised inputs.

    Returns (partition -> probabilities of shape (n, n_classes) with 0 for classes absent from ``y_train``,
    the fitted arrays, the number of convergence warnings). A single training class is predicted with certainty.
    """
    classes = np.unique(y_train)
    if len(classes) == 1:
        probs = {}
        for part, x in x_eval.items():
            p = np.zeros((len(x), n_classes))
            p[:, classes[0]] = 1.0
            probs[part] = p
        return probs, {"classes": classes}, 0
    model = make_pipeline(StandardScaler(), LogisticRegression(C=settings.C, max_iter=settings.max_iter))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x_train, y_train)
    n_warnings = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    probs = {}
    for part, x in x_eval.items():
        p = np.zeros((len(x), n_classes))
        p[:, classes] = model.predict_proba(x)
        probs[part] = p
    scaler, lr = model[0], model[-1]
    fitted = {"classes": classes, "mean": scaler.mean_, "scale": scaler.scale_, "coef": lr.coef_,
              "intercept": lr.intercept_}
    return probs, fitted, n_warnings


class _LogisticPerTask(Method):
    """One logistic regression per task; subclasses choose each task's inputs."""

    stochastic = False

    def __init__(self, settings: LinearSettings) -> None:
        self.settings = settings
        self.fitted: list[dict[str, np.ndarray]] = []

    @abstractmethod
    def attribute_inputs(self, table: OutputsTable, attribute: Attribute) -> np.ndarray:
        """Inputs of the attribute model, shape (n_images, n_features)."""

    @abstractmethod
    def emotion_inputs(self, table: OutputsTable, attribute: Attribute) -> np.ndarray:
        """Inputs of the emotion model, shape (n_images, n_features)."""

    def run(self, tasks: list[FitTask]) -> list[dict[str, Probabilities]]:
        results, self.fitted, n_warnings = [], [], 0
        for task in tasks:
            attr, n_emotion = task.attribute, len(task.train.emotion_classes)
            groups, a_fit, a_warn = _fit_predict(
                self.attribute_inputs(task.train, attr), attribute_targets(task.train, attr),
                {p: self.attribute_inputs(t, attr) for p, t in task.evaluate.items()}, len(attr.groups),
                settings=self.settings)
            emotion, e_fit, e_warn = _fit_predict(
                self.emotion_inputs(task.train, attr), emotion_targets(task.train),
                {p: self.emotion_inputs(t, attr) for p, t in task.evaluate.items()}, n_emotion, settings=self.settings)
            n_warnings += a_warn + e_warn
            results.append({p: Probabilities(groups[p], emotion[p]) for p in task.evaluate})
            self.fitted.append({**{f"attribute.{k}": v for k, v in a_fit.items()},
                                **{f"emotion.{k}": v for k, v in e_fit.items()}})
        if n_warnings:
            log.warning("%s: %d logistic regression(s) did not converge in train.linear.max_iter=%d iterations",
                        self.name, n_warnings, self.settings.max_iter)
        return results

    def fitted_arrays(self) -> list[dict[str, np.ndarray]]:
        return self.fitted


class Unimodal(_LogisticPerTask):
    """The attribute from its model's outputs alone, emotion from the emotion values alone."""

    name = "unimodal"

    def attribute_inputs(self, table: OutputsTable, attribute: Attribute) -> np.ndarray:
        return attribute.model_outputs(table.frame)

    def emotion_inputs(self, table: OutputsTable, attribute: Attribute) -> np.ndarray:
        return emotion_values(table, input=self.settings.input)


class CrossmodalLinear(_LogisticPerTask):
    """Each task from both models' outputs side by side (the corrector's inputs, without hidden layers)."""

    name = "crossmodal_linear"

    def attribute_inputs(self, table: OutputsTable, attribute: Attribute) -> np.ndarray:
        return features(table, attribute, input=self.settings.input)

    def emotion_inputs(self, table: OutputsTable, attribute: Attribute) -> np.ndarray:
        return features(table, attribute, input=self.settings.input)
