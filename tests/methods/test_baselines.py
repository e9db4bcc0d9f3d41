"""Baselines: each beats or matches the uncorrected outputs on toy tables whose biases are known, and each fixes the
bias it is built for."""

from __future__ import annotations

import numpy as np
import pytest
from toy import GENDER, make_toy_table

from benchmark.core import metrics
from benchmark.core.design import layout
from benchmark.core.labels import EMONET_EMOTIONS
from benchmark.core.outputs import OutputsTable
from benchmark.core.settings import CorrectorSettings, LinearSettings
from benchmark.methods.baselines import CrossmodalLinear, LabelMask, Uncorrected, Unimodal
from benchmark.methods.corrector import Corrector
from benchmark.methods.method import FitTask


def biased_table(seed: int) -> OutputsTable:
    """Toy outputs with three known biases.

    - emotion: the model favours ``contempt`` (no image carries it): +2.5 on its logit;
    - gender, global: FairFace leans male (+1.5 on the log-odds of every image);
    - gender, cross-modal: angry women look male (+3 more on their log-odds).
    """
    table = make_toy_table(subjects_per_gender=8, images_per_cell=3, seed=seed)
    frame = table.frame.copy()
    frame["emo_contempt"] += 2.5
    log_odds = np.log(frame["p_male"] / frame["p_female"]) + 1.5
    log_odds += 3.0 * ((frame["gender"] == "female") & (frame["emotion"] == "anger"))
    frame["p_male"] = 1.0 / (1.0 + np.exp(-log_odds))
    frame["p_female"] = 1.0 - frame["p_male"]
    return OutputsTable(frame, table.design, table.emotion_classes, {"source": "toy"})


@pytest.fixture(scope="module")
def scores():
    """Macro accuracy per (method, task) on a fresh biased table, every method fitted on another one."""
    train, test = biased_table(seed=1), biased_table(seed=2)
    methods = [Uncorrected(), LabelMask(), Unimodal(LinearSettings()), CrossmodalLinear(LinearSettings()),
               Corrector(CorrectorSettings(epochs=60))]
    out = {}
    for method in methods:
        probs = method.run([FitTask(train, {"test": test}, 0, GENDER)])[0]["test"]
        canonical = np.array(EMONET_EMOTIONS, dtype=object)
        cells = layout(test.design, GENDER)
        for task, predicted in (("gender", np.array(GENDER.groups)[probs.attribute.argmax(1)]),
                                ("emotion", canonical[probs.emotion.argmax(1)])):
            correct = predicted == test.frame[task].to_numpy()
            out[method.name, task] = metrics.summarize(metrics.cell_accuracies(
                group=test.frame["gender"].to_numpy(), emotion=test.frame["emotion"].to_numpy(), correct=correct,
                layout=cells), cells)
    return out


@pytest.mark.parametrize("method", ["label_mask", "unimodal", "crossmodal_linear", "corrector"])
@pytest.mark.parametrize("task", ["gender", "emotion"])
def test_method_beats_or_matches_uncorrected_on_known_biases(scores, method, task):
    assert scores[method, task].macro >= scores["uncorrected", task].macro


def test_label_mask_removes_predictions_of_absent_emotions(scores):
    assert scores["label_mask", "emotion"].macro > scores["uncorrected", "emotion"].macro + 5


def test_unimodal_recalibrates_the_male_leaning_gender_model(scores):
    assert scores["unimodal", "gender"].macro > scores["uncorrected", "gender"].macro + 5


def test_crossmodal_linear_fixes_what_unimodal_cannot_see(scores):
    anger_gap = {m: scores[m, "gender"].gaps["anger"] for m in ("unimodal", "crossmodal_linear")}
    assert anger_gap["crossmodal_linear"] < anger_gap["unimodal"] - 10


def test_label_mask_gives_absent_emotions_probability_zero():
    train = make_toy_table(seed=0)
    probs = LabelMask().run([FitTask(train, {"test": train}, 0, GENDER)])[0]["test"]
    absent = [EMONET_EMOTIONS.index("surprise"), EMONET_EMOTIONS.index("contempt")]
    assert (probs.emotion[:, absent] == 0).all()
    np.testing.assert_allclose(probs.emotion.sum(axis=1), 1.0)
    np.testing.assert_array_equal(probs.attribute, train.frame[["p_male", "p_female"]].to_numpy())


def test_logistic_baselines_give_classes_absent_from_training_probability_zero():
    train = make_toy_table(seed=0)
    probs = CrossmodalLinear(LinearSettings()).run([FitTask(train, {"test": train}, 0, GENDER)])[0]["test"]
    assert probs.emotion.shape == (len(train.frame), len(EMONET_EMOTIONS))
    assert (probs.emotion[:, EMONET_EMOTIONS.index("contempt")] == 0).all()
    np.testing.assert_allclose(probs.emotion.sum(axis=1), 1.0)


def test_logistic_baselines_are_deterministic():
    train, test = make_toy_table(seed=0), make_toy_table(seed=1)
    a = Unimodal(LinearSettings()).run([FitTask(train, {"test": test}, 0, GENDER)])[0]["test"]
    b = Unimodal(LinearSettings()).run([FitTask(train, {"test": test}, 3, GENDER)])[0]["test"]
    np.testing.assert_array_equal(a.emotion, b.emotion)
    np.testing.assert_array_equal(a.attribute, b.attribute)
