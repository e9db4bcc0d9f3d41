"""Where the corrector trains: ``train.device`` (``auto | cpu | cuda``) as a torch device.

``auto`` is CUDA when torch sees a CUDA device, else the CPU; ``cuda`` without one is an error (no silent fallback:
results on the two devices agree to float32 rounding, not bit for bit). torch is imported when a name is resolved, so
validating params.yaml loads it only for ``cuda``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmark.core.settings import TRAIN_DEVICES
from benchmark.infra.errors import BenchmarkError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str, *, where: str) -> torch.device:
    """The torch device ``name`` means on this machine; ``where`` names the setting in errors.

    Raises BenchmarkError for a name not in :data:`~benchmark.core.settings.TRAIN_DEVICES`, or for ``cuda`` when torch sees
    no CUDA device.
    """
    import torch

    if name not in TRAIN_DEVICES:
        raise BenchmarkError(f"{where}: {name!r} is not one of {', '.join(TRAIN_DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError(f"{where}: cuda, but torch {torch.__version__} sees no CUDA device on this machine; "
                             "use cpu, or auto (cuda when there is one)")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    """``cpu``, or ``cuda (<GPU name>)``."""
    import torch

    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "cpu"
