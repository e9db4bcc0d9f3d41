"""A user's own method from a file outside the package runs through train, evaluate and report (the example of
docs/METHODS.md), and each way a plug-in can be wrong gives one clear line naming train.methods."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO

from benchmark.cli import main

EXAMPLE = str(REPO / "examples" / "temperature_method.py") + ":make"
TINY = {"data": {"datasets": ["faces", "adfes"], "input": "paper"},
        "train": {"splits": ["faces->adfes"], "n_seeds": 1, "corrector": {"epochs": 2}},
        "evaluate": {"n_resamples": 50, "n_permutations": 50},
        "tracking": {"enabled": False}}


def _project(root: Path, methods: list[str], **train) -> None:
    params = {**TINY, "train": {**TINY["train"], "methods": methods, **train}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_the_documented_example_method_builds_from_its_file():
    from benchmark.core.settings import Settings
    from benchmark.methods.method import Method
    from benchmark.methods.method_registry import build_method

    method = build_method(EXAMPLE, Settings())
    assert isinstance(method, Method)


@pytest.mark.slow
def test_a_method_from_a_file_outside_the_package_runs_through_train_evaluate_and_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _project(tmp_path, ["uncorrected", EXAMPLE], method_params={EXAMPLE: {"high": 10.0}})
    for stage in ("fetch", "train", "evaluate", "report"):
        assert main(["-q", stage]) == 0, stage
    frame = pd.read_parquet(tmp_path / "results" / "predictions.parquet")
    assert set(frame["method"]) == {"uncorrected", EXAMPLE}
    ours, frozen = (frame[frame["method"] == m].sort_values(["partition", "image_id"]) for m in (EXAMPLE, "uncorrected"))
    # temperature scaling keeps the ranking of the classes, so its predictions are the frozen models'
    assert (ours["pred_emotion"].to_numpy() == frozen["pred_emotion"].to_numpy()).all()
    doc = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert EXAMPLE in doc["results"]["faces->adfes"]
    assert EXAMPLE in (tmp_path / "reports" / "report.md").read_text()


def test_a_module_that_does_not_import_is_one_line_naming_the_key(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _project(tmp_path, ["uncorrected", "no_such_module_anywhere:make"])
    assert main(["train"]) == 1
    assert "train.methods: 'no_such_module_anywhere:make': cannot import module 'no_such_module_anywhere'" in _error(capsys)


def test_a_missing_factory_is_one_line_naming_what_is_expected(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text("x = 1\n")
    _project(tmp_path, ["uncorrected", "mine.py:make"])
    assert main(["train"]) == 1
    assert "mine.py has no callable 'make'; expected a factory(settings" in _error(capsys)


def _fetched(tmp_path: Path, methods: list[str]) -> None:
    _project(tmp_path, ["uncorrected"])
    assert main(["-q", "fetch"]) == 0
    _project(tmp_path, methods)


def test_a_factory_returning_something_else_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text("def make(settings):\n    return 42\n")
    _fetched(tmp_path, ["uncorrected", "mine.py:make"])
    assert main(["train"]) == 1
    assert "its factory returned int, not a benchmark.methods.method.Method" in _error(capsys)
    assert not (tmp_path / "results" / "predictions.parquet").exists()


def test_probabilities_of_the_wrong_shape_are_one_line_naming_the_shape(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(
        "import numpy as np\n"
        "from benchmark.methods.method import Method, Probabilities\n"
        "class Wrong(Method):\n"
        "    def run(self, tasks):\n"
        "        return [{p: Probabilities(np.full((len(t.frame), 3), 1 / 3), np.full((len(t.frame), 8), 1 / 8))\n"
        "                 for p, t in task.evaluate.items()} for task in tasks]\n"
        "def make(settings):\n    return Wrong()\n")
    _fetched(tmp_path, ["uncorrected", "mine.py:make"])
    assert main(["train"]) == 1
    err = _error(capsys)
    assert "train.methods: 'mine.py:make': task 0" in err
    assert "attribute probabilities of shape" in err and ", 3); expected (" in err and ", 2)" in err
    assert not (tmp_path / "results" / "predictions.parquet").exists()
