"""The datasets' file-naming schemes."""

from __future__ import annotations

import pytest

from benchmark.sources import names


def test_faces_name_gives_subject_gender_emotion_age_group_and_set():
    parsed = names.parse_faces("125_y_f_a_a.jpg")
    assert (parsed.subject, parsed.gender, parsed.emotion) == ("125", "female", "anger")
    assert parsed.extras == {"age_group": "young", "picture_set": "a"}


def test_adfes_apex_name_maps_joy_to_happy():
    parsed = names.parse_adfes("M03-Joy-Apex.jpg")
    assert (parsed.subject, parsed.gender, parsed.emotion) == ("M03", "male", "happy")


def test_adfes_neutral_has_no_apex_suffix():
    assert names.parse_adfes("F01-Neutral.jpg").emotion == "neutral"
    assert names.parse_adfes("F01-Neutral-Apex.jpg") is None


def test_adfes_emotion_outside_the_six_parses_with_no_emotion():
    parsed = names.parse_adfes("F02-Contempt-Apex.jpg")
    assert parsed is not None and parsed.emotion is None and parsed.raw_emotion == "contempt"


@pytest.mark.parametrize("name", ["125_x_f_a_a.jpg", "125_y_f_a.jpg", "abc_y_f_a_a.jpg", "125_y_f_z_a.jpg"])
def test_malformed_faces_names_are_rejected(name):
    assert names.parse_faces(name) is None


@pytest.mark.parametrize("name", ["X01-Anger-Apex.jpg", "F1-Anger-Apex.jpg", "F01-Anger.jpg", "F01_Anger_Apex.jpg"])
def test_malformed_adfes_names_are_rejected(name):
    assert names.parse_adfes(name) is None
