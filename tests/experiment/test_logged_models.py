"""The corrector's networks are MLflow models: each train run that fitted them logs one (input example, signature,
its metrics linked to it and to their datasets), loading it needs none of the benchmark's code, and its predictions
are the run's predictions bit for bit on the CPU; the tuned configuration's model is registered under an alias."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from toy import make_toy_table

from benchmark.core import outputs, predictions
from benchmark.experiment import logged_models
from benchmark.experiment.params import load_settings
from benchmark.infra import paths
from benchmark.stages import train

SETTINGS = {"train.methods": ["uncorrected", "corrector", "corrector_tuned"], "train.splits": ["faces->adfes", "cv:faces"],
            "train.n_seeds": 2, "train.corrector.epochs": 3, "train.cv.folds": {"faces": 2}, "tracking.enabled": True,
            "data.source": "published"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A train stage with MLflow on: (folder, settings, predictions frame, outputs tables)."""
    folder = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        tables = {}
        for dataset, subjects, images in (("faces", 3, 2), ("adfes", 2, 1)):
            table = make_toy_table(dataset=dataset, subjects_per_gender=subjects, images_per_cell=images, seed=len(dataset))
            outputs.write(table, paths.outputs_table(dataset))
            tables[dataset] = outputs.read(paths.outputs_table(dataset))
        (folder / "best.yaml").write_text(yaml.safe_dump({"split": "faces->adfes", "params": {"width": 8, "epochs": 2}}))
        (folder / "params.yaml").write_text("{}\n")
        settings = load_settings(folder / "params.yaml", overrides={**SETTINGS, "train.tuned_params": str(folder / "best.yaml")})
        frame = predictions.read(train.run(settings)).frame
    return folder, settings, frame, tables


def _client(folder: Path):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")


def _model_of(folder: Path, split: str, method: str):
    client = _client(folder)
    (run,) = client.search_runs([client.get_experiment_by_name("crossmodal-bias").experiment_id],
                                filter_string=f"tags.split = '{split}' AND tags.method = '{method}'")
    (model,) = client.search_logged_models([run.info.experiment_id],
                                           filter_string=f"source_run_id = '{run.info.run_id}'")
    return run, model


def _expected(frame: pd.DataFrame, split: str, method: str, fold: int, seed: int, partition: str) -> pd.DataFrame:
    rows = frame[(frame["split"] == split) & (frame["method"] == method) & (frame["fold"] == fold)
                 & (frame["seed"] == seed) & (frame["partition"] == partition)]
    return rows[["image_id", "pg_male", "pg_female", *[c for c in rows.columns if c.startswith("pe_")]]]


def _inputs(table, expected: pd.DataFrame) -> pd.DataFrame:
    """The outputs rows the run predicted, in the order it predicted them (the table's): a matrix product's last rows
    can take another kernel than the others, so the same bits need the same rows in the same order."""
    return table.frame[table.frame["image_id"].isin(expected["image_id"])].reset_index(drop=True)


@pytest.mark.parametrize(("split", "method"), [("faces->adfes", "corrector"), ("cv:faces", "corrector"),
                                               ("faces->adfes", "corrector_tuned")])
def test_every_network_of_a_logged_model_reproduces_the_runs_predictions_bit_for_bit(trained, split, method):
    import mlflow

    folder, _, frame, tables = trained
    _, model = _model_of(folder, split, method)
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    loaded = mlflow.pyfunc.load_model(f"models:/{model.model_id}")
    keys = frame[(frame["split"] == split) & (frame["method"] == method)][["fold", "seed", "partition"]].drop_duplicates()
    assert len(keys) >= 2
    for fold, seed, partition in keys.itertuples(index=False):
        expected = _expected(frame, split, method, fold, seed, partition)
        dataset = "adfes" if partition == "test" and split == "faces->adfes" else "faces"
        inputs = _inputs(tables[dataset], expected)
        got = loaded.predict(inputs, params={"fold": int(fold), "seed": int(seed)}).set_index(inputs["image_id"])
        pd.testing.assert_frame_equal(got.loc[expected["image_id"]].reset_index(drop=True),
                                      expected.drop(columns="image_id").reset_index(drop=True), check_exact=True)


def test_a_logged_model_has_a_signature_an_input_example_and_its_runs_metrics_linked(trained):
    folder, _, _, _ = trained
    run, model = _model_of(folder, "faces->adfes", "corrector")
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    info = mlflow.models.get_model_info(f"models:/{model.model_id}")
    classes = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
    assert info.signature.inputs.input_names() == [f"emo_{c}" for c in classes] + ["p_male", "p_female"]
    assert info.signature.outputs.input_names() == ["pg_male", "pg_female", *[f"pe_{c}" for c in classes]]
    assert {p.name for p in info.signature.params.params} == {"fold", "seed"}
    assert info.saved_input_example_info is not None
    linked = {(m.key, m.dataset_name) for m in model.metrics}
    assert ("adfes_test.emotion/macro", "adfes") in linked and ("faces_train.emotion/macro", "faces") in linked


def test_the_tuned_configurations_model_is_registered_under_its_alias(trained):
    folder, settings, _, _ = trained
    _, model = _model_of(folder, "faces->adfes", "corrector_tuned")
    version = _client(folder).get_model_version_by_alias(logged_models.registered_name(settings.tracking.experiment),
                                                         logged_models.TUNED_ALIAS)
    assert version.source == f"models:/{model.model_id}"


LOAD_WITHOUT_THE_BENCHMARK = """
import json, sys
sys.modules["benchmark"] = None   # any import of the project's code fails
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
frame = pd.read_json(sys.argv[3], orient="split")
print(mlflow.pyfunc.load_model(sys.argv[2]).predict(frame, params={"fold": 0, "seed": 0}).to_json(orient="split"))
"""


def test_loading_a_logged_model_needs_none_of_the_projects_code(trained, tmp_path):
    folder, _, frame, tables = trained
    _, model = _model_of(folder, "faces->adfes", "corrector")
    expected = _expected(frame, "faces->adfes", "corrector", 0, 0, "test")
    inputs = _inputs(tables["adfes"], expected)
    expected = expected.set_index("image_id").loc[inputs["image_id"]].reset_index()
    (tmp_path / "inputs.json").write_text(inputs.to_json(orient="split"))
    fresh = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "ATEN_CPU_CAPABILITY")}  # the model pins them
    done = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_THE_BENCHMARK, f"sqlite:///{folder / 'mlflow.db'}",
                           f"models:/{model.model_id}", str(tmp_path / "inputs.json")],
                          capture_output=True, text=True, cwd=tmp_path, env=fresh)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    np.testing.assert_array_equal(np.array(got["data"], dtype=np.float32),
                                  expected.drop(columns="image_id").to_numpy(dtype=np.float32))
