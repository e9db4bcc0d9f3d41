"""The outputs-table validator: each rule rejects a malformed table with one clear line, and nothing is written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.core import outputs
from benchmark.core.outputs import OutputsTable
from benchmark.infra.errors import BenchmarkError


def _write_expecting(table: OutputsTable, tmp_path, match: str, attribute: str = "gender") -> None:
    target = tmp_path / "out" / "faces.parquet"
    with pytest.raises(BenchmarkError, match=match) as info:
        outputs.write(table, target, attribute=attribute)
    message = str(info.value)
    assert "\n" not in message
    assert str(target) in message
    assert not target.exists()
    leftovers = list(target.parent.iterdir()) if target.parent.exists() else []
    assert leftovers == []


def _mutate(table: OutputsTable, fn) -> OutputsTable:
    frame = table.frame.copy()
    fn(frame)
    return OutputsTable(frame, table.design, table.emotion_classes, table.metadata)


def test_valid_table_round_trips_with_classes_and_metadata(toy_table, tmp_path):
    target = tmp_path / "faces.parquet"
    outputs.write(toy_table, target)
    back = outputs.read(target, attribute="gender")
    pd.testing.assert_frame_equal(back.frame, toy_table.frame)
    assert back.emotion_classes == toy_table.emotion_classes
    assert back.metadata == toy_table.metadata
    assert back.design == toy_table.design


def test_missing_column_is_rejected(toy_table, tmp_path):
    _write_expecting(_mutate(toy_table, lambda f: f.pop("emo_fear")), tmp_path, "missing column.*emo_fear")


def test_unknown_emotion_label_is_rejected(toy_table, tmp_path):
    def bad(f):
        f.loc[0, "emotion"] = "joy"
    _write_expecting(_mutate(toy_table, bad), tmp_path, "column 'emotion' has label.*'joy'.* outside the declared emotions of faces \\(neutral")


def test_unknown_gender_label_is_rejected(toy_table, tmp_path):
    def bad(f):
        f.loc[0, "gender"] = "other"
    _write_expecting(_mutate(toy_table, bad), tmp_path, "column 'gender' has label.*'other'.* outside the declared gender groups of faces \\(male, female\\)")


@pytest.mark.parametrize("p_male", [-0.1, 1.2, np.nan])
def test_probability_outside_unit_interval_is_rejected(toy_table, tmp_path, p_male):
    def bad(f):
        f.loc[3, "p_male"] = p_male
        f.loc[3, "p_female"] = 1 - p_male
    _write_expecting(_mutate(toy_table, bad), tmp_path, "outside \\[0, 1\\]")


def test_probabilities_not_summing_to_one_are_rejected(toy_table, tmp_path):
    def bad(f):
        f.loc[2, "p_male"] = 0.5
        f.loc[2, "p_female"] = 0.49
    _write_expecting(_mutate(toy_table, bad), tmp_path, "p_male \\+ p_female = 0.990000; expected 1 within 0.001")


def test_probabilities_summing_to_one_within_tolerance_are_accepted(toy_table, tmp_path):
    def ok(f):
        f.loc[2, "p_male"] = 0.5
        f.loc[2, "p_female"] = 0.5009
    outputs.write(_mutate(toy_table, ok), tmp_path / "faces.parquet")


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_logit_is_rejected(toy_table, tmp_path, value):
    def bad(f):
        f.loc[5, "emo_happy"] = value
    _write_expecting(_mutate(toy_table, bad), tmp_path, "non-finite emotion logits")


def test_duplicate_image_id_is_rejected(toy_table, tmp_path):
    def bad(f):
        f.loc[1, "image_id"] = f.loc[0, "image_id"]
    _write_expecting(_mutate(toy_table, bad), tmp_path, "duplicate image id")


def test_subject_with_two_genders_is_rejected(toy_table, tmp_path):
    def bad(f):
        f.loc[0, "gender"] = "female" if f.loc[0, "gender"] == "male" else "male"
    _write_expecting(_mutate(toy_table, bad), tmp_path, "subject .* of faces has images in two gender groups")


def test_empty_design_cell_is_rejected(toy_table, tmp_path):
    frame = toy_table.frame
    keep = ~((frame["gender"] == "female") & (frame["emotion"] == "fear"))
    _write_expecting(toy_table.subset(keep), tmp_path, "no image in cell \\(female, fear\\)")


def test_non_numeric_logits_are_rejected(toy_table, tmp_path):
    def bad(f):
        f["emo_sad"] = f["emo_sad"].astype(str)
    _write_expecting(_mutate(toy_table, bad), tmp_path, "must be numeric logits")


def test_emotion_columns_follow_the_models_own_classes(toy_table, tmp_path):
    """A 7-class model (FER order) is accepted: nothing assumes EmoNet's 8 classes."""
    fer = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    frame = toy_table.frame.drop(columns=[c for c in toy_table.frame if c.startswith("emo_")])
    rng = np.random.default_rng(1)
    for c in fer:
        frame[f"emo_{c}"] = rng.normal(size=len(frame))
    target = tmp_path / "fer.parquet"
    outputs.write(OutputsTable(frame, toy_table.design, fer, {}), target)
    assert outputs.read(target).emotion_classes == fer


def test_reading_a_corrupt_parquet_names_the_file_and_the_fix(tmp_path):
    target = tmp_path / "faces.parquet"
    target.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(BenchmarkError, match="faces.parquet: not a readable parquet file.*rerun `benchmark fetch`"):
        outputs.read(target)


def test_a_failed_write_keeps_the_previous_complete_file(toy_table, tmp_path):
    target = tmp_path / "faces.parquet"
    outputs.write(toy_table, target)
    before = target.read_bytes()
    with pytest.raises(BenchmarkError):
        outputs.write(_mutate(toy_table, lambda f: f.pop("subject")), target, attribute="gender")
    assert target.read_bytes() == before


def test_an_attribute_the_table_does_not_carry_names_its_columns(toy_table, tmp_path):
    _write_expecting(toy_table, tmp_path, "missing column.*age_group.*p_age_0-2.*that data.attribute 'age_group' needs",
                     attribute="age_group")
