"""The evaluate stage: stats.parquet, confusion.parquet, metrics.json (headline numbers with CIs and p-values) and
cells.csv from a predictions table; byte-identical on rerun; MLflow runs carry the intervals."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO
from toy import GENDER
from toy_predictions import write_pipeline_predictions

from benchmark import stats
from benchmark.core import metrics, predictions
from benchmark.core.metrics import SUMMARY_METRICS
from benchmark.core.paper import PAPER_PARTITION, PAPER_SPLIT, PAPER_TABLE
from benchmark.experiment.params import load_settings
from benchmark.methods.baselines import Uncorrected
from benchmark.methods.method import FitTask
from benchmark.stages import evaluate
from benchmark.stats import calibrated

METHODS = {"uncorrected": (1, 0.0), "corrector": (3, 3.0), "label_mask": (1, 1.0)}
SMALL = {"tracking.enabled": False, "evaluate.n_resamples": 300, "evaluate.n_permutations": 300}


def _run(tmp_path: Path, predictions_path: Path, **overrides) -> dict[str, Path]:
    settings = load_settings(REPO / "params.yaml", overrides={**SMALL, **overrides})
    out = {"metrics": tmp_path / "metrics.json", "cells": tmp_path / "cells.csv", "stats": tmp_path / "stats.parquet",
           "confusion": tmp_path / "confusion.parquet"}
    evaluate.run(settings, source=predictions_path, metrics_path=out["metrics"], cells_path=out["cells"],
                 stats_path=out["stats"], confusion_path=out["confusion"])
    return out


@pytest.fixture(scope="module")
def toy_predictions(tmp_path_factory) -> Path:
    return write_pipeline_predictions(tmp_path_factory.mktemp("pred") / "predictions.parquet", methods=METHODS)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, toy_predictions) -> dict[str, Path]:
    return _run(tmp_path_factory.mktemp("eval"), toy_predictions)


def test_evaluate_writes_stats_confusion_metrics_and_cells(evaluated):
    for path in evaluated.values():
        assert path.exists() and path.stat().st_size > 0, path
    table = pd.read_parquet(evaluated["stats"])
    assert set(table["method"]) == set(METHODS)
    assert set(zip(table["dataset"], table["partition"])) == {("adfes", "test"), ("faces", "train")}


def test_metrics_json_keeps_the_nested_layout_and_adds_intervals(evaluated):
    doc = json.loads(evaluated["metrics"].read_text())
    assert doc["units"] == "percent" and doc["reference"] == "uncorrected"
    assert doc["statistics"]["n_resamples"] == 300
    slot = doc["results"]["faces->adfes"]["corrector"]["adfes_test"]["emotion"]
    assert slot["n_seeds"] == 3
    keys = [*SUMMARY_METRICS, "worst_cell", *(f"fpr_gap_{e}" for e in ("anger", "happy", "neutral"))]
    for metric in keys:
        assert slot[f"{metric}_ci_low"] <= slot[f"{metric}_ci_high"]
        assert {f"{metric}_seed_sd", f"{metric}_diff", f"{metric}_diff_ci_low", f"{metric}_diff_ci_high",
                f"{metric}_p_perm", f"{metric}_p_holm"} <= set(slot)


def test_metrics_json_has_differences_only_for_compared_methods(evaluated):
    doc = json.loads(evaluated["metrics"].read_text())
    reference = doc["results"]["faces->adfes"]["uncorrected"]["adfes_test"]["emotion"]
    assert not [k for k in reference if "_diff" in k or "_p_" in k]


def test_metrics_json_numbers_are_the_stats_table_rounded(evaluated):
    doc = json.loads(evaluated["metrics"].read_text())
    table = pd.read_parquet(evaluated["stats"])
    headline = table[table["metric"].isin([m.name for m in metrics.HEADLINE]) & ~table["contrast"]]
    assert set(headline["metric"]) == {"macro", "largest_gap", "average_gap", "worst_cell", "fpr_gap"}
    for row in headline.to_dict("records"):
        slot = doc["results"][row["split"]][row["method"]][f"{row['dataset']}_{row['partition']}"][row["task"]]
        metric = metrics.row_key(row["metric"], row["group"], row["emotion"])
        assert slot[metric] == round(row["estimate"], 2)
        assert slot[f"{metric}_ci_low"] == round(row["ci_low"], 2)
        if row["method"] != "uncorrected":
            assert slot[f"{metric}_diff"] == round(row["diff"], 2)
            assert slot[f"{metric}_p_holm"] == round(row["p_holm"], 4)


def test_every_metric_dvc_compares_reaches_headline_json(evaluated):
    document = json.loads((evaluated["metrics"].parent / "headline.json").read_text())
    emotion = document["faces-to-adfes"]["emotion"]
    compared = {metrics.row_key(m.name, None, e) for m in metrics.METRICS if m.compared
                for e in ([None] if m.name != "fpr_gap" else ["anger", "sad"])}
    for role in ("corrector", "reference", "difference"):
        assert compared <= set(emotion[role]), (role, sorted(compared - set(emotion[role])))


def test_emotion_gain_of_the_boosted_method_is_significant(evaluated):
    doc = json.loads(evaluated["metrics"].read_text())
    slot = doc["results"]["faces->adfes"]["corrector"]["faces_train"]["emotion"]
    assert slot["macro_diff"] > 0 and slot["macro_diff_ci_low"] > 0 and slot["macro_p_holm"] < 0.05


def test_evaluate_is_byte_identical_on_rerun(tmp_path, toy_predictions, evaluated):
    again = _run(tmp_path, toy_predictions)
    for name, path in evaluated.items():
        assert path.read_bytes() == again[name].read_bytes(), name


def test_evaluate_records_the_scenario_of_simulated_predictions(tmp_path):
    source = write_pipeline_predictions(tmp_path / "p.parquet", source="sim", scenario="paper-like")
    doc = json.loads(_run(tmp_path, source)["metrics"].read_text())
    assert doc["source"] == "sim" and doc["scenario"] == "paper-like"


def test_cells_csv_has_an_interval_for_every_cell(evaluated):
    cells = pd.read_csv(evaluated["cells"])
    assert len(cells) == len(METHODS) * 2 * len(predictions.tasks("gender")) * 12
    assert cells[["accuracy", "ci_low", "ci_high"]].notna().all().all()
    assert (cells["ci_low"] <= cells["ci_high"]).all()


def test_confusion_rows_sum_to_the_images_of_each_gender(evaluated, toy_predictions):
    confusion = pd.read_parquet(evaluated["confusion"])
    frame = predictions.read(toy_predictions).frame
    one_seed = frame[frame["seed"] == 0].rename(columns={"gender": "group"})
    expected = one_seed.groupby(["split", "partition", "dataset", "method", "group"]).size()
    got = confusion.groupby(["split", "partition", "dataset", "method", "group"])["count"].sum()
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index().astype(float), check_names=False)


def test_evaluate_logs_intervals_to_mlflow(tmp_path, toy_predictions, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    _run(tmp_path, toy_predictions, **{"tracking.enabled": True})
    runs = mlflow.search_runs(experiment_names=["crossmodal-bias"], filter_string="tags.method = 'corrector'")
    assert len(runs) == 1
    assert runs["metrics.adfes_test.emotion/macro_diff_ci_low"].notna().all()
    assert runs["metrics.adfes_test.emotion/macro_ci_high"].notna().all()
    assert runs["metrics.adfes_test.emotion/worst_cell_diff"].notna().all()
    assert runs["metrics.adfes_test.emotion/fpr_gap_anger_ci_low"].notna().all()
    (parent,) = mlflow.search_runs(experiment_names=["crossmodal-bias"], filter_string="tags.`benchmark.kind` = 'pipeline'",
                                   output_format="list")
    headline = json.loads((tmp_path / "headline.json").read_text())   # what dvc exp show compares
    assert parent.data.metrics["faces-to-adfes.emotion/corrector_macro"] == \
        headline["faces-to-adfes"]["emotion"]["corrector"]["macro"]


def _published_uncorrected_predictions(tables, path: Path) -> Path:
    """The uncorrected method on split faces->adfes (ADFES test, FACES train partition), as the train stage writes it."""
    partitions = {PAPER_PARTITION[d]: tables[d] for d in ("faces", "adfes")}
    probs = Uncorrected().run([FitTask(tables["faces"], partitions, 0, GENDER)])[0]
    frame = pd.concat([predictions.make_rows(table, attribute=GENDER, split=PAPER_SPLIT, fold=0, method="uncorrected",
                                             seed=0, partition=partition, group_probs=probs[partition].attribute,
                                             emotion_probs=probs[partition].emotion)
                       for partition, table in partitions.items()], ignore_index=True)
    meta = predictions.metadata("gender", {d: tables[d].design for d in ("faces", "adfes")}, source="published")
    predictions.write(frame, path, emotion_classes=tables["faces"].emotion_classes, metadata=meta)
    return path


@pytest.mark.needs_shared
def test_evaluate_on_published_outputs_gives_the_paper_uncorrected_numbers_inside_their_cis(tmp_path, published_tables):
    source = _published_uncorrected_predictions(published_tables, tmp_path / "predictions.parquet")
    doc = json.loads(_run(tmp_path, source, **{"evaluate.n_resamples": 2000})["metrics"].read_text())
    for (dataset, task), paper in PAPER_TABLE.items():
        slot = doc["results"][PAPER_SPLIT]["uncorrected"][f"{dataset}_{PAPER_PARTITION[dataset]}"][task]
        for value, metric in zip(paper["uncorrected"], SUMMARY_METRICS):
            assert slot[metric] == value, (dataset, task, metric)
            assert slot[f"{metric}_ci_low"] <= value <= slot[f"{metric}_ci_high"], (dataset, task, metric)
        assert slot["macro_ci_high"] - slot["macro_ci_low"] > 1.0  # a real interval, not a point


def test_evaluate_with_ci_method_calibrated_from_params_writes_its_intervals(tmp_path, toy_predictions):
    out = _run(tmp_path, toy_predictions, **{"evaluate.ci_method": "calibrated"})
    table = pd.read_parquet(out["stats"])
    layout = next(iter(predictions.read(toy_predictions).layouts.values()))
    known = {name for (name, _, _), family in zip(stats.metric_entries(layout), calibrated.families(layout)) if family}
    calibrated_rows = table["metric"].isin(known)
    assert (table.loc[calibrated_rows & ~table["contrast"], "ci_method"] == "calibrated").all()
    assert (table.loc[~calibrated_rows, "note"].str.contains("ci_method calibrated has no construction")).all()
    gaps = table["metric"].map(lambda m: metrics.by_name(m).bound == "gap" and metrics.by_name(m).channel == "recall")
    gaps &= ~table["contrast"]
    assert table.loc[gaps, "estimate_debiased"].notna().all() and table.loc[~gaps, "estimate_debiased"].isna().all()
    assert json.loads(out["metrics"].read_text())["statistics"]["ci_method"] == "calibrated"
