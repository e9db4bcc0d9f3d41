"""MLflow conventions: runs end FAILED on errors and KILLED when interrupted, runs of a killed process do not stay
RUNNING, and the store in force is always the one the settings (or the user's MLFLOW_TRACKING_URI) name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from benchmark.core.settings import TrackingSettings
from benchmark.experiment import tracking
from benchmark.infra.errors import BenchmarkError


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return TrackingSettings(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="tracking-test")


def test_run_that_raises_ends_failed(store):
    mlflow = tracking.setup(store)
    with pytest.raises(ValueError):
        with tracking.mlflow_run(mlflow, "boom", tags={}):
            raise ValueError("boom")
    runs = mlflow.search_runs(experiment_names=[store.experiment])
    assert list(runs["status"]) == ["FAILED"]


def test_run_interrupted_ends_killed_also_when_a_library_turned_the_interrupt_into_another_error(store):
    mlflow = tracking.setup(store)
    with pytest.raises(RuntimeError):
        with tracking.mlflow_run(mlflow, "stopped", tags={}):
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise RuntimeError("raised while cleaning up after the interrupt") from None
    runs = mlflow.search_runs(experiment_names=[store.experiment])
    assert list(runs["status"]) == ["KILLED"]


def test_a_later_setup_with_other_settings_uses_the_other_store(store, tmp_path):
    tracking.setup(store)  # MLflow exports the URI to MLFLOW_TRACKING_URI; setup puts the variable back
    other = TrackingSettings(uri=f"sqlite:///{tmp_path / 'other.db'}", experiment="other")
    assert tracking.tracking_uri(other) == other.uri
    assert "MLFLOW_TRACKING_URI" not in os.environ


def test_run_of_a_sigkilled_process_is_closed_as_killed_by_the_next_setup(store):
    child = textwrap.dedent(f"""
        import os, signal
        from benchmark.experiment import tracking
        from benchmark.core.settings import TrackingSettings
        mlflow = tracking.setup(TrackingSettings(uri={store.uri!r}, experiment={store.experiment!r}))
        with tracking.mlflow_run(mlflow, "doomed", tags={{}}):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert result.returncode == -9
    mlflow = tracking.setup(store)
    runs = mlflow.search_runs(experiment_names=[store.experiment])
    assert list(runs["status"]) == ["KILLED"]


def test_unreachable_tracking_store_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    bad = TrackingSettings(uri="postgresql+psycopg2://nobody@127.0.0.1:1/none", experiment="x")
    with pytest.raises(BenchmarkError, match="tracking.uri: MLflow tracking store .*127.0.0.1:1.* does not answer"):
        tracking.setup(bad)


def test_tracking_uri_environment_variable_overrides_params(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert tracking.tracking_uri(TrackingSettings()) == f"sqlite:///{tmp_path.resolve() / 'elsewhere.db'}"


def test_credentials_never_appear_in_the_error_message(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    bad = TrackingSettings(uri="postgresql://alice:s3cret@127.0.0.1:1/none", experiment="x")
    with pytest.raises(BenchmarkError) as info:
        tracking.setup(bad)
    assert "s3cret" not in str(info.value)
    assert "alice:***@127.0.0.1:1" in str(info.value)


def test_losing_the_race_to_create_the_experiment_is_not_an_error(store, monkeypatch):
    import mlflow

    real_create = mlflow.create_experiment

    def created_by_another_process_first(name, **kwargs):
        real_create(name, **kwargs)   # the other process's create wins ...
        raise mlflow.exceptions.MlflowException(f"Experiment(name={name}) already exists")   # ... ours is refused

    monkeypatch.setattr(mlflow, "create_experiment", created_by_another_process_first)
    assert tracking.setup(store).get_experiment_by_name(store.experiment) is not None


def test_a_failure_to_create_the_experiment_is_still_one_clear_error(store, monkeypatch):
    import mlflow

    def refused(name, **kwargs):
        raise mlflow.exceptions.MlflowException("permission denied")

    monkeypatch.setattr(mlflow, "create_experiment", refused)
    with pytest.raises(BenchmarkError, match="tracking.uri: cannot use MLflow tracking store .*permission denied"):
        tracking.setup(store)


def test_a_table_input_names_the_file_by_its_sha256_and_resolves_to_its_path(store, tmp_path):
    import hashlib

    import mlflow

    table = tmp_path / "faces.parquet"
    table.write_bytes(b"not really parquet, any bytes will do")
    inputs = tracking.table_inputs({"faces": table}, context="training")
    mlflow_module = tracking.setup(store)
    with tracking.mlflow_run(mlflow_module, "reads-faces", tags={}) as active:
        tracking.log_inputs(mlflow_module, inputs.values())
    (logged,) = mlflow.get_run(active.info.run_id).inputs.dataset_inputs
    sha256 = hashlib.sha256(table.read_bytes()).hexdigest()
    assert logged.dataset.name == "faces" and logged.dataset.digest == sha256[:tracking.DIGEST_CHARS]
    assert [(t.key, t.value) for t in logged.tags] == [("mlflow.data.context", "training")]
    assert mlflow.data.get_source(logged).uri == table.resolve().as_uri()
    assert json.loads(logged.dataset.profile)["sha256"] == sha256


def _content(mlflow, run_id: str) -> dict:
    """What a run stores, without ids and times: params, metrics (value, step), tags but the run's own, artifacts."""
    from pathlib import Path

    run = mlflow.MlflowClient().get_run(run_id)
    own = {"mlflow.runName", "benchmark.pid", "benchmark.host"}
    artifacts = {a.path: Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=a.path)).read_bytes()
                 for a in mlflow.MlflowClient().list_artifacts(run_id)}
    steps = {k: [m.step for m in mlflow.MlflowClient().get_metric_history(run_id, k)] for k in run.data.metrics}
    return {"params": run.data.params, "metrics": run.data.metrics, "steps": steps, "artifacts": artifacts,
            "tags": {k: v for k, v in run.data.tags.items() if k not in own}}


def test_one_batch_and_log_tables_store_what_mlflows_separate_calls_store(store):
    import pandas as pd

    mlflow = tracking.setup(store)
    table = pd.DataFrame({"cell": ["female/anger", "male/anger"], "accuracy": [0.5, 0.75], "n": [3, 4]})
    params, metrics, tags = {"train.seed": 0, "evaluate.ci": 0.95}, {"macro": 81.25, "gap": 2.5}, {"stage": "x"}
    with tracking.mlflow_run(mlflow, "separate", tags={}) as separate:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.set_tags(tags)
        mlflow.log_table(table, artifact_file="cells.json")
    with tracking.mlflow_run(mlflow, "batched", tags={}) as batched:
        logged = tracking.log_tables(mlflow, {"cells.json": table})
        tracking.log_batch(mlflow, params=params, metrics=metrics, tags={**tags, **logged})
    assert _content(mlflow, batched.info.run_id) == _content(mlflow, separate.info.run_id)
