"""The reference trainer: one correction network trained the way the paper's authors did (an ``nn.Module``, a
``DataLoader``, autograd and ``torch.optim.Adam`` in a plain loop).

It is the correctness oracle and the speed baseline of the vectorised trainer
(:func:`benchmark.methods.trainer.train_many`). The only departure from the authors' loop is where its randomness comes
from: initial weights, each epoch's shuffle and each epoch's dropout masks are drawn from the seed's generators as the
contract in :mod:`benchmark.methods.network` states, so both trainers see the same batches and masks.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

from benchmark.core.settings import CorrectorSettings
from benchmark.methods.network import (
    ADAM_BETAS,
    ADAM_EPS,
    Architecture,
    ModelRandomness,
    TrainingData,
    Weights,
    dropout_keep,
    initial_weights,
    n_batches,
)


class _EpochBatches(Sampler[list[int]]):
    """Each epoch: a fresh permutation from the shuffle generator, cut into consecutive batches."""

    def __init__(self, n: int, batch_size: int, rng: np.random.Generator) -> None:
        self.n, self.batch_size, self.rng = n, batch_size, rng

    def __iter__(self) -> Iterator[list[int]]:
        perm = self.rng.permutation(self.n)
        for start in range(0, self.n, self.batch_size):
            yield perm[start:start + self.batch_size].tolist()

    def __len__(self) -> int:
        return n_batches(self.n, self.batch_size)


class _GivenDropout(nn.Module):
    """Dropout whose keep mask (``mask``, bool) is set before each training forward pass; kept units are scaled by
    1 / (1 - p)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (self.mask.to(x.dtype) / (1.0 - self.p))


class CorrectionNet(nn.Module):
    """Linear -> ReLU -> Dropout (``depth`` times) -> Linear; returns (emotion logits, attribute logits)."""

    def __init__(self, arch: Architecture, dropout: float) -> None:
        super().__init__()
        self.arch = arch
        shapes = arch.layer_shapes()
        self.linears = nn.ModuleList(nn.Linear(inp, out) for out, inp in shapes)
        self.dropouts = nn.ModuleList(_GivenDropout(dropout) for _ in range(arch.depth))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for linear, dropout in zip(self.linears[:-1], self.dropouts):
            x = dropout(torch.relu(linear(x)))
        out = self.linears[-1](x)
        return out[:, : self.arch.n_emotion], out[:, self.arch.n_emotion:]

    def load(self, weights: Weights) -> None:
        with torch.no_grad():
            for linear, (w, b) in zip(self.linears, weights.layers):
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b))

    def weights(self) -> Weights:
        return Weights([(l.weight.detach().numpy().copy(), l.bias.detach().numpy().copy()) for l in self.linears])


def train_reference(data: TrainingData, seed: int, *, arch: Architecture, settings: CorrectorSettings) -> Weights:
    """Train one network on ``data`` with ``seed``; returns the last epoch's weights."""
    rng = ModelRandomness(seed)
    model = CorrectionNet(arch, settings.dropout)
    model.load(initial_weights(arch, rng.init))
    dataset = TensorDataset(torch.from_numpy(data.x), torch.from_numpy(data.attribute), torch.from_numpy(data.emotion))
    loader = DataLoader(dataset, batch_sampler=_EpochBatches(len(data), settings.batch_size, rng.shuffle))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, betas=ADAM_BETAS, eps=ADAM_EPS)
    w = settings.attribute_weight
    width = arch.width
    model.train()
    for _ in range(settings.epochs):
        keep = None
        if settings.dropout > 0:
            keep = torch.from_numpy(dropout_keep(rng.dropout, n_batches=len(loader), batch_size=settings.batch_size,
                                                 n_units=arch.depth * width, p=settings.dropout))
        for b, (x, group, emotion) in enumerate(loader):
            if keep is not None:
                for l, dropout in enumerate(model.dropouts):
                    dropout.mask = keep[b, l * width:(l + 1) * width, : len(x)].T
            optimizer.zero_grad()
            emotion_out, group_out = model(x)
            loss = w * criterion(group_out, group) + (1.0 - w) * criterion(emotion_out, emotion)
            loss.backward()
            optimizer.step()
    return model.weights()
