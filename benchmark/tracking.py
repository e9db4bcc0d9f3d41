"""MLflow conventions: one tracking URI (params, overridden by MLFLOW_TRACKING_URI), one experiment, run names
``<stage>:<split>:<method>``, and tags that identify source, split, method, git commit and params hash."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from benchmark.config import TrackingSettings
from benchmark.errors import BenchmarkError
from benchmark.processes import pid_alive

ARTIFACT_ROOT = Path("mlartifacts")


def redact_url(url: str) -> str:
    """A store URL with any password hidden, for messages, logs and tags (``user:***@host``)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL (e.g. a file path or http URI): hide a userinfo part if any
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}***@{rest.split('@', 1)[1]}" if "@" in rest else url


def tracking_uri(settings: TrackingSettings) -> str:
    """The tracking URI in force: MLFLOW_TRACKING_URI if set, else ``tracking.uri`` from params."""
    return os.environ.get("MLFLOW_TRACKING_URI") or settings.uri


def git_commit() -> str:
    """The current git commit, or ``unknown`` outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (out.stdout.strip() if out.returncode == 0 else "") or "unknown"  # a repo without commits prints "HEAD"


def metric_name(name: str) -> str:
    """``name`` as MLflow accepts a metric key: an intersection's ``*`` (``gender*age_group``) becomes ``_x_``."""
    return name.replace("*", "_x_")


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
            # experimentKind opens the experiment in the UI's "Model training" view (runs table), not the GenAI one
            mlflow.create_experiment(settings.experiment, artifact_location=location,
                                     tags={"mlflow.experimentKind": "custom_model_development"})
        mlflow.set_experiment(settings.experiment)
        close_orphaned_runs(mlflow, settings.experiment)
    except Exception as err:  # mlflow raises many types for unreachable or invalid stores
        raise BenchmarkError(
            f"tracking.uri: cannot use MLflow tracking store {redact_url(uri)!r} ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
            f"fix the URI or unset MLFLOW_TRACKING_URI (default sqlite:///mlflow.db), or set tracking.enabled: false") from err
    return mlflow


def process_tags() -> dict[str, str]:
    """Tags naming the process that owns a run, so a later process can tell a killed owner's runs apart."""
    return {"benchmark.host": socket.gethostname(), "benchmark.pid": str(os.getpid())}


def close_orphaned_runs(mlflow: Any, experiment: str) -> int:
    """Mark KILLED the RUNNING runs that a process on this host started and that process is gone (e.g. SIGKILL).

    Returns how many runs were closed.
    """
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return 0
    host = socket.gethostname()
    closed = 0
    for found in client.search_runs([exp.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000):
        tags = found.data.tags
        pid = tags.get("benchmark.pid", "")
        if tags.get("benchmark.host") == host and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            client.set_terminated(found.info.run_id, status="KILLED")
            closed += 1
    return closed


@contextmanager
def run(mlflow: Any, name: str, *, tags: dict[str, str], nested: bool = False) -> Iterator[Any]:
    """Start an MLflow run; it ends FINISHED on success and FAILED on any exception (including KeyboardInterrupt).

    A SIGKILL leaves it RUNNING; the next :func:`setup` on this host marks it KILLED.
    """
    active = mlflow.start_run(run_name=name, tags={**tags, **process_tags()}, nested=nested)
    try:
        yield active
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")
