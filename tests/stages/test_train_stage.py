"""The train stage: one predictions row per (split, fold, method, seed, partition, image), byte-identical on rerun,
and one MLflow run per (split, method) with per-seed metrics and the fitted arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from toy import make_toy_table

from benchmark.core import outputs, predictions
from benchmark.experiment.params import load_settings
from benchmark.infra import paths
from benchmark.stages import train

METHODS = ["uncorrected", "label_mask", "unimodal", "crossmodal_linear", "corrector"]
SPLITS = ["faces->adfes", "adfes->faces", "cv:faces", "cv:adfes"]
SMALL = {"train.methods": METHODS, "train.splits": SPLITS, "train.n_seeds": 2, "train.seed": 5,
         "train.corrector.epochs": 3, "train.cv.folds": {"faces": 3, "adfes": 0}, "tracking.enabled": False,
         "data.source": "published", "evaluate.reference": "uncorrected"}


@pytest.fixture(scope="module")
def outputs_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("outputs")
    outputs.write(make_toy_table(dataset="faces", subjects_per_gender=3, seed=0), paths.outputs_table("faces", folder))
    outputs.write(make_toy_table(dataset="adfes", subjects_per_gender=2, images_per_cell=1, seed=1),
                  paths.outputs_table("adfes", folder))
    return folder


def _settings(tmp_path: Path, **overrides):
    (tmp_path / "params.yaml").write_text("{}\n")
    return load_settings(tmp_path / "params.yaml", overrides={**SMALL, **overrides})


@pytest.fixture(scope="module")
def trained(outputs_dir, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("train")
    return train.run(_settings(tmp), outputs_dir, tmp / "predictions.parquet")


def test_train_writes_one_row_per_split_fold_method_seed_partition_image(trained, outputs_dir):
    frame = predictions.read(trained).frame
    n_faces, n_adfes = 72, 24
    counts = frame.groupby(["split", "method"]).size()
    for method in METHODS:
        seeds = 2 if method == "corrector" else 1
        assert counts["faces->adfes", method] == seeds * (n_adfes + n_faces)
        assert counts["adfes->faces", method] == seeds * (n_faces + n_adfes)
        assert counts["cv:faces", method] == seeds * n_faces
        assert counts["cv:adfes", method] == seeds * n_adfes
    assert sorted(frame.loc[frame["method"] == "corrector", "seed"].unique()) == [5, 6]
    assert sorted(frame.loc[frame["split"] == "cv:adfes", "fold"].unique()) == list(range(4))


def test_cv_splits_predict_each_image_once_per_seed_as_test(trained):
    frame = predictions.read(trained).frame
    cv = frame[frame["split"].str.startswith("cv:")]
    assert set(cv["partition"]) == {"test"}
    assert not cv.duplicated(["split", "method", "seed", "image_id"]).any()


def test_train_probabilities_are_distributions(trained):
    read = predictions.read(trained)
    frame, classes = read.frame, read.emotion_classes
    emotion = frame[[predictions.emotion_prob_column(c) for c in classes]].to_numpy()
    gender = frame[["pg_male", "pg_female"]].to_numpy()
    np.testing.assert_allclose(emotion.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(gender.sum(axis=1), 1.0, atol=1e-5)


def test_train_rerun_with_same_params_writes_identical_bytes(trained, outputs_dir, tmp_path):
    again = train.run(_settings(tmp_path), outputs_dir, tmp_path / "predictions.parquet")
    assert again.read_bytes() == trained.read_bytes()


def test_train_logs_one_mlflow_run_per_split_and_method(outputs_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # MLflow artifacts land under ./mlartifacts
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    settings = _settings(tmp_path, **{"tracking.enabled": True, "train.splits": ["faces->adfes"],
                                      "train.methods": ["uncorrected", "corrector"]})
    train.run(settings, outputs_dir, tmp_path / "predictions.parquet")

    import mlflow

    runs = mlflow.search_runs(experiment_names=[settings.tracking.experiment], filter_string="tags.stage = 'train'")
    assert sorted(runs["tags.mlflow.runName"]) == ["train", "train:faces->adfes:corrector", "train:faces->adfes:uncorrected"]
    stage = runs[runs["tags.mlflow.runName"] == "train"].iloc[0]
    assert set(runs.loc[runs["tags.mlflow.runName"] != "train", "tags.mlflow.parentRunId"]) == {stage["run_id"]}
    row = runs[runs["tags.method"] == "corrector"].iloc[0]
    # the source is the one recorded with the data (the toy tables), not params.yaml's data.source
    assert row["tags.split"] == "faces->adfes" and row["tags.source"] == "toy" and row["tags.params_hash"]
    assert row["params.train.corrector.epochs"] == "3"
    client = mlflow.MlflowClient()
    history = client.get_metric_history(row["run_id"], "adfes_test.emotion/macro")
    assert sorted(m.step for m in history) == [5, 6]
    mean = row["metrics.adfes_test.emotion/macro_seed_mean"]
    assert mean == pytest.approx(np.mean([m.value for m in history]))
    artifacts = [a.path for a in client.list_artifacts(row["run_id"])]
    assert artifacts == ["fitted.npz"]
    fitted = np.load(client.download_artifacts(row["run_id"], "fitted.npz", str(tmp_path)))
    assert fitted["fold0.seed5.layer0.weight"].shape == (24, 10)


def test_corrector_tuned_runs_only_on_the_split_its_configuration_was_tuned_for(outputs_dir, tmp_path):
    import yaml

    best = tmp_path / "best_params.yaml"
    best.write_text(yaml.safe_dump({"split": "faces->adfes", "params": {"width": 8, "epochs": 2}}))
    settings = _settings(tmp_path, **{"train.methods": ["uncorrected", "corrector_tuned"],
                                      "train.tuned_params": str(best), "train.n_seeds": 1})
    frame = predictions.read(train.run(settings, outputs_dir, tmp_path / "predictions.parquet")).frame
    tuned_splits = set(frame.loc[frame["method"] == "corrector_tuned", "split"])
    assert tuned_splits == {"faces->adfes"}
    assert set(frame.loc[frame["method"] == "uncorrected", "split"]) == set(SPLITS)


def _tuned_run(outputs_dir, tmp_path, monkeypatch, tuned: dict, **overrides):
    """(predictions frame, how many times the corrector trainer ran) with corrector and corrector_tuned on
    faces->adfes, the study having chosen ``tuned``."""
    import yaml

    from benchmark.methods import corrector

    calls = []
    real = corrector.train_many
    monkeypatch.setattr(corrector, "train_many", lambda *a, **k: calls.append(1) or real(*a, **k))
    best = tmp_path / "best_params.yaml"
    best.write_text(yaml.safe_dump({"split": "faces->adfes", "params": tuned}))
    settings = _settings(tmp_path, **{"train.methods": ["uncorrected", "corrector", "corrector_tuned"],
                                      "train.splits": ["faces->adfes"],
                                      "train.tuned_params": str(best), **overrides})
    return predictions.read(train.run(settings, outputs_dir, tmp_path / "predictions.parquet")).frame, len(calls)


def test_corrector_tuned_with_the_correctors_configuration_shares_its_results_instead_of_training_again(
        outputs_dir, tmp_path, monkeypatch):
    frame, trainings = _tuned_run(outputs_dir, tmp_path, monkeypatch, {"epochs": 3, "width": 24})
    plain, tuned = (frame[frame["method"] == m].drop(columns="method").reset_index(drop=True)
                    for m in ("corrector", "corrector_tuned"))
    assert trainings == 1 and len(tuned) > 0
    assert tuned.equals(plain)


def test_corrector_tuned_with_another_configuration_is_trained_on_its_own(outputs_dir, tmp_path, monkeypatch):
    frame, trainings = _tuned_run(outputs_dir, tmp_path, monkeypatch, {"epochs": 2})
    assert trainings == 2
    assert {"corrector", "corrector_tuned"} <= set(frame["method"])


def test_a_shared_run_says_in_mlflow_whose_results_it_shares(outputs_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    _tuned_run(outputs_dir, tmp_path, monkeypatch, {"epochs": 3}, **{"tracking.enabled": True})

    import mlflow

    runs = mlflow.search_runs(experiment_names=["crossmodal-bias"]).set_index("tags.method")
    assert runs.loc["corrector_tuned", "tags.shared_with"] == "corrector"
    assert runs.loc["corrector_tuned", "metrics.train_seconds"] == 0.0
    assert pd.isna(runs.loc["corrector", "tags.shared_with"])
    client = mlflow.MlflowClient()  # the weights are logged once, with the run that fitted them
    assert [a.path for a in client.list_artifacts(runs.loc["corrector", "run_id"])] == ["fitted.npz"]
    assert client.list_artifacts(runs.loc["corrector_tuned", "run_id"]) == []


def test_the_stage_starts_the_trainers_fork_server_before_it_reads_the_outputs(outputs_dir, tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(train.fork_server, "start", lambda: events.append("fork server") or True)
    real_read = train.outputs.read
    monkeypatch.setattr(train.outputs, "read", lambda *a, **k: events.append("read") or real_read(*a, **k))
    settings = _settings(tmp_path, **{"train.splits": ["faces->adfes"], "train.methods": ["uncorrected"]})
    train.run(settings, outputs_dir, tmp_path / "predictions.parquet")
    assert events[0] == "fork server" and "read" in events
