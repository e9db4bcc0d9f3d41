"""The predicted-attribute audit: metrics grouped by the true attribute reproduce stats.parquet's, grouping by a
perfect attribute model changes nothing, a known attribute-model error shows as a known gap, and the attribute
model's accuracy per emotion is counted right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from toy_predictions import LAYOUT, pipeline_predictions

from benchmark import stats
from benchmark.evaluation.audit import attribute_accuracy, attribute_job, gap_audit, gap_job
from benchmark.infra import processes

CONFIG = stats.StatsConfig(n_resamples=200, ci=0.95, seed=0)
LAYOUTS = {"faces": LAYOUT, "adfes": LAYOUT}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pipeline_predictions(methods={"uncorrected": (1, 0.0), "better": (3, 3.0)})[0]


def _rows(audit: pd.DataFrame, **where) -> pd.DataFrame:
    mask = np.ones(len(audit), dtype=bool)
    for column, value in where.items():
        mask &= (audit[column] == value).to_numpy()
    return audit[mask]


def test_grouping_by_the_true_attribute_reproduces_the_statistics_tables_estimates(frame):
    audit = gap_audit(frame, attribute="gender", layouts=LAYOUTS, config=CONFIG)
    table = stats.analyse(frame, reference="uncorrected", layouts=LAYOUTS, attribute="gender",
                          config=stats.StatsConfig(n_resamples=20, n_permutations=20))
    keys = ["split", "partition", "dataset", "method", "metric", "group", "emotion"]
    mine = _rows(audit, grouping="true").set_index(keys)["estimate"]
    theirs = table[table["task"] == "emotion"].set_index(keys)["estimate"]
    pd.testing.assert_series_equal(mine.sort_index(), theirs.reindex(mine.index).sort_index(), check_names=False,
                                   atol=1e-9)


def test_a_perfect_attribute_model_makes_no_difference(frame):
    perfect = frame.assign(pred_gender=frame["gender"])
    audit = gap_audit(perfect, attribute="gender", layouts=LAYOUTS, config=CONFIG)
    difference = _rows(audit, grouping="difference")
    assert np.allclose(difference["estimate"], 0.0) and np.allclose(difference[["ci_low", "ci_high"]], 0.0)


def test_misread_women_show_as_a_known_gap():
    """Known answer: an emotion model right everywhere except on women's anger (always wrong there), and an attribute
    model that calls half of the women (by subject) men when they look angry. By true gender the anger gap is
    100 - 0 points; by predicted gender the 'men' in anger are every man (right) plus half the angry women (wrong),
    2/3 right, and the 'women' the other half (wrong): a gap of 66.7 points, 33.3 less."""
    frame = pipeline_predictions(methods={"uncorrected": (1, 0.0)})[0]
    frame = frame[frame["partition"] == "train"].copy()
    angry_women = (frame["gender"] == "female") & (frame["emotion"] == "anger")
    frame["pred_emotion"] = np.where(angry_women, "happiness", frame["emotion"])
    frame["pred_gender"] = frame["gender"]
    subjects = sorted(frame.loc[angry_women, "subject"].unique())
    misread = angry_women & frame["subject"].isin(subjects[: len(subjects) // 2])
    frame.loc[misread, "pred_gender"] = "male"
    audit = gap_audit(frame, attribute="gender", layouts={"faces": LAYOUT}, config=CONFIG)
    anger = _rows(audit, metric="gap", emotion="anger").set_index("grouping")["estimate"]
    assert anger["true"] == pytest.approx(100.0)
    assert anger["predicted"] == pytest.approx(100.0 * 2 / 3)
    assert anger["difference"] == pytest.approx(-100.0 / 3)


def test_the_audit_is_deterministic(frame):
    a = gap_audit(frame, attribute="gender", layouts=LAYOUTS, config=CONFIG)
    b = gap_audit(frame, attribute="gender", layouts=LAYOUTS, config=CONFIG)
    pd.testing.assert_frame_equal(a, b)


def test_the_audit_run_in_the_same_pool_as_the_analysis_gives_the_same_tables(frame, monkeypatch):
    monkeypatch.setattr(processes, "available_cores", lambda: [0, 1])
    config = stats.StatsConfig(n_resamples=20, n_permutations=20)
    design = dict(layouts=LAYOUTS, attribute="gender")
    table, gaps, accuracy = processes.run_jobs([
        stats.analysis_job(frame, reference="uncorrected", config=config, **design),
        gap_job(frame, config=CONFIG, **design), attribute_job(frame, config=CONFIG, **design)])
    monkeypatch.setattr(processes, "available_cores", lambda: [0])
    pd.testing.assert_frame_equal(table, stats.analyse(frame, reference="uncorrected", config=config, **design))
    pd.testing.assert_frame_equal(gaps, gap_audit(frame, config=CONFIG, **design))
    pd.testing.assert_frame_equal(accuracy, attribute_accuracy(frame, config=CONFIG, **design))


def test_no_audit_without_the_attribute_models_rows(frame):
    assert gap_audit(frame[frame["method"] != "uncorrected"], attribute="gender", layouts=LAYOUTS).empty


def test_attribute_accuracy_counts_the_models_confusion_per_emotion(frame):
    table = attribute_accuracy(frame, attribute="gender", layouts=LAYOUTS, config=CONFIG)
    images = frame[frame["method"] == "uncorrected"].drop_duplicates(["dataset", "image_id"])
    for row in table.to_dict("records"):
        these = images[(images["dataset"] == row["dataset"]) & (images["emotion"] == row["emotion"])]
        assert row["accuracy"] == pytest.approx(100.0 * (these["gender"] == these["pred_gender"]).mean())
        women = these[these["gender"] == "female"]
        assert row["female -> male"] == pytest.approx(100.0 * (women["pred_gender"] == "male").mean())
        assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
