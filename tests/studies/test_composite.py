"""The composite null of the coverage harness (benchmark.studies.composite): the compared set's errors fall on whole
persons at the reference's cell accuracies."""

from __future__ import annotations

import numpy as np
import pandas as pd
from toy_predictions import LAYOUT, clustered_predictions

from benchmark.studies.composite import person_level_rows


def _reference() -> pd.DataFrame:
    frame = clustered_predictions(subjects_per_gender=30, seed=9)
    return frame[frame["method"] == "reference"].reset_index(drop=True)


def test_the_composite_sets_errors_fall_on_whole_persons_ordered_by_the_cells_accuracy():
    reference = _reference()
    rows = person_level_rows({"truth": reference, "r0": reference}, LAYOUT, "gender", seed=0)["r0"]
    correct = rows.assign(c=rows["pred_emotion"] == rows["emotion"])
    p = (reference["pred_emotion"] == reference["emotion"]).groupby([reference["gender"], reference["emotion"]]).mean()
    for (subject, gender), person in correct.groupby(["subject", "gender"]):
        by_cell = person.groupby("emotion")["c"].all()
        ranked = p.loc[gender].sort_values()
        right = by_cell.loc[ranked.index].to_numpy()
        assert (np.diff(right.astype(int)) >= 0).all(), subject  # right in a cell => right in every easier one


def test_the_composite_set_keeps_every_image_and_true_label_of_the_reference():
    reference = _reference()
    rows = person_level_rows({"truth": reference, "r0": reference}, LAYOUT, "gender", seed=0)["r0"]
    columns = ["image_id", "subject", "gender", "emotion"]
    pd.testing.assert_frame_equal(rows[columns], reference[columns])
    assert set(rows["pred_emotion"]) <= set(LAYOUT.emotions) and set(rows["pred_gender"]) <= set(LAYOUT.groups)
