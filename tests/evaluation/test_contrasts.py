"""Contrasts (``evaluate.contrasts``): pairs of methods compared directly, a - b, on the same resamples, written to
stats.parquet as their own rows with their own Holm family and to metrics.json under ``contrasts``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from toy_predictions import write_pipeline_predictions

from benchmark import stats
from benchmark.evaluation import contrasts
from benchmark.experiment.params import load_settings
from benchmark.stages import evaluate

METHODS = {"uncorrected": (1, 0.0), "corrector": (2, 3.0), "unimodal": (1, 1.0), "label_mask": (1, 2.0)}
PAIRS = [["corrector", "unimodal"], ["corrector", "label_mask"], ["crossmodal_linear", "unimodal"]]
SETTINGS = {"tracking.enabled": False, "evaluate.n_resamples": 200, "evaluate.n_permutations": 200,
            "evaluate.contrasts": PAIRS}
KEY = ["split", "dataset", "partition", "task", "metric", "group", "emotion"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("contrasts")
    source = write_pipeline_predictions(folder / "predictions.parquet", methods=METHODS)
    out = {"metrics": folder / "metrics.json", "cells": folder / "cells.csv", "stats": folder / "stats.parquet",
           "confusion": folder / "confusion.parquet"}
    evaluate.run(load_settings(REPO / "params.yaml", overrides=SETTINGS), source=source, metrics_path=out["metrics"],
                 cells_path=out["cells"], stats_path=out["stats"], confusion_path=out["confusion"])
    return out


def _table(evaluated) -> pd.DataFrame:
    return pd.read_parquet(evaluated["stats"]).fillna({"group": "", "emotion": ""})


def test_a_contrast_is_the_difference_of_the_two_methods_estimates(evaluated):
    table = _table(evaluated)
    rows = table[table["method"] == stats.contrast_name("corrector", "unimodal")]
    assert len(rows) > 0 and rows["contrast"].all()
    a = table[table["method"] == "corrector"].set_index(KEY)["estimate"]
    b = table[table["method"] == "unimodal"].set_index(KEY)["estimate"]
    diff = rows.set_index(KEY)["diff"]
    assert np.allclose(diff, (a - b).loc[diff.index], atol=1e-6)
    assert (rows["diff_ci_low"] <= rows["diff"] + 1e-9).all() and (rows["diff"] <= rows["diff_ci_high"] + 1e-9).all()


def test_contrasts_form_their_own_holm_family_apart_from_the_comparisons_with_the_reference(evaluated):
    table = _table(evaluated)
    for flag in (True, False):
        family = table[(table["contrast"] == flag) & table["p_perm"].notna()]
        for _, rows in family.groupby(KEY):
            assert np.allclose(rows["p_holm"], stats.holm(rows["p_perm"].to_numpy()), equal_nan=True)
    both = table[table["contrast"] & table["p_perm"].notna()].groupby(KEY)["method"].nunique()
    assert (both == 2).all()  # the two computed contrasts share each family; the methods' rows are not in it


def test_metrics_json_has_the_contrasts_numbers_and_says_which_pairs_were_not_computed(evaluated):
    doc = json.loads(evaluated["metrics"].read_text())
    table = _table(evaluated)
    name = stats.contrast_name("corrector", "label_mask")
    row = table[(table["method"] == name) & (table["partition"] == "test") & (table["task"] == "emotion")
                & (table["metric"] == "macro")].iloc[0]
    slot = doc["contrasts"][row["split"]][name][f"{row['dataset']}_test"]["emotion"]
    assert slot["macro_diff"] == round(row["diff"], 2) and slot["macro_p_holm"] == round(row["p_holm"], 4)
    assert slot["macro_diff_ci_low"] == round(row["diff_ci_low"], 2)
    assert doc["contrasts_requested"] == [{"pair": pair, "computed": pair[0] != "crossmodal_linear"} for pair in PAIRS]


def test_the_methods_outputs_other_than_stats_and_metrics_json_leave_contrasts_out(evaluated):
    cells = pd.read_csv(evaluated["cells"])
    assert not any(" vs " in str(method) for method in cells["method"].unique())
    assert set(contrasts.method_rows(_table(evaluated))["method"]) == set(METHODS)


def test_a_primary_contrast_is_made_even_where_evaluate_contrasts_does_not_list_it():
    assert contrasts.pairs([["a", "b"]], ["corrector", "corrector vs unimodal", "a vs b"]) == (
        ("a", "b"), ("corrector", "unimodal"))
    assert contrasts.pairs([], ["corrector"]) == ()
