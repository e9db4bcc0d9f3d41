"""The simulator as ground truth for the methods and the statistics: on the `null` scenario (no cross-modal
dependence) cross-modal methods gain significantly over `unimodal` no more often than the test's level; on the `paper`
scenario the same procedure detects the cross-modal gain of `crossmodal_linear`; and the corrector's improvement on
faces->adfes has the sign it has on the published outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark import stats
from benchmark.core import design as designs
from benchmark.core import metrics
from benchmark.core.outputs import OutputsTable
from benchmark.core.settings import Settings, build
from benchmark.methods.method import FitTask, Probabilities
from benchmark.methods.method_registry import build_method
from benchmark.sources import sim

SHIPPED = designs.shipped()
GENDER = designs.attribute_of(SHIPPED["faces"], "gender")

pytestmark = pytest.mark.slow

ALPHA = 0.05
CROSS_MODAL = ("crossmodal_linear", "corrector")
#: Budgets: the corrector with 100 epochs (the paper: 500) keeps the 20-seed null study at a few seconds per seed.
SETTINGS = build(Settings, {"train": {"corrector": {"epochs": 100}}}, "test settings")
PERMUTATIONS = stats.StatsConfig(n_resamples=1, n_permutations=999, seed=0)


def _rows(table: OutputsTable, probs: Probabilities) -> pd.DataFrame:
    """Prediction rows as :func:`benchmark.stats.compare` reads them (one seed)."""
    f = table.frame
    return pd.DataFrame({"seed": 0, "image_id": f["image_id"], "subject": f["subject"], "gender": f["gender"],
                         "emotion": f["emotion"], "pred_gender": np.asarray(GENDER.groups)[probs.attribute.argmax(axis=1)],
                         "pred_emotion": np.asarray(table.emotion_classes)[probs.emotion.argmax(axis=1)]})


def _gains(scenario: str, *, seed: int, methods: tuple[str, ...], test_scale: int = 1) -> pd.DataFrame:
    """Macro-accuracy gain over `unimodal` on a simulated ADFES test set, trained on a simulated FACES sample, with the
    subject-level permutation p-value: one row per (method, task) with columns diff (points) and p."""
    model = sim.read(scenario)
    train = sim.sample_table(model, SHIPPED["faces"], seed=1000 + seed)
    test = sim.sample_table(model, SHIPPED["adfes"], seed=1000 + seed, scale=test_scale)

    def predict(name: str) -> Probabilities:
        return build_method(name, SETTINGS).run([FitTask(train, {"test": test}, 0, GENDER)])[0]["test"]

    reference = _rows(test, predict("unimodal"))
    layout = designs.layout(test.design, GENDER)
    out = []
    for name in methods:
        table = stats.compare(_rows(test, predict(name)), reference, layout=layout, attribute="gender",
                              config=PERMUTATIONS)
        row = table[(table["metric"] == "macro") & (table["method"] == "method")]
        out.append(pd.DataFrame({"method": name, "task": row["task"], "diff": row["diff"], "p": row["p_perm"]}))
    return pd.concat(out, ignore_index=True)


def _significant_gain(gains: pd.DataFrame) -> pd.Series:
    return (gains["p"] < ALPHA) & (gains["diff"] > 0)


def test_null_scenario_cross_modal_gains_are_significant_no_more_often_than_alpha():
    """20 samples of the real design x 2 methods x 2 tasks = 80 one-sided tests at 5 %: at most 8 may reject
    (P(Binomial(80, 0.05) >= 9) = 0.03 if every test were exactly at its level)."""
    gains = pd.concat([_gains("null", seed=s, methods=CROSS_MODAL) for s in range(20)], ignore_index=True)
    assert len(gains) == 80
    assert _significant_gain(gains).sum() <= 8, gains[_significant_gain(gains)]


def test_paper_scenario_cross_modal_gain_is_detected_where_the_null_has_none():
    """The positive control of the test above: with 20x ADFES test sets the emotion gain of `crossmodal_linear` over
    `unimodal` (same model, plus the other modality's outputs) is significant in most of 10 paper samples, and in at
    most 2 of 10 null ones (P(Binomial(10, 0.05) >= 3) = 0.01)."""
    def detected(scenario: str) -> int:
        gains = pd.concat([_gains(scenario, seed=s, methods=("crossmodal_linear",), test_scale=20) for s in range(10)])
        return int(_significant_gain(gains[gains["task"] == "emotion"]).sum())

    assert detected("paper") >= 5
    assert detected("null") <= 2


def _corrector_effect(train: OutputsTable, test: OutputsTable, *, n_models: int) -> pd.Series:
    """Corrector minus uncorrected on ``test`` (paper settings, seed mean of ``n_models``): (task, metric) -> points."""
    paper_settings = build(Settings, {}, "paper settings")

    layout = designs.layout(test.design, GENDER)

    def summaries(probs: Probabilities) -> dict:
        predicted = {"gender": np.asarray(GENDER.groups)[probs.attribute.argmax(axis=1)],
                     "emotion": np.asarray(test.emotion_classes)[probs.emotion.argmax(axis=1)]}
        out = {}
        for task, p in predicted.items():
            cells = metrics.cell_accuracies(group=test.frame["gender"].to_numpy(), emotion=test.frame["emotion"].to_numpy(),
                                            correct=p == test.frame[task].to_numpy(), layout=layout)
            out.update({(task, k): v for k, v in metrics.summarize(cells, layout).as_dict().items()})
        return out

    base = summaries(build_method("uncorrected", paper_settings).run([FitTask(train, {"test": test}, 0, GENDER)])[0]["test"])
    runs = build_method("corrector", paper_settings).run([FitTask(train, {"test": test}, s, GENDER)
                                                          for s in range(n_models)])
    return pd.DataFrame([{k: v - base[k] for k, v in summaries(r["test"]).items()} for r in runs]).mean()


@pytest.mark.needs_shared
def test_corrector_improvement_on_faces_to_adfes_has_the_published_sign(published_tables):
    """Macro accuracy of both tasks and the gender average gap move the same way on simulated data (FACES samples of
    the real design, 50x ADFES test sets, mean over 3 samples) as on the published outputs. The emotion average gap is
    reproduced only weakly (docs/SIMULATION.md) and is not asserted."""
    published = _corrector_effect(published_tables["faces"], published_tables["adfes"], n_models=5)
    model = sim.read("paper")
    simulated = pd.concat([_corrector_effect(sim.sample_table(model, SHIPPED["faces"], seed=100 + k),
                                             sim.sample_table(model, SHIPPED["adfes"], seed=100 + k, scale=50), n_models=5)
                           for k in range(3)], axis=1).mean(axis=1)
    for key in [("gender", "macro"), ("emotion", "macro"), ("gender", "average_gap")]:
        assert np.sign(simulated[key]) == np.sign(published[key]) != 0, (key, simulated[key], published[key])
