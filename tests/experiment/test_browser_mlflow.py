"""`benchmark ui` serves the project's MLflow store and its link opens, in a fresh headless Chromium, on the runs view
in the machine-learning mode: one parent run per pipeline run, its stage runs nested under it, and the chart view
comparing the pipeline runs' headline metrics, one section per split and task. Screenshots are kept in test-artifacts/browser/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from browser import Page, free_port
from conftest import ARTIFACTS

from benchmark.core.settings import TrackingSettings
from benchmark.experiment import tracking

pytestmark = pytest.mark.slow
PIPELINES = {"wide-net": 0.0, "paper-config": 2.0}
STAGES = ("train", "evaluate")
METHODS = {"uncorrected": 0.0, "corrector": 3.0}


def _log_pipelines(folder) -> None:
    """Two pipeline runs (named as stages run by hand with BENCHMARK_PIPELINE_RUN), each a train and an evaluate
    stage run with one run per method, through the stages' own MLflow code paths."""
    settings = TrackingSettings(uri="sqlite:///mlflow.db", experiment="crossmodal-bias")
    mlflow = tracking.setup(settings)
    for name, shift in PIPELINES.items():
        os.environ["BENCHMARK_PIPELINE_RUN"] = name
        for stage in STAGES:
            with tracking.stage_run(mlflow, settings, stage, stage=stage, tags={}):
                if stage == "evaluate":   # the headline numbers on the pipeline run, as the evaluate stage logs them
                    tracking.log_pipeline_metrics(mlflow, {
                        f"faces-to-adfes.{task}/{role}_{metric}": value + shift
                        for task in ("emotion", "gender") for role, value in (("corrector", 83.0), ("reference", 80.0))
                        for metric in ("macro", "average_gap")})
                for method, gain in METHODS.items():
                    with tracking.mlflow_run(mlflow, f"{stage}:faces->adfes:{method}", tags={"method": method},
                                             nested=True):
                        for task, base in (("emotion", 80.0), ("gender", 90.0)):
                            mlflow.log_metrics({tracking.metric_key("adfes_test", task, "macro"): base + gain + shift,
                                                tracking.metric_key("adfes_test", task, "average_gap"): 9 - gain})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-ui")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("BENCHMARK_PIPELINE_RUN", raising=False)
        (folder / "params.yaml").write_text("{}\n")
        _log_pipelines(folder)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "BENCHMARK_PIPELINE_RUN")}
    server = subprocess.Popen([sys.executable, "-m", "benchmark", "ui", "--port", str(free_port())], cwd=folder,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    line = server.stdout.readline()   # printed once the server answers
    link = re.search(r"(http://\S+)", line)
    assert link, line + server.stderr.read()[-2000:]
    yield link.group(1)
    server.terminate()   # `benchmark ui` stops mlflow ui's process group on SIGTERM
    server.wait(timeout=60)


def test_the_link_names_the_runs_view_in_the_machine_learning_mode(served):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/#/experiments/\d+/runs\?workflowType=machine_learning", served)


def test_a_fresh_browser_opens_the_link_on_the_parent_runs_and_shows_their_nested_stage_runs(served):
    with Page(served) as page:
        page.wait_for("document.body.innerText.includes('wide-net')", timeout_s=120)
        assert page.evaluate("document.body.innerText.includes('Run Name')")   # the runs table, not GenAI's overview
        shown = _lines(page)
        assert set(PIPELINES) <= shown and not set(STAGES) & shown   # stage runs folded under their parents
        expanders = page.evaluate("[...document.querySelectorAll('[role=gridcell] button.du-bois-light-btn-icon-only')]"
                                  ".map(b => (b.click(), 1)).length")
        assert expanders == len(PIPELINES)
        page.wait_for("document.body.innerText.includes('evaluate')", timeout_s=60)
        time.sleep(1)
        assert sorted(line for line in _lines(page, keep_repeats=True) if line in STAGES) == sorted(STAGES * 2)
        page.screenshot(ARTIFACTS / "browser" / "mlflow_runs.png")


def _lines(page: Page, *, keep_repeats: bool = False):
    lines = [line.strip() for line in page.evaluate("document.body.innerText").splitlines()]
    return lines if keep_repeats else set(lines)


def test_the_chart_view_compares_the_pipeline_runs_headline_metrics_by_split_and_task(served):
    with Page(served + "&compareRunsMode=CHART", size=(1600, 1200)) as page:
        page.wait_for("document.body.innerText.includes('faces-to-adfes.emotion/corrector_macro')", timeout_s=120)
        shown = _lines(page)
        assert any(line.startswith("faces-to-adfes.emotion") for line in shown)   # one section per split and task
        assert any(line.startswith("faces-to-adfes.gender") for line in shown)
        page.screenshot(ARTIFACTS / "browser" / "mlflow_charts.png")
