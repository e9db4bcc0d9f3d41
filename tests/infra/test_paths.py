"""Where a relative path or store URI points: the project root (the folder of params.yaml) for a run's own files, the
workspace root for shared records, also from a DVC experiment's copy under .dvc/tmp/exps."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.infra import paths

ROOT = Path("/repo")


@pytest.mark.parametrize(("value", "expected"), [
    ("sqlite:///mlflow.db", "sqlite:////repo/mlflow.db"),
    ("sqlite:///reports/tune/study.db?timeout=30", "sqlite:////repo/reports/tune/study.db?timeout=30"),
    ("journal:///studies/optuna.journal", "journal:////repo/studies/optuna.journal"),
    ("file:mlruns", "file:///repo/mlruns"),
    ("benchmark/scenarios/paper.yaml", "/repo/benchmark/scenarios/paper.yaml"),
])
def test_a_relative_path_or_file_store_resolves_against_the_root(value, expected):
    assert paths.resolve_location(value, ROOT) == expected


@pytest.mark.parametrize("value", ["sqlite:////data/mlflow.db", "sqlite:///:memory:", "journal:////srv/o.journal",
                                   "file:///srv/mlruns", "/srv/scenario.yaml", "http://127.0.0.1:5000",
                                   "postgresql+psycopg2://u:p@db/optuna", "databricks"])
def test_absolute_paths_and_servers_are_left_as_they_are(value):
    assert paths.resolve_location(value, ROOT) == value


def test_a_dvc_experiment_copy_shares_the_workspace_it_was_copied_from():
    assert paths.workspace_root("/repo/.dvc/tmp/exps/tmpa1b2c3") == Path("/repo")
    assert paths.workspace_root("/repo/.dvc/tmp/exps/run/tmpa1b2c3") == Path("/repo")


def test_a_plain_checkout_is_its_own_workspace():
    assert paths.workspace_root("/repo") == Path("/repo")
    assert paths.workspace_root("/repo/.dvc") == Path("/repo/.dvc")


def test_the_project_root_is_the_folder_of_the_params_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert paths.project_root("sub/params.yaml") == tmp_path.resolve() / "sub"
