"""The configuration a study chose, as ``benchmark tune`` leaves it in best_params.yaml: read by ``corrector_tuned``.

Reading it needs only YAML and the settings types, so building the method does not load Optuna.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from benchmark.config import CorrectorSettings, build
from benchmark.errors import BenchmarkError
from benchmark.protocol import parse_split


def _read(path: Path) -> dict:
    if not path.exists():
        raise BenchmarkError(f"{path}: no tuned configuration; run `benchmark tune` (or `dvc repro tune`) first, "
                             f"or remove corrector_tuned from train.methods")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise BenchmarkError(f"{path}: not valid YAML ({str(err).splitlines()[0]}); rerun `benchmark tune`") from err
    if not isinstance(document, dict):
        raise BenchmarkError(f"{path}: not a best_params.yaml written by `benchmark tune`; rerun it")
    return document


def tuned_for(path: Path | str) -> str:
    """The split the study tuned for (its CV ran inside that split's training dataset), as recorded in the
    best_params.yaml at ``path``."""
    split = _read(Path(path)).get("split")
    if not isinstance(split, str) or parse_split(split, where=f"{path}: split").is_cv:
        raise BenchmarkError(f"{path}: split {split!r} is not a split A->B; rerun `benchmark tune`")
    return split


def tuned_corrector_settings(base: CorrectorSettings, path: Path | str) -> CorrectorSettings:
    """``base`` with the parameters of the configuration in best_params.yaml at ``path`` (validated like params)."""
    path = Path(path)
    params = _read(path).get("params")
    if not isinstance(params, dict):
        raise BenchmarkError(f"{path}: not a best_params.yaml written by `benchmark tune` (no 'params' mapping)")
    tuned = build(CorrectorSettings, params, f"{path}: params")
    return dataclasses.replace(base, **{k: getattr(tuned, k) for k in params})
