"""The headline DVC metrics and plots (benchmark/evaluation/headline.py): per held-out split x task, the corrector's and the
reference's macro accuracy and average gap and their difference, read from a stats table of any task names."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import REPO
from toy_predictions import write_pipeline_predictions

from benchmark.evaluation import headline
from benchmark.experiment.params import load_settings
from benchmark.stages import evaluate

CELLS = [("male", "happy"), ("male", "sad"), ("female", "happy"), ("female", "sad")]


def _stats(tasks: tuple[str, ...] = ("age_group", "emotion"),
           methods: tuple[str, ...] = ("uncorrected", "corrector", "unimodal")) -> pd.DataFrame:
    """A stats.parquet-shaped table: split faces->adfes (test: adfes, train: faces) and cv:faces (test), each
    method's estimate = base + 10 * method index + task index (+ 0.5 per cell), diff = estimate - reference's."""
    rows = []
    groups = [("faces->adfes", "test", "adfes"), ("faces->adfes", "train", "faces"), ("cv:faces", "test", "faces")]
    for split, partition, dataset in groups:
        for m, method in enumerate(methods):
            for t, task in enumerate(tasks):
                for metric, base in (("macro", 70.0), ("average_gap", 5.0), ("largest_gap", 9.0)):
                    estimate = base + 10 * m + t + (100 if partition == "train" else 0)
                    rows.append({"split": split, "partition": partition, "dataset": dataset, "method": method,
                                 "task": task, "metric": metric, "group": None, "emotion": None,
                                 "estimate": estimate, "diff": None if m == 0 else 10.0 * m})
                for c, (gender, emotion) in enumerate(CELLS):
                    rows.append({"split": split, "partition": partition, "dataset": dataset, "method": method,
                                 "task": task, "metric": "cell", "group": gender, "emotion": emotion,
                                 "estimate": 50.0 + 10 * m + 0.5 * c, "diff": None if m == 0 else 10.0 * m})
    return pd.DataFrame(rows)


def test_headline_has_the_corrector_the_reference_and_their_difference_per_held_out_split_and_task():
    doc = headline.headline_metrics(_stats(), reference="uncorrected")
    assert doc["reference"] == "uncorrected"
    assert set(doc) == {"reference", "faces-to-adfes", "cv-faces"}
    assert doc["faces-to-adfes"]["emotion"] == {"corrector": {"macro": 81.0, "average_gap": 16.0},
                                                "reference": {"macro": 71.0, "average_gap": 6.0},
                                                "difference": {"macro": 10.0, "average_gap": 10.0}}


def test_headline_takes_any_task_names_from_the_table():
    doc = headline.headline_metrics(_stats(tasks=("age_group", "emotion")), reference="uncorrected")
    assert set(doc["cv-faces"]) == {"age_group", "emotion"}


def test_headline_leaves_out_in_sample_rows_and_other_methods():
    doc = headline.headline_metrics(_stats(), reference="uncorrected")
    numbers = [v for task in doc["faces-to-adfes"].values() for role in task.values() for v in role.values()]
    assert max(numbers) < 100   # the train partition's estimates are all above 100 in _stats
    assert "unimodal" not in json.dumps(doc)


def test_headline_follows_the_reference_in_force_under_the_same_role_keys():
    doc = headline.headline_metrics(_stats(), reference="unimodal")
    assert doc["reference"] == "unimodal"
    assert doc["cv-faces"]["age_group"]["reference"]["macro"] == 90.0


def test_headline_without_the_corrector_has_only_the_reference():
    doc = headline.headline_metrics(_stats(methods=("uncorrected", "unimodal")), reference="uncorrected")
    assert set(doc["cv-faces"]["emotion"]) == {"reference"}


def test_cell_plot_tables_hold_both_roles_per_cell_in_the_tables_order():
    tables = headline.cell_plot_tables(_stats(), reference="uncorrected")
    assert set(tables) == {(s, t) for s in ("faces-to-adfes", "cv-faces") for t in ("age_group", "emotion")}
    table = tables[("cv-faces", "emotion")]
    assert list(table.columns) == ["cell", "corrector", "reference"]
    assert list(table["cell"]) == [f"{g}/{e}" for g, e in CELLS]
    assert list(table["corrector"]) == [60.0, 60.5, 61.0, 61.5]
    assert list(table["reference"]) == [50.0, 50.5, 51.0, 51.5]


@pytest.mark.parametrize(("split", "expected"), [("faces->adfes", "faces-to-adfes"), ("cv:faces", "cv-faces"),
                                                  ("adfes->faces", "adfes-to-faces")])
def test_split_names_become_file_and_key_safe(split, expected):
    assert headline.slug(split) == expected


def test_write_replaces_the_plots_folder_so_no_stale_split_survives(tmp_path):
    stale = tmp_path / "plots" / "old-split_emotion.csv"
    stale.parent.mkdir()
    stale.write_text("cell,corrector\n")
    written = headline.write(_stats(), reference="uncorrected", reports_dir=tmp_path)
    assert written == [tmp_path / "headline.json", tmp_path / "plots"]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "cv-faces_age_group.csv", "cv-faces_emotion.csv", "faces-to-adfes_age_group.csv", "faces-to-adfes_emotion.csv"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_evaluate_stage_writes_the_headline_beside_metrics_json_from_its_stats(tmp_path):
    source = write_pipeline_predictions(tmp_path / "predictions.parquet",
                                        methods={"uncorrected": (1, 0.0), "corrector": (2, 3.0)})
    settings = load_settings(REPO / "params.yaml", overrides={"tracking.enabled": False, "evaluate.n_resamples": 200,
                                                              "evaluate.n_permutations": 200})
    reports = tmp_path / "reports"
    evaluate.run(settings, source=source, metrics_path=reports / "metrics.json", cells_path=reports / "cells.csv",
                 stats_path=tmp_path / "stats.parquet", confusion_path=tmp_path / "confusion.parquet")
    doc = json.loads((reports / "headline.json").read_text())
    stats = pd.read_parquet(tmp_path / "stats.parquet")
    row = stats[(stats["method"] == "corrector") & (stats["partition"] == "test") & (stats["task"] == "emotion")
                & (stats["metric"] == "macro")].iloc[0]
    assert doc["faces-to-adfes"]["emotion"]["corrector"]["macro"] == round(row["estimate"], 2)
    assert doc["faces-to-adfes"]["emotion"]["difference"]["macro"] == round(row["diff"], 2)
    assert sorted(p.name for p in (reports / "plots").iterdir()) == ["faces-to-adfes_emotion.csv",
                                                                     "faces-to-adfes_gender.csv"]
