"""Prediction rows of a (split, method): built as one frame from whole columns, they are the rows of each piece (one
model's predictions for one table) one after the other."""

from __future__ import annotations

import numpy as np
import pandas as pd
from toy import GENDER, make_toy_table

from benchmark.core import predictions
from benchmark.core.predictions import Predicted


def _piece(table, fold: int, seed: int, partition: str) -> Predicted:
    rng = np.random.default_rng(seed)
    n = len(table.frame)
    groups = rng.dirichlet(np.ones(len(GENDER.groups)), n)
    emotions = rng.dirichlet(np.ones(len(table.emotion_classes)), n)
    return Predicted(table, fold, seed, partition, groups, emotions)


def test_rows_of_many_pieces_are_each_pieces_rows_one_after_the_other():
    train, test = make_toy_table(subjects_per_gender=2), make_toy_table(dataset="adfes", subjects_per_gender=3, seed=1)
    pieces = [_piece(table, fold, seed, partition) for fold, seed in ((0, 3), (1, 4))
              for partition, table in (("test", test), ("train", train))]
    each = [predictions.make_rows(p.table, attribute=GENDER, split="s", fold=p.fold, method="m", seed=p.seed,
                                  partition=p.partition, group_probs=p.group_probs, emotion_probs=p.emotion_probs)
            for p in pieces]
    together = predictions.rows_of(pieces, attribute=GENDER, split="s", method="m")
    pd.testing.assert_frame_equal(together, pd.concat(each, ignore_index=True), check_exact=True)


def test_a_row_carries_its_pieces_keys_its_images_labels_and_the_most_probable_classes():
    table = make_toy_table(subjects_per_gender=2)
    piece = _piece(table, 2, 7, "test")
    rows = predictions.rows_of([piece], attribute=GENDER, split="faces->adfes", method="m")
    assert (rows[["split", "fold", "method", "seed", "partition"]].drop_duplicates().to_numpy().tolist()
            == [["faces->adfes", 2, "m", 7, "test"]])
    assert rows["image_id"].tolist() == table.frame["image_id"].tolist()
    assert rows["gender"].tolist() == table.frame["gender"].tolist()
    assert rows["pred_gender"].tolist() == [GENDER.groups[i] for i in piece.group_probs.argmax(axis=1)]
    np.testing.assert_array_equal(rows["pg_female"], piece.group_probs[:, GENDER.groups.index("female")]
                                  .astype(np.float32))
    assert rows["pg_female"].dtype == np.float32 and rows["fold"].dtype == np.int64
