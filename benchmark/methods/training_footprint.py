"""The host memory a stack of correction networks holds while it trains (for :func:`benchmark.infra.memory.check`,
before the train and tune stages start training). Torch-free, so the tune stage's own process can check its trials.

For K models (folds x seeds) of the corrector's configuration (``depth`` x ``width`` hidden units, batch size B):

- each model's weights with their gradients and Adam's two moments: 4 x P float32, P the parameters
  (:class:`benchmark.methods.network.Architecture`);
- each step's activations, dropout masks and their gradients: about 5 x B x (depth x width) float32, and
  3 x B x outputs for the heads;
- the stack's training rows (each model's own rows: features with a ones column and two int16 labels);
- the prepared batches of one chunk of steps per worker process (:data:`HOST_CHUNK_BYTES`), or one step's when that is
  larger (B rows, masks and targets of every model of the worker).

Measured on FACES' cv:faces (5 folds x 3 seeds, one worker, width 1024, depth 4, batch 4096): the process's peak
grew by 5.9 GiB over the paper network's, against an estimate of 6.4 GiB (docs/PERFORMANCE.md "Memory budgets").

Epochs change the time, not the memory: batches are prepared a chunk of steps at a time, so ``epochs`` has no share.
"""

from __future__ import annotations

from benchmark.core.settings import CorrectorSettings
from benchmark.infra import memory

__all__ = ["HOST_CHUNK_BYTES", "stack_needs"]

#: bytes of prepared batches, masks and targets per chunk on the CPU (bounds memory whatever the stack size)
HOST_CHUNK_BYTES = 96 * 2**20
_FLOAT32 = 4


def _parameters(n_in: int, n_out: int, depth: int, width: int) -> int:
    sizes = [n_in] + [width] * depth + [n_out]
    return sum((sizes[i] + 1) * sizes[i + 1] for i in range(len(sizes) - 1))


def stack_needs(config: CorrectorSettings, *, n_models: int, n_rows: int, n_in: int, n_out: int, workers: int,
                prefix: str = "train.corrector", models_key: str = "train.n_seeds",
                models_value: int | None = None) -> tuple[list[memory.Need], float]:
    """(needs by key, fixed bytes) of ``n_models`` networks of ``config`` training on ``n_rows`` rows each, spread
    over ``workers`` processes. ``prefix`` names the keys of the configuration (``train.corrector`` or, for a
    study's largest trial, ``tune.space``); ``models_key`` the key that multiplies the models (its value
    ``models_value``)."""
    units = config.depth * config.width
    head = max(n_out - 2, 2)  # the padded classes per head
    per_step_row = _FLOAT32 * (5 * units + 3 * n_out) + _FLOAT32 * (n_in + 1 + units + 4 * head)
    parameters = 4 * _FLOAT32 * _parameters(n_in, n_out, config.depth, config.width)
    rows = n_rows * (_FLOAT32 * (n_in + 1) + 4)
    needs = [memory.Need(f"{prefix}.batch_size", config.batch_size, n_models * config.batch_size * per_step_row),
             memory.Need(f"{prefix}.width", config.width, n_models * parameters, linear=False),
             memory.Need(models_key, models_value if models_value is not None else n_models, n_models * rows)]
    return needs, float(workers * HOST_CHUNK_BYTES)
