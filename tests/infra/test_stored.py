"""Files one stage leaves for another are read through benchmark.infra.stored: a file that parses but is not what the
producer writes is one line naming the file and the command that rewrites it."""

from __future__ import annotations

import pytest

from benchmark.infra import stored
from benchmark.infra.errors import BenchmarkError


def test_a_json_file_that_is_not_an_object_names_the_file_and_its_producer(tmp_path):
    path = tmp_path / "power.json"
    path.write_text("[1, 2]")
    with pytest.raises(BenchmarkError, match=r"power\.json: expected a JSON object written by `benchmark power`, "
                                             r"got list; delete it and rerun `benchmark power`"):
        stored.read_json(path, producer="benchmark power")


def test_a_yaml_mapping_without_the_expected_keys_asks_for_a_rerun(tmp_path):
    path = tmp_path / "best_params.yaml"
    path.write_text("width: 24\n")
    with pytest.raises(BenchmarkError, match=r"best_params\.yaml: no objective, so not a file written by this version "
                                             r"of `benchmark tune`; rerun `benchmark tune`"):
        stored.read_yaml(path, producer="benchmark tune", keys=("objective",))


def test_a_mapping_with_its_keys_is_returned_as_read(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{"results": {}, "source": "sim"}')
    assert stored.read_json(path, producer="benchmark evaluate", keys=("results",)) == {"results": {}, "source": "sim"}
