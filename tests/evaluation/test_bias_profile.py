"""The training data's bias profile (dataset-bias-metrics) on tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from toy import make_toy_table

from benchmark.core.outputs import OutputsTable
from benchmark.infra.optional import available

pytestmark = pytest.mark.skipif(not available("dataset_bias_metrics"), reason="optional extra 'fairness' not installed")


def _value(frame: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(frame), dtype=bool)
    for column, value in where.items():
        mask &= (frame[column] == value).to_numpy()
    return frame.loc[mask, "value"]


def test_a_balanced_design_has_no_label_co_occurrence():
    from benchmark.evaluation.bias_profile import profile

    table = profile({"faces": make_toy_table()})
    assert np.allclose(_value(table, labels="gender x emotion", measure="npmi"), 0.0)
    assert np.allclose(_value(table, labels="gender x emotion", measure="lewontins_d"), 0.0)
    assert _value(table, labels="gender", measure="shannon_evenness").item() == pytest.approx(1.0)
    assert _value(table, labels="emotion", measure="richness").item() == 6


def test_known_imbalance_and_stereotype_are_measured():
    """Known answers: 3 men per woman gives an imbalance ratio of 3 and a Berger-Parker index of 0.75; only women
    showing fear gives female x fear an NPMI above 0 and male x fear the minimum, -1."""
    from benchmark.evaluation.bias_profile import profile

    toy = make_toy_table(subjects_per_gender=6)
    frame = toy.frame
    keep = (frame["gender"] == "male") | frame["subject"].isin(["f00", "f01"])
    frame = frame[keep & ~((frame["gender"] == "male") & (frame["emotion"] == "fear"))].reset_index(drop=True)
    frame = pd.concat([frame, frame[frame["gender"] == "male"].assign(image_id=lambda f: "x" + f["image_id"])])
    table = profile({"t": OutputsTable(frame.reset_index(drop=True), toy.design, toy.emotion_classes, {})})
    male, female = (frame["gender"] == "male").sum(), (frame["gender"] == "female").sum()
    assert _value(table, labels="gender", measure="imbalance_ratio").item() == pytest.approx(male / female)
    assert _value(table, labels="gender", measure="berger_parker").item() == pytest.approx(male / len(frame))
    assert _value(table, labels="gender x emotion", measure="npmi", row="male", column="fear").item() == -1.0
    assert _value(table, labels="gender x emotion", measure="npmi", row="female", column="fear").item() > 0.0
