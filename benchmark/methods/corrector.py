"""The paper's correction network and a trainer that fits many independent copies of it in one loop.

The network (``Architecture``): ``Linear(n_in, width) -> ReLU -> Dropout(p)``, ``depth`` times, then
``Linear(width, n_emotion + 2)``. Inputs are the emotion model's values then the gender probabilities
(:func:`benchmark.methods.inputs.features`); outputs ``[:n_emotion]`` are the emotion head's logits and the last two
the gender head's. Loss per batch: ``w * CE_gender + (1 - w) * CE_emotion`` (batch means); Adam (betas 0.9, 0.999,
eps 1e-8); the last epoch's weights are kept.

Randomness contract (shared with the reference trainer in :mod:`benchmark.methods.reference`). Model seed ``s``
gives three independent numpy PCG64 generators, ``SeedSequence(s).spawn(3)`` in the order init, shuffle, dropout:

- init: for each layer in order, the weight (out, in) then the bias (out,), each ``uniform(-1/sqrt(in), 1/sqrt(in))``
  (the distribution of ``torch.nn.Linear``'s default initialisation), cast to float32;
- shuffle: at the start of every epoch, ``permutation(n)``; batch ``b`` is rows ``perm[b*B:(b+1)*B]`` (the last
  batch may be short);
- dropout (only when p > 0): at the start of every epoch, ``n_batches * depth * width * B`` 16-bit values, four per
  ``random_raw`` 64-bit draw (least significant first), shaped (n_batches, depth * width, B); unit ``j`` of hidden
  layer ``l`` for the ``i``-th row of batch ``b`` is kept when value ``[b, l * width + j, i] >= round(p * 2**16)``
  (p is realised to within 2**-17), and kept units are scaled by ``1 / (1 - p)`` (as ``torch.nn.Dropout``).

The vectorised trainer (:func:`train_many`) follows that contract for each of K models: stacked weights, a hand-written
forward and backward pass with batched matrix products, one fused Adam call per step, batches and dropout masks drawn
per model ahead of time in chunks, models of different training-set sizes handled by sorting them by their number of
steps and stepping only the prefix still training, and the stack split across one worker process per core. A model's
result does not depend on which other models share its stack or its worker, nor on its number of epochs: its weights
after epoch e of a longer run are those of a run of e epochs (the snapshots that pruning reads,
:func:`train_many`'s ``snapshot_epochs``).
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from benchmark.config import CorrectorSettings
from benchmark.labels import GENDERS
from benchmark.methods.base import FitTask, Method, Probabilities
from benchmark.methods.inputs import emotion_targets, features, gender_targets
from benchmark.outputs import OutputsTable
from benchmark.processes import ignore_interrupts, stop_workers_on_error
from benchmark.protocol import CROSS_DATASET_SPLITS, test_dataset

ADAM_BETAS: tuple[float, float] = (0.9, 0.999)
ADAM_EPS = 1e-8
#: logit given to the padding classes of the shorter head (weight 0, so softmax gives them probability 0)
_PAD_LOGIT = -1e30
#: bytes of prepared batches, masks and targets per chunk (bounds memory whatever the stack size)
_CHUNK_BYTES = 96 * 2**20
#: total training steps (models x steps each) from which ``train_many`` uses one process per core by default
PARALLEL_MIN_STEPS = 200_000


@dataclass(frozen=True)
class Architecture:
    """Layer sizes of one correction network.

    n_emotion : emotion classes of the emotion model (EmoNet: 8); the input and output width is n_emotion + 2.
    depth, width : hidden layers and units per hidden layer.
    """

    n_emotion: int
    depth: int
    width: int

    @property
    def n_in(self) -> int:
        return self.n_emotion + len(GENDERS)

    @property
    def n_out(self) -> int:
        return self.n_emotion + len(GENDERS)

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
    """One model's training rows: ``x`` (n, n_in) float32 features, ``gender`` and ``emotion`` (n,) class indices."""

    x: np.ndarray
    gender: np.ndarray
    emotion: np.ndarray

    @classmethod
    def from_table(cls, table: OutputsTable, *, input: str) -> "TrainingData":
        return cls(features(table, input=input).astype(np.float32), gender_targets(table), emotion_targets(table))

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

    Returns (gender probabilities of shape (n, 2), emotion probabilities of shape (n, n_emotion)), float64.
    """
    with torch.no_grad():
        h = torch.as_tensor(np.asarray(x, dtype=np.float32))
        for i, (w, b) in enumerate(weights.layers):
            h = torch.addmm(torch.from_numpy(b), h, torch.from_numpy(w).T)
            if i < len(weights.layers) - 1:
                h = torch.relu(h)
        emotion = torch.softmax(h[:, :n_emotion], dim=1)
        gender = torch.softmax(h[:, n_emotion:], dim=1)
    return gender.double().numpy(), emotion.double().numpy()


class _Stream:
    """One model's training steps in order: global row indices, per-row loss scale and dropout keep masks.

    Rows are indexed in the stacked table of all models (``offset`` is this model's first row); a short last batch
    is padded with this model's first row at loss scale 0.
    """

    def __init__(self, n: int, offset: int, rng: ModelRandomness, *, batch_size: int, epochs: int, n_units: int,
                 dropout: float) -> None:
        self.n, self.offset, self.rng = n, offset, rng
        self.batch_size, self.epochs_left, self.n_units, self.dropout = batch_size, epochs, n_units, dropout
        self.nb = n_batches(n, batch_size)
        self.total_steps = self.nb * epochs
        rows = np.minimum(batch_size, n - np.arange(self.nb) * batch_size)
        slot = np.arange(batch_size)
        self.scale = np.where(slot[None, :] < rows[:, None], 1.0 / rows[:, None], 0.0).astype(np.float32)
        self.threshold = keep_threshold(dropout)
        self.epoch: tuple[np.ndarray, np.ndarray | None] | None = None
        self.pos = 0

    def _draw_epoch(self) -> None:
        perm = self.rng.shuffle.permutation(self.n)
        idx = np.full(self.nb * self.batch_size, self.offset, dtype=np.int64)
        idx[: self.n] = perm + self.offset
        values = None
        if self.dropout > 0:
            values = dropout_values(self.rng.dropout, n_batches=self.nb, batch_size=self.batch_size,
                                    n_units=self.n_units)
        self.epochs_left -= 1
        self.epoch, self.pos = (idx.reshape(self.nb, self.batch_size), values), 0

    def fill(self, idx: np.ndarray, scale: np.ndarray, keep: np.ndarray | None) -> None:
        """Write the next ``len(idx)`` steps: idx (S, B) int64, scale (S, B) float32 (1 / rows of the batch, 0 for
        padding), keep (S, units, B) float32 dropout masks (1 / (1 - p) kept, 0 dropped).

        Past the model's last step the arrays are left as they are (the step loop never reaches them).
        """
        done, count = 0, len(idx)
        while done < count:
            if self.epoch is None or self.pos == self.nb:
                if self.epochs_left == 0:
                    return
                self._draw_epoch()
            epoch_idx, epoch_values = self.epoch
            m = min(count - done, self.nb - self.pos)
            idx[done:done + m] = epoch_idx[self.pos:self.pos + m]
            scale[done:done + m] = self.scale[self.pos:self.pos + m]
            if keep is not None:
                out = keep[done:done + m]
                np.greater_equal(epoch_values[self.pos:self.pos + m], self.threshold, out=out)
                out *= np.float32(1.0 / (1.0 - self.dropout))
            self.pos += m
            done += m


@contextmanager
def _flush_denormals() -> Iterator[None]:
    """Treat denormal floats as zero in this thread while it trains (Adam's second moments of dead units otherwise
    become denormal and slow every elementwise op several-fold; values below 1e-38 change no update measurably).
    Afterwards the thread is back to torch's default (denormals kept)."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextmanager
def _intraop_threads(n: int) -> Iterator[None]:
    """Run torch ops single-threaded inside each worker (the workers themselves use the cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_workers() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _balanced_groups(steps: list[int], n_groups: int) -> list[list[int]]:
    """Split model indices into ``n_groups`` groups of similar total steps (longest first to the lightest group)."""
    groups: list[list[int]] = [[] for _ in range(n_groups)]
    load = [0] * n_groups
    for k in sorted(range(len(steps)), key=lambda k: (-steps[k], k)):
        g = load.index(min(load))
        groups[g].append(k)
        load[g] += steps[k]
    return [sorted(g) for g in groups if g]


class _Stack:
    """K models of one architecture, their stacked training rows and optimiser state (float32).

    Parameters of layer l live in ``params[l]`` of shape (K, out_l, in_l + 1): the Linear weight with its bias as
    the last column, so each layer is one batched product against inputs that carry a one (a ones column in the
    batch-major inputs, a ones row in the feature-major hidden activations). The output layer is padded to two heads
    of ``cp = max(n_emotion, 2)`` rows (head 0 emotion, head 1 gender) so one softmax covers both; padding rows have
    weight 0 and bias ``_PAD_LOGIT`` and never receive a gradient.
    """

    def __init__(self, data: list[TrainingData], seeds: list[int], arch: Architecture,
                 settings: CorrectorSettings) -> None:
        self.arch, self.settings = arch, settings
        self.cp = max(arch.n_emotion, len(GENDERS))
        self.K, self.B = len(data), settings.batch_size
        self.units = arch.depth * arch.width
        offsets = np.cumsum([0] + [len(d) for d in data])
        rngs = [ModelRandomness(s) for s in seeds]
        streams = [_Stream(len(d), int(o), r, batch_size=self.B, epochs=settings.epochs, n_units=self.units,
                           dropout=settings.dropout) for d, o, r in zip(data, offsets, rngs)]
        # Longest-training models first: at any global step the models still training are a prefix of the stack.
        self.order = sorted(range(self.K), key=lambda k: -streams[k].total_steps)
        self.streams = [streams[k] for k in self.order]
        self.steps = np.array([s.total_steps for s in self.streams])
        self.rows = np.hstack([np.vstack([d.x for d in data]), np.ones((offsets[-1], 1), np.float32)])
        self.emotion = np.concatenate([d.emotion for d in data]).astype(np.int16)
        self.gender = np.concatenate([d.gender for d in data]).astype(np.int16)
        w = settings.gender_weight
        self.head_weight = np.array([1.0 - w, w], dtype=np.float32).reshape(2, 1, 1)
        self.classes = np.arange(self.cp, dtype=np.int16).reshape(self.cp, 1)
        self.params = self._initial_params([initial_weights(arch, rngs[k].init) for k in self.order])
        self.grads = [torch.zeros_like(p) for p in self.params]
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.acts = [torch.ones(self.K, arch.width + 1, self.B) for _ in range(arch.depth)]
        self.h, self.dh, self.gates = ([torch.zeros(self.K, arch.width, self.B) for _ in range(arch.depth)]
                                       for _ in range(3))
        self.z, self.dz = torch.zeros(self.K, 2 * self.cp, self.B), torch.zeros(self.K, 2 * self.cp, self.B)
        self._views: dict[int, _Views] = {}
        per_step = self.K * self.B * (4 * (arch.n_in + 1) + 8 + 4 + 4 * self.units + 2 * (2 + 4 + 4 * self.cp))
        self.chunk = int(max(1, min(2048, _CHUNK_BYTES // per_step)))

    def _initial_params(self, weights: list[Weights]) -> list[torch.Tensor]:
        shapes = self.arch.layer_shapes()
        ne, cp, ng = self.arch.n_emotion, self.cp, len(GENDERS)
        params = []
        for l, (out, inp) in enumerate(shapes):
            last = l == len(shapes) - 1
            p = np.zeros((self.K, 2 * cp if last else out, inp + 1), np.float32)
            for k, wt in enumerate(weights):
                wb = np.hstack([wt.layers[l][0], wt.layers[l][1][:, None]])
                if last:
                    p[k, :ne], p[k, cp:cp + ng] = wb[:ne], wb[ne:]
                else:
                    p[k] = wb
            if last:
                pad = np.ones(2 * cp, bool)
                pad[:ne] = pad[cp:cp + ng] = False
                p[:, pad, inp] = _PAD_LOGIT
            params.append(torch.from_numpy(p))
        return params

    def weights(self) -> list[Weights]:
        """Current weights per model, in the caller's order."""
        out: list[Weights] = [Weights([])] * self.K
        for pos, k in enumerate(self.order):
            out[k] = self._unpack([p[pos].numpy() for p in self.params])
        return out

    def _unpack(self, params: list[np.ndarray]) -> Weights:
        """One model's stacked layers (out, in + 1), the last padded to two heads, as plain (W, b) copies."""
        ne, cp, ng = self.arch.n_emotion, self.cp, len(GENDERS)
        layers = []
        for l, q in enumerate(params):
            if l == len(params) - 1:
                q = np.vstack([q[:ne], q[cp:cp + ng]])
            layers.append((q[:, :-1].copy(), q[:, -1].copy()))
        return Weights(layers)

    def _snapshot_steps(self, epochs: Sequence[int]) -> dict[int, list[tuple[int, int]]]:
        """Global step count -> (stack position, epoch) of each model that completes one of ``epochs`` there."""
        due: dict[int, list[tuple[int, int]]] = {}
        for pos, stream in enumerate(self.streams):
            for epoch in epochs:
                if 0 < epoch < self.settings.epochs:
                    due.setdefault(stream.nb * epoch, []).append((pos, epoch))
        return due

    def _buffers(self, S: int) -> dict[str, np.ndarray]:
        K, B = self.K, self.B
        buf = {"idx": np.zeros((K, S, B), np.int64), "scale": np.zeros((K, S, B), np.float32),
               "x": np.zeros((K, S, B, self.arch.n_in + 1), np.float32),
               "label": np.zeros((K, S, 2, 1, B), np.int16), "coef": np.zeros((K, S, 2, 1, B), np.float32),
               "neg_target": np.zeros((K, S, 2, self.cp, B), np.float32)}
        if self.settings.dropout > 0:
            buf["keep"] = np.zeros((K, S, self.units, B), np.float32)
        return buf

    def prepare(self, start: int, stop: int, buf: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Batches, targets and masks for global steps [start, stop) of the models active at ``start``, written into
        ``buf`` (model-major arrays, (K, S, ...), so each model's steps are contiguous)."""
        k0, S = int((self.steps > start).sum()), stop - start
        idx, scale, keep = buf["idx"][:k0, :S], buf["scale"][:k0, :S], buf.get("keep")
        for k, stream in enumerate(self.streams[:k0]):
            stream.fill(idx[k], scale[k], None if keep is None else keep[k, :S])
        x = np.take(self.rows, idx, axis=0, out=buf["x"][:k0, :S], mode="clip")          # (k0, S, B, n_in + 1)
        label = buf["label"][:k0, :S]                                                      # (k0, S, 2, 1, B)
        np.take(self.emotion, idx, out=label[:, :, 0, 0], mode="clip")
        np.take(self.gender, idx, out=label[:, :, 1, 0], mode="clip")
        coef = np.multiply(scale[:, :, None, None, :], self.head_weight, out=buf["coef"][:k0, :S])
        neg_target = np.equal(label, self.classes, out=buf["neg_target"][:k0, :S])      # one-hot (k0, S, 2, cp, B)
        np.multiply(neg_target, -coef, out=neg_target)
        chunk = {"x": x, "neg_target": neg_target, "coef": coef}
        if keep is not None:
            chunk["keep"] = keep[:k0, :S]                                                  # (k0, S, units, B)
        return {name: torch.from_numpy(a) for name, a in chunk.items()}

    def views(self, k: int) -> "_Views":
        """Views of the state and work buffers restricted to the first ``k`` models (made once per k)."""
        if k not in self._views:
            self._views[k] = _Views(self, k)
        return self._views[k]

    def step(self, v: "_Views", x: torch.Tensor, keep: list[torch.Tensor] | None, neg_target: torch.Tensor,
             coef: torch.Tensor, t: torch.Tensor) -> None:
        """One Adam step of the models in ``v`` on one prepared batch each.

        x : (k, B, n_in + 1) inputs with a ones column; keep : per hidden layer (k, width, B) dropout masks (0 or
        1 / (1 - p)); neg_target : (k, 2, cp, B) minus the one-hot targets times ``coef``; coef : (k, 2, 1, B) head
        weight / rows in the batch (0 for padding rows); t : the step number, already advanced.
        """
        inputs = x.transpose(1, 2)                                          # feature-major (k, n_in + 1, B)
        for l in range(self.arch.depth):
            torch.bmm(v.params[l], inputs, out=v.h[l])                      # (k, width, B)
            torch.gt(v.h[l], 0.0, out=v.gates[l])                           # 1. where the ReLU passes, else 0.
            if keep is not None:
                v.gates[l].mul_(keep[l])
            torch.mul(v.h[l], v.gates[l], out=v.hidden[l])                  # rows [:width] of v.acts[l]
            inputs = v.acts[l]
        torch.bmm(v.params[-1], inputs, out=v.z)
        # d loss / dz = coef * (softmax over each head - one-hot target)
        torch.addcmul(neg_target, torch.softmax(v.z_heads, dim=2), coef, out=v.dz_heads)
        d = v.dz
        for l in reversed(range(self.arch.depth + 1)):
            if l < self.arch.depth:
                d = torch.bmm(v.back[l], d, out=v.dh[l]).mul_(v.gates[l])
            torch.bmm(d, x if l == 0 else v.acts_t[l - 1], out=v.grads[l])
        torch._fused_adam_(v.params, v.grads, v.exp_avg, v.exp_avg_sq, [], [t] * len(v.params), lr=self.settings.lr,
                           beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1], weight_decay=0.0, eps=ADAM_EPS, amsgrad=False,
                           maximize=False)

    def train(self, snapshot_epochs: Sequence[int] = (),
              on_snapshot: Callable[[int, list[Weights]], None] | None = None) -> None:
        """Run every model's steps, chunk by chunk.

        For each epoch e in ``snapshot_epochs`` (below the configured epochs), once every model has completed e epochs,
        ``on_snapshot(e, weights after e epochs, in the caller's order)`` is called; whatever it raises stops training.
        """
        total, width = int(self.steps[0]), self.arch.width
        t, one = torch.zeros((), dtype=torch.float32), torch.ones((), dtype=torch.float32)
        buffers = self._buffers(min(self.chunk, total))
        due = self._snapshot_steps(snapshot_epochs) if on_snapshot is not None else {}
        taken: dict[int, dict[int, list[np.ndarray]]] = {}
        with torch.no_grad(), _flush_denormals():
            for start in range(0, total, self.chunk):
                stop = min(start + self.chunk, total)
                chunk = self.prepare(start, stop, buffers)
                active = (self.steps[None, :] > np.arange(start, stop)[:, None]).sum(axis=1)
                xs, neg_targets, coefs = (chunk[n].unbind(1) for n in ("x", "neg_target", "coef"))
                keeps = None
                if "keep" in chunk:
                    keeps = [chunk["keep"][:, :, l * width:(l + 1) * width].unbind(1) for l in range(self.arch.depth)]
                k0 = len(xs[0])
                for c in range(stop - start):
                    k = int(active[c])
                    sub = slice(None) if k == k0 else slice(0, k)
                    t.add_(one)
                    self.step(self.views(k), xs[c][sub], None if keeps is None else [kp[c][sub] for kp in keeps],
                              neg_targets[c][sub], coefs[c][sub], t)
                    if start + c + 1 in due:
                        self._take_snapshots(due.pop(start + c + 1), taken, on_snapshot)

    def _take_snapshots(self, models: list[tuple[int, int]], taken: dict[int, dict[int, list[np.ndarray]]],
                        on_snapshot: Callable[[int, list[Weights]], None]) -> None:
        """Copy the weights of the models that just completed an epoch; hand an epoch over once all K have it."""
        for pos, epoch in models:
            taken.setdefault(epoch, {})[pos] = [p[pos].numpy().copy() for p in self.params]
            if len(taken[epoch]) == self.K:
                snapshot = taken.pop(epoch)
                out: list[Weights] = [Weights([])] * self.K
                for stack_pos, k in enumerate(self.order):
                    out[k] = self._unpack(snapshot[stack_pos])
                on_snapshot(epoch, out)


class _Views:
    """The first ``k`` models' slices of a stack's parameters, optimiser state and work buffers."""

    def __init__(self, stack: _Stack, k: int) -> None:
        width = stack.arch.width
        self.params = [p[:k] for p in stack.params]
        self.grads = [g[:k] for g in stack.grads]
        self.exp_avg = [m[:k] for m in stack.exp_avg]
        self.exp_avg_sq = [m[:k] for m in stack.exp_avg_sq]
        self.back = [p[:k, :, :width].transpose(1, 2) for p in stack.params[1:]]   # W^T without the bias column
        self.h = [b[:k] for b in stack.h]
        self.dh = [b[:k] for b in stack.dh]
        self.gates = [g[:k] for g in stack.gates]
        self.acts = [a[:k] for a in stack.acts]                 # (k, width + 1, B), last row ones
        self.hidden = [a[:, :width] for a in self.acts]
        self.acts_t = [a.transpose(1, 2) for a in self.acts]    # (k, B, width + 1)
        self.z = stack.z[:k]
        self.z_heads = self.z.view(k, 2, stack.cp, stack.B)
        self.dz = stack.dz[:k]
        self.dz_heads = self.dz.view(k, 2, stack.cp, stack.B)


def _train_group(data: list[TrainingData], seeds: list[int], arch: Architecture, settings: CorrectorSettings,
                 snapshot_epochs: Sequence[int] = (),
                 on_snapshot: Callable[[int, list[Weights]], None] | None = None) -> list[Weights]:
    """Train one stack (in this process, with single-threaded torch ops)."""
    with _intraop_threads(1):
        stack = _Stack(data, seeds, arch, settings)
        stack.train(snapshot_epochs, on_snapshot)
        return stack.weights()


def _train_groups(groups: list[list[int]], data: list[TrainingData], seeds: list[int], arch: Architecture,
                  settings: CorrectorSettings) -> list[list[Weights]]:
    """Train each group of models in its own process, the last group in this one.

    Worker processes come from a fork server (a clean, single-threaded process that has imported this module), never
    from a fork of this process, whose thread pools and locks a child would inherit in an unknown state. As with any
    multiprocessing, a script that calls this must guard its entry point with ``if __name__ == "__main__":``.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    with (ProcessPoolExecutor(max_workers=len(groups) - 1, mp_context=ctx, initializer=ignore_interrupts) as pool,
          stop_workers_on_error(pool)):
        futures = [pool.submit(_train_group, [data[k] for k in g], [seeds[k] for k in g], arch, settings)
                   for g in groups[:-1]]
        last = groups[-1]
        mine = _train_group([data[k] for k in last], [seeds[k] for k in last], arch, settings)
        return [f.result() for f in futures] + [mine]


def train_many(data: list[TrainingData], seeds: list[int], *, arch: Architecture, settings: CorrectorSettings,
               workers: int | None = None, snapshot_epochs: Sequence[int] = (),
               on_snapshot: Callable[[int, list[Weights]], None] | None = None) -> list[Weights]:
    """Train one network per (training rows, seed) pair; returns the weights in input order.

    The models are split into ``workers`` stacks of similar work, each trained by one vectorised loop with
    single-threaded torch ops in its own process. ``workers=None`` uses one per available core when the work is
    large enough to repay starting processes (:data:`PARALLEL_MIN_STEPS` model-steps), else one. Results do not depend
    on the split.

    ``on_snapshot(e, weights)`` is called for each epoch e of ``snapshot_epochs`` below ``settings.epochs`` with every
    model's weights after e epochs (input order); an exception it raises stops training (how a pruned trial stops).
    Snapshots need the models in this process, so they train as one stack here.
    """
    assert len(data) == len(seeds)
    if not data:
        return []
    steps = [n_batches(len(d), settings.batch_size) * settings.epochs for d in data]
    if workers is None:
        workers = default_workers() if sum(steps) >= PARALLEL_MIN_STEPS else 1
    if "forkserver" not in multiprocessing.get_all_start_methods() or on_snapshot is not None:
        workers = 1   # no fork server (e.g. Windows): same results, one core; snapshots: see above
    groups = _balanced_groups(steps, max(1, min(workers, len(data))))
    if len(groups) == 1:
        trained = [_train_group(data, seeds, arch, settings, snapshot_epochs, on_snapshot)]
    else:
        trained = _train_groups(groups, data, seeds, arch, settings)
    out: list[Weights] = [Weights([])] * len(data)
    for g, weights in zip(groups, trained):
        for k, w in zip(g, weights):
            out[k] = w
    return out


class Corrector(Method):
    """The paper's correction network (``train.corrector``); all tasks of a split are trained by one ``train_many``."""

    name = "corrector"
    stochastic = True

    def __init__(self, settings: CorrectorSettings) -> None:
        self.settings = settings
        self.fitted: list[Weights] = []

    def run(self, tasks: list[FitTask], *, snapshot_epochs: Sequence[int] = (),
            on_snapshot: Callable[[int, list[dict[str, Probabilities]]], None] | None = None,
            ) -> list[dict[str, Probabilities]]:
        """Train one network per task and predict its evaluation tables.

        ``on_snapshot(e, results)``: for each epoch e of ``snapshot_epochs`` below the configured epochs, the tasks'
        predictions by the networks after e epochs (the tuning objective prunes with them; what it raises stops
        training).
        """
        if not tasks:
            return []
        n_emotion = len(tasks[0].train.emotion_classes)
        arch = Architecture(n_emotion, self.settings.depth, self.settings.width)
        data = [TrainingData.from_table(t.train, input=self.settings.input) for t in tasks]

        def predict_all(weights: list[Weights]) -> list[dict[str, Probabilities]]:
            return [{part: Probabilities(*predict(w, features(table, input=self.settings.input), n_emotion=n_emotion))
                     for part, table in task.evaluate.items()} for task, w in zip(tasks, weights)]

        relay = None if on_snapshot is None else (lambda epoch, weights: on_snapshot(epoch, predict_all(weights)))
        self.fitted = train_many(data, [t.seed for t in tasks], arch=arch, settings=self.settings,
                                 snapshot_epochs=snapshot_epochs, on_snapshot=relay)
        return predict_all(self.fitted)

    def fitted_arrays(self) -> list[dict[str, np.ndarray]]:
        return [{f"layer{l}.{name}": arr for l, (w, b) in enumerate(weights.layers)
                 for name, arr in (("weight", w), ("bias", b))} for weights in self.fitted]


class TunedCorrector(Corrector):
    """The corrector with the configuration a study chose for split ``tuned_for`` (``corrector_tuned``), run on that
    split only. The study scored configurations by CV inside the split's training dataset: a split that tests on that
    dataset would report on the data that chose the configuration (optimistic), and another transfer is not what it
    was tuned for."""

    name = "corrector_tuned"

    def __init__(self, settings: CorrectorSettings, *, tuned_for: str) -> None:
        super().__init__(settings)
        self.tuned_for = tuned_for

    def skip_reason(self, split: str) -> str | None:
        if split == self.tuned_for:
            return None
        seen = " and this split tests on it" if test_dataset(split) == CROSS_DATASET_SPLITS[self.tuned_for][0] else ""
        return f"its configuration was tuned for {self.tuned_for} by CV inside {CROSS_DATASET_SPLITS[self.tuned_for][0]}{seen}"
