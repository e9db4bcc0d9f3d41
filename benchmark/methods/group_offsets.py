"""Class-wise logit offsets per condition (e.g. per predicted group), fitted with a penalty on per-emotion gaps.

The model: a row i with base scores z_i (n_classes logits) and condition c_i (its predicted group, or its predicted
emotion) gets probabilities softmax(z_i + b[c_i]); the offsets b have shape (n_conditions, n_classes). They minimise

    mean_i CE(softmax(z_i + b[c_i]), t_i) + strength * P(b) + ridge * sum(b ** 2)

where t_i is the true class and P is the mean, over emotions and pairs of groups, of the squared difference of the
groups' *soft* accuracies in that emotion: R[g, e] = mean over the rows of true group g and true emotion e of the
probability given to the true class (the accuracy of the cell with probabilities in place of the argmax). For two
groups P is the mean squared per-emotion gap (probability units, 0.1 = 10 percentage points). ``strength`` = 0 is a
plain group-aware recalibration; larger values trade accuracy for smaller gaps. ``ridge`` keeps offsets of classes
that no training row carries finite. L-BFGS from zero offsets with an exact gradient: deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from benchmark.core.scores import softmax

#: L-BFGS iterations; the problem is small (n_conditions x n_classes offsets) and smooth
MAX_ITER = 1000


@dataclass(frozen=True)
class OffsetProblem:
    """Training rows of one head.

    scores : float array of shape (n, n_classes), base logits.
    condition : int array of shape (n,), values in [0, n_conditions): which offsets a row gets.
    target : int array of shape (n,), the true class.
    cell_group, cell_emotion : int arrays of shape (n,): the row's true group and true emotion (its cell).
    n_conditions : number of conditions (rows of the offsets).
    """

    scores: np.ndarray
    condition: np.ndarray
    target: np.ndarray
    cell_group: np.ndarray
    cell_emotion: np.ndarray
    n_conditions: int

    @property
    def n_classes(self) -> int:
        return self.scores.shape[1]


def _pairs(problem: OffsetProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cell index per row, cell sizes, and the (cell a, cell b) index pairs the penalty compares (same emotion,
    different groups, both cells non-empty)."""
    n_groups = int(problem.cell_group.max()) + 1
    n_emotions = int(problem.cell_emotion.max()) + 1
    cell = problem.cell_group * n_emotions + problem.cell_emotion
    size = np.bincount(cell, minlength=n_groups * n_emotions).astype(np.float64)
    a, b = [], []
    for e in range(n_emotions):
        for g in range(n_groups):
            for h in range(g + 1, n_groups):
                i, j = g * n_emotions + e, h * n_emotions + e
                if size[i] > 0 and size[j] > 0:
                    a.append(i)
                    b.append(j)
    return cell, size, np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)


def objective(flat: np.ndarray, problem: OffsetProblem, *, strength: float, ridge: float,
              pairs: tuple | None = None) -> tuple[float, np.ndarray]:
    """The loss above and its gradient with respect to the flattened offsets (n_conditions * n_classes,);
    ``pairs``: :func:`_pairs` of the problem, when already computed."""
    cell, size, pair_a, pair_b = pairs if pairs is not None else _pairs(problem)
    n, k = problem.scores.shape
    offsets = flat.reshape(problem.n_conditions, k)
    probs = softmax(problem.scores + offsets[problem.condition])
    rows = np.arange(n)
    q = probs[rows, problem.target]
    onehot = np.zeros_like(probs)
    onehot[rows, problem.target] = 1.0
    loss = -np.mean(np.log(np.maximum(q, 1e-300)))
    grad_z = (probs - onehot) / n
    if strength > 0 and len(pair_a):
        soft = np.bincount(cell, weights=q, minlength=len(size)) / np.maximum(size, 1.0)
        diff = soft[pair_a] - soft[pair_b]
        loss += strength * np.mean(diff ** 2)
        d_soft = np.zeros(len(size))
        np.add.at(d_soft, pair_a, 2.0 * diff / len(diff))
        np.add.at(d_soft, pair_b, -2.0 * diff / len(diff))
        d_q = strength * d_soft[cell] / size[cell]
        grad_z += (d_q * q)[:, None] * (onehot - probs)
    grad = np.zeros_like(offsets)
    np.add.at(grad, problem.condition, grad_z)
    loss += ridge * float(np.sum(offsets ** 2))
    grad += 2.0 * ridge * offsets
    return float(loss), grad.ravel()


def fit_offsets(problem: OffsetProblem, *, strength: float, ridge: float) -> np.ndarray:
    """The offsets minimising the loss, shape (n_conditions, n_classes)."""
    pairs = _pairs(problem)
    x0 = np.zeros(problem.n_conditions * problem.n_classes)
    result = minimize(lambda x: objective(x, problem, strength=strength, ridge=ridge, pairs=pairs), x0, jac=True,
                      method="L-BFGS-B", options={"maxiter": MAX_ITER})
    return result.x.reshape(problem.n_conditions, problem.n_classes)


def apply_offsets(scores: np.ndarray, condition: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """softmax(scores + offsets[condition]), shape (n, n_classes)."""
    return softmax(scores + offsets[condition])
