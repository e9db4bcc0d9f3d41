"""The configuration a study chose, as ``benchmark tune`` leaves it in best_params.yaml: read by ``corrector_tuned``
(a study of ``tune.method: corrector``) and ``group_recalibration_tuned`` (``tune.method: group_recalibration``).

The file names the method its study tuned (``method``; files written before the key existed are corrector studies).
Reading it needs only YAML and the settings types, so building the method does not load Optuna.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from benchmark.core.protocol import parse_split
from benchmark.core.settings import CorrectorSettings, FairnessSettings, build
from benchmark.infra.errors import BenchmarkError


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


def tuned_method(path: Path | str) -> str:
    """The method the study at ``path`` tuned (``corrector`` for files from before studies named it)."""
    return str(_read(Path(path)).get("method", "corrector"))


def _params_of(path: Path, method: str, user: str) -> dict:
    """The ``params`` mapping of a best_params.yaml whose study tuned ``method`` (one line naming ``user`` else)."""
    found = tuned_method(path)
    if found != method:
        raise BenchmarkError(f"{path}: its study tuned {found!r}, but {user} needs a study of {method!r}; run "
                             f"`benchmark tune` with tune.method: {method} (and train.tuned_params pointing at its "
                             f"best_params.yaml), or remove {user} from train.methods")
    params = _read(path).get("params")
    if not isinstance(params, dict):
        raise BenchmarkError(f"{path}: not a best_params.yaml written by `benchmark tune` (no 'params' mapping)")
    return params


def tuned_skip_reason(split: str, tuned_for_split: str) -> str | None:
    """Why a method tuned for ``tuned_for_split`` must not run on ``split`` (None on that split itself): the study
    scored by CV inside that split's training dataset, so a split testing on it would report on the data that chose
    the configuration, and another transfer is not what it was tuned for."""
    if split == tuned_for_split:
        return None
    tuned_on = parse_split(tuned_for_split).train
    seen = " and this split tests on it" if parse_split(split).test == tuned_on else ""
    return f"its configuration was tuned for {tuned_for_split} by CV inside {tuned_on}{seen}"


def tuned_strength(path: Path | str) -> float:
    """The fairness strength a ``group_recalibration`` study chose (validated like ``train.fairness.strength``)."""
    path = Path(path)
    params = _params_of(path, "group_recalibration", "group_recalibration_tuned")
    return build(FairnessSettings, params, f"{path}: params").strength


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
    params = _params_of(path, "corrector", "corrector_tuned")
    tuned = build(CorrectorSettings, params, f"{path}: params")
    return dataclasses.replace(base, **{k: getattr(tuned, k) for k in params})
