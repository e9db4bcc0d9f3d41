"""The paper's metrics: cell accuracies, macro accuracy, per-emotion gaps, largest and average gap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark import metrics
from benchmark.labels import GENDERS
from toy import EMOTIONS


def _design(n_per_cell: int = 4):
    genders, emotions = [], []
    for g in GENDERS:
        for e in EMOTIONS:
            genders += [g] * n_per_cell
            emotions += [e] * n_per_cell
    return np.array(genders), np.array(emotions)


def test_cell_accuracy_is_the_fraction_correct_in_percent():
    gender, emotion = _design(4)
    correct = np.ones(len(gender), dtype=bool)
    correct[(gender == "male") & (emotion == "sad")] = [True, False, False, False]
    cells = metrics.cell_accuracies(gender=gender, emotion=emotion, correct=correct)
    assert cells.loc[("male", "sad"), "accuracy"] == 25.0
    assert cells.loc[("female", "sad"), "accuracy"] == 100.0
    assert (cells["n"] == 4).all()


def test_gaps_are_absolute_male_female_differences_per_emotion():
    gender, emotion = _design(4)
    correct = np.ones(len(gender), dtype=bool)
    correct[(gender == "male") & (emotion == "sad")] = [True, False, False, False]   # male sad 25
    correct[(gender == "female") & (emotion == "fear")] = [False, False, True, True]  # female fear 50
    summary = metrics.summarize(metrics.cell_accuracies(gender=gender, emotion=emotion, correct=correct))
    assert summary.gaps["sad"] == 75.0
    assert summary.gaps["fear"] == 50.0
    assert summary.largest_gap == 75.0
    assert summary.average_gap == pytest.approx((75 + 50) / 6)
    assert summary.macro == pytest.approx((12 * 100 - 75 - 50) / 12)


def test_empty_cell_is_nan_not_dropped():
    gender, emotion = _design(2)
    keep = ~((gender == "female") & (emotion == "anger"))
    cells = metrics.cell_accuracies(gender=gender[keep], emotion=emotion[keep], correct=np.ones(keep.sum(), bool))
    assert len(cells) == 12
    assert np.isnan(cells.loc[("female", "anger"), "accuracy"])
    assert cells.loc[("female", "anger"), "n"] == 0


def test_macro_is_the_unweighted_mean_of_cells_not_image_accuracy():
    gender = np.array(["male"] * 10 + ["female"] * 2)
    emotion = np.array(["happy"] * 12)
    correct = np.array([True] * 10 + [False] * 2)
    cells = metrics.cell_accuracies(gender=gender, emotion=emotion, correct=correct)
    happy = cells.xs("happy", level="emotion")["accuracy"]
    assert happy.mean() == 50.0


def test_uncorrected_published_outputs_reproduce_the_paper_table(published_tables):
    from benchmark.labels import EMONET_EMOTIONS
    from benchmark.paper import PAPER_TABLE

    for (dataset, task), paper in PAPER_TABLE.items():
        table = published_tables[dataset]
        if task == "gender":
            predicted = np.array(GENDERS)[table.gender_probs().argmax(axis=1)]
        else:
            predicted = np.array(EMONET_EMOTIONS)[table.emotion_logits().argmax(axis=1)]
        summary = metrics.summarize(metrics.task_cells(table.frame, task=task, predicted=predicted))
        got = tuple(round(v, 2) for v in (summary.macro, summary.largest_gap, summary.average_gap))
        assert got == paper["uncorrected"], (dataset, task)


def test_published_cell_counts_match_the_design(published_tables):
    adfes = metrics.task_cells(published_tables["adfes"].frame, task="gender",
                               predicted=published_tables["adfes"].frame["gender"].to_numpy())
    assert (adfes.xs("female", level="gender")["n"] == 10).all()
    assert (adfes.xs("male", level="gender")["n"] == 12).all()
    faces = metrics.task_cells(published_tables["faces"].frame, task="gender",
                               predicted=published_tables["faces"].frame["gender"].to_numpy())
    assert (faces.xs("female", level="gender")["n"] == 170).all()
    assert (faces.xs("male", level="gender")["n"] == 172).all()


def test_predicting_a_class_outside_the_design_counts_as_an_error():
    frame = pd.DataFrame({"gender": ["male"] * 2, "emotion": ["happy"] * 2})
    cells = metrics.task_cells(frame, task="emotion", predicted=np.array(["happy", "surprise"]))
    assert cells.loc[("male", "happy"), "accuracy"] == 50.0


def test_summaries_by_group_equal_summarize_on_each_group():
    from benchmark import predictions
    from toy import make_toy_table

    table = make_toy_table()
    rng = np.random.default_rng(3)
    rows = []
    for seed in range(3):
        g = rng.dirichlet([1, 1], size=len(table.frame))
        e = rng.dirichlet(np.ones(len(table.emotion_classes)), size=len(table.frame))
        rows.append(predictions.make_rows(table, split="s", fold=0, method="m", seed=seed, partition="test",
                                          gender_probs=g, emotion_probs=e))
    cells = metrics.cells_by_group(pd.concat(rows, ignore_index=True))
    fast = metrics.summaries_by_group(cells)
    for row in fast.to_dict("records"):
        group = cells[(cells["seed"] == row["seed"]) & (cells["task"] == row["task"])]
        oracle = metrics.summarize(group.set_index(["gender", "emotion"])[["n", "accuracy"]])
        assert (row["macro"], row["largest_gap"], row["average_gap"]) == pytest.approx(
            (oracle.macro, oracle.largest_gap, oracle.average_gap))
    assert len(fast) == 3 * 2
