"""MLflow conventions: one tracking URI (params, overridden by MLFLOW_TRACKING_URI), one experiment, run names
``<stage>:<split>:<method>``, and tags that identify source, split, method, git commit and params hash."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from benchmark.config import TrackingSettings
from benchmark.errors import BenchmarkError

ARTIFACT_ROOT = Path("mlartifacts")


def tracking_uri(settings: TrackingSettings) -> str:
    """The tracking URI in force: MLFLOW_TRACKING_URI if set, else ``tracking.uri`` from params."""
    return os.environ.get("MLFLOW_TRACKING_URI") or settings.uri


def git_commit() -> str:
    """The current git commit, or ``unknown`` outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def params_hash(params: dict[str, Any]) -> str:
    """Short stable hash of a params mapping."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


def setup(settings: TrackingSettings) -> Any:
    """Point MLflow at the configured store and experiment; returns the mlflow module.

    Raises BenchmarkError naming the URI when the store cannot be reached.
    """
    import mlflow

    uri = tracking_uri(settings)
    try:
        mlflow.set_tracking_uri(uri)
        experiment = mlflow.get_experiment_by_name(settings.experiment)
        if experiment is None:
            location = None
            if uri.startswith("sqlite:"):
                location = (ARTIFACT_ROOT.resolve() / settings.experiment).as_uri()
            mlflow.create_experiment(settings.experiment, artifact_location=location)
        mlflow.set_experiment(settings.experiment)
    except Exception as err:  # mlflow raises many types for unreachable or invalid stores
        raise BenchmarkError(
            f"tracking.uri: cannot use MLflow tracking store {uri!r} ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
            f"fix the URI or unset MLFLOW_TRACKING_URI (default sqlite:///mlflow.db), or set tracking.enabled: false") from err
    return mlflow


@contextmanager
def run(mlflow: Any, name: str, *, tags: dict[str, str], nested: bool = False) -> Iterator[Any]:
    """Start an MLflow run; it ends FINISHED on success and FAILED on any exception (including KeyboardInterrupt)."""
    active = mlflow.start_run(run_name=name, tags=tags, nested=nested)
    try:
        yield active
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")
