"""Metrics as objects (benchmark/core/metrics/): each metric's values from per-cell rates, the two metrics added as one
file each (worst-cell accuracy, the per-emotion false-positive-rate gap), and the statistics computing them from
prediction rows by channel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from toy_predictions import LAYOUT, clustered_predictions

from benchmark import stats
from benchmark.core import metrics
from benchmark.core.design import CellLayout

TWO = CellLayout(("female", "male"), ("happy", "sad", "anger"))


def _rates(values: list[list[float]], layout: CellLayout = TWO) -> metrics.CellRates:
    return metrics.CellRates(np.array(values, dtype=float), layout)


def test_every_metric_row_is_named_once_in_table_order():
    entries = metrics.entries(LAYOUT)
    assert len(entries) == len(set(entries))
    assert [name for name, _, _ in entries] == sorted((name for name, _, _ in entries),
                                                      key=[m.name for m in metrics.METRICS].index)


def test_worst_cell_accuracy_is_the_lowest_cell():
    rates = _rates([[90.0, 60.0, 75.0], [80.0, 95.0, 55.0]])
    assert metrics.by_name("worst_cell").values(rates).tolist() == [55.0]


def test_worst_cell_is_a_headline_metric_where_higher_is_better():
    worst = metrics.by_name("worst_cell")
    assert worst.headline and worst.better == "higher" and not worst.smooth and worst.improvement(+1.0)


def test_the_fpr_gap_is_the_spread_of_the_false_positive_rates_per_emotion():
    rates = _rates([[10.0, 20.0, 5.0], [25.0, 20.0, 0.0]])
    assert metrics.by_name("fpr_gap").values(rates).tolist() == [15.0, 0.0, 5.0]
    assert metrics.by_name("fpr_gap").channel == "fpr"


def test_a_smooth_metric_takes_the_seed_mean_of_the_rates_and_a_gap_the_mean_of_the_seeds_gaps():
    seeds = metrics.CellRates(np.array([[[50.0, 60.0, 70.0], [70.0, 60.0, 50.0]],
                                        [[70.0, 60.0, 50.0], [50.0, 60.0, 70.0]]]), TWO)  # (K=2, G, E)
    assert metrics.by_name("macro").seed_mean(seeds).tolist() == [60.0]
    assert metrics.by_name("average_gap").seed_mean(seeds).tolist() == pytest.approx([40.0 / 3])
    assert metrics.by_name("gap").seed_mean(seeds).tolist() == [20.0, 0.0, 20.0]  # the seed-mean rates have no gap


def test_metric_keys_name_the_row():
    assert metrics.row_key("macro", None, float("nan")) == "macro"
    assert metrics.row_key("fpr_gap", None, "anger") == "fpr_gap_anger"


def _rows(predicted_emotion: list[str]) -> pd.DataFrame:
    """Four people (two per gender), one image per emotion each, one seed; genders predicted right."""
    people = [("f1", "female"), ("f2", "female"), ("m1", "male"), ("m2", "male")]
    images = [(s, g, e) for s, g in people for e in TWO.emotions]
    genders = [g for _, g, _ in images]
    return pd.DataFrame({"seed": 0, "image_id": [f"{s}_{e}" for s, _, e in images], "subject": [s for s, _, _ in images],
                         "gender": genders, "emotion": [e for _, _, e in images], "pred_gender": genders,
                         "pred_emotion": predicted_emotion})


def _value(rows: pd.DataFrame, task: str, metric: str, emotion: str | None = None) -> float:
    seeds, values = stats.seed_values(rows, layout=TWO, attribute="gender")
    columns = [j for j, (name, _, e) in enumerate(stats.metric_entries(TWO)) if name == metric and e == emotion]
    return float(values[("gender", "emotion").index(task), 0, columns[0]])


def test_false_positive_rates_count_other_emotions_predicted_as_this_one_within_each_group():
    # f1 and f2: happy right, sad -> happy (a false positive of happy), anger right; the men all right
    rows = _rows(["happy", "happy", "anger"] * 2 + ["happy", "sad", "anger"] * 2)
    # women: 2 of their 4 non-happy images predicted happy -> FPR(female, happy) = 50; men 0 -> gap 50
    assert _value(rows, "emotion", "fpr_gap", "happy") == 50.0
    assert _value(rows, "emotion", "fpr_gap", "sad") == 0.0
    assert _value(rows, "emotion", "worst_cell") == 0.0  # female sad: never right


def test_for_two_groups_the_attribute_tasks_fpr_gap_equals_its_accuracy_gap():
    frame = clustered_predictions(subjects_per_gender=6, seed=2)
    rows = frame[frame["method"] == "method"].drop(columns=["method"])
    layout = LAYOUT
    seeds, values = stats.seed_values(rows, layout=layout, attribute="gender")
    entries = stats.metric_entries(layout)
    gap = [j for j, (m, _, _) in enumerate(entries) if m == "gap"]
    fpr = [j for j, (m, _, _) in enumerate(entries) if m == "fpr_gap"]
    np.testing.assert_allclose(values[0, 0, fpr], values[0, 0, gap])


def test_the_statistics_table_has_rows_for_both_new_metrics_with_intervals():
    frame = clustered_predictions(subjects_per_gender=6, seed=3)
    a = frame[frame["method"] == "method"]
    b = frame[frame["method"] == "reference"]
    table = stats.compare(a, b, layout=LAYOUT, attribute="gender",
                          config=stats.StatsConfig(n_resamples=200, n_permutations=200))
    for metric, n_rows in (("worst_cell", 1), ("fpr_gap", len(LAYOUT.emotions))):
        rows = table[(table["metric"] == metric) & (table["method"] == "method")]
        assert len(rows) == 2 * n_rows
        assert rows[["estimate", "ci_low", "ci_high", "diff", "p_perm"]].notna().all().all()
        assert (rows["ci_low"] <= rows["estimate"]).all() and (rows["estimate"] <= rows["ci_high"]).all()
