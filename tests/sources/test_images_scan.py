"""Reading FACES and ADFES folders: name parsing, file checks, duplicates, counts, strict mode and the manifest."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from face_pictures import adfes_name, faces_name
from PIL import Image
from toy import EMOTIONS

from benchmark.core.design import shipped
from benchmark.core.settings import DataSettings, ImagesSettings
from benchmark.infra.errors import BenchmarkError
from benchmark.sources import images, names

FACES, ADFES = shipped()["faces"], shipped()["adfes"]


def _picture(path: Path, seed: int) -> Path:
    """A small distinct noise picture (content differs per seed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _faces_subject(folder: Path, subject: int, gender: str, *, seed: int, skip: tuple[str, ...] = ()) -> None:
    for i, emotion in enumerate(EMOTIONS):
        for j, picture_set in enumerate("ab"):
            if f"{emotion}_{picture_set}" not in skip:
                _picture(folder / faces_name(subject, "m", gender, emotion, picture_set), seed * 100 + i * 2 + j)


def _adfes_subject(folder: Path, subject: str, *, seed: int, extra: tuple[str, ...] = ()) -> None:
    for i, emotion in enumerate((*EMOTIONS, *extra)):
        _picture(folder / adfes_name(subject, emotion), seed * 100 + i)


@pytest.mark.parametrize("name, expected", [
    ("001_y_f_h_a.jpg", ("001", "female", "happy", "young", "a")),
    ("171_o_m_a_b.JPG", ("171", "male", "anger", "older", "b")),
    ("12_m_m_n_a.png", ("012", "male", "neutral", "middle", "a")),
])
def test_faces_names_parse_to_subject_gender_emotion_age_and_set(name, expected):
    parsed = names.parse(FACES.images, name)
    assert (parsed.subject, parsed.labels["gender"], parsed.emotion, parsed.labels["age_group"],
            parsed.extras["picture_set"]) == expected


@pytest.mark.parametrize("name", ["001_x_f_h_a.jpg", "001_y_u_h_a.jpg", "001_y_f_c_a.jpg", "001_y_f_h_c.jpg",
                                  "001_y_f_h.jpg", "0001_y_f_h_a.jpg", "001_y_f_h_a.gif", "astronaut.jpg"])
def test_faces_names_outside_the_scheme_do_not_parse(name):
    assert names.parse(FACES.images, name) is None


@pytest.mark.parametrize("name, expected", [
    ("F01-Joy-Apex.jpg", ("F01", "female", "happy")), ("M12-Sadness-Apex.jpg", ("M12", "male", "sad")),
    ("M02-Sad-Apex.jpg", ("M02", "male", "sad")), ("F03-Neutral.jpg", ("F03", "female", "neutral")),
    ("F04-Anger-Apex.png", ("F04", "female", "anger")), ("M05-Contempt-Apex.jpg", ("M05", "male", "contempt")),
    ("M05-Surprise-Apex.jpg", ("M05", "male", "surprise")),
])
def test_adfes_names_parse_to_subject_gender_and_canonical_emotion(name, expected):
    parsed = names.parse(ADFES.images, name)
    assert (parsed.subject, parsed.labels["gender"], parsed.emotion) == expected


@pytest.mark.parametrize("name", ["F01-Joy.jpg", "F01-Neutral-Apex.jpg", "X01-Joy-Apex.jpg", "F1-Joy-Apex.jpg", "F01_Joy_Apex.jpg"])
def test_adfes_names_outside_the_scheme_do_not_parse(name):
    assert names.parse(ADFES.images, name) is None


def test_scan_of_a_complete_subject_set_reports_only_the_totals(tmp_path):
    _faces_subject(tmp_path, 1, "f", seed=1)
    result = images.scan(FACES, tmp_path)
    assert len(result.usable) == 12
    assert [str(p) for p in result.problems] == [f"{tmp_path}: 12 usable images of 1 subjects; the full FACES set has 2052 images of 171 subjects"]


def test_scan_reports_unparseable_names_file_by_file(tmp_path):
    _faces_subject(tmp_path, 1, "f", seed=1)
    _picture(tmp_path / "holiday.jpg", 99)
    result = images.scan(FACES, tmp_path)
    assert str(result.problems[0]) == f"{tmp_path / 'holiday.jpg'}: file name does not follow the faces scheme {names.SCHEMES['faces']}"
    assert [e.status for e in result.entries if e.image_id == "holiday.jpg"] == ["unparseable_name"]


def test_scan_reports_unreadable_and_truncated_images(tmp_path):
    _faces_subject(tmp_path, 1, "f", seed=1, skip=("anger_a", "disgust_a"))
    (tmp_path / faces_name(1, "m", "f", "anger", "a")).write_bytes(b"not an image")
    good = _picture(tmp_path / "x.jpg", 5).read_bytes()
    (tmp_path / "x.jpg").unlink()
    (tmp_path / faces_name(1, "m", "f", "disgust", "a")).write_bytes(good[: len(good) // 2])
    status = {e.image_id: e.status for e in images.scan(FACES, tmp_path).entries}
    assert status[faces_name(1, "m", "f", "anger", "a")] == "unreadable"
    assert status[faces_name(1, "m", "f", "disgust", "a")] == "truncated"


def test_scan_reports_a_second_file_of_the_same_image_as_duplicate(tmp_path):
    _faces_subject(tmp_path, 1, "f", seed=1)
    _picture(tmp_path / "sub" / "1_m_f_h_a.png", 77)
    result = images.scan(FACES, tmp_path)
    dup = [e for e in result.entries if e.status == "duplicate"]
    assert [(e.path, e.problem) for e in dup] == [("sub/1_m_f_h_a.png", "duplicate of 001_m_f_h_a.jpg")]
    assert len(result.usable) == 12


def test_scan_reports_identical_bytes_under_two_names_as_duplicate(tmp_path):
    _adfes_subject(tmp_path, "F01", seed=1)
    (tmp_path / "F02-Joy-Apex.jpg").write_bytes((tmp_path / "F01-Joy-Apex.jpg").read_bytes())
    dup = [e for e in images.scan(ADFES, tmp_path).entries if e.status == "duplicate"]
    assert [(e.image_id, e.problem) for e in dup] == [("F02-Joy-Apex.jpg", "duplicate of F01-Joy-Apex.jpg")]


def test_scan_reports_a_missing_image_per_subject_and_emotion(tmp_path):
    _faces_subject(tmp_path, 1, "f", seed=1, skip=("sad_b",))
    problems = [str(p) for p in images.scan(FACES, tmp_path).problems]
    assert f"{tmp_path} subject 001: 1 sad image(s); expected 2" in problems


def test_scan_reports_a_subject_whose_names_give_two_genders(tmp_path):
    _faces_subject(tmp_path, 1, "f", seed=1, skip=("happy_a",))
    _picture(tmp_path / faces_name(1, "m", "m", "happy", "a"), 55)
    problems = [str(p) for p in images.scan(FACES, tmp_path).problems]
    assert f"{tmp_path} subject 001: file names give gender female and male; a subject has one" in problems


def test_scan_ignores_adfes_emotions_outside_the_six_and_counts_them(tmp_path):
    _adfes_subject(tmp_path, "M01", seed=1, extra=("Contempt", "Surprise", "Pride", "Embarrassment"))
    result = images.scan(ADFES, tmp_path)
    assert len(result.usable) == 6
    assert dict(result.ignored) == {"contempt": 1, "surprise": 1, "pride": 1, "embarrassment": 1}


def test_scan_of_a_missing_or_empty_folder_is_an_error(tmp_path):
    with pytest.raises(BenchmarkError, match=r"image folder not found; put the ADFES images in data.input/adfes/"):
        images.scan(ADFES, tmp_path / "nope")
    with pytest.raises(BenchmarkError, match=r"no \.jpg/\.jpeg/\.png files; expected FACES images named"):
        images.scan(FACES, tmp_path)


def _settings(root: Path, *, strict: bool = False) -> DataSettings:
    return DataSettings(source="images", input=str(root), images=ImagesSettings(strict=strict))


def test_manifest_lists_every_file_with_its_status(tmp_path):
    _adfes_subject(tmp_path / "raw" / "adfes", "F01", seed=1, extra=("Contempt",))
    _picture(tmp_path / "raw" / "adfes" / "notes.png", 9)
    result, path = images.scan_and_report(ADFES, _settings(tmp_path / "raw"), chips_dir=tmp_path / "chips")
    manifest = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert path == tmp_path / "chips" / "manifest_adfes.csv"
    assert len(manifest) == 8
    assert manifest.set_index("image_id")["status"].to_dict()["F01-Contempt-Apex.jpg"] == "ignored_emotion"
    assert manifest.set_index("image_id").loc["F01-Joy-Apex.jpg", ["subject", "gender", "emotion"]].tolist() == ["F01", "female", "happy"]


def test_problems_are_warnings_by_default_and_one_error_under_strict(tmp_path, caplog):
    _adfes_subject(tmp_path / "raw" / "adfes", "F01", seed=1)
    _picture(tmp_path / "raw" / "adfes" / "F01-Joy.jpg", 9)
    with caplog.at_level(logging.WARNING):
        images.scan_and_report(ADFES, _settings(tmp_path / "raw"), chips_dir=tmp_path / "chips")
    assert any("F01-Joy.jpg: file name does not follow the adfes scheme" in r.message for r in caplog.records)
    with pytest.raises(BenchmarkError, match=r"adfes: 2 problem\(s\) with data.images.strict: true: .*F01-Joy.jpg"):
        images.scan_and_report(ADFES, _settings(tmp_path / "raw", strict=True), chips_dir=tmp_path / "chips")


def test_images_manifest_command_writes_manifests_and_fails_under_strict(tmp_path, monkeypatch, capsys):
    from benchmark.cli import main

    _adfes_subject(tmp_path / "data" / "raw" / "adfes", "F01", seed=1)
    (tmp_path / "params.yaml").write_text("data:\n  source: images\n  input: data/raw\n  datasets: [adfes]\n"
                                          "  images:\n    gender_model: agegender\n    emotion_model: fer\n"
                                          "train:\n  splits: ['cv:adfes']\n")
    monkeypatch.chdir(tmp_path)
    assert main(["images", "manifest"]) == 0
    assert "wrote data/chips/manifest_adfes.csv (6 files, 6 usable, 1 problems)" in capsys.readouterr().out
    assert main(["images", "manifest", "--strict"]) == 1
    assert "error: " in capsys.readouterr().err
