"""The datasets' file-naming schemes."""

from __future__ import annotations

import pytest

from benchmark.sources import names


def test_faces_name_gives_subject_gender_emotion_age_group_and_set():
    parsed = names.parse_faces("125_y_f_a_a.jpg")
    assert (parsed.subject, parsed.emotion) == ("125", "anger")
    assert parsed.labels == {"gender": "female", "age_group": "young"} and parsed.extras == {"picture_set": "a"}


def test_adfes_apex_name_maps_joy_to_happy():
    parsed = names.parse_adfes("M03-Joy-Apex.jpg")
    assert (parsed.subject, parsed.labels, parsed.emotion) == ("M03", {"gender": "male"}, "happy")


def test_adfes_neutral_has_no_apex_suffix():
    assert names.parse_adfes("F01-Neutral.jpg").emotion == "neutral"
    assert names.parse_adfes("F01-Neutral-Apex.jpg") is None


def test_adfes_emotion_outside_the_six_parses_to_its_canonical_name():
    parsed = names.parse_adfes("F02-Contempt-Apex.jpg")
    assert parsed is not None and parsed.emotion == "contempt" and parsed.raw_emotion == "contempt"


def test_a_declared_pattern_parses_subject_emotion_and_attributes_through_its_codes():
    from benchmark.core.design import ImagesDeclaration

    kdef = ImagesDeclaration(naming="pattern", pattern=r"^A(?P<gender>[FM])(?P<subject>\d\d)(?P<emotion>[A-Z]{2})S\.JPG$",
                             codes={"emotion": {"AN": "anger", "HA": "happy", "SU": "surprise"}})
    parsed = names.parse(kdef, "AF07SUS.JPG")
    assert (parsed.subject, parsed.emotion, parsed.labels) == ("07", "surprise", {"gender": "female"})
    assert names.parse(kdef, "AF07SUS.png") is None


def test_a_pattern_without_subject_makes_each_file_its_own_subject():
    from benchmark.core.design import ImagesDeclaration

    wild = ImagesDeclaration(naming="pattern", pattern=r"^(?P<emotion>[a-z]+)_\d+\.jpg$")
    assert names.parse(wild, "happy_0042.jpg").subject == "happy_0042"


@pytest.mark.parametrize("name", ["125_x_f_a_a.jpg", "125_y_f_a.jpg", "abc_y_f_a_a.jpg", "125_y_f_z_a.jpg"])
def test_malformed_faces_names_are_rejected(name):
    assert names.parse_faces(name) is None


@pytest.mark.parametrize("name", ["X01-Anger-Apex.jpg", "F1-Anger-Apex.jpg", "F01-Anger.jpg", "F01_Anger_Apex.jpg"])
def test_malformed_adfes_names_are_rejected(name):
    assert names.parse_adfes(name) is None
