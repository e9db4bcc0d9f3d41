"""`mlflow ui` on 127.0.0.1 shows the runs of one experiment for comparison (headless Chromium)."""

from __future__ import annotations

import json
import sys
import urllib.parse
from pathlib import Path

import pytest
from browser import Server, dump_dom, free_port, screenshot
from conftest import ARTIFACTS

from benchmark.core.settings import TrackingSettings
from benchmark.experiment import tracking

pytestmark = pytest.mark.slow
RUN_NAMES = ("evaluate:faces->adfes:uncorrected", "evaluate:faces->adfes:corrector", "evaluate:faces->adfes:unimodal")


@pytest.fixture(scope="module")
def mlflow_ui(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    settings = TrackingSettings(uri=uri, experiment="browser-check")
    import os
    old = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        mlflow = tracking.setup(settings)
        ids = []
        for i, name in enumerate(RUN_NAMES):
            with tracking.mlflow_run(mlflow, name, tags={"method": name.rsplit(":", 1)[1]}) as active:
                mlflow.log_metric("adfes_test.emotion.macro", 80.0 + i)
                mlflow.log_param("method", name.rsplit(":", 1)[1])
                ids.append(active.info.run_id)
        experiment_id = mlflow.get_experiment_by_name("browser-check").experiment_id
    finally:
        if old is not None:
            os.environ["MLFLOW_TRACKING_URI"] = old
    port = free_port()
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    server = Server([mlflow_bin, "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port),
                     "--workers", "1"], health_url=f"http://127.0.0.1:{port}/health", cwd=folder)
    yield f"http://127.0.0.1:{port}", experiment_id, ids
    server.stop()


def test_mlflow_ui_lists_every_run_of_the_experiment(mlflow_ui):
    base, experiment_id, _ = mlflow_ui
    url = f"{base}/#/experiments/{experiment_id}/runs"
    dom = dump_dom(url)
    for name in RUN_NAMES:
        assert name.replace(">", "&gt;") in dom or name in dom, name
    screenshot(url, ARTIFACTS / "browser" / "mlflow_runs.png")


def test_mlflow_ui_compares_the_runs_side_by_side(mlflow_ui):
    base, experiment_id, ids = mlflow_ui
    query = urllib.parse.urlencode({"runs": json.dumps(ids), "experiments": json.dumps([experiment_id])})
    url = f"{base}/#/compare-runs?{query}"
    dom = dump_dom(url)
    assert "adfes_test.emotion.macro" in dom
    screenshot(url, ARTIFACTS / "browser" / "mlflow_compare.png")
