"""``threshold_optimizer``: Fairlearn's ``ThresholdOptimizer`` on the binary attribute head, the **predicted
emotion** as its sensitive feature (the cross-modal bias: the attribute model errs differently by expression).

The attribute model's uncorrected probability of the first group (``p_male`` for gender) is the score; for each
predicted emotion (the emotion argmax over the classes present in the training labels) Fairlearn chooses randomised
thresholds that equalise the true- and false-positive rates across emotions (``equalized_odds``) while maximising
``train.fairness.threshold_objective`` on the training rows. So each gender's accuracy becomes the same whatever the
face's predicted expression. The emotion head stays uncorrected. Rows whose predicted emotion never occurred in
training keep the uncorrected attribute prediction (Fairlearn has no thresholds for them).

Randomised: each seed draws the thresholded labels anew (``stochastic``); probabilities are the drawn label's one-hot
vector. Needs a two-group attribute, and the optional extra ``fairness`` (Fairlearn).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from benchmark.core.scores import softmax
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.optional import require
from benchmark.methods.inputs import attribute_targets
from benchmark.methods.lp_postprocess import training_classes
from benchmark.methods.method import FitTask, Method, Probabilities

#: Fairlearn's constraint: equal true- and false-positive rates across the sensitive groups
CONSTRAINT = "equalized_odds"


class _Score(ClassifierMixin, BaseEstimator):
    """A pre-fitted 'estimator' whose prediction is the score itself (column 0 of X), as ThresholdOptimizer needs."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Score:
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X)[:, 0]


class ThresholdOptimizerMethod(Method):
    """Fairlearn's ThresholdOptimizer on the attribute head (module docstring)."""

    name = "threshold_optimizer"
    stochastic = True

    def __init__(self, *, objective: str) -> None:
        self.objective = objective
        self.fitted: list[dict[str, np.ndarray]] = []

    def run(self, tasks: list[FitTask]) -> list[dict[str, Probabilities]]:
        require("fairlearn", user="train.methods: 'threshold_optimizer'")
        from fairlearn.postprocessing import ThresholdOptimizer

        results, self.fitted = [], []
        for task in tasks:
            attribute = task.attribute
            if len(attribute.groups) != 2:
                raise BenchmarkError(f"train.methods: 'threshold_optimizer' needs a two-group attribute; "
                                     f"data.attribute {attribute.name!r} has {len(attribute.groups)} groups")
            classes = training_classes(task.train)
            train = task.train
            positive = (attribute_targets(train, attribute) == 0).astype(int)
            score = self._score(train, attribute)
            optimizer = ThresholdOptimizer(estimator=_Score().fit(score, positive), constraints=CONSTRAINT, objective=self.objective,
                                           prefit=True, predict_method="predict")
            optimizer.fit(score, positive,
                          sensitive_features=self._sensitive(train, classes))
            seen = set(np.unique(self._sensitive(train, classes)))
            out = {}
            for part, table in sorted(task.evaluate.items()):
                uncorrected = attribute.group_probabilities(table.frame)
                sensitive = self._sensitive(table, classes)
                known = np.isin(sensitive, list(seen))
                first = uncorrected[:, 0] >= uncorrected[:, 1]
                if known.any():
                    first[known] = optimizer.predict(self._score(table, attribute)[known],
                                                     sensitive_features=sensitive[known],
                                                     random_state=task.seed).astype(bool)
                out[part] = Probabilities(np.column_stack([first, ~first]).astype(np.float64),
                                          softmax(table.emotion_logits()))
            results.append(out)
            self.fitted.append({"sensitive_groups": np.array(sorted(seen))})
        return results

    @staticmethod
    def _score(table, attribute) -> np.ndarray:
        return attribute.group_probabilities(table.frame)[:, :1]

    @staticmethod
    def _sensitive(table, classes: np.ndarray) -> np.ndarray:
        """The predicted emotion (model class index) over the training-label classes, shape (n,)."""
        return classes[table.emotion_logits()[:, classes].argmax(axis=1)]

    def fitted_arrays(self) -> list[dict[str, np.ndarray]]:
        return self.fitted

