"""The paper's metrics over declared cells: cell accuracies, macro accuracy, per-emotion gaps (|A - B| for two
groups, max - min for more), largest and average gap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from toy import EMOTIONS

from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.core.labels import GENDERS

PAPER = CellLayout(GENDERS, EMOTIONS)
AGES = CellLayout(("young", "middle", "older"), EMOTIONS)


def _design(n_per_cell: int = 4, layout: CellLayout = PAPER):
    groups, emotions = [], []
    for g in layout.groups:
        for e in layout.emotions:
            groups += [g] * n_per_cell
            emotions += [e] * n_per_cell
    return np.array(groups), np.array(emotions)


def _cells(group, emotion, correct, layout=PAPER):
    return metrics.cell_accuracies(group=group, emotion=emotion, correct=correct, layout=layout)


def test_cell_accuracy_is_the_fraction_correct_in_percent():
    gender, emotion = _design(4)
    correct = np.ones(len(gender), dtype=bool)
    correct[(gender == "male") & (emotion == "sad")] = [True, False, False, False]
    cells = _cells(gender, emotion, correct)
    assert cells.loc[("male", "sad"), "accuracy"] == 25.0
    assert cells.loc[("female", "sad"), "accuracy"] == 100.0
    assert (cells["n"] == 4).all()


def test_gaps_are_absolute_male_female_differences_per_emotion():
    gender, emotion = _design(4)
    correct = np.ones(len(gender), dtype=bool)
    correct[(gender == "male") & (emotion == "sad")] = [True, False, False, False]   # male sad 25
    correct[(gender == "female") & (emotion == "fear")] = [False, False, True, True]  # female fear 50
    summary = metrics.summarize(_cells(gender, emotion, correct), PAPER)
    assert summary.gaps["sad"] == 75.0
    assert summary.gaps["fear"] == 50.0
    assert summary.largest_gap == 75.0
    assert summary.average_gap == pytest.approx((75 + 50) / 6)
    assert summary.macro == pytest.approx((12 * 100 - 75 - 50) / 12)


def test_gap_of_three_groups_is_the_spread_max_minus_min():
    group, emotion = _design(4, AGES)
    correct = np.ones(len(group), dtype=bool)
    correct[(group == "young") & (emotion == "sad")] = [True, True, True, False]    # 75
    correct[(group == "older") & (emotion == "sad")] = [True, False, False, False]  # 25; middle 100
    summary = metrics.summarize(_cells(group, emotion, correct, AGES), AGES)
    assert summary.gaps["sad"] == 75.0 and summary.gaps["happy"] == 0.0
    assert summary.macro == pytest.approx((18 * 100 - 25 - 75) / 18)


def test_empty_cell_is_nan_not_dropped():
    gender, emotion = _design(2)
    keep = ~((gender == "female") & (emotion == "anger"))
    cells = _cells(gender[keep], emotion[keep], np.ones(keep.sum(), bool))
    assert len(cells) == 12
    assert np.isnan(cells.loc[("female", "anger"), "accuracy"])
    assert cells.loc[("female", "anger"), "n"] == 0


def test_macro_is_the_unweighted_mean_of_cells_not_image_accuracy():
    gender = np.array(["male"] * 10 + ["female"] * 2)
    emotion = np.array(["happy"] * 12)
    correct = np.array([True] * 10 + [False] * 2)
    happy = _cells(gender, emotion, correct).xs("happy", level="emotion")["accuracy"]
    assert happy.mean() == 50.0


def test_uncorrected_published_outputs_reproduce_the_paper_table(published_tables):
    from toy import GENDER

    from benchmark.core.labels import EMONET_EMOTIONS
    from benchmark.core.paper import PAPER_TABLE

    for (dataset, task), paper in PAPER_TABLE.items():
        frame = published_tables[dataset].frame
        if task == "gender":
            predicted = np.array(GENDER.groups)[GENDER.group_probabilities(frame).argmax(axis=1)]
        else:
            predicted = np.array(EMONET_EMOTIONS)[published_tables[dataset].emotion_logits().argmax(axis=1)]
        summary = metrics.summarize(_cells(frame["gender"], frame["emotion"], predicted == frame[task].to_numpy()),
                                    PAPER)
        got = tuple(round(v, 2) for v in (summary.macro, summary.largest_gap, summary.average_gap))
        assert got == paper["uncorrected"], (dataset, task)


def test_published_cell_counts_match_the_design(published_tables):
    for dataset, (female, male) in {"adfes": (10, 12), "faces": (170, 172)}.items():
        frame = published_tables[dataset].frame
        cells = _cells(frame["gender"], frame["emotion"], np.ones(len(frame), bool))
        assert (cells.xs("female", level="group")["n"] == female).all()
        assert (cells.xs("male", level="group")["n"] == male).all()


def test_predicting_a_class_outside_the_design_counts_as_an_error():
    cells = _cells(np.array(["male"] * 2), np.array(["happy"] * 2), np.array(["happy", "surprise"]) == "happy")
    assert cells.loc[("male", "happy"), "accuracy"] == 50.0


@pytest.mark.parametrize("attribute", ["gender", "age_group", "gender*age_group"])
def test_summaries_by_group_equal_summarize_on_each_group(attribute):
    from toy import make_toy_table

    from benchmark.core import design, predictions

    table = make_toy_table()
    ages = np.resize(np.array(["young", "middle", "older"]), table.frame["subject"].nunique())
    table.frame["age_group"] = table.frame["subject"].map(dict(zip(table.frame["subject"].unique(), ages)))
    attr = design.attribute_of(table.design, attribute)
    layout = design.layout(table.design, attr)
    rng = np.random.default_rng(3)
    rows = []
    for seed in range(3):
        g = rng.dirichlet(np.ones(len(attr.groups)), size=len(table.frame))
        e = rng.dirichlet(np.ones(len(table.emotion_classes)), size=len(table.frame))
        rows.append(predictions.make_rows(table, attribute=attr, split="s", fold=0, method="m", seed=seed,
                                          partition="test", group_probs=g, emotion_probs=e))
    cells = metrics.cells_by_group(pd.concat(rows, ignore_index=True), tasks=predictions.tasks(attribute),
                                   layouts={"faces": layout})
    fast = metrics.summaries_by_group(cells)
    for row in fast.to_dict("records"):
        group = cells[(cells["seed"] == row["seed"]) & (cells["task"] == row["task"])]
        oracle = metrics.summarize(group.set_index(["group", "emotion"])[["n", "accuracy"]], layout)
        assert (row["macro"], row["largest_gap"], row["average_gap"]) == pytest.approx(
            (oracle.macro, oracle.largest_gap, oracle.average_gap))
    assert len(fast) == 3 * 2 and len(cells) == 3 * 2 * layout.n_cells
