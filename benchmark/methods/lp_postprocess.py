"""``lp_equal_opportunity`` and ``lp_equalized_odds``: the multiclass linear-programming post-processor of Putzel
and Lee ("Blackbox post-processing for multiclass fairness", 2022) on the emotion head, the predicted group as the
protected attribute.

The base classifier's label Ŷ (the emotion argmax over the classes present in the training labels, i.e.
``label_mask``'s prediction: the LP needs predicted and true labels in one label space) is replaced by a random label
Ỹ drawn from a per-group mapping m[g][i, j] = P(Ỹ = j | Ŷ = i, A = g). The mappings are the solution of one linear
programme on the training rows: maximise the mean over groups and classes of the adjusted true-positive rates
P(Ỹ = y | Y = y, A = g), subject to equal true-positive rates across groups for every class (equal opportunity),
and for ``lp_equalized_odds`` also equal false-positive rates P(Ỹ = j | Y != j, A = g). The group A is the attribute
model's uncorrected prediction, at fit and at test time (the mapping is a function of what the method sees). The
attribute head stays uncorrected.

The classifier is randomised: each seed draws the labels anew (``stochastic``), so the seed mean is the expected
accuracy of the randomised classifier. Probabilities are the drawn label's one-hot vector.

Why not holisticai's ``LPDebiaserMulticlass`` (docs/FAIRNESS_BASELINES.md): its linear programme is this one, but
its ``transform`` draws Ỹ from P(Ỹ | Y = ŷ) (the adjusted confusion matrix indexed by the predicted label) instead
of the mapping P(Ỹ | Ŷ = ŷ), so its predictions break the constraint it solved for (measured on a toy table), and
importing any of its mitigators needs jax.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.optimize import linprog

from benchmark.core.labels import canonical_emotion
from benchmark.core.outputs import OutputsTable
from benchmark.infra.errors import BenchmarkError
from benchmark.methods.fair_recalibration import predicted_group
from benchmark.methods.inputs import emotion_targets
from benchmark.methods.method import FitTask, Method, Probabilities

CONSTRAINTS: tuple[str, ...] = ("equal_opportunity", "equalized_odds")


def confusion_by_group(y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray, *, n_groups: int,
                       n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group: C[g][y, i] = P(Ŷ = i | Y = y, A = g) (a zero row where group g has no row of class y), and
    prior[g][y] = P(Y = y | A = g); shapes (n_groups, n_classes, n_classes) and (n_groups, n_classes)."""
    counts = np.zeros((n_groups, n_classes, n_classes))
    np.add.at(counts, (group, y_true, y_pred), 1.0)
    per_class = counts.sum(axis=2)
    confusion = counts / np.maximum(per_class, 1.0)[:, :, None]
    prior = per_class / np.maximum(per_class.sum(axis=1, keepdims=True), 1.0)
    return confusion, prior


def solve_mappings(confusion: np.ndarray, prior: np.ndarray, *, constraint: str) -> np.ndarray:
    """The LP's mappings m[g][i, j] = P(Ỹ = j | Ŷ = i, A = g), shape (n_groups, n_classes, n_classes).

    Groups without training rows, and predicted classes a group never showed in training (their rows do not enter
    the objective or the constraints), keep their label (identity rows).
    """
    assert constraint in CONSTRAINTS, constraint
    n_groups, k, _ = confusion.shape
    present = np.flatnonzero(prior.sum(axis=1) > 0)
    has_class = prior > 0
    n_vars = n_groups * k * k

    def var(g: int, i: int, j: int) -> int:
        return (g * k + i) * k + j

    cost = np.zeros(n_vars)
    for g in present:
        for y in np.flatnonzero(has_class[g]):
            for i in range(k):
                cost[var(g, i, y)] -= confusion[g, y, i] / (len(present) * k)
    rows, rhs = [], []
    for g in range(n_groups):
        for i in range(k):
            row = np.zeros(n_vars)
            row[[var(g, i, j) for j in range(k)]] = 1.0
            rows.append(row)
            rhs.append(1.0)

    def rate(g: int, weights: np.ndarray, j: int) -> np.ndarray:
        """Coefficients of sum_y weights[y] P(Ỹ = j | Y = y, A = g) in the variables."""
        row = np.zeros(n_vars)
        for y in np.flatnonzero(weights):
            for i in range(k):
                row[var(g, i, j)] += weights[y] * confusion[g, y, i]
        return row

    base = present[0] if len(present) else 0
    for g in present[1:]:
        for j in range(k):
            if has_class[g, j] and has_class[base, j]:  # true-positive rate of class j
                rows.append(rate(g, np.eye(k)[j], j) - rate(base, np.eye(k)[j], j))
                rhs.append(0.0)
            if constraint == "equalized_odds":  # false-positive rate of class j
                others = [np.where(np.arange(k) == j, 0.0, prior[h]) for h in (g, base)]
                if others[0].sum() > 0 and others[1].sum() > 0:
                    rows.append(rate(g, others[0] / others[0].sum(), j) - rate(base, others[1] / others[1].sum(), j))
                    rhs.append(0.0)
    result = linprog(cost, A_eq=np.array(rows), b_eq=np.array(rhs), bounds=(0.0, 1.0), method="highs")
    if result.status != 0:
        raise BenchmarkError(f"lp_{constraint}: the linear programme failed ({result.message})")
    mappings = np.clip(result.x.reshape(n_groups, k, k), 0.0, 1.0)
    shown = confusion.sum(axis=1) > 0  # (n_groups, k): predicted class i occurs in group g
    for g in range(n_groups):
        for i in range(k):
            if g not in present or not shown[g, i]:
                mappings[g, i] = np.eye(k)[i]
    return mappings / mappings.sum(axis=2, keepdims=True)


def training_classes(train: OutputsTable) -> np.ndarray:
    """Indices of the emotion model's classes that occur in the training labels (matched by canonical name), sorted."""
    labels = set(train.frame["emotion"].astype(str))
    return np.array([i for i, c in enumerate(train.emotion_classes) if canonical_emotion(c) in labels], dtype=np.int64)


def _first_image(table: OutputsTable) -> bytes:
    """A key of the rows being predicted, so a task's draws depend on its seed, partition and images only (not on its
    position among the tasks)."""
    return str(table.frame["image_id"].min() if len(table.frame) else "").encode()


def draw(mappings: np.ndarray, group: np.ndarray, predicted: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row from mappings[group, predicted], shape (n,): inverse-CDF sampling of one uniform per row."""
    cdf = np.cumsum(mappings[group, predicted], axis=1)
    u = rng.random(len(group))[:, None]
    return np.minimum((u >= cdf).sum(axis=1), mappings.shape[2] - 1)


class LPPostprocess(Method):
    """The LP post-processor of the module docstring, with constraint ``equal_opportunity`` or ``equalized_odds``."""

    stochastic = True

    def __init__(self, constraint: str) -> None:
        if constraint not in CONSTRAINTS:
            raise BenchmarkError(f"lp post-processor: constraint {constraint!r}; expected one of {', '.join(CONSTRAINTS)}")
        self.constraint = constraint
        self.name = f"lp_{constraint}"
        self.fitted: list[dict[str, np.ndarray]] = []

    @staticmethod
    def _base_prediction(table: OutputsTable, classes: np.ndarray) -> np.ndarray:
        """The emotion argmax over ``classes``, as a position in ``classes``."""
        return table.emotion_logits()[:, classes].argmax(axis=1)

    def run(self, tasks: list[FitTask]) -> list[dict[str, Probabilities]]:
        results, self.fitted = [], []
        for task in tasks:
            attribute, classes = task.attribute, training_classes(task.train)
            position = {c: p for p, c in enumerate(classes)}
            y_true = np.array([position[c] for c in emotion_targets(task.train)])
            confusion, prior = confusion_by_group(y_true, self._base_prediction(task.train, classes),
                                                  predicted_group(task.train, attribute),
                                                  n_groups=len(attribute.groups), n_classes=len(classes))
            mappings = solve_mappings(confusion, prior, constraint=self.constraint)
            out = {}
            for part, table in sorted(task.evaluate.items()):
                rng = np.random.default_rng([task.seed, *map(zlib.crc32, (part.encode(), _first_image(table)))])
                label = draw(mappings, predicted_group(table, attribute), self._base_prediction(table, classes), rng)
                emotion = np.zeros((len(table.frame), len(table.emotion_classes)))
                emotion[np.arange(len(label)), classes[label]] = 1.0
                out[part] = Probabilities(attribute.group_probabilities(table.frame), emotion)
            results.append(out)
            self.fitted.append({"mappings": mappings, "classes": classes})
        return results

    def fitted_arrays(self) -> list[dict[str, np.ndarray]]:
        return self.fitted
