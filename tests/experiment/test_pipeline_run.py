"""The stages of one pipeline run find one parent run: run by DVC, the DVC process running them (the nearest
ancestor without DVC_STAGE) identifies it, so two stages of one `dvc repro` share it and two experiments running at
once do not; by hand, BENCHMARK_PIPELINE_RUN groups stages, else each invocation is its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from benchmark.core.settings import TrackingSettings
from benchmark.experiment import pipeline_run, system_metrics, tracking

#: a "DVC" process: runs two "stages" (children with DVC_STAGE set, through a shell as DVC does) and prints their keys
DVC_LIKE = textwrap.dedent("""
    import json, os, subprocess, sys
    stage = "from benchmark.experiment import pipeline_run; r = pipeline_run.current('x'); print(r.key, r.name)"
    env = {**os.environ, "DVC_STAGE": "train", "DVC_EXP_NAME": sys.argv[1]}
    keys = [subprocess.run(["/bin/sh", "-c", f"{sys.executable} -c \\"{stage}\\""], env=env, capture_output=True,
                           text=True, check=True).stdout.split() for _ in range(2)]
    print(json.dumps(keys))
""")


def _dvc_like(name: str) -> list[list[str]]:
    done = subprocess.run([sys.executable, "-c", DVC_LIKE, name], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_two_stages_of_one_dvc_process_share_a_pipeline_run_named_after_the_experiment():
    (first_key, first_name), (second_key, second_name) = _dvc_like("wide-net")
    assert first_key == second_key and first_name == second_name == "wide-net"


def test_two_dvc_processes_are_two_pipeline_runs():
    assert _dvc_like("a")[0][0] != _dvc_like("b")[0][0]


def test_stages_run_by_hand_share_a_run_only_when_the_environment_names_one(monkeypatch):
    monkeypatch.delenv("DVC_STAGE", raising=False)
    monkeypatch.delenv("BENCHMARK_PIPELINE_RUN", raising=False)
    alone = pipeline_run.current("train")
    assert alone.name == "benchmark train"
    monkeypatch.setenv("BENCHMARK_PIPELINE_RUN", "nightly")
    named = pipeline_run.current("train")
    assert named.name == "nightly" and named.key == pipeline_run.current("evaluate").key != alone.key


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("BENCHMARK_PIPELINE_RUN", "nightly")
    return TrackingSettings(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="pipelines")


def test_stage_runs_nest_under_one_parent_that_ends_as_its_latest_stage(store):
    mlflow = tracking.setup(store)
    for stage in ("train", "evaluate"):
        with tracking.stage_run(mlflow, store, stage, stage=stage, tags={}):
            with tracking.mlflow_run(mlflow, f"{stage}:faces->adfes:corrector", tags={}, nested=True):
                pass
    with pytest.raises(ValueError):
        with tracking.stage_run(mlflow, store, "report", stage="report", tags={}):
            raise ValueError("the report failed")
    runs = {r.info.run_name: r for r in mlflow.MlflowClient().search_runs(
        [mlflow.get_experiment_by_name("pipelines").experiment_id])}
    parent = runs["nightly"]
    assert parent.data.tags["benchmark.kind"] == "pipeline" and parent.info.status == "FAILED"
    assert {n for n, r in runs.items() if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id} == {
        "train", "evaluate", "report"}
    assert runs["train:faces->adfes:corrector"].data.tags["mlflow.parentRunId"] == runs["train"].info.run_id
    assert runs["report"].info.status == "FAILED" and runs["train"].info.status == "FINISHED"


def test_a_stage_finds_the_parent_an_earlier_stage_created_instead_of_making_another(store):
    mlflow = tracking.setup(store)
    experiment = mlflow.get_experiment_by_name("pipelines").experiment_id
    run = pipeline_run.current("train")
    client = mlflow.MlflowClient()
    early = client.create_run(experiment, start_time=1, tags={pipeline_run.KEY_TAG: run.key}, run_name="other")
    assert tracking.pipeline_parent(mlflow, experiment, run) == early.info.run_id
    assert len(client.search_runs([experiment], filter_string=f"tags.`{pipeline_run.KEY_TAG}` = '{run.key}'")) == 1


def test_with_system_metrics_on_a_stage_run_records_load_and_memory_from_the_stages_start(store, monkeypatch):
    monkeypatch.setenv(system_metrics.ENV_SWITCH, "true")
    mlflow = tracking.setup(store)
    with system_metrics.sampling(True):
        with tracking.stage_run(mlflow, store, "train", stage="train", tags={}) as active:
            pass
    metrics = mlflow.MlflowClient().get_run(active.info.run_id).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
            "system/load_average_1m", "system/process_rss_megabytes"} <= set(metrics)
    assert metrics["system/process_rss_megabytes"] > 0


def test_system_metrics_are_off_unless_mlflows_switch_is_on(store, monkeypatch):
    monkeypatch.delenv(system_metrics.ENV_SWITCH, raising=False)
    mlflow = tracking.setup(store)
    with system_metrics.sampling(True):
        with tracking.stage_run(mlflow, store, "train", stage="train", tags={}) as active:
            pass
    assert not [k for k in mlflow.MlflowClient().get_run(active.info.run_id).data.metrics if k.startswith("system/")]
    assert os.environ.get(system_metrics.ENV_SWITCH) is None
