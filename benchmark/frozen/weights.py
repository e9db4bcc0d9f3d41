"""Loading the user's weight files: existence, sha256, ``torch.load(weights_only=True)``, strict key and shape match."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from benchmark.infra.errors import BenchmarkError
from benchmark.infra.hashing import sha256_file

NUM_BATCHES_TRACKED = "num_batches_tracked"
SHOWN_KEYS = 5


def read_state_dict(path: Path | str, *, param: str, hint: str) -> dict[str, torch.Tensor]:
    """Read a plain state dict with ``torch.load(weights_only=True)`` onto the CPU.

    Parameters
    ----------
    path : path of the weights file
    param : the params key naming the file (for messages), e.g. ``data.images.fairface_weights``
    hint : where the user gets the file (for the message when it is missing)
    """
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"{param}: weights file {path} not found; {hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle, runtime and zip errors for bad files
        raise BenchmarkError(f"{param}: {path} is not a loadable weights-only state dict "
                             f"({type(err).__name__}: {str(err).splitlines()[0][:160]})") from err
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise BenchmarkError(f"{param}: {path} does not hold a mapping of parameter names to tensors (a state_dict)")
    return dict(state)


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (f" ... ({len(keys)} in all)" if len(keys) > SHOWN_KEYS else "")


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], *, path: Path | str, param: str,
                strip_prefix: str | None = None, optional_suffixes: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``module`` requiring the exact key set and shapes; report differences by name.

    Parameters
    ----------
    strip_prefix : a leading prefix removed from every key that has it (``module.`` left by DataParallel)
    optional_suffixes : keys ending with one of these may be absent from the file (they keep the module's values)
    """
    if strip_prefix:
        state = {k[len(strip_prefix):] if k.startswith(strip_prefix) else k: v for k, v in state.items()}
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith(optional_suffixes)]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = ([f"missing keys {_names(missing)}"] if missing else []) + ([f"unexpected keys {_names(unexpected)}"] if unexpected else [])
        raise BenchmarkError(f"{param}: {path} does not match the {type(module).__name__} architecture: {'; '.join(parts)}")
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if wrong:
        raise BenchmarkError(f"{param}: {path} has tensors of the wrong shape: {_names(wrong)}")
    full = {k: state.get(k, v) for k, v in expected.items()}
    module.load_state_dict(full, strict=True)


def provenance(path: Path | str) -> dict[str, Any]:
    """``weights`` path and ``weights_sha256`` of a weights file, for metadata."""
    return {"weights": str(path), "weights_sha256": sha256_file(path)}
