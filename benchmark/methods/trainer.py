"""The vectorised trainer: many independent copies of the correction network fitted in one loop, on the CPU or a
CUDA device.

:func:`train_many` follows the randomness contract of :mod:`benchmark.methods.network` for each of K models: stacked
weights, a hand-written forward and backward pass with batched matrix products (every kernel covers all K models),
one fused Adam call per step, batches and dropout masks prepared per model ahead of time in chunks
(:mod:`benchmark.methods.minibatches`), models of different training-set sizes handled by sorting them by their number of
steps and stepping only the prefix still training. On the CPU the stack is split across one worker process per core;
on CUDA all K models are one stack in this process. A model's result does not depend on which other models share its
stack or its worker on the CPU, nor on its number of epochs: its weights after epoch e of a longer run are those of a
run of e epochs (the snapshots that pruning reads, :func:`train_many`'s ``snapshot_epochs``). On CUDA a model's
result matches the CPU's to float32 rounding (the products sum in another order; docs/ARCHITECTURE.md), and a rerun
on the same device gives the same bits (both tested when torch sees a GPU).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing, contextmanager

import numpy as np
import torch

from benchmark.core.settings import CorrectorSettings
from benchmark.infra import cpu_pin
from benchmark.infra.processes import available_cores, ignore_interrupts, stop_workers_on_error
from benchmark.methods import fork_server
from benchmark.methods.minibatches import BatchShape, DeviceBatches, HostBatches, ModelSteps, StackRows
from benchmark.methods.network import (
    ADAM_BETAS,
    ADAM_EPS,
    Architecture,
    ModelRandomness,
    TrainingData,
    Weights,
    initial_weights,
    n_batches,
)

#: logit given to the padding classes of the shorter head (weight 0, so softmax gives them probability 0)
_PAD_LOGIT = -1e30
#: total training steps (models x steps each) from which ``train_many`` uses one process per core by default
PARALLEL_MIN_STEPS = 200_000
CPU = torch.device("cpu")


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
    return len(available_cores())


def _balanced_groups(steps: list[int], n_groups: int) -> list[list[int]]:
    """Split model indices into ``n_groups`` groups of similar total steps (longest first to the lightest group)."""
    groups: list[list[int]] = [[] for _ in range(n_groups)]
    load = [0] * n_groups
    for k in sorted(range(len(steps)), key=lambda k: (-steps[k], k)):
        g = load.index(min(load))
        groups[g].append(k)
        load[g] += steps[k]
    return [sorted(g) for g in groups if g]


@contextmanager
def _ieee_float32(device: torch.device) -> Iterator[None]:
    """Matrix products in IEEE float32 on CUDA (TF32 off) while training, whatever the process set before; the legacy
    flag, as :func:`benchmark.frozen.extract.precision_mode` uses (mixing it with the newer fp32_precision API makes
    later reads of either raise)."""
    if device.type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    saved, matmul.allow_tf32 = matmul.allow_tf32, False
    try:
        yield
    finally:
        matmul.allow_tf32 = saved


class _Stack:
    """K models of one architecture, their optimiser state and work buffers (float32) on ``device``.

    Parameters of layer l live in ``params[l]`` of shape (K, out_l, in_l + 1): the Linear weight with its bias as
    the last column, so each layer is one batched product against inputs that carry a one (a ones column in the
    batch-major inputs, a ones row in the feature-major hidden activations). The output layer is padded to two heads
    of ``cp = max(n_emotion, n_groups)`` rows (head 0 emotion, head 1 the attribute) so one softmax covers both;
    padding rows have weight 0 and bias ``_PAD_LOGIT`` and never receive a gradient. Batches come from
    :class:`~benchmark.methods.minibatches.HostBatches` or, with ``device_batches``,
    :class:`~benchmark.methods.minibatches.DeviceBatches`.
    """

    def __init__(self, data: list[TrainingData], seeds: list[int], arch: Architecture,
                 settings: CorrectorSettings, *, device: torch.device = CPU, device_batches: bool = False) -> None:
        self.arch, self.settings, self.device = arch, settings, device
        self.cp = max(arch.n_emotion, arch.n_groups)
        self.K, self.B = len(data), settings.batch_size
        self.units = arch.depth * arch.width
        offsets = np.cumsum([0] + [len(d) for d in data])
        rngs = [ModelRandomness(s) for s in seeds]
        streams = [ModelSteps(len(d), int(o), r, batch_size=self.B, epochs=settings.epochs, n_units=self.units,
                              dropout=settings.dropout) for d, o, r in zip(data, offsets, rngs)]
        # Longest-training models first: at any global step the models still training are a prefix of the stack.
        self.order = sorted(range(self.K), key=lambda k: -streams[k].total_steps)
        self.streams = [streams[k] for k in self.order]
        self.steps = np.array([s.total_steps for s in self.streams])
        rows = StackRows(np.hstack([np.vstack([d.x for d in data]), np.ones((offsets[-1], 1), np.float32)]),
                         np.concatenate([d.emotion for d in data]).astype(np.int16),
                         np.concatenate([d.attribute for d in data]).astype(np.int16))
        shape = BatchShape(self.B, self.units, self.cp, settings.attribute_weight, settings.dropout)
        self.batches = (DeviceBatches(self.streams, self.steps, rows, shape, device=device, threads=default_workers())
                        if device_batches else HostBatches(self.streams, self.steps, rows, shape))
        self.params = self._initial_params([initial_weights(arch, rngs[k].init) for k in self.order])
        self.grads = [torch.zeros_like(p) for p in self.params]
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.acts = [torch.ones(self.K, arch.width + 1, self.B, device=device) for _ in range(arch.depth)]
        self.h, self.dh, self.gates = ([torch.zeros(self.K, arch.width, self.B, device=device)
                                        for _ in range(arch.depth)] for _ in range(3))
        self.z = torch.zeros(self.K, 2 * self.cp, self.B, device=device)
        self.dz = torch.zeros(self.K, 2 * self.cp, self.B, device=device)
        self._views: dict[int, _Views] = {}

    def _initial_params(self, weights: list[Weights]) -> list[torch.Tensor]:
        shapes = self.arch.layer_shapes()
        ne, cp, ng = self.arch.n_emotion, self.cp, self.arch.n_groups
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
            params.append(torch.from_numpy(p).to(self.device))
        return params

    def weights(self) -> list[Weights]:
        """Current weights per model, in the caller's order."""
        host = [p.cpu().numpy() for p in self.params]
        out: list[Weights] = [Weights([])] * self.K
        for pos, k in enumerate(self.order):
            out[k] = self._unpack([p[pos] for p in host])
        return out

    def _unpack(self, params: list[np.ndarray]) -> Weights:
        """One model's stacked layers (out, in + 1), the last padded to two heads, as plain (W, b) copies."""
        ne, cp, ng = self.arch.n_emotion, self.cp, self.arch.n_groups
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

    def views(self, k: int) -> _Views:
        """Views of the state and work buffers restricted to the first ``k`` models (made once per k)."""
        if k not in self._views:
            self._views[k] = _Views(self, k)
        return self._views[k]

    def step(self, v: _Views, x: torch.Tensor, keep: list[torch.Tensor] | None, neg_target: torch.Tensor,
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
        total, width, chunk_steps = int(self.steps[0]), self.arch.width, self.batches.chunk
        t = torch.zeros((), dtype=torch.float32, device=self.device)
        one = torch.ones((), dtype=torch.float32, device=self.device)
        due = self._snapshot_steps(snapshot_epochs) if on_snapshot is not None else {}
        taken: dict[int, dict[int, list[np.ndarray]]] = {}
        ranges = [(start, min(start + chunk_steps, total)) for start in range(0, total, chunk_steps)]
        with torch.no_grad(), _flush_denormals(), _ieee_float32(self.device), \
                closing(self.batches.chunks(ranges)) as chunks:
            for (start, stop), chunk in zip(ranges, chunks):
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
        positions = [pos for pos, _ in models]
        copies = [p[positions].cpu().numpy() for p in self.params]   # one copy per layer, (len(models), out, in + 1)
        for i, (pos, epoch) in enumerate(models):
            taken.setdefault(epoch, {})[pos] = [c[i] for c in copies]
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
                 on_snapshot: Callable[[int, list[Weights]], None] | None = None, *, device: torch.device = CPU,
                 device_batches: bool = False) -> list[Weights]:
    """Train one stack in this process (torch's CPU ops single-threaded)."""
    with _intraop_threads(1):
        stack = _Stack(data, seeds, arch, settings, device=device, device_batches=device_batches)
        stack.train(snapshot_epochs, on_snapshot)
        return stack.weights()


def _train_groups(groups: list[list[int]], data: list[TrainingData], seeds: list[int], arch: Architecture,
                  settings: CorrectorSettings) -> list[list[Weights]]:
    """Train each group of models in its own process, the last group in this one (the CPU trainer).

    Worker processes come from a fork server (a clean, single-threaded process that has imported this module), never
    from a fork of this process, whose thread pools and locks a child would inherit in an unknown state. As with any
    multiprocessing, a script that calls this must guard its entry point with ``if __name__ == "__main__":``.
    """
    with (ProcessPoolExecutor(max_workers=len(groups) - 1, mp_context=fork_server.context(),
                              initializer=ignore_interrupts) as pool,
          stop_workers_on_error(pool)):
        futures = [pool.submit(_train_group, [data[k] for k in g], [seeds[k] for k in g], arch, settings)
                   for g in groups[:-1]]
        last = groups[-1]
        mine = _train_group([data[k] for k in last], [seeds[k] for k in last], arch, settings)
        return [f.result() for f in futures] + [mine]


def train_many(data: list[TrainingData], seeds: list[int], *, arch: Architecture, settings: CorrectorSettings,
               device: torch.device = CPU, workers: int | None = None, snapshot_epochs: Sequence[int] = (),
               on_snapshot: Callable[[int, list[Weights]], None] | None = None,
               device_batches: bool | None = None) -> list[Weights]:
    """Train one network per (training rows, seed) pair on ``device``; returns the weights in input order.

    On the CPU the models are split into ``workers`` stacks of similar work, each trained by one vectorised loop with
    single-threaded torch ops in its own process. ``workers=None`` uses one per available core when the work is
    large enough to repay starting processes (:data:`PARALLEL_MIN_STEPS` model-steps), else one. Results do not depend
    on the split. On CUDA all models are one stack in this process (``workers`` is not used).

    ``device_batches``: build batches, masks and targets with :class:`~benchmark.methods.minibatches.DeviceBatches`
    (default: on any device but the CPU). True on the CPU runs the CUDA path's batch building there, in one stack;
    its weights are the host builder's bit for bit.

    ``on_snapshot(e, weights)`` is called for each epoch e of ``snapshot_epochs`` below ``settings.epochs`` with every
    model's weights after e epochs (input order); an exception it raises stops training (how a pruned trial stops).
    Snapshots need the models in this process, so they train as one stack here.
    """
    assert len(data) == len(seeds)
    if not data:
        return []
    on_device = device.type != "cpu" if device_batches is None else device_batches
    if device.type == "cpu":
        cpu_pin.warn_unless_in_force()
    if device.type != "cpu" or on_device:
        return _train_group(data, seeds, arch, settings, snapshot_epochs, on_snapshot, device=device,
                            device_batches=on_device)
    steps = [n_batches(len(d), settings.batch_size) * settings.epochs for d in data]
    if workers is None:
        workers = default_workers() if sum(steps) >= PARALLEL_MIN_STEPS else 1
    if not fork_server.available() or on_snapshot is not None:
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
