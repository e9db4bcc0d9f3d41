"""Provenance of a report: data source and checksums, params, git commit, package versions, seeds and times."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from benchmark.core.settings import Settings, as_dict
from benchmark.experiment import tracking
from benchmark.infra import paths, version_lock
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.hashing import sha256_file
from benchmark.infra.parquet import METADATA_KEY

__all__ = ["PACKAGES", "collect"]

PACKAGES: tuple[str, ...] = ("crossmodal-bias-benchmark", "numpy", "pandas", "scipy", "pyarrow", "matplotlib", "torch",
                             "mlflow", "dvc", "optuna")


#: outputs-table metadata keys that describe the frozen models (source ``images``)
MODEL_ROLES: tuple[str, ...] = ("gender_model", "emotion_model")


def _utc(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _parquet_metadata(path: Path) -> dict[str, Any]:
    try:
        schema = pq.read_schema(path)
    except Exception as err:  # pyarrow raises several types for a file that is not parquet
        raise BenchmarkError(f"{path}: not a readable parquet file ({type(err).__name__}); delete it and rerun "
                             "`benchmark fetch`") from err
    raw = (schema.metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_dirty() -> bool | None:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def collect(settings: Settings, *, outputs_dir: Path = paths.OUTPUTS_DIR,
            result_files: tuple[Path, ...] = (paths.PREDICTIONS, paths.STATS), lock: Path = paths.LOCK) -> dict[str, Any]:
    """Everything the provenance section shows, as plain values.

    Keys: ``inputs`` (per outputs table: path, ``table sha256`` of the parquet file, and its metadata's scalar fields
    such as source, scenario, input file and ``input sha256``, plus the frozen models' names as ``gender_model`` and
    ``emotion_model`` where the table records them), ``results`` (path, sha256, written at), ``params``
    (YAML text of the settings in force), ``git_commit``, ``git_dirty``, ``python``, ``packages`` (name -> version),
    ``lock`` (a sentence: whether the installed versions match the lock file ``lock``, and which differ), ``seeds``,
    ``generated`` (UTC; ``SOURCE_DATE_EPOCH`` when set, for reproducible builds).
    """
    inputs = []
    for dataset in settings.data.datasets:
        path = paths.outputs_table(dataset, outputs_dir)
        if not path.exists():
            inputs.append({"path": str(path), "table sha256": "missing"})
            continue
        raw = _parquet_metadata(path)
        meta = {("input sha256" if k == "sha256" else k): v for k, v in raw.items()
                if isinstance(v, (str, int, float, bool))}
        for role in MODEL_ROLES:   # the images source records each frozen model's metadata; keep its name
            if isinstance(raw.get(role), dict) and "name" in raw[role]:
                meta[role] = str(raw[role]["name"])
        inputs.append({"path": str(path), "table sha256": sha256_file(path), **meta})
    results = [{"path": str(p), "sha256": sha256_file(p), "written": _utc(p.stat().st_mtime)}
               for p in result_files if p.exists()]
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    generated = _utc(float(epoch)) if epoch else _utc(dt.datetime.now(dt.timezone.utc).timestamp())
    seeds = {"data.seed": settings.data.seed, "train.seed": settings.train.seed, "train.n_seeds": settings.train.n_seeds,
             "evaluate.seed": settings.evaluate.seed}
    return {"inputs": inputs, "results": results, "params": yaml.safe_dump(as_dict(settings), sort_keys=False),
            "git_commit": tracking.git_commit(), "git_dirty": _git_dirty(),
            "python": platform.python_version(), "packages": {p: _version(p) for p in PACKAGES},
            "lock": version_lock.status_line(lock),
            "seeds": seeds, "generated": generated}
