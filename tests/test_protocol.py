"""Evaluation protocol: cross-dataset splits and subject-grouped cross-validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.config import load_settings
from benchmark.errors import BenchmarkError
from benchmark.outputs import OutputsTable
from benchmark.protocol import SPLITS, make_folds, subject_folds
from toy import make_toy_table


@pytest.fixture(scope="module")
def tables() -> dict[str, OutputsTable]:
    return {"faces": make_toy_table(dataset="faces", subjects_per_gender=9, seed=0),
            "adfes": make_toy_table(dataset="adfes", subjects_per_gender=4, images_per_cell=1, seed=1)}


def _subjects(table: OutputsTable) -> set[str]:
    return set(table.frame["subject"].astype(str))


@pytest.mark.parametrize("split", ["cv:faces", "cv:adfes"])
def test_cv_folds_never_share_a_subject_between_train_and_test(tables, split):
    for fold in make_folds(split, tables, cv_folds={"faces": 5, "adfes": 0}):
        assert not _subjects(fold.train) & _subjects(fold.evaluate["test"])


@pytest.mark.parametrize("split", ["cv:faces", "cv:adfes"])
def test_cv_test_folds_cover_every_image_exactly_once(tables, split):
    folds = make_folds(split, tables, cv_folds={"faces": 5, "adfes": 0})
    tested = pd.concat([f.evaluate["test"].frame["image_id"] for f in folds])
    dataset = split.split(":")[1]
    assert sorted(tested) == sorted(tables[dataset].frame["image_id"])
    assert all(set(f.evaluate) == {"test"} for f in folds)


def test_cv_folds_hold_out_both_genders_in_balance(tables):
    folds = make_folds("cv:faces", tables, cv_folds={"faces": 3, "adfes": 0})
    for fold in folds:
        held = fold.evaluate["test"].frame.groupby("gender")["subject"].nunique()
        assert held["male"] == held["female"] == 3


def test_leave_one_subject_out_gives_one_fold_per_subject(tables):
    folds = make_folds("cv:adfes", tables, cv_folds={"faces": 5, "adfes": 0})
    assert len(folds) == 8
    assert all(len(_subjects(f.evaluate["test"])) == 1 for f in folds)


def test_subject_folds_depend_only_on_the_seed(tables):
    a = subject_folds(tables["faces"], 5, seed=3)
    b = subject_folds(tables["faces"], 5, seed=3)
    c = subject_folds(tables["faces"], 5, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_more_folds_than_subjects_is_an_error_naming_the_key(tables):
    with pytest.raises(BenchmarkError, match=r"train.cv.adfes: 9 folds for 'adfes', which has 8 subjects"):
        make_folds("cv:adfes", tables, cv_folds={"faces": 5, "adfes": 9})


def test_cross_dataset_split_tests_on_the_other_dataset_and_reports_training_rows(tables):
    (fold,) = make_folds("faces->adfes", tables)
    assert fold.train is tables["faces"]
    assert fold.evaluate == {"test": tables["adfes"], "train": tables["faces"]}


def test_split_missing_its_dataset_is_an_error(tables):
    with pytest.raises(BenchmarkError, match="split 'cv:adfes' needs dataset 'adfes'"):
        make_folds("cv:adfes", {"faces": tables["faces"]})


def test_one_cv_fold_is_rejected_when_params_load(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  cv:\n    faces: 1\n")
    with pytest.raises(BenchmarkError, match="train.cv.faces: 1 fold leaves no training subjects"):
        load_settings(tmp_path / "params.yaml")


def test_params_accept_every_protocol_split(tmp_path):
    (tmp_path / "params.yaml").write_text(f"train:\n  splits: [{', '.join(SPLITS)}]\n")
    assert load_settings(tmp_path / "params.yaml").train.splits == list(SPLITS)
