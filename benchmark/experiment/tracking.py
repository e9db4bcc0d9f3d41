"""MLflow conventions: one tracking URI (params, overridden by MLFLOW_TRACKING_URI; a relative store resolves against
the workspace root, :func:`benchmark.infra.paths.resolve_location`), one experiment, and runs in three levels: one
parent run per pipeline run (:mod:`benchmark.experiment.pipeline_run`), one stage run per stage under it
(:func:`stage_run`), and the stage's runs ``<stage>:<split>:<method>`` under that; tags that identify source, split,
method, git commit, DVC experiment and params hash; metric keys ``<dataset>_<partition>.<task>/<metric>``
(:func:`metric_key`: MLflow's chart view groups by the part before ``/``); and the tables a run read as MLflow dataset
inputs (name, digest from the file's sha256, source path), so runs can be filtered by data."""

from __future__ import annotations

import functools
import json
import os
import posixpath
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.core.settings import TrackingSettings
from benchmark.experiment import pipeline_run, system_metrics
from benchmark.infra import paths
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.hashing import sha256_bytes, sha256_file
from benchmark.infra.probes import check_service, redact_url
from benchmark.infra.processes import interruption, pid_alive

if TYPE_CHECKING:
    import pandas as pd

ARTIFACT_ROOT = Path("mlartifacts")  # under the workspace root (sqlite stores; a server keeps its own)
#: characters of a table's sha256 (hex) used as its MLflow dataset digest: MLflow stores at most 36
DIGEST_CHARS = 36
#: Bounds on MLflow's own HTTP retries (its defaults retry a silent server for minutes): after the start-up probe, a
#: server that stops answering fails a request within 3 attempts x 15 s + backoff 0, 2 s (+ up to 1 s jitter each),
#: about 50 s. Set as defaults only: a user's own MLFLOW_HTTP_REQUEST_* environment variables win.
HTTP_CLIENT_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                      "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


def shared_root() -> Path:
    """Where relative MLflow stores and artifacts live: the workspace root of the project this process works in
    (the CLI works in the project root), so a queued or temporary DVC experiment logs to the workspace's store."""
    return paths.workspace_root(Path.cwd())


def tracking_uri(settings: TrackingSettings) -> str:
    """The tracking URI in force: MLFLOW_TRACKING_URI if set, else ``tracking.uri`` from params; a file-backed store
    named relative (``sqlite:///mlflow.db``) is made absolute against :func:`shared_root`."""
    return paths.resolve_location(os.environ.get("MLFLOW_TRACKING_URI") or settings.uri, shared_root())


def uri_setting() -> str:
    """The name of the setting the tracking URI comes from, for messages."""
    return "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else "tracking.uri"


def probe(settings: TrackingSettings) -> None:
    """Fail within seconds, naming the setting and the fix, when the tracking server or database does not answer.

    Stages call it before their work when tracking is enabled; :func:`setup` calls it too.
    """
    check_service(tracking_uri(settings), setting=uri_setting(), what="MLflow tracking store",
                  fix="start the server, fix tracking.uri or MLFLOW_TRACKING_URI (default sqlite:///mlflow.db), "
                      "or set tracking.enabled: false")


def bound_http_retries() -> None:
    """Set :data:`HTTP_CLIENT_BOUNDS` in the environment, where the user has not set them (MLflow reads them there)."""
    for name, value in HTTP_CLIENT_BOUNDS.items():
        os.environ.setdefault(name, value)


def git_commit() -> str:
    """The current git commit, or ``unknown`` outside a checkout."""
    return _git_commit_in(os.getcwd())


@functools.cache
def _git_commit_in(folder: str) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False,
                             cwd=folder)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (out.stdout.strip() if out.returncode == 0 else "") or "unknown"  # a repo without commits prints "HEAD"


def metric_name(name: str) -> str:
    """``name`` as MLflow accepts a metric key: an intersection's ``*`` (``gender*age_group``) becomes ``_x_``."""
    return name.replace("*", "_x_")


def metric_key(dataset_partition: str, task: str, metric: str) -> str:
    """A result's metric key, ``<dataset>_<partition>.<task>/<metric>`` (``adfes_test.emotion/macro``): MLflow's
    chart view puts keys with the same part before the first ``/`` in one section, one per dataset and task.
    (Runs logged before this convention used ``.`` throughout: ``adfes_test.emotion.macro``.)"""
    return metric_name(f"{dataset_partition}.{task}/{metric}")


def params_hash(params: dict[str, Any]) -> str:
    """Short stable hash of a params mapping."""
    return sha256_bytes(json.dumps(params, sort_keys=True, default=str).encode())[:12]


def setup(settings: TrackingSettings) -> Any:
    """Point MLflow at the configured store and experiment; returns the mlflow module.

    Raises BenchmarkError naming the URI when the store cannot be reached (probed first, see :func:`probe`).
    """
    probe(settings)
    bound_http_retries()
    import mlflow

    uri = tracking_uri(settings)
    try:
        _set_tracking_uri_keeping_environment(mlflow, uri)
        if mlflow.get_experiment_by_name(settings.experiment) is None:
            _create_experiment(mlflow, settings.experiment, uri)
        mlflow.set_experiment(settings.experiment)
        close_orphaned_runs(mlflow, settings.experiment)
    except Exception as err:  # mlflow raises many types for unreachable or invalid stores
        raise BenchmarkError(
            f"tracking.uri: cannot use MLflow tracking store {redact_url(uri)!r} ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
            f"fix the URI or unset MLFLOW_TRACKING_URI (default sqlite:///mlflow.db), or set tracking.enabled: false") from err
    return mlflow


def deferred_setup(settings: TrackingSettings) -> Callable[[], Any] | None:
    """:func:`setup` as a call to make later, e.g. while worker processes compute (``map_on_cores(meanwhile=...)``),
    so the import and store start-up (seconds) overlap work and the stage's own ``setup`` is then quick; None when
    tracking is off."""
    return functools.partial(setup, settings) if settings.enabled else None


def _create_experiment(mlflow: Any, name: str, uri: str) -> None:
    """Create the experiment. On a shared server another process may create it at the same moment: losing that race
    (the experiment then exists) is fine; any other failure is raised."""
    location = (shared_root() / ARTIFACT_ROOT / name).as_uri() if uri.startswith("sqlite:") else None
    try:
        # experimentKind opens the experiment in the UI's "Model training" view (runs table), not the GenAI one
        mlflow.create_experiment(name, artifact_location=location, tags={"mlflow.experimentKind": "custom_model_development"})
    except Exception:
        if mlflow.get_experiment_by_name(name) is None:
            raise


def _set_tracking_uri_keeping_environment(mlflow: Any, uri: str) -> None:
    """``mlflow.set_tracking_uri``, which also exports the URI as MLFLOW_TRACKING_URI; the variable is put back as
    the user left it, so it keeps meaning "the user's override" (else a second setup in one process, with other
    settings, would silently reuse the first store)."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


def process_tags() -> dict[str, str]:
    """Tags naming the process that owns a run, so a later process can tell a killed owner's runs apart."""
    return {"benchmark.host": socket.gethostname(), "benchmark.pid": str(os.getpid())}


def revision_tags() -> dict[str, str]:
    """Tags every run carries: the git revision (also as MLflow's own ``mlflow.source.git.commit``, which the UI
    shows) and, in a DVC experiment, its name and baseline revision."""
    commit = git_commit()
    return {"git_commit": commit, "mlflow.source.git.commit": commit, **pipeline_run.dvc_tags()}


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
def mlflow_run(mlflow: Any, name: str, *, tags: dict[str, str], nested: bool = False) -> Iterator[Any]:
    """Start an MLflow run; it ends FINISHED on success, KILLED when interrupted (Ctrl-C, or SIGTERM under
    :func:`benchmark.infra.processes.sigterm_as_interrupt`) and FAILED on any other exception.

    A SIGKILL leaves it RUNNING; the next :func:`setup` on this host marks it KILLED.
    """
    active = mlflow.start_run(run_name=name, tags={**revision_tags(), **tags, **process_tags()}, nested=nested)
    try:
        yield active
    except BaseException as err:
        mlflow.end_run(status=_failed_status(err))
        raise
    mlflow.end_run(status="FINISHED")


def _failed_status(err: BaseException) -> str:
    return "KILLED" if interruption(err) is not None else "FAILED"


def _process_start_ms() -> int:
    import psutil

    return int(psutil.Process().create_time() * 1000)


def pipeline_parent(mlflow: Any, experiment_id: str, run: pipeline_run.PipelineRun) -> str:
    """The id of ``run``'s parent run in the experiment, created by the first stage that asks. Two processes that
    create it at the same moment (two tune workers sharing a BENCHMARK_PIPELINE_RUN) both keep the earliest one: the
    other deletes its own."""
    client = mlflow.MlflowClient()
    query = f"tags.`{pipeline_run.KEY_TAG}` = '{run.key}'"

    def found() -> list[Any]:
        return sorted(client.search_runs([experiment_id], filter_string=query, max_results=50),
                      key=lambda r: (r.info.start_time, r.info.run_id))

    existing = found()
    if existing:
        return existing[0].info.run_id
    tags = {pipeline_run.KEY_TAG: run.key, "benchmark.kind": "pipeline", "command": run.command,
            **revision_tags(), **run.tags, **process_tags()}
    mine = client.create_run(experiment_id, start_time=_process_start_ms(), tags=tags, run_name=run.name).info.run_id
    first = found()[0].info.run_id
    if first != mine:
        client.delete_run(mine)
    return first


@contextmanager
def stage_run(mlflow: Any, settings: TrackingSettings, name: str, *, stage: str,
              tags: Mapping[str, str]) -> Iterator[Any]:
    """The run of one stage invocation, nested under its pipeline run's parent (:func:`pipeline_parent`) and active
    while the block runs, so the stage's own runs (:func:`mlflow_run` with ``nested=True``) nest under it. It starts
    when the stage's process started and ends with the block: FINISHED, FAILED, or KILLED when interrupted, and the
    parent takes the same status and end time (a pipeline run's status is that of its latest stage). With system
    metrics on (:mod:`benchmark.experiment.system_metrics`) it stores the samples taken since the stage started."""
    client = mlflow.MlflowClient()
    experiment_id = mlflow.get_experiment_by_name(settings.experiment).experiment_id
    parent = pipeline_parent(mlflow, experiment_id, pipeline_run.current(stage))
    client.update_run(parent, status="RUNNING")
    client.set_tag(parent, "benchmark.pid", str(os.getpid()))   # a SIGKILLed stage's parent is closed as KILLED too
    created = client.create_run(experiment_id, start_time=_process_start_ms(), run_name=name,
                                tags={**revision_tags(), **tags, **process_tags(), "stage": stage,
                                      "benchmark.kind": "stage", "mlflow.parentRunId": parent})
    active = mlflow.start_run(run_id=created.info.run_id)
    status = "FINISHED"
    try:
        yield active
    except BaseException as err:
        status = _failed_status(err)
        raise
    finally:
        _log_system_metrics(client, active.info.run_id)
        mlflow.end_run(status=status)
        client.set_terminated(parent, status=status, end_time=int(time.time() * 1000))


def log_pipeline_metrics(mlflow: Any, metrics: Mapping[str, float]) -> None:
    """Log ``metrics`` to the pipeline run's parent of the active stage run (the headline numbers, so the chart view
    compares pipeline runs, e.g. DVC experiments, without unfolding them)."""
    from mlflow.entities import Metric
    from mlflow.utils.time import get_current_time_millis

    parent = mlflow.active_run().data.tags["mlflow.parentRunId"]
    now = get_current_time_millis()
    mlflow.MlflowClient().log_batch(parent, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])


def pipeline_summary(mlflow: Any, settings: TrackingSettings, active: Any) -> dict[str, Any]:
    """Where the records of the active stage run's pipeline run are: the (redacted) tracking URI, the experiment, the
    parent run's name and id, and its stage runs so far as (name, id) in start order."""
    client = mlflow.MlflowClient()
    parent_id = active.data.tags["mlflow.parentRunId"]
    stages = client.search_runs([active.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
                                order_by=["attributes.start_time ASC"], max_results=100)
    return {"uri": redact_url(tracking_uri(settings)), "experiment": settings.experiment, "parent_id": parent_id,
            "parent_name": client.get_run(parent_id).info.run_name,
            "stages": [(run.info.run_name, run.info.run_id) for run in stages]}


def _log_system_metrics(client: Any, run_id: str) -> None:
    from mlflow.entities import Metric

    samples = system_metrics.drain()
    entries = [Metric(name, float(value), when, step) for step, (when, values) in enumerate(samples)
               for name, value in values.items()]
    for i in range(0, len(entries), 1000):
        client.log_batch(run_id, metrics=entries[i:i + 1000])


def table_inputs(tables: Mapping[str, Path], *, context: str) -> dict[str, Any]:
    """MLflow dataset inputs for table files read by a stage, keyed like ``tables`` (name -> path).

    Each is an ``mlflow.entities.DatasetInput``: dataset ``name``; ``digest`` = the first 36 hex digits of the file's
    sha256 (MLflow's limit; the full sha256 and the size in bytes are in the dataset's ``profile``); source type
    ``local`` with the file's absolute ``file://`` URI (``mlflow.data.get_source`` resolves it); input tag
    ``mlflow.data.context`` = ``context`` (``training``, ``evaluation``, ``tuning``, ``source`` ...). Hash once per
    stage, then log to every run that read the tables (:func:`log_inputs`).
    """
    from mlflow.entities import Dataset, DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = {}
    for name, path in tables.items():
        path = Path(path).resolve()
        sha256 = sha256_file(path)
        dataset = Dataset(name=name, digest=sha256[:DIGEST_CHARS], source_type="local",
                          source=json.dumps({"uri": path.as_uri()}),
                          profile=json.dumps({"sha256": sha256, "bytes": path.stat().st_size}))
        inputs[name] = DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])
    return inputs


def log_inputs(mlflow: Any, inputs: Iterable[Any], *, run_id: str | None = None) -> None:
    """Log dataset inputs (from :func:`table_inputs`) to run ``run_id``, by default the active run, in one call."""
    mlflow.MlflowClient().log_inputs(run_id or mlflow.active_run().info.run_id, datasets=list(inputs))


def _active_run_id(mlflow: Any) -> str:
    return mlflow.active_run().info.run_id


def log_batch(mlflow: Any, *, params: Mapping[str, Any], metrics: Mapping[str, float],
              tags: Mapping[str, str]) -> None:
    """Log params (as ``str``), metrics (step 0, one timestamp) and tags to the active run in one store request (MLflow
    splits it at its batch limits): what ``log_params``, ``log_metrics`` and ``set_tags`` store with one each."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.utils.time import get_current_time_millis

    now = get_current_time_millis()
    mlflow.MlflowClient().log_batch(_active_run_id(mlflow),
                                    metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                                    params=[Param(k, str(v)) for k, v in params.items()],
                                    tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_tables(mlflow: Any, tables: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """Store each table (artifact file ``*.json`` -> DataFrame without image columns) as an artifact of the active
    run, a new run, as ``mlflow.log_table`` writes it (pandas JSON, orient ``split``) but without its three store
    requests per table (list artifacts, get run, set tag). Returns the tag ``log_table`` sets, listing the tables, to
    log with :func:`log_batch`."""
    from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS

    client, run_id = mlflow.MlflowClient(), _active_run_id(mlflow)
    with tempfile.TemporaryDirectory() as folder:
        for artifact_file, table in tables.items():
            local = Path(folder, posixpath.basename(artifact_file))
            table.to_json(local, orient="split", index=False, date_format="iso")
            client.log_artifact(run_id, str(local), posixpath.dirname(artifact_file) or None)
    return {MLFLOW_LOGGED_ARTIFACTS: json.dumps([{"path": file, "type": "table"} for file in tables])}
