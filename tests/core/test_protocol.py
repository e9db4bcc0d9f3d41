"""Evaluation protocol: cross-dataset splits and subject-grouped cross-validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from toy import GENDER, make_toy_table

from benchmark.core.outputs import OutputsTable
from benchmark.core.protocol import make_folds, parse_split, subject_folds
from benchmark.experiment.params import load_settings
from benchmark.infra.errors import BenchmarkError

FOLDS = {"faces": 5, "adfes": 0}


@pytest.fixture(scope="module")
def tables() -> dict[str, OutputsTable]:
    return {"faces": make_toy_table(dataset="faces", subjects_per_gender=9, seed=0),
            "adfes": make_toy_table(dataset="adfes", subjects_per_gender=4, images_per_cell=1, seed=1)}


def _subjects(table: OutputsTable) -> set[str]:
    return set(table.frame["subject"].astype(str))


@pytest.mark.parametrize("split", ["cv:faces", "cv:adfes"])
def test_cv_folds_never_share_a_subject_between_train_and_test(tables, split):
    for fold in make_folds(split, tables, attribute=GENDER, cv_folds=FOLDS[parse_split(split).train]):
        assert not _subjects(fold.train) & _subjects(fold.evaluate["test"])


@pytest.mark.parametrize("split", ["cv:faces", "cv:adfes"])
def test_cv_test_folds_cover_every_image_exactly_once(tables, split):
    folds = make_folds(split, tables, attribute=GENDER, cv_folds=FOLDS[parse_split(split).train])
    tested = pd.concat([f.evaluate["test"].frame["image_id"] for f in folds])
    dataset = split.split(":")[1]
    assert sorted(tested) == sorted(tables[dataset].frame["image_id"])
    assert all(set(f.evaluate) == {"test"} for f in folds)


def test_cv_folds_hold_out_both_genders_in_balance(tables):
    folds = make_folds("cv:faces", tables, attribute=GENDER, cv_folds=3)
    for fold in folds:
        held = fold.evaluate["test"].frame.groupby("gender")["subject"].nunique()
        assert held["male"] == held["female"] == 3


def test_leave_one_subject_out_gives_one_fold_per_subject(tables):
    folds = make_folds("cv:adfes", tables, attribute=GENDER, cv_folds=0)
    assert len(folds) == 8
    assert all(len(_subjects(f.evaluate["test"])) == 1 for f in folds)


def test_subject_folds_depend_only_on_the_seed(tables):
    a = subject_folds(tables["faces"], GENDER, 5, seed=3)
    b = subject_folds(tables["faces"], GENDER, 5, seed=3)
    c = subject_folds(tables["faces"], GENDER, 5, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_more_folds_than_subjects_is_an_error_naming_the_key(tables):
    with pytest.raises(BenchmarkError, match=r"train.cv.folds.adfes: 9 folds for 'adfes', which has 8 subjects"):
        make_folds("cv:adfes", tables, attribute=GENDER, cv_folds=9)


def test_cross_dataset_split_tests_on_the_other_dataset_and_reports_training_rows(tables):
    (fold,) = make_folds("faces->adfes", tables, attribute=GENDER)
    assert fold.train is tables["faces"]
    assert fold.evaluate == {"test": tables["adfes"], "train": tables["faces"]}


def test_split_missing_its_dataset_is_an_error(tables):
    with pytest.raises(BenchmarkError, match="split 'cv:adfes' needs dataset 'adfes'"):
        make_folds("cv:adfes", {"faces": tables["faces"]}, attribute=GENDER)


def test_one_cv_fold_is_rejected_when_params_load(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  cv:\n    folds: {faces: 1}\n")
    with pytest.raises(BenchmarkError, match="train.cv.folds.faces: 1; expected 0 .leave one subject out. or an integer >= 2"):
        load_settings(tmp_path / "params.yaml")


def test_params_accept_every_split_between_the_declared_datasets(tmp_path):
    splits = ["faces->adfes", "adfes->faces", "cv:faces", "cv:adfes"]
    (tmp_path / "params.yaml").write_text(f"train:\n  splits: [{', '.join(splits)}]\n")
    assert load_settings(tmp_path / "params.yaml").train.splits == splits


@pytest.mark.parametrize("name", ["faces", "faces->faces", "cv:", "a->b->c", "faces -> adfes"])
def test_a_malformed_split_is_an_error_naming_the_forms(name):
    with pytest.raises(BenchmarkError, match=r"train.splits: .* is not a split; expected A->B"):
        parse_split(name)


def test_splits_parse_into_training_and_test_datasets():
    assert (parse_split("faces->adfes").train, parse_split("faces->adfes").test) == ("faces", "adfes")
    assert parse_split("cv:ck-plus").datasets == ("ck-plus",) and parse_split("cv:ck-plus").is_cv
