"""params.yaml validation: every bad key or value is one clear line naming the key, the expectation and the value."""

from __future__ import annotations

import pytest
import yaml
from project import REPO

from benchmark.experiment.params import load_settings
from benchmark.infra.errors import BenchmarkError


def _params(tmp_path, text: str):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_the_projects_params_file_is_valid():
    load_settings(REPO / "params.yaml")


def test_every_key_in_params_yaml_is_declared_in_the_settings():
    """Round trip: the loaded settings hold every dotted key of params.yaml with its value."""
    from benchmark.core.settings import as_dict, flatten

    raw = flatten(yaml.safe_load((REPO / "params.yaml").read_text()))
    loaded = flatten(as_dict(load_settings(REPO / "params.yaml")))
    for key, value in raw.items():
        assert key in loaded, key
        assert loaded[key] == value, key


#: (params.yaml text, the one line it must give), one per kind of mistake; the id names the behaviour
BAD_PARAMS = {
    "mistyped_key_suggests_the_closest_one":
        ("data:\n  sorce: sim\n", r"params.yaml: data.sorce: unknown key; did you mean 'source'\?"),
    "unknown_section_suggests_the_closest_section":
        ("trian:\n  seed: 1\n", r"unknown key.*did you mean 'train'"),
    "wrong_type_names_the_key_and_the_value":
        ("train:\n  n_seeds: ten\n", r"train.n_seeds: expected an integer, got 'ten'"),
    "out_of_range_value_names_the_range":
        ("train:\n  n_seeds: 0\n", r"train.n_seeds: 0 is out of range; expected a value in \[1, inf\]"),
    "unknown_source_lists_the_sources":
        ("data:\n  source: kaggle\n", r"data.source 'kaggle' is unknown; expected one of .*published"),
    "unknown_method_suggests_the_closest":
        ("train:\n  methods: [uncorected]\n", r"unknown method 'uncorected'; did you mean 'uncorrected'"),
    "split_to_a_dataset_not_fetched_names_it":
        ("train:\n  splits: ['faces->ckplus']\n", r"train.splits: split 'faces->ckplus' needs dataset 'ckplus', which "
                                                r"is not in data.datasets \(faces, adfes\); add it there"),
    "tune_split_to_an_undeclared_dataset_lists_the_declared_ones":
        ("tune:\n  split: faces->ckplus\n", r"tune.split: 'faces->ckplus' names dataset 'ckplus', which is not "
                                          r"declared; declared: adfes, faces"),
    "tune_split_from_an_undeclared_dataset_lists_the_declared_ones":
        ("tune:\n  split: ckplus->faces\n", r"tune.split: 'ckplus->faces' names dataset 'ckplus', which is not declared"),
    "cv_folds_of_an_undeclared_dataset_lists_the_declared_ones":
        ("train:\n  cv:\n    folds: {face: 5}\n", r"train.cv.folds names dataset 'face', which is not declared; "
                                                r"declared: adfes, faces"),
    "malformed_split_names_the_forms":
        ("train:\n  splits: ['faces']\n", r"train.splits: 'faces' is not a split; expected A->B .* or cv:A"),
    "non_integer_in_a_list_of_integers_names_the_key_and_the_item":
        ("tune:\n  prune_epochs: [100, late]\n", r"tune.prune_epochs: expected a list of integers, got 'late'"),
    "prune_epoch_below_one_names_the_range":
        ("tune:\n  prune_epochs: [0, 100]\n", r"tune.prune_epochs: 0 is out of range"),
}


@pytest.mark.parametrize(("text", "message"), BAD_PARAMS.values(), ids=BAD_PARAMS.keys())
def test_a_bad_value_is_one_line_naming_the_key_and_what_is_expected(tmp_path, text, message):
    with pytest.raises(BenchmarkError, match=message) as info:
        load_settings(_params(tmp_path, text))
    assert "\n" not in str(info.value)


def test_invalid_yaml_is_one_line(tmp_path):
    with pytest.raises(BenchmarkError, match="params.yaml: not valid YAML") as info:
        load_settings(_params(tmp_path, "data: [unclosed\n"))
    assert "\n" not in str(info.value)


def test_missing_params_file_says_where_to_run(tmp_path):
    with pytest.raises(BenchmarkError, match="params file not found; run from the project root"):
        load_settings(tmp_path / "nope.yaml")


def test_overrides_apply_before_validation(tmp_path):
    settings = load_settings(_params(tmp_path, "train:\n  n_seeds: 3\n"), overrides={"train.n_seeds": 2})
    assert settings.train.n_seeds == 2

