"""Data lineage in MLflow: every run of train, evaluate and tune lists the tables it read as dataset inputs (name,
digest = the file's sha256 prefix, context), so runs can be filtered and compared by the exact data they used."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from toy import make_toy_table
from toy_predictions import write_pipeline_predictions

from benchmark.cli import main
from benchmark.core import outputs
from benchmark.experiment import tracking
from benchmark.experiment.params import load_settings
from benchmark.infra import paths
from benchmark.stages import evaluate, train


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with toy outputs tables, the MLflow store in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    for dataset, subjects in (("faces", 4), ("adfes", 3)):
        outputs.write(make_toy_table(dataset=dataset, subjects_per_gender=subjects, images_per_cell=1, seed=len(dataset)),
                      paths.outputs_table(dataset))
    (tmp_path / "params.yaml").write_text("{}\n")
    return tmp_path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:tracking.DIGEST_CHARS]


def _inputs_by_run(experiment: str = "crossmodal-bias") -> dict[str, set[tuple[str, str, str]]]:
    import mlflow

    client = mlflow.MlflowClient()
    runs = [run for run in client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
            if run.data.tags.get("benchmark.kind") != "pipeline"]   # the pipeline run's parent reads nothing itself
    return {run.info.run_name: {(d.dataset.name, d.dataset.digest, d.tags[0].value)
                                for d in client.get_run(run.info.run_id).inputs.dataset_inputs} for run in runs}


def test_train_runs_list_the_outputs_tables_of_their_split(project):
    settings = load_settings(project / "params.yaml", overrides={
        "train.splits": ["faces->adfes", "cv:faces"], "train.methods": ["uncorrected"], "train.cv.folds": {"faces": 2}})
    train.run(settings)
    faces, adfes = _digest(paths.outputs_table("faces")), _digest(paths.outputs_table("adfes"))
    both = {("faces", faces, "training"), ("adfes", adfes, "training")}
    assert _inputs_by_run() == {"train": both, "train:faces->adfes:uncorrected": both,
                                "train:cv:faces:uncorrected": {("faces", faces, "training")}}


def test_runs_can_be_found_by_the_digest_of_a_table_they_read(project):
    import mlflow

    settings = load_settings(project / "params.yaml", overrides={
        "train.splits": ["faces->adfes", "cv:faces"], "train.methods": ["uncorrected"], "train.cv.folds": {"faces": 2}})
    train.run(settings)
    adfes = _digest(paths.outputs_table("adfes"))
    found = mlflow.search_runs(experiment_names=["crossmodal-bias"],
                               filter_string=f"dataset.name = 'adfes' AND dataset.digest = '{adfes}'")
    assert sorted(found["tags.mlflow.runName"]) == ["train", "train:faces->adfes:uncorrected"]


def test_evaluate_runs_list_the_predictions_table(project):
    source = write_pipeline_predictions(project / "elsewhere.parquet", methods={"uncorrected": (1, 0.0), "corrector": (2, 2.0)})
    settings = load_settings(project / "params.yaml", overrides={"evaluate.n_resamples": 100, "evaluate.n_permutations": 100})
    evaluate.run(settings, source=source, metrics_path=project / "reports" / "metrics.json",
                 cells_path=project / "reports" / "cells.csv", stats_path=project / "stats.parquet",
                 confusion_path=project / "confusion.parquet")
    expected = {("predictions", _digest(source), "evaluation")}
    assert _inputs_by_run() == {"evaluate": expected, "evaluate:faces->adfes:uncorrected": expected,
                                "evaluate:faces->adfes:corrector": expected}


def test_a_study_and_each_of_its_trials_list_the_training_dataset_of_the_tuned_split(project):
    (project / "params.yaml").write_text(
        "tune:\n  cv_folds: 2\n  jobs: 1\n  split: adfes->faces\n  space: {epochs: [10, 20], width: [4, 8]}\n")
    assert main(["-q", "tune", "--n-trials", "2", "--storage", f"sqlite:///{project / 'optuna.db'}"]) == 0
    expected = {("adfes", _digest(paths.outputs_table("adfes")), "tuning")}
    assert _inputs_by_run() == {"tune:corrector": expected, "trial-0000": expected, "trial-0001": expected}
