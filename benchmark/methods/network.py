"""The paper's correction network and its randomness contract, shared by both trainers.

The network (:class:`Architecture`): ``Linear(n_in, width) -> ReLU -> Dropout(p)``, ``depth`` times, then
``Linear(width, n_emotion + n_groups)``. Inputs are the emotion model's values then the protected attribute model's
outputs (:func:`benchmark.methods.inputs.features`); outputs ``[:n_emotion]`` are the emotion head's logits and the
rest the attribute head's (the paper: the two gender classes). Loss per batch:
``w * CE_attribute + (1 - w) * CE_emotion`` (batch means); Adam (betas 0.9, 0.999, eps 1e-8); the last epoch's weights
are kept.

Randomness contract (shared by the vectorised trainer, :mod:`benchmark.methods.trainer`, and the reference trainer,
:mod:`benchmark.methods.reference`). Model seed ``s`` gives three independent numpy PCG64 generators,
``SeedSequence(s).spawn(3)`` in the order init, shuffle, dropout:

- init: for each layer in order, the weight (out, in) then the bias (out,), each ``uniform(-1/sqrt(in), 1/sqrt(in))``
  (the distribution of ``torch.nn.Linear``'s default initialisation), cast to float32;
- shuffle: at the start of every epoch, ``permutation(n)``; batch ``b`` is rows ``perm[b*B:(b+1)*B]`` (the last
  batch may be short);
- dropout (only when p > 0): at the start of every epoch, ``n_batches * depth * width * B`` 16-bit values, four per
  ``random_raw`` 64-bit draw (least significant first), shaped (n_batches, depth * width, B); unit ``j`` of hidden
  layer ``l`` for the ``i``-th row of batch ``b`` is kept when value ``[b, l * width + j, i] >= round(p * 2**16)``
  (p is realised to within 2**-17), and kept units are scaled by ``1 / (1 - p)`` (as ``torch.nn.Dropout``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from benchmark.core.design import Attribute
from benchmark.core.outputs import OutputsTable
from benchmark.methods.inputs import attribute_targets, emotion_targets, features

ADAM_BETAS: tuple[float, float] = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class Architecture:
    """Layer sizes of one correction network.

    n_emotion : emotion classes of the emotion model (EmoNet: 8).
    depth, width : hidden layers and units per hidden layer.
    n_attribute_inputs : the attribute model's outputs (the paper's gender: 2; FairFace's age bins: 9).
    n_groups : groups of the attribute head (gender: 2; FACES age groups: 3).
    The paper's network: ``Architecture(8, 2, 24, n_attribute_inputs=2, n_groups=2)``, 10 inputs and 10 outputs.
    """

    n_emotion: int
    depth: int
    width: int
    n_attribute_inputs: int
    n_groups: int

    @classmethod
    def for_attribute(cls, n_emotion: int, attribute: Attribute, *, depth: int, width: int) -> Architecture:
        """The network of ``attribute``: its model outputs in, its groups out."""
        return cls(n_emotion, depth, width, n_attribute_inputs=len(attribute.outputs), n_groups=len(attribute.groups))

    @property
    def n_in(self) -> int:
        return self.n_emotion + self.n_attribute_inputs

    @property
    def n_out(self) -> int:
        return self.n_emotion + self.n_groups

    def layer_shapes(self) -> list[tuple[int, int]]:
        """(out, in) of each Linear layer, input to output."""
        sizes = [self.n_in] + [self.width] * self.depth + [self.n_out]
        return [(sizes[i + 1], sizes[i]) for i in range(len(sizes) - 1)]


@dataclass
class Weights:
    """One trained network: ``layers[l] = (W of shape (out, in), b of shape (out,))``, float32, input to output."""

    layers: list[tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class TrainingData:
    """One model's training rows: ``x`` (n, n_in) float32 features, ``attribute`` (group) and ``emotion`` (class)
    indices of shape (n,)."""

    x: np.ndarray
    attribute: np.ndarray
    emotion: np.ndarray

    @classmethod
    def from_table(cls, table: OutputsTable, attribute: Attribute, *, input: str) -> TrainingData:
        return cls(features(table, attribute, input=input).astype(np.float32), attribute_targets(table, attribute),
                   emotion_targets(table))

    def __len__(self) -> int:
        return len(self.x)


class ModelRandomness:
    """The three generators of one model seed, in the contract's order: init, shuffle, dropout."""

    def __init__(self, seed: int) -> None:
        init, shuffle, dropout = np.random.SeedSequence(seed).spawn(3)
        self.init = np.random.Generator(np.random.PCG64(init))
        self.shuffle = np.random.Generator(np.random.PCG64(shuffle))
        self.dropout = np.random.Generator(np.random.PCG64(dropout))


def initial_weights(arch: Architecture, rng: np.random.Generator) -> Weights:
    """Draw initial weights: per layer W then b, ``uniform(-1/sqrt(in), 1/sqrt(in))``, float32."""
    layers = []
    for out, inp in arch.layer_shapes():
        bound = 1.0 / math.sqrt(inp)
        w = rng.uniform(-bound, bound, size=(out, inp)).astype(np.float32)
        b = rng.uniform(-bound, bound, size=(out,)).astype(np.float32)
        layers.append((w, b))
    return Weights(layers)


def n_batches(n_rows: int, batch_size: int) -> int:
    """Batches per epoch (the last may be short)."""
    return -(-n_rows // batch_size)


def dropout_values(rng: np.random.Generator, *, n_batches: int, batch_size: int, n_units: int) -> np.ndarray:
    """One epoch's dropout draws: uint16 of shape (n_batches, n_units, batch_size), four per 64-bit ``random_raw``
    value (least significant first); see the module's randomness contract."""
    total = n_batches * n_units * batch_size
    raw = rng.bit_generator.random_raw(-(-total // 4))
    return raw.astype("<u8", copy=False).view("<u2")[:total].reshape(n_batches, n_units, batch_size)


def keep_threshold(p: float) -> np.uint16:
    """A unit is kept when its draw is >= this: ``round(p * 2**16)`` (so p is realised to within 2**-17)."""
    assert 0.0 <= p < 1.0, p
    return np.uint16(round(p * 2**16))


def dropout_keep(rng: np.random.Generator, *, n_batches: int, batch_size: int, n_units: int, p: float) -> np.ndarray:
    """One epoch's keep masks, bool of shape (n_batches, n_units, batch_size)."""
    values = dropout_values(rng, n_batches=n_batches, batch_size=batch_size, n_units=n_units)
    return values >= keep_threshold(p)


def predict(weights: Weights, x: np.ndarray, *, n_emotion: int) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation-mode forward pass (no dropout).

    Returns (attribute group probabilities of shape (n, n_groups), emotion probabilities of shape (n, n_emotion)),
    float64.
    """
    with torch.no_grad():
        h = torch.as_tensor(np.asarray(x, dtype=np.float32))
        for i, (w, b) in enumerate(weights.layers):
            h = torch.addmm(torch.from_numpy(b), h, torch.from_numpy(w).T)
            if i < len(weights.layers) - 1:
                h = torch.relu(h)
        emotion = torch.softmax(h[:, :n_emotion], dim=1)
        groups = torch.softmax(h[:, n_emotion:], dim=1)
    return groups.double().numpy(), emotion.double().numpy()
