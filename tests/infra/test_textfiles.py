"""Strict reading of users' text files: values stay exactly as written, and what pandas or PyYAML would guess at is
refused with one line naming the file and line (the CLI-level cases are in test_bad_inputs.py)."""

from __future__ import annotations

import codecs

import pytest
from toy import make_toy_table, toy_design

from benchmark.infra import textfiles
from benchmark.infra.errors import BenchmarkError
from benchmark.sources import table


def test_values_stay_text_exactly_as_written(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id,subject,score\n007,NA,1.5\n7,null,\n")
    read = textfiles.read_csv(path)
    assert read.frame.to_dict("list") == {"id": ["007", "7"], "subject": ["NA", "null"], "score": ["1.5", ""]}
    assert read.lines == [2, 3]


def test_a_utf8_byte_order_mark_is_dropped_not_read_into_the_first_column_name(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"image_id,x\na,1\n")
    assert list(textfiles.read_csv(path).frame.columns) == ["image_id", "x"]


def test_line_numbers_count_quoted_line_breaks_and_skip_blank_lines(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('a,b\n"one\nvalue",1\n\nx,2\n')
    read = textfiles.read_csv(path)
    assert read.lines == [2, 5]
    assert read.where(1, "b") == f"{path} line 5 column 'b'"


def test_a_tab_separated_header_gets_the_delimiter_hint(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a\tb\n1\t2\n")
    with pytest.raises(BenchmarkError, match="looks tab-separated"):
        textfiles.read_csv(path)


def test_numbers_are_parsed_one_by_one_naming_the_offending_cell(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,x\n")
    read = textfiles.read_csv(path)
    assert textfiles.to_numbers(read, ["a"])["a"].tolist() == [1.0, 3.0]
    with pytest.raises(BenchmarkError, match=r"line 3 column 'b': 'x' is not a number"):
        textfiles.to_numbers(read, ["b"])


def test_a_key_given_twice_in_a_nested_yaml_mapping_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("train:\n  n_seeds: 2\n  seed: 0\n  n_seeds: 3\n")
    with pytest.raises(Exception, match=r"key 'n_seeds' appears twice \(lines 2 and 4\)"):
        textfiles.load_yaml(path)


def test_a_subject_called_na_is_that_person_in_a_table_source(tmp_path):
    frame = make_toy_table(dataset="faces").frame.drop(columns=["dataset"])
    frame["subject"] = frame["subject"].replace({"m00": "NA"})
    frame.to_csv(tmp_path / "faces.csv", index=False)
    loaded = table.load(tmp_path, toy_design("faces"), attribute="gender")
    assert "NA" in set(loaded.frame["subject"]) and "nan" not in set(loaded.frame["subject"])
