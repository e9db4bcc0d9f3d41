"""GPU check for the images path: prints one JSON line.

On a CUDA machine: CPU-vs-GPU agreement (fp32), fp32-vs-tf32 and fp32-vs-bf16 agreement, and throughput in images/s
for FairFace, EmoNet and both together at batch 256 on synthetic chips, per precision; then the whole pipeline
(PNG decode and resize on worker processes, both models) over ``--pipeline-chips`` synthetic chips. The real weights
are used when present at the ``data.images`` default paths (or the given ones), else seeded random weights (the
agreement figures then describe random networks). Without CUDA it says so and measures the CPU on a small batch.
With ``--trainer-models K`` it first runs the corrector trainer's GPU bench (``benchmark bench --device cuda
--reference-models 0 --models K``: K networks on the CPU trainer and on the GPU, side by side) and adds its figures
under ``trainer`` (also written to stderr as soon as they are measured, so a run stopped by a timeout keeps them).

With ``--detector-images N``: also face detection, the torch port of dlib's detector (``cnn_torch``) on the GPU
with one worker process per core against dlib's ``cnn`` on the CPU cores, on N FACES-sized pictures
(:func:`benchmark.tools.detector_bench.detector_check`; needs scikit-image for the astronaut picture).

Run: ``scripts/gpu_check.sh [--batch 256] [--iters 10] [--trainer-models 1024] [--detector-images 64] ...``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmark.frozen import emonet, fairface
from benchmark.frozen.extract import agreement, device_label, extract, precision_mode, run_models
from benchmark.frozen.model import FrozenModel, TorchModel

SEED = 0


def synthetic_chips(n: int, size: int, *, seed: int = SEED) -> torch.Tensor:
    """Smooth random RGB images, uint8 of shape (n, 3, size, size): 8 x 8 noise upsampled, plus fine noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 8, 8, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    fine = torch.rand(n, 3, size, size, generator=g) * 0.1
    return ((smooth * 0.9 + fine) * 255).round().clamp(0, 255).to(torch.uint8)


def _random_fill(module: torch.nn.Module, *, seed: int = SEED) -> None:
    """Deterministic weights (the EmoNet spec's golden fill rule) for a module without real weights."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in module.state_dict().items():
        if not value.is_floating_point():
            state[key] = value
            continue
        r = torch.randn(value.shape, generator=g)
        if key.endswith("running_var"):
            state[key] = r.abs() + 0.5
        elif key.endswith(("running_mean", "bias")):
            state[key] = 0.1 * r
        elif value.dim() == 1:
            state[key] = 1 + 0.1 * r
        else:
            state[key] = r / math.sqrt(r.numel() / r.shape[0])
    module.load_state_dict(state)


def load_models(fairface_weights: Path, emonet_weights: Path) -> tuple[list[TorchModel], dict[str, str]]:
    """FairFace and EmoNet with real weights when the files exist, else seeded random weights."""
    models: list[TorchModel] = []
    used: dict[str, str] = {}
    recipes = (("fairface", fairface_weights, fairface.load, fairface.build_network, fairface.FairFaceModel),
               ("emonet", emonet_weights, emonet.load, emonet.EmoNet, emonet.EmoNetModel))
    for name, weights, load, build, wrap in recipes:
        if weights.is_file():
            models.append(load(weights))
            used[name] = str(weights)
        else:
            network = build()
            _random_fill(network)
            models.append(wrap(network, weights={"weights": "random"}))
            used[name] = "random"
    return models, used


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(models: list[FrozenModel], inputs: list[torch.Tensor], *, precision: str, device: torch.device,
               iters: int, warmup: int = 2) -> float:
    """Images per second through all ``models`` (one pass each per batch) on device-resident ``inputs``."""
    with torch.inference_mode():
        for _ in range(warmup):
            for model, x in zip(models, inputs):
                with precision_mode(precision, device):
                    model.predict(x)
        _synchronize(device)
        start = time.perf_counter()
        for _ in range(iters):
            for model, x in zip(models, inputs):
                with precision_mode(precision, device):
                    model.predict(x)
        _synchronize(device)
    return iters * inputs[0].shape[0] / (time.perf_counter() - start)


def _inputs(models: list[TorchModel], n: int, device: torch.device) -> list[torch.Tensor]:
    return [synthetic_chips(n, m.input_spec.size).to(device) for m in models]


def pipeline_rate(models: list[TorchModel], *, n_chips: int, batch: int, precision: str, device: torch.device,
                  workers: int) -> float:
    """Images per second of :func:`benchmark.frozen.extract.extract` over ``n_chips`` synthetic 224 px PNG chips."""
    from PIL import Image

    chips = synthetic_chips(n_chips, 224, seed=SEED + 1).permute(0, 2, 3, 1).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, chip in enumerate(chips):
            paths.append(Path(tmp) / f"{i:05d}.png")
            Image.fromarray(chip).save(paths[-1])
        result = extract(paths, models, chip_padding=0.25, device=device, precision=precision, batch_size=batch,
                         num_workers=workers, progress=False, desc="gpu_check")
    return result.images_per_s


def check(*, batch: int, iters: int, cpu_images: int, pipeline_chips: int, fairface_weights: Path,
          emonet_weights: Path, device: torch.device | None = None,
          precisions: tuple[str, ...] = ("fp32", "tf32", "bf16"), cpu_pipeline_chips: int = 0) -> dict[str, Any]:
    """All measurements as one dict (see the module docstring).

    ``device``: the accelerator to measure (default: cuda when available, else only the CPU note and CPU timing);
    tests pass the CPU with ``precisions=("fp32",)`` to run the accelerator path's code.
    ``cpu_pipeline_chips`` > 0 also times the whole pipeline on the CPU (fp32, batch 64, 2 workers) over that many
    chips: the images issue's CPU target is 200 chips in under a minute.
    """
    models, used = load_models(fairface_weights, emonet_weights)
    result: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.cuda.is_available(), "weights": used,
                              "batch": batch, "cpu_threads": torch.get_num_threads()}
    cpu = torch.device("cpu")
    if cpu_pipeline_chips > 0:
        rate = pipeline_rate(models, n_chips=cpu_pipeline_chips, batch=64, precision="fp32", device=cpu, workers=2)
        result["cpu_pipeline"] = {"chips": cpu_pipeline_chips, "images_per_s": round(rate, 2),
                                  "seconds": round(cpu_pipeline_chips / rate, 1), "batch": 64, "workers": 2}
    if device is None and not torch.cuda.is_available():
        result["note"] = "no CUDA device: GPU figures not measured; cpu_images_per_s is fp32 on the CPU"
        n = max(1, min(cpu_images, batch))
        result["cpu_images_per_s"] = {
            "fairface": round(throughput(models[:1], _inputs(models[:1], n, cpu), precision="fp32", device=cpu, iters=1, warmup=1), 2),
            "emonet": round(throughput(models[1:], _inputs(models[1:], n, cpu), precision="fp32", device=cpu, iters=1, warmup=1), 2),
            "n_images": n}
        return result
    accelerator = device or torch.device("cuda")
    if accelerator.type == "cuda":
        torch.backends.cudnn.benchmark = True
    result["device"] = device_label(accelerator)
    n_cpu = max(1, min(cpu_images, batch))
    host_inputs = _inputs(models, batch, cpu)
    with torch.inference_mode():
        cpu_out = run_models(models, [x[:n_cpu] for x in host_inputs], precision="fp32", device=cpu)
    for m in models:
        m.to(accelerator)
    inputs = [x.to(accelerator) for x in host_inputs]
    with torch.inference_mode():
        small = run_models(models, [x[:n_cpu] for x in inputs], precision="fp32", device=accelerator)
        result["cpu_vs_device_fp32"] = agreement(cpu_out, small, models)
        reference = run_models(models, inputs, precision="fp32", device=accelerator)
        for precision in precisions:
            if precision != "fp32":
                reduced = run_models(models, inputs, precision=precision, device=accelerator)
                result[f"fp32_vs_{precision}"] = agreement(reference, reduced, models)
    result["images_per_s"] = {}
    for precision in precisions:
        rates = {m.name: throughput([m], [x], precision=precision, device=accelerator, iters=iters) for m, x in zip(models, inputs)}
        rates["both"] = throughput(models, inputs, precision=precision, device=accelerator, iters=iters)
        result["images_per_s"][precision] = {k: round(v, 1) for k, v in rates.items()}
    if pipeline_chips > 0:
        workers = min(16, os.cpu_count() or 1)
        result["pipeline_images_per_s"] = {
            p: round(pipeline_rate(models, n_chips=pipeline_chips, batch=batch, precision=p, device=accelerator, workers=workers), 1)
            for p in precisions if p in ("fp32", "bf16")}
        result["pipeline"] = {"chips": pipeline_chips, "workers": workers}
    return result


def trainer_figures(models: int, *, epochs: int | None = None, device: torch.device | None = None) -> dict[str, Any]:
    """The vectorised corrector trainer on CUDA against the CPU trainer, ``models`` networks each (paper
    configuration, FACES-sized data; :func:`benchmark.tools.bench.run_bench`), or a note when there is no CUDA device.
    ``device``: the accelerator (default: cuda when available); tests pass the CPU to run the GPU path's code."""
    if device is None and not torch.cuda.is_available():
        return {"note": "no CUDA device: the trainer's GPU figures not measured"}
    from benchmark.tools.bench import run_bench

    return run_bench(models=models, reference_models=0, epochs=epochs, device=device or torch.device("cuda")).as_dict()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run :func:`check`, print one JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--cpu-images", type=int, default=8, help="images compared CPU vs GPU (and timed without CUDA)")
    parser.add_argument("--pipeline-chips", type=int, default=4096, help="synthetic chips through the full pipeline (0: skip)")
    parser.add_argument("--cpu-pipeline-chips", type=int, default=0,
                        help="also time the full pipeline on the CPU over this many chips (0: skip; target: 200 < 60 s)")
    parser.add_argument("--detector-images", type=int, default=0,
                        help="also time face detection (cnn_torch on the GPU vs dlib on the CPU) on this many "
                             "FACES-sized pictures (0: skip)")
    parser.add_argument("--fairface-weights", type=Path, default=Path("models/fairface_alldata_20191111.pt"))
    parser.add_argument("--emonet-weights", type=Path, default=Path("models/emonet_8.pth"))
    parser.add_argument("--trainer-models", type=int, default=0,
                        help="first bench the corrector trainer on CUDA against the CPU, this many networks (0: skip)")
    parser.add_argument("--trainer-epochs", type=int, default=None, help="epochs of the trainer bench (default: 500)")
    args = parser.parse_args(argv)
    trainer = None
    if args.trainer_models > 0:
        trainer = trainer_figures(args.trainer_models, epochs=args.trainer_epochs)
        print("gpu_check: trainer " + json.dumps(trainer, sort_keys=True), file=sys.stderr, flush=True)
    result = check(batch=args.batch, iters=args.iters, cpu_images=args.cpu_images, pipeline_chips=args.pipeline_chips,
                   fairface_weights=args.fairface_weights, emonet_weights=args.emonet_weights,
                   cpu_pipeline_chips=args.cpu_pipeline_chips)
    if trainer is not None:
        result["trainer"] = trainer
    if args.detector_images > 0:
        from benchmark.frozen.chips import resolve_workers
        from benchmark.tools import detector_bench

        result["detector"] = detector_bench.detector_check(
            args.detector_images, device="cuda" if torch.cuda.is_available() else "cpu", workers=resolve_workers(0))
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
