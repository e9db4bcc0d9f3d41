"""The vectorised trainer's inputs: each model's training steps, and the arrays a chunk of steps consumes.

For a chunk of global steps [start, stop) and the k models still training at ``start`` (a prefix of the stack), the
arrays are model-major, so each model's steps are contiguous:

- ``x`` (k, S, B, n_in + 1) float32: each batch's rows with a ones column;
- ``coef`` (k, S, 2, 1, B) float32: the head's loss weight (1 - w for emotion, w for the attribute) / rows in the
  batch, 0 for the padding of a short last batch;
- ``neg_target`` (k, S, 2, cp, B) float32: minus the one-hot targets of both heads, times ``coef``;
- ``keep`` (k, S, depth * width, B) float32, only with dropout: 1 / (1 - p) where a unit is kept, 0 where dropped.

Two builders make the same arrays from the same draws of the randomness contract (:mod:`benchmark.methods.network`).
:class:`HostBatches`, the CPU trainer's, builds them in numpy. :class:`DeviceBatches` (CUDA) draws on the host only
what the contract draws from each model's numpy streams (the permutations and the 16-bit dropout values, models spread
over threads), copies them to the device in large chunks and builds the gathers, masks and targets there; the host
fills the next chunk while the device runs this one. Run on the CPU it gives the host builder's arrays bit for bit
(tested), so both devices run one computation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from benchmark.methods.network import ModelRandomness, dropout_values, keep_threshold, n_batches
from benchmark.methods.training_footprint import HOST_CHUNK_BYTES

#: the same for :class:`DeviceBatches` (on CUDA the device's buffers; pinned host memory holds about a third of it,
#: twice)
DEVICE_CHUNK_BYTES = 2**30
#: most steps in one chunk
MAX_CHUNK_STEPS = 2048


@dataclass(frozen=True)
class StackRows:
    """The training rows of every model of a stack, one after the other: ``x`` (N, n_in + 1) float32 features with a
    ones column, ``emotion`` and ``attribute`` (N,) int16 class indices."""

    x: np.ndarray
    emotion: np.ndarray
    attribute: np.ndarray


@dataclass(frozen=True)
class BatchShape:
    """What the arrays of one step look like: ``batch_size`` rows, ``n_units`` dropout units per row (depth * width),
    ``classes_per_head`` (cp: the output layer's two heads padded to one size), the attribute head's loss weight w and
    the dropout probability p."""

    batch_size: int
    n_units: int
    classes_per_head: int
    attribute_weight: float
    dropout: float

    @property
    def head_weight(self) -> np.ndarray:
        """(2, 1, 1) float32: 1 - w for the emotion head, w for the attribute head."""
        w = self.attribute_weight
        return np.array([1.0 - w, w], dtype=np.float32).reshape(2, 1, 1)

    @property
    def keep_scale(self) -> np.float32:
        """The value of a kept unit's mask, 1 / (1 - p) (as ``torch.nn.Dropout``)."""
        return np.float32(1.0 / (1.0 - self.dropout))


class ModelSteps:
    """One model's training steps in order: global row indices, per-row loss scale and dropout draws.

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

    def fill(self, idx: np.ndarray, scale: np.ndarray, *, keep: np.ndarray | None = None,
             values: np.ndarray | None = None) -> None:
        """Write the next ``len(idx)`` steps: idx (S, B) row indices, scale (S, B) float32 (1 / rows of the batch, 0
        for padding) and, with dropout, either ``keep`` (S, units, B) float32 masks (1 / (1 - p) kept, 0 dropped) or
        the raw ``values`` (S, units, B) uint16 they come from.

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
            elif values is not None:
                values[done:done + m] = epoch_values[self.pos:self.pos + m]
            self.pos += m
            done += m


def chunk_steps(n_models: int, shape: BatchShape, n_in: int, budget: int) -> int:
    """Steps per chunk so that one chunk's arrays take about ``budget`` bytes (at least 1, at most
    :data:`MAX_CHUNK_STEPS`)."""
    row = 4 * (n_in + 1) + 8 + 4 + 4 * shape.n_units + 2 * (2 + 4 + 4 * shape.classes_per_head)
    return int(max(1, min(MAX_CHUNK_STEPS, budget // (n_models * shape.batch_size * row))))


def _active(steps: np.ndarray, start: int) -> int:
    """Models still training at global step ``start`` (``steps`` is sorted longest first)."""
    return int((steps > start).sum())


class HostBatches:
    """Chunks built in numpy on the host, into buffers reused from chunk to chunk (the CPU trainer)."""

    def __init__(self, streams: Sequence[ModelSteps], steps: np.ndarray, rows: StackRows, shape: BatchShape) -> None:
        self.streams, self.steps, self.rows, self.shape = streams, steps, rows, shape
        self.classes = np.arange(shape.classes_per_head, dtype=np.int16).reshape(-1, 1)
        self.head_weight = shape.head_weight
        self.chunk = chunk_steps(len(streams), shape, rows.x.shape[1] - 1, HOST_CHUNK_BYTES)
        self.buffers = self._buffers(min(self.chunk, int(steps[0])))

    def _buffers(self, S: int) -> dict[str, np.ndarray]:
        K, B, cp = len(self.streams), self.shape.batch_size, self.shape.classes_per_head
        buf = {"idx": np.zeros((K, S, B), np.int64), "scale": np.zeros((K, S, B), np.float32),
               "x": np.zeros((K, S, B, self.rows.x.shape[1]), np.float32),
               "label": np.zeros((K, S, 2, 1, B), np.int16), "coef": np.zeros((K, S, 2, 1, B), np.float32),
               "neg_target": np.zeros((K, S, 2, cp, B), np.float32)}
        if self.shape.dropout > 0:
            buf["keep"] = np.zeros((K, S, self.shape.n_units, B), np.float32)
        return buf

    def chunks(self, ranges: Sequence[tuple[int, int]]) -> Iterator[dict[str, torch.Tensor]]:
        """The arrays of each range of global steps, in order (each valid until the next is asked for)."""
        for start, stop in ranges:
            yield self.prepare(start, stop)

    def prepare(self, start: int, stop: int) -> dict[str, torch.Tensor]:
        """Batches, targets and masks for global steps [start, stop) of the models active at ``start``."""
        buf = self.buffers
        k0, S = _active(self.steps, start), stop - start
        idx, scale, keep = buf["idx"][:k0, :S], buf["scale"][:k0, :S], buf.get("keep")
        for k, stream in enumerate(self.streams[:k0]):
            stream.fill(idx[k], scale[k], keep=None if keep is None else keep[k, :S])
        x = np.take(self.rows.x, idx, axis=0, out=buf["x"][:k0, :S], mode="clip")        # (k0, S, B, n_in + 1)
        label = buf["label"][:k0, :S]                                                      # (k0, S, 2, 1, B)
        np.take(self.rows.emotion, idx, out=label[:, :, 0, 0], mode="clip")
        np.take(self.rows.attribute, idx, out=label[:, :, 1, 0], mode="clip")
        coef = np.multiply(scale[:, :, None, None, :], self.head_weight, out=buf["coef"][:k0, :S])
        neg_target = np.equal(label, self.classes, out=buf["neg_target"][:k0, :S])      # one-hot (k0, S, 2, cp, B)
        np.multiply(neg_target, -coef, out=neg_target)
        chunk = {"x": x, "neg_target": neg_target, "coef": coef}
        if keep is not None:
            chunk["keep"] = keep[:k0, :S]                                                  # (k0, S, units, B)
        return {name: torch.from_numpy(a) for name, a in chunk.items()}


class DeviceBatches:
    """Chunks built on ``device`` from the contract's host draws (see the module docstring).

    The host fills one of two staging slots (pinned memory on CUDA) in ``threads`` threads, each filling a group of
    models (numpy's generators release the GIL); a side stream copies the slot to the device while the compute stream
    still runs the previous chunk's steps; the compute stream then gathers rows and labels and thresholds the dropout
    values. The host starts filling the next chunk into the other slot as soon as this one is handed out. Only
    ``x``, ``coef``, ``neg_target`` and ``keep`` (see the module docstring) live beyond a chunk.
    """

    def __init__(self, streams: Sequence[ModelSteps], steps: np.ndarray, rows: StackRows, shape: BatchShape, *,
                 device: torch.device, threads: int) -> None:
        self.streams, self.steps, self.shape, self.device = streams, steps, shape, device
        self.cuda = device.type == "cuda"
        self.threads = max(1, min(threads, len(streams)))
        n_in = rows.x.shape[1] - 1
        self.chunk = chunk_steps(len(streams), shape, n_in, DEVICE_CHUNK_BYTES)
        K, S, B, units, cp = len(streams), min(self.chunk, int(steps[0])), shape.batch_size, shape.n_units, \
            shape.classes_per_head
        drawn = {"idx": ((K, S, B), torch.int32), "scale": ((K, S, B), torch.float32)}
        if shape.dropout > 0:
            drawn["values"] = ((K, S, units, B), torch.int16)   # uint16 draws, stored as their bit pattern
        # zeros: a model's entries past its last step are never written, and must still be valid row indices
        self.slots = [{name: torch.zeros(size, dtype=dtype, pin_memory=self.cuda)
                       for name, (size, dtype) in drawn.items()} for _ in range(2)]
        self.slot_arrays = [{name: t.numpy().view(np.uint16) if name == "values" else t.numpy()
                             for name, t in slot.items()} for slot in self.slots]
        self.staged = {name: torch.empty(size, dtype=dtype, device=device) for name, (size, dtype) in drawn.items()}
        self.rows = torch.from_numpy(rows.x).to(device)                                              # (N, n_in + 1)
        self.labels = torch.from_numpy(np.stack([rows.emotion, rows.attribute], axis=1)).to(device)  # (N, 2) int16
        self.classes = torch.arange(cp, dtype=torch.int16, device=device).reshape(cp, 1)
        self.head_weight = torch.from_numpy(shape.head_weight).to(device)
        self.keep_scale = torch.tensor(shape.keep_scale, device=device)
        self.threshold = int(keep_threshold(shape.dropout))
        self.out = {"x": torch.empty((K, S, B, n_in + 1), device=device),
                    "coef": torch.empty((K, S, 2, 1, B), device=device),
                    "neg_target": torch.empty((K, S, 2, cp, B), device=device)}
        if shape.dropout > 0:
            self.out["keep"] = torch.empty((K, S, units, B), device=device)
        if self.cuda:
            self.copy_stream = torch.cuda.Stream(device)
            self.copied = [torch.cuda.Event(), torch.cuda.Event()]   # a slot's copy to the device has finished
            self.consumed = torch.cuda.Event()                       # the last build has read ``staged``

    def chunks(self, ranges: Sequence[tuple[int, int]]) -> Iterator[dict[str, torch.Tensor]]:
        """The arrays of each range of global steps, in order (each valid until the next is asked for). Each model's
        draws are taken in order: a chunk's fill starts after the previous chunk's has finished."""
        if not ranges:
            return
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="batches") as pool:
            pending = self._fill(pool, ranges[0], slot=0)
            for i, (start, stop) in enumerate(ranges):
                slot = i % 2
                for future in pending:
                    future.result()
                chunk = self._build(start, stop, slot)
                if i + 1 < len(ranges):
                    if self.cuda:
                        self.copied[1 - slot].synchronize()   # the other slot's last copy has left it
                    pending = self._fill(pool, ranges[i + 1], slot=1 - slot)
                yield chunk

    def _fill(self, pool: ThreadPoolExecutor, steps: tuple[int, int], *, slot: int) -> list[Future]:
        """Start drawing global steps [start, stop) of the models active at ``start`` into staging ``slot``."""
        start, stop = steps
        k0, S = _active(self.steps, start), stop - start
        arrays = self.slot_arrays[slot]
        values = arrays.get("values")

        def fill(models: np.ndarray) -> None:
            for k in models:
                self.streams[k].fill(arrays["idx"][k, :S], arrays["scale"][k, :S],
                                     values=None if values is None else values[k, :S])

        return [pool.submit(fill, group) for group in np.array_split(np.arange(k0), min(self.threads, k0))]

    def _copy_to_device(self, k0: int, S: int, slot: int) -> None:
        """Staging ``slot``'s first k0 models and S steps -> ``self.staged`` (on CUDA: on the side stream, after the
        previous build has read it; the compute stream waits for the copy)."""
        if not self.cuda:
            for name, t in self.slots[slot].items():
                self.staged[name][:k0, :S].copy_(t[:k0, :S])
            return
        self.copy_stream.wait_event(self.consumed)
        with torch.cuda.stream(self.copy_stream):
            for name, t in self.slots[slot].items():
                self.staged[name][:k0, :S].copy_(t[:k0, :S], non_blocking=True)
            self.copied[slot].record(self.copy_stream)
        torch.cuda.current_stream(self.device).wait_event(self.copied[slot])

    def _build(self, start: int, stop: int, slot: int) -> dict[str, torch.Tensor]:
        k0, S, B = _active(self.steps, start), stop - start, self.shape.batch_size
        self._copy_to_device(k0, S, slot)
        flat = self.staged["idx"][:k0, :S].reshape(-1)                                   # (k0 * S * B,) rows
        x = self.out["x"][:k0, :S]
        x.copy_(self.rows.index_select(0, flat).view(x.shape))                           # (k0, S, B, n_in + 1)
        coef = torch.mul(self.staged["scale"][:k0, :S, None, None, :], self.head_weight,
                         out=self.out["coef"][:k0, :S])                                   # (k0, S, 2, 1, B)
        labels = self.labels.index_select(0, flat).view(k0, S, B, 2).permute(0, 1, 3, 2).unsqueeze(3)
        neg_target = torch.mul(torch.eq(labels, self.classes), coef.neg(),
                               out=self.out["neg_target"][:k0, :S])                       # (k0, S, 2, cp, B)
        chunk = {"x": x, "neg_target": neg_target, "coef": coef}
        if "keep" in self.out:
            values = self.staged["values"][:k0, :S].to(torch.int32).bitwise_and_(0xFFFF)  # the uint16 draws
            chunk["keep"] = torch.mul(torch.ge(values, self.threshold), self.keep_scale,
                                      out=self.out["keep"][:k0, :S])                       # (k0, S, units, B)
        if self.cuda:
            self.consumed.record()
        return chunk
