"""MLflow conventions: runs end FAILED on errors and KILLED when interrupted, runs of a killed process do not stay
RUNNING, and the store in force is always the one the settings (or the user's MLFLOW_TRACKING_URI) name."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from benchmark import tracking
from benchmark.config import TrackingSettings
from benchmark.errors import BenchmarkError


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return TrackingSettings(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="tracking-test")


def test_run_that_raises_ends_failed(store):
    mlflow = tracking.setup(store)
    with pytest.raises(ValueError):
        with tracking.run(mlflow, "boom", tags={}):
            raise ValueError("boom")
    runs = mlflow.search_runs(experiment_names=[store.experiment])
    assert list(runs["status"]) == ["FAILED"]


def test_run_interrupted_ends_killed_also_when_a_library_turned_the_interrupt_into_another_error(store):
    mlflow = tracking.setup(store)
    with pytest.raises(RuntimeError):
        with tracking.run(mlflow, "stopped", tags={}):
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
        from benchmark import tracking
        from benchmark.config import TrackingSettings
        mlflow = tracking.setup(TrackingSettings(uri={store.uri!r}, experiment={store.experiment!r}))
        with tracking.run(mlflow, "doomed", tags={{}}):
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


def test_tracking_uri_environment_variable_overrides_params(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert tracking.tracking_uri(TrackingSettings()) == "sqlite:///elsewhere.db"


def test_credentials_never_appear_in_the_error_message(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    bad = TrackingSettings(uri="postgresql://alice:s3cret@127.0.0.1:1/none", experiment="x")
    with pytest.raises(BenchmarkError) as info:
        tracking.setup(bad)
    assert "s3cret" not in str(info.value)
    assert "alice:***@127.0.0.1:1" in str(info.value)
