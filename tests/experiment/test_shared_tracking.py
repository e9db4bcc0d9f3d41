"""One MLflow tracking server shared by a team: `benchmark train`, `benchmark evaluate` and three `benchmark tune`
workers (one Optuna study on PostgreSQL) log to it at the same time, and every expected run, metric, artifact and
dataset input is there exactly once. CI starts the server (.ci/run: PostgreSQL backend, artifacts proxied to a local
folder; scripts/mlflow_test_server.sh); locally the test is skipped unless BENCHMARK_TEST_MLFLOW_URI is set."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from toy import make_toy_table
from toy_predictions import write_pipeline_predictions

from benchmark.core import outputs
from benchmark.experiment.tracking import DIGEST_CHARS
from benchmark.infra import paths

pytestmark = pytest.mark.slow

SPLITS = ("faces->adfes", "cv:faces")
METHODS = ("uncorrected", "corrector")
N_SEEDS = 2
TUNE_WORKERS, TRIALS_PER_WORKER = 3, 2
TINY_TUNE = {"cv_folds": 2, "n_seeds": 1, "heartbeat_s": 1, "jobs": 1, "pruning": False,
             "space": {"depth": [1, 2], "width": [4, 8], "dropout": [0.0, 0.2], "attribute_weight": [0.3, 0.7],
                       "lr": [1.0e-3, 1.0e-2], "epochs": [20, 40], "batch_size": [16, 32],
                       "input": ["logits", "probs"]}}


@pytest.fixture(scope="module")
def servers() -> tuple[str, str]:
    """(MLflow tracking URI, PostgreSQL URL for the Optuna study)."""
    uri, pg = os.environ.get("BENCHMARK_TEST_MLFLOW_URI"), os.environ.get("BENCHMARK_TEST_PG_URL")
    if not (uri and pg):
        reason = ("no MLflow tracking server: eval \"$(scripts/pg_test_server.sh start DIR)\", then "
                  "eval \"$(scripts/mlflow_test_server.sh start DIR2)\" set BENCHMARK_TEST_PG_URL and BENCHMARK_TEST_MLFLOW_URI")
        if os.environ.get("BENCHMARK_REQUIRE_MLFLOW") == "1":
            pytest.fail(reason + "; BENCHMARK_REQUIRE_MLFLOW=1 (CI) requires them")
        pytest.skip(reason)
    return uri, pg


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _params(root: Path, tracking: dict, **sections) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump({"tracking": tracking, **sections}))


def _start(root: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE")}
    return subprocess.Popen([sys.executable, "-m", "benchmark", *args], cwd=root, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def logged(servers, tmp_path_factory):
    """Run train, evaluate and the tune workers at once; returns (client, experiment id, the files they read)."""
    uri, pg = servers
    tag = f"{os.getpid()}-{time.time_ns()}"
    tracking = {"uri": uri, "experiment": f"team-{tag}", "enabled": True}
    trainer = tmp_path_factory.mktemp("trainer")   # train and tune read its outputs tables
    for dataset, subjects in (("faces", 4), ("adfes", 3)):
        outputs.write(make_toy_table(dataset=dataset, subjects_per_gender=subjects, images_per_cell=1, seed=len(dataset)),
                      paths.outputs_table(dataset, trainer / paths.OUTPUTS_DIR))
    _params(trainer, tracking, train={"splits": list(SPLITS), "methods": list(METHODS), "n_seeds": N_SEEDS,
                                      "corrector": {"epochs": 5}, "cv": {"folds": {"faces": 2}}},
            tune={**TINY_TUNE, "split": "faces->adfes"})
    evaluator = tmp_path_factory.mktemp("evaluator")   # evaluate reads a predictions table of its own
    write_pipeline_predictions(evaluator / paths.PREDICTIONS, methods={"uncorrected": (1, 0.0), "corrector": (N_SEEDS, 3.0)})
    _params(evaluator, tracking, evaluate={"n_resamples": 200, "n_permutations": 200})

    study = f"shared-{tag}"
    processes = {"train": _start(trainer, "train"), "evaluate": _start(evaluator, "evaluate")}
    processes |= {f"tune-{i}": _start(trainer, "tune", "--study", study, "--n-trials", str(TRIALS_PER_WORKER),
                                      "--jobs", "1", "--storage", pg) for i in range(TUNE_WORKERS)}
    for name, process in processes.items():
        _, err = process.communicate(timeout=900)
        assert process.returncode == 0, f"{name} exited {process.returncode}:\n{err[-3000:]}"

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(tracking["experiment"])
    files = {"faces": trainer / paths.outputs_table("faces"), "adfes": trainer / paths.outputs_table("adfes"),
             "predictions": evaluator / paths.PREDICTIONS}
    return client, experiment.experiment_id, study, files


def _runs(logged) -> list:
    client, experiment_id, _, _ = logged
    return [client.get_run(r.info.run_id) for r in client.search_runs([experiment_id], max_results=1000)
            if r.data.tags.get("benchmark.kind") not in ("pipeline", "stage") or r.info.run_name.startswith("tune:")]


def _inputs(run) -> set[tuple[str, str, str]]:
    return {(d.dataset.name, d.dataset.digest, {t.key: t.value for t in d.tags}["mlflow.data.context"])
            for d in run.inputs.dataset_inputs}


def _digest(path: Path) -> str:
    return _sha256(path)[:DIGEST_CHARS]


def test_every_expected_run_is_there_exactly_once(logged):
    names = Counter(run.info.run_name for run in _runs(logged))
    _, _, study, _ = logged
    expected = Counter({f"train:{s}:{m}": 1 for s in SPLITS for m in METHODS})
    expected |= Counter({f"evaluate:faces->adfes:{m}": 1 for m in METHODS})
    expected |= Counter({f"tune:{study}": TUNE_WORKERS})
    expected |= Counter({f"trial-{n:04d}": 1 for n in range(TUNE_WORKERS * TRIALS_PER_WORKER)})
    assert names == expected


def test_each_tune_worker_logs_the_trials_it_ran_under_its_own_parent(logged):
    runs = _runs(logged)
    parents = {r.info.run_id for r in runs if r.info.run_name.startswith("tune:")}
    children = Counter(r.data.tags["mlflow.parentRunId"] for r in runs if r.info.run_name.startswith("trial-"))
    assert set(children) == parents and set(children.values()) == {TRIALS_PER_WORKER}


def test_runs_finished_and_their_metrics_are_logged_once(logged):
    client = logged[0]
    for run in _runs(logged):
        name = run.info.run_name
        assert run.info.status == "FINISHED", name
        if name.startswith("train:"):
            test_set = "adfes_test" if "faces->adfes" in name else "faces_test"
            seeds = N_SEEDS if name.endswith(":corrector") else 1
            assert len(client.get_metric_history(run.info.run_id, f"{test_set}.emotion/macro")) == seeds, name
            assert len(client.get_metric_history(run.info.run_id, "train_seconds")) == 1, name
        elif name.startswith("evaluate:"):
            assert len(client.get_metric_history(run.info.run_id, "adfes_test.emotion/macro")) == 1, name
        elif name.startswith("tune:"):
            assert len(client.get_metric_history(run.info.run_id, "n_complete")) == 1, name
        else:
            assert len(client.get_metric_history(run.info.run_id, "value")) == 1, name


def test_artifacts_are_stored_once_per_run_through_the_server(logged, tmp_path):
    client = logged[0]
    for run in _runs(logged):
        name = run.info.run_name
        found = [a.path for a in client.list_artifacts(run.info.run_id)]
        if name == "train:faces->adfes:corrector" or name == "train:cv:faces:corrector":
            assert found == ["fitted.npz"], name
            assert Path(client.download_artifacts(run.info.run_id, "fitted.npz", str(tmp_path))).stat().st_size > 0
        elif name.startswith("evaluate:"):
            assert found == ["cells.json"], name
        else:
            assert found == [], name


def test_each_run_names_the_tables_it_read_by_digest(logged):
    _, _, _, files = logged
    faces, adfes, predictions = (_digest(files[k]) for k in ("faces", "adfes", "predictions"))
    for run in _runs(logged):
        name = run.info.run_name
        if name.startswith("train:faces->adfes"):
            expected = {("faces", faces, "training"), ("adfes", adfes, "training")}
        elif name.startswith("train:cv:faces"):
            expected = {("faces", faces, "training")}
        elif name.startswith("evaluate:"):
            expected = {("predictions", predictions, "evaluation")}
        else:   # tune parents and trials: the tuned split's training dataset
            expected = {("faces", faces, "tuning")}
        assert _inputs(run) == expected, name
        assert len(run.inputs.dataset_inputs) == len(expected), name
