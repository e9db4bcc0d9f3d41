"""Unreachable services fail fast: a tracking server or database that refuses, drops packets or never answers is
reported within seconds (one line: the setting, the redacted URL, the fix), never after minutes of client retries.

The services are simulated on 127.0.0.1 (tests/unreachable.py): refusing, silent and dropping."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from unreachable import KINDS, Unreachable

from benchmark.core.settings import TrackingSettings
from benchmark.experiment import tracking
from benchmark.infra import probes
from benchmark.infra.errors import BenchmarkError

#: generous upper bound on an answer about an unreachable service (catches a hang; the probe itself waits 5 s)
ANSWER_BOUND_S = 30.0


@pytest.fixture(params=KINDS)
def unreachable(request) -> Iterator[Unreachable]:
    """Each kind of service that does not answer (see tests/unreachable.py)."""
    service = Unreachable(request.param)
    yield service
    service.close()


@pytest.fixture
def refusing() -> Iterator[Unreachable]:
    service = Unreachable("refusing")
    yield service
    service.close()


@pytest.fixture
def silent() -> Iterator[Unreachable]:
    service = Unreachable("silent")
    yield service
    service.close()


def _answer_time(call) -> tuple[float, BenchmarkError]:
    started = time.monotonic()
    with pytest.raises(BenchmarkError) as info:
        call()
    return time.monotonic() - started, info.value


@pytest.mark.parametrize("scheme", ["http://{host}:{port}", "postgresql+psycopg2://alice:s3cret@{host}:{port}/db"])
def test_an_unreachable_service_is_reported_within_seconds(unreachable, scheme):
    url = scheme.format(host="127.0.0.1", port=unreachable.port)
    seconds, err = _answer_time(lambda: probes.check_service(url, setting="tracking.uri", what="MLflow tracking store",
                                                             fix="start the server"))
    message = str(err)
    assert seconds < ANSWER_BOUND_S
    assert message.startswith(f"tracking.uri: MLflow tracking store '{probes.redact_url(url)}' does not answer (")
    assert message.endswith("; start the server") and "\n" not in message
    assert "s3cret" not in message


def test_tracking_setup_fails_fast_on_a_tracking_server_that_is_not_running(refusing, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = TrackingSettings(uri=f"http://127.0.0.1:{refusing.port}", experiment="x")
    seconds, err = _answer_time(lambda: tracking.setup(settings))
    assert seconds < ANSWER_BOUND_S
    assert str(err).startswith(f"tracking.uri: MLflow tracking store 'http://127.0.0.1:{refusing.port}' does not answer")
    assert "tracking.enabled: false" in str(err)


def test_the_environment_variable_is_named_when_it_sets_the_uri(refusing, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{refusing.port}")
    _, err = _answer_time(lambda: tracking.setup(TrackingSettings()))
    assert str(err).startswith("MLFLOW_TRACKING_URI: MLflow tracking store")


def test_a_missing_database_driver_is_named_with_the_fix():
    _, err = _answer_time(lambda: probes.check_service("mysql://u:pw@127.0.0.1:3306/x", setting="tune.storage",
                                                       what="Optuna storage", fix="-"))
    assert "needs a database driver that is not installed" in str(err) and "pw" not in str(err)


@pytest.mark.parametrize("url", ["sqlite:///mlflow.db", "sqlite:///:memory:", "file:///tmp/mlruns", "databricks"])
def test_local_stores_are_not_probed(url):
    assert not probes.needs_probe(url)
    probes.check_service(url, setting="s", what="w", fix="f")


def test_mlflow_http_retries_are_bounded_unless_the_user_set_them(monkeypatch):
    for name in tracking.HTTP_CLIENT_BOUNDS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")
    tracking.bound_http_retries()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"


def test_doctor_reports_a_silent_storage_within_seconds(silent, tmp_path):
    from benchmark.experiment.params import load_settings
    from benchmark.tools.doctor import check_tune_storage

    (tmp_path / "params.yaml").write_text(f"tune:\n  storage: postgresql+psycopg2://u:pw@127.0.0.1:{silent.port}/x\n")
    settings = load_settings(tmp_path / "params.yaml")
    started = time.monotonic()
    [check] = check_tune_storage(settings)
    assert time.monotonic() - started < ANSWER_BOUND_S
    assert check.ok is False and "does not answer" in check.detail and ":pw@" not in check.detail
