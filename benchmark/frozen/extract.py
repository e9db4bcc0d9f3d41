"""Batched, device-aware extraction: face chips in, each frozen model's scores out.

Worker processes decode each chip and resize it once per distinct :class:`~benchmark.frozen.model.InputSpec`
(PIL or OpenCV, as the model was trained); batches travel in pinned memory to the device, and each model runs one
forward pass per batch under ``torch.inference_mode``. Precision: ``fp32`` (IEEE float32 everywhere, TF32 off),
``tf32`` or ``bf16`` (autocast) on CUDA only; in the last two the first batch is also run in fp32 and the agreement
(argmax agreement, largest absolute difference) is measured and returned.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from benchmark.frozen.model import FrozenModel, InputSpec
from benchmark.infra.errors import BenchmarkError

log = logging.getLogger(__name__)

PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if name not in DEVICES:
        raise BenchmarkError(f"data.images.device: {name!r} is not one of {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("data.images.device: cuda requested but torch sees no CUDA device; set device: cpu or auto")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    """``cpu`` or ``cuda (<GPU name>)``."""
    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "cpu"


def crop_box(size: int, chip_padding: float, padding: float | None) -> tuple[float, float, float, float] | None:
    """The central box of a ``size`` px chip cut at ``chip_padding`` that a chip at ``padding`` covers.

    A dlib chip at padding p spans the aligned face's template box widened by p on each side (1 + 2p units), so a
    chip at padding q <= p is its central (1 + 2q) / (1 + 2p) part. None when no crop is needed.
    """
    if padding is None or abs(padding - chip_padding) < 1e-9:
        return None
    if padding > chip_padding:
        raise BenchmarkError(f"a model expects face chips with padding {padding}, wider than data.images.padding "
                             f"{chip_padding}; set data.images.padding >= {padding}")
    side = size * (1 + 2 * padding) / (1 + 2 * chip_padding)
    start = (size - side) / 2
    return (start, start, start + side, start + side)


def prepare_chip(rgb: np.ndarray, spec: InputSpec, *, chip_padding: float) -> np.ndarray:
    """One model input from one chip: (H, W, 3) uint8 RGB -> (C, size, size) uint8.

    Order: grey conversion (OpenCV RGB2GRAY, before resizing as FER does), central crop for the model's padding,
    resize (PIL bilinear with antialiasing, or OpenCV INTER_LINEAR).
    """
    import cv2

    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if spec.grayscale else rgb
    box = crop_box(rgb.shape[0], chip_padding, spec.padding)
    size = spec.size
    if spec.resize == "pil":
        pil = Image.fromarray(image)
        if box is not None or pil.size != (size, size):
            pil = pil.resize((size, size), Image.Resampling.BILINEAR, box=box)
        out = np.asarray(pil)
    elif box is None:
        out = image if image.shape[:2] == (size, size) else cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    else:
        scale = (box[2] - box[0]) / size
        shift = box[0] + 0.5 * scale - 0.5  # pixel centres, as cv2.resize
        matrix = np.array([[scale, 0, shift], [0, scale, shift]], dtype=np.float64)
        out = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    out = out[:, :, None] if out.ndim == 2 else out
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def check_inputs(models: Sequence[FrozenModel], *, chip_padding: float) -> None:
    """Raise BenchmarkError when a model wants a chip wider than the cached ones (``chip_padding``)."""
    for model in models:
        crop_box(100, chip_padding, model.input_spec.padding)


class ChipDataset(Dataset):
    """Chips from files; item i is a tuple with one uint8 tensor (C, size, size) per input spec."""

    def __init__(self, paths: Sequence[Path], specs: Sequence[InputSpec], *, chip_padding: float) -> None:
        self.paths = list(paths)
        self.specs = list(specs)
        self.chip_padding = chip_padding

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        with Image.open(self.paths[i]) as image:
            rgb = np.asarray(image.convert("RGB"))
        return tuple(torch.from_numpy(prepare_chip(rgb, s, chip_padding=self.chip_padding)) for s in self.specs)


def _worker_init(_: int) -> None:
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def check_precision(precision: str, device: torch.device) -> None:
    """Raise BenchmarkError for an unknown precision, or tf32/bf16 on a device other than CUDA."""
    if precision not in PRECISIONS:
        raise BenchmarkError(f"data.images.precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision != "fp32" and device.type != "cuda":
        raise BenchmarkError(f"data.images.precision: {precision} needs a CUDA device (got {device.type}); use fp32 on the CPU")


@contextlib.contextmanager
def precision_mode(precision: str, device: torch.device, *, autocast: bool = True) -> Iterator[None]:
    """fp32 (IEEE, TF32 off), tf32 or bf16 autocast for the ops inside; CUDA-only for tf32 and bf16."""
    check_precision(precision, device)
    if device.type != "cuda":
        yield
        return
    # the legacy flags: mixing them with torch's newer fp32_precision API makes later reads of either raise
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.allow_tf32 = matmul.allow_tf32 = precision == "tf32"
    try:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16" and autocast):
            yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved


def run_models(models: Sequence[FrozenModel], inputs: Sequence[torch.Tensor], *, precision: str,
               device: torch.device) -> list[dict[str, torch.Tensor]]:
    """One forward pass per model on its input (already on ``device``); float32 results on the CPU."""
    results = []
    for model, x in zip(models, inputs):
        with precision_mode(precision, device, autocast=model.uses_torch):
            out = model.predict(x)
        results.append({k: v.float().cpu() for k, v in out.items()})
    return results


def agreement(reference: list[dict[str, torch.Tensor]], other: list[dict[str, torch.Tensor]],
              models: Sequence[FrozenModel]) -> dict[str, dict[str, float]]:
    """Per model: share of images with the same argmax, largest absolute and relative score difference."""
    report = {}
    for model, ref, got in zip(models, reference, other):
        a, b = ref["scores"], got["scores"]
        scale = a.abs().max().clamp_min(1e-12)
        report[model.name] = {"argmax_agreement": float((a.argmax(1) == b.argmax(1)).float().mean()),
                              "max_abs_diff": float((a - b).abs().max()),
                              "max_rel_diff": float((a - b).abs().max() / scale), "n_images": int(a.shape[0])}
    return report


@dataclass
class Extraction:
    """Scores per model (same order as the models given), in chip order.

    Attributes
    ----------
    outputs : list of dict
        Per model: ``scores`` float64 array (n_images, n_classes) and one (n_images,) array per extra.
    device : str
    precision : str
    precision_check : dict
        Empty for fp32; else the first batch's agreement with fp32 (see :func:`agreement`).
    images_per_s : float
        Wall-clock throughput of the whole loop (decode to scores); logged, never written to results.
    """

    outputs: list[dict[str, np.ndarray]]
    device: str
    precision: str
    precision_check: dict[str, Any] = field(default_factory=dict)
    images_per_s: float = 0.0


def extract(paths: Sequence[Path], models: Sequence[FrozenModel], *, chip_padding: float, device: torch.device,
            precision: str = "fp32", batch_size: int = 64, num_workers: int = 0, progress: bool = True,
            desc: str = "extract") -> Extraction:
    """Run every model over every chip in ``paths``; see the module docstring.

    Parameters
    ----------
    paths : chip image files (any size; PNG from :mod:`benchmark.frozen.chips`)
    models : frozen models; each gets its own resized input
    chip_padding : the padding the chips were cut with (for models that want a tighter crop)
    """
    from tqdm import tqdm

    if not paths:
        raise BenchmarkError(f"{desc}: no chips to extract")
    check_precision(precision, device)
    check_inputs(models, chip_padding=chip_padding)
    specs = list(dict.fromkeys(m.input_spec for m in models))
    spec_of = [specs.index(m.input_spec) for m in models]
    for model in models:
        model.to(device)
    loader = DataLoader(ChipDataset(paths, specs, chip_padding=chip_padding), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, pin_memory=device.type == "cuda",
                        worker_init_fn=_worker_init if num_workers else None, persistent_workers=False)
    collected: list[dict[str, list[torch.Tensor]]] = [{} for _ in models]
    check: dict[str, Any] = {}
    start = time.perf_counter()
    bar = tqdm(total=len(paths), unit="img", desc=desc, disable=not progress, mininterval=1.0)
    with torch.inference_mode():
        for batch in loader:
            inputs = [batch[i].to(device, non_blocking=True) for i in spec_of]
            results = run_models(models, inputs, precision=precision, device=device)
            if precision != "fp32" and not check:
                check = agreement(run_models(models, inputs, precision="fp32", device=device), results, models)
            for store, result in zip(collected, results):
                for key, value in result.items():
                    store.setdefault(key, []).append(value)
            bar.update(len(batch[0]))
    bar.close()
    elapsed = time.perf_counter() - start
    outputs = [{k: torch.cat(v).double().numpy() for k, v in store.items()} for store in collected]
    rate = len(paths) / elapsed if elapsed > 0 else float("inf")
    log.info("%s: %d chips in %.1f s (%.1f images/s) on %s, %s", desc, len(paths), elapsed, rate, device_label(device), precision)
    if check:
        log.info("%s: %s agreement with fp32 on the first batch: %s", desc, precision, check)
    return Extraction(outputs, device_label(device), precision, check, rate)
