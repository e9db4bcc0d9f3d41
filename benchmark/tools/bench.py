"""``benchmark bench``: the reference training loop, the vectorised trainer on the CPU and, with ``device`` cuda, the
same trainer on the GPU, side by side in one run.

All train the paper's configuration (``CorrectorSettings()`` defaults: 10-24-24-10, dropout 0.2, Adam 1e-3, batch
32, 500 epochs) on the same FACES-sized table (2,052 rows of synthetic outputs; timing does not depend on the
values). The reference trains ``reference_models`` networks one after the other (seeds 0, 1, ...), as the authors'
loop does, with torch's default threads; the vectorised trainer trains ``models`` networks (seeds 0 .. models - 1)
at once, one worker process per core; on CUDA it trains the same ``models`` networks as one stack on the GPU. Each is
warmed up first (imports, first allocations, starting the worker processes or the CUDA context; that start is reported
separately, it happens once per process). Seed 0 is trained by the reference and the CPU trainer, and every seed by
both devices, so the run also reports how far apart their predictions are. Times depend on what else the machine runs:
the 1-minute load average before and after is recorded with them.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from benchmark.core.labels import EMONET_EMOTIONS, GENDERS
from benchmark.core.settings import CorrectorSettings
from benchmark.methods.device import device_label, resolve_device
from benchmark.methods.network import Architecture, TrainingData, Weights, predict
from benchmark.methods.reference import train_reference
from benchmark.methods.trainer import default_workers, train_many

FACES_ROWS = 2052


@dataclass(frozen=True)
class BenchResult:
    """Timings (seconds) and agreement of one bench run."""

    rows: int
    epochs: int
    reference_models: int
    reference_seconds: list[float]
    reference_seconds_per_model: float | None       # None without reference models
    models: int
    workers: int
    worker_start_seconds: float                      # first start of the worker processes (once per process)
    vectorised_seconds: float
    vectorised_seconds_per_model: float
    models_per_second: float                         # the vectorised trainer on the CPU
    speedup: float | None
    max_probability_difference: float | None
    argmax_agreement: float | None
    device: str                                      # cpu, or cuda (<GPU name>)
    device_start_seconds: float | None               # first CUDA work of the process: context, libraries
    device_seconds: float | None                     # the same ``models`` networks trained on the device
    device_models_per_second: float | None
    device_vs_cpu: float | None                      # device models/s over CPU models/s
    device_max_probability_difference: float | None  # over every model and row, device vs CPU weights
    device_argmax_agreement: float | None
    machine: str
    cpus: int
    torch_threads: int
    load_average: list[float] | None                 # 1-minute load average before and after (Unix only)

    def as_dict(self) -> dict:
        return asdict(self)


def synthetic_data(n_rows: int = FACES_ROWS, *, seed: int = 0) -> TrainingData:
    """A FACES-sized training table: EmoNet-like logits (3 on the true class plus noise), FairFace-like gender
    probabilities, balanced labels over 6 of the 8 emotion classes."""
    rng = np.random.default_rng(seed)
    emotion = rng.choice([EMONET_EMOTIONS.index(e) for e in ("neutral", "happy", "sad", "fear", "disgust", "anger")],
                         size=n_rows)
    gender = rng.integers(0, len(GENDERS), size=n_rows)
    logits = rng.normal(size=(n_rows, len(EMONET_EMOTIONS)))
    logits[np.arange(n_rows), emotion] += 3.0
    p_male = 1.0 / (1.0 + np.exp(-(np.where(gender == 0, 2.0, -2.0) + rng.normal(size=n_rows))))
    x = np.hstack([logits, np.stack([p_male, 1.0 - p_male], axis=1)]).astype(np.float32)
    return TrainingData(x, gender.astype(np.int64), emotion.astype(np.int64))


def run_bench(*, models: int = 64, reference_models: int = 1, epochs: int | None = None, rows: int = FACES_ROWS,
              workers: int | None = None, device: str | torch.device = "cpu") -> BenchResult:
    """Time ``reference_models`` reference runs and one vectorised run of ``models`` networks on the CPU and, when
    ``device`` (auto | cpu | cuda) is CUDA, one on the GPU.

    A ``torch.device`` is always run beside the CPU trainer, with the batches built as on CUDA: tests pass the CPU to
    run the GPU path's code.
    """
    settings = CorrectorSettings() if epochs is None else replace(CorrectorSettings(), epochs=epochs)
    accelerator = device if isinstance(device, torch.device) else resolve_device(device, where="--device")
    side_by_side = isinstance(device, torch.device) or accelerator.type != "cpu"
    data = synthetic_data(rows)
    arch = Architecture(len(EMONET_EMOTIONS), settings.depth, settings.width, n_attribute_inputs=len(GENDERS),
                        n_groups=len(GENDERS))
    n_workers = max(1, min(workers or default_workers(), models))
    # warm-up, not timed: first-call imports, and starting the worker processes and CUDA (timed separately)
    warm, one_epoch = TrainingData(data.x[:64], data.attribute[:64], data.emotion[:64]), replace(settings, epochs=1)
    train_reference(warm, 0, arch=arch, settings=one_epoch)
    start = time.perf_counter()
    train_many([warm] * n_workers, list(range(n_workers)), arch=arch, settings=one_epoch, workers=n_workers)
    worker_start = time.perf_counter() - start
    device_start = None
    if side_by_side:
        start = time.perf_counter()
        train_many([warm] * 2, [0, 1], arch=arch, settings=one_epoch, device=accelerator, device_batches=True)
        device_start = time.perf_counter() - start
    load_before = _load_average()

    reference_seconds, reference_weights = [], None
    for seed in range(reference_models):
        start = time.perf_counter()
        weights = train_reference(data, seed, arch=arch, settings=settings)
        reference_seconds.append(time.perf_counter() - start)
        reference_weights = reference_weights or weights

    start = time.perf_counter()
    trained = train_many([data] * models, list(range(models)), arch=arch, settings=settings, workers=n_workers)
    vectorised = time.perf_counter() - start

    on_device = device_seconds = device_diff = device_agreement = None
    if side_by_side:
        start = time.perf_counter()
        on_device = train_many([data] * models, list(range(models)), arch=arch, settings=settings, device=accelerator,
                               device_batches=True)
        device_seconds = time.perf_counter() - start
        device_diff, device_agreement = _agreement(trained, on_device, data, arch)

    max_diff = agreement = per_reference = None
    if reference_weights is not None:
        max_diff, agreement = _agreement([reference_weights], trained[:1], data, arch)
        per_reference = float(np.mean(reference_seconds))
    per_model = vectorised / models
    load_after = _load_average()
    return BenchResult(
        rows=rows, epochs=settings.epochs, reference_models=reference_models, reference_seconds=reference_seconds,
        reference_seconds_per_model=per_reference, models=models, workers=n_workers, worker_start_seconds=worker_start,
        vectorised_seconds=vectorised, vectorised_seconds_per_model=per_model, models_per_second=models / vectorised,
        speedup=None if per_reference is None else per_reference / per_model,
        max_probability_difference=max_diff, argmax_agreement=agreement,
        device=device_label(accelerator), device_start_seconds=device_start, device_seconds=device_seconds,
        device_models_per_second=None if device_seconds is None else models / device_seconds,
        device_vs_cpu=None if device_seconds is None else vectorised / device_seconds,
        device_max_probability_difference=device_diff, device_argmax_agreement=device_agreement,
        machine=f"{platform.processor() or platform.machine()} ({platform.platform()})", cpus=default_workers(),
        torch_threads=torch.get_num_threads(),
        load_average=None if load_before is None or load_after is None else [load_before, load_after])


def _agreement(a: list[Weights], b: list[Weights], data: TrainingData, arch: Architecture) -> tuple[float, float]:
    """Max |probability difference| over models, rows and both heads' classes, and the mean argmax agreement (over
    models and the two heads) of the paired networks ``a[i]``, ``b[i]`` on ``data``."""
    diffs, agree = [], []
    for wa, wb in zip(a, b, strict=True):
        for pa, pb in zip(predict(wa, data.x, n_emotion=arch.n_emotion), predict(wb, data.x, n_emotion=arch.n_emotion)):
            diffs.append(np.abs(pa - pb).max())
            agree.append((pa.argmax(1) == pb.argmax(1)).mean())
    return float(max(diffs)), float(np.mean(agree))


def _load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def summary_lines(result: BenchResult) -> list[str]:
    """Human-readable lines for the terminal."""
    lines = []
    if result.reference_seconds_per_model is not None:
        lines.append(f"reference loop: {result.reference_seconds_per_model:.2f} s per model "
                     f"({result.reference_models} model(s), {result.rows} rows, {result.epochs} epochs)")
    lines.append(f"vectorised trainer, cpu: {result.models_per_second:.2f} models/s, "
                 f"{result.vectorised_seconds_per_model:.3f} s per model "
                 f"({result.models} models in {result.vectorised_seconds:.1f} s, {result.workers} worker process(es); "
                 f"starting them the first time took {result.worker_start_seconds:.1f} s more)")
    if result.speedup is not None:
        lines.append(f"speed-up per model: {result.speedup:.1f}x")
        lines.append(f"seed 0, reference vs vectorised: max |probability difference| "
                     f"{result.max_probability_difference:.2e}, argmax agreement {100 * result.argmax_agreement:.2f} %")
    if result.device_seconds is not None:
        lines.append(f"vectorised trainer, {result.device}: {result.device_models_per_second:.2f} models/s "
                     f"({result.models} models in {result.device_seconds:.1f} s; its first start took "
                     f"{result.device_start_seconds:.1f} s more): {result.device_vs_cpu:.2f}x the cpu trainer")
        lines.append(f"every seed, {result.device} vs cpu: max |probability difference| "
                     f"{result.device_max_probability_difference:.2e}, argmax agreement "
                     f"{100 * result.device_argmax_agreement:.2f} %")
    if result.load_average is not None:
        lines.append(f"load average before/after: {result.load_average[0]:.2f} / {result.load_average[1]:.2f} "
                     f"on {result.cpus} CPU(s)")
    return lines
