"""Scores to probabilities: the softmax every method and source shares (a frozen model's logits, a head's scores)."""

from __future__ import annotations

import numpy as np

__all__ = ["softmax"]


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``: any shape -> the same shape, each slice summing to 1."""
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)
