"""An evaluation group's design from prediction rows (benchmark.stats.cells.subject_design, correctness): images
sorted, subjects as names, and every inconsistency one BenchmarkError naming what was wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from toy_predictions import LAYOUT, clustered_predictions

from benchmark.infra.errors import BenchmarkError
from benchmark.stats.cells import correctness, subject_design

TASKS = ("gender", "emotion")


@pytest.fixture
def rows() -> pd.DataFrame:
    frame = clustered_predictions(subjects_per_gender=3, images_per_cell=1, seeds={"method": 2})
    return frame[frame["method"] == "method"].reset_index(drop=True)


def test_images_are_sorted_and_each_knows_its_subject_and_cell(rows):
    design = subject_design(rows, LAYOUT, TASKS, "g")
    assert list(design.image_ids) == sorted(rows["image_id"].unique())
    first = rows.drop_duplicates("image_id").set_index("image_id").loc[design.image_ids]
    assert list(design.subjects[design.image_subject]) == first["subject"].astype(str).tolist()
    expected_cell = [LAYOUT.groups.index(g) * len(LAYOUT.emotions) + LAYOUT.emotions.index(e)
                     for g, e in zip(first["gender"], first["emotion"])]
    assert design.image_cell.tolist() == expected_cell
    assert design.counts.sum() == len(design.image_ids)


def test_numeric_subject_ids_are_names(rows):
    numbered = rows.assign(subject=rows["subject"].factorize()[0] + 8)  # 8, 9, 10, ...
    design = subject_design(numbered, LAYOUT, TASKS, "g")
    assert list(design.subjects) == sorted(str(s) for s in numbered["subject"].unique())  # "10" before "8"


def test_an_image_with_two_different_true_labels_is_refused(rows):
    bad = rows.copy()
    row = bad.index[bad["seed"] == 1][0]  # one image's row of the second seed says another emotion
    bad.loc[row, "emotion"] = next(e for e in LAYOUT.emotions if e != bad.loc[row, "emotion"])
    with pytest.raises(BenchmarkError, match=f"g: image '{bad.loc[row, 'image_id']}' carries different true labels"):
        subject_design(bad, LAYOUT, TASKS, "g")


def test_a_subject_in_two_groups_is_refused(rows):
    bad = rows.copy()
    subject = bad["subject"].iloc[0]
    flip = bad.index[bad["subject"] == subject][-1]
    image = bad.loc[flip, "image_id"]
    other = "male" if bad.loc[flip, "gender"] == "female" else "female"
    bad.loc[bad["image_id"] == image, "gender"] = other
    with pytest.raises(BenchmarkError, match=f"g: subject '{subject}' has images in two gender groups"):
        subject_design(bad, LAYOUT, TASKS, "g")


def test_missing_labels_and_unknown_labels_are_refused(rows):
    missing = rows.copy()
    missing.loc[3, "subject"] = np.nan
    with pytest.raises(BenchmarkError, match="g: column 'subject' is missing in 1 row"):
        subject_design(missing, LAYOUT, TASKS, "g")
    unknown = rows.assign(emotion=rows["emotion"].replace({"happy": "joy"}))
    with pytest.raises(BenchmarkError, match=r"g: unknown true label\(s\) \['joy'\]"):
        subject_design(unknown, LAYOUT, TASKS, "g")


def test_correctness_is_per_task_seed_and_image_and_refuses_a_repeated_prediction(rows):
    design = subject_design(rows, LAYOUT, TASKS, "g")
    seeds, correct = correctness(rows, design, "m")
    assert seeds == (0, 1) and correct.shape == (2, 2, len(design.image_ids))
    one = rows[rows["seed"] == 1].set_index("image_id").loc[design.image_ids]
    assert correct[1, 1].tolist() == (one["pred_emotion"] == one["emotion"]).tolist()
    with pytest.raises(BenchmarkError, match="is predicted twice for seed 0"):
        correctness(pd.concat([rows, rows[rows["seed"] == 0].head(1)]), design, "m")
