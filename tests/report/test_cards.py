"""The reproducibility card and the model card are generated from the run: their numbers are metrics.json's and
stats.parquet's, their checksums the lock file's and dvc.lock's, their MLflow ids the pipeline run's; the report stage
also stores both as artifacts of its MLflow run."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
import yaml
from conftest import REPO
from test_report import build_report

from benchmark.report import cards


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cards")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)   # the project root: dvc.yaml and dvc.lock are read here
        (root / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
        (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {"train": {"cmd": "benchmark train",
            "outs": [{"path": "results/predictions.parquet", "md5": "0123456789abcdef0123456789abcdef"}]}}}))
        paths = build_report(root)
    return paths, paths["md"].read_text()


def _section(markdown: str, heading: str) -> str:
    start = markdown.index(f"## {heading}")
    end = markdown.find("\n## ", start + 3)
    return markdown[start:end if end != -1 else None]


def test_the_model_cards_held_out_numbers_are_metrics_json_values(built):
    paths, markdown = built
    doc = json.loads(paths["metrics"].read_text())
    card = _section(markdown, "Model card: the corrector")
    numbers = doc["results"]["faces->adfes"]["corrector"]["adfes_test"]["emotion"]
    expected = (f"| faces->adfes | corrector | adfes | emotion | {numbers['macro']:.2f} [{numbers['macro_ci_low']:.2f}, "
                f"{numbers['macro_ci_high']:.2f}] | {numbers['average_gap']:.2f} [{numbers['average_gap_ci_low']:.2f}, "
                f"{numbers['average_gap_ci_high']:.2f}] | {numbers['average_gap_diff']:+.2f}")
    assert expected.replace(">", "&gt;") in card or expected in card


def test_the_model_cards_groups_are_the_corrector_cells_of_stats_parquet(built):
    paths, markdown = built
    stats = pd.read_parquet(paths["stats"])
    cell = stats[(stats["method"] == "corrector") & (stats["metric"] == "cell") & (stats["partition"] == "test")
                 & (stats["task"] == "emotion")].iloc[0]
    shown = f"{cell['estimate']:.1f} [{cell['ci_low']:.1f}, {cell['ci_high']:.1f}]"
    row = next(line for line in _section(markdown, "Model card: the corrector").splitlines()
               if f"| {cell['group']} | {cell['emotion']} |" in line and f"| {cell['dataset']} |" in line)
    assert shown in row


def test_the_model_card_states_what_the_design_cannot_show(built):
    _, markdown = built
    card = _section(markdown, "Model card: the corrector")
    assert "**Limitations**" in card and "not meant for other images or for decisions about people" in card


def test_the_reproducibility_card_names_the_locks_checksum_and_what_dvc_lock_recorded(built):
    _, markdown = built
    card = _section(markdown, "Reproducibility card")
    lock_sha = hashlib.sha256((REPO / "constraints.txt").read_bytes()).hexdigest()
    assert f"sha256 {lock_sha}" in card
    assert "train: results/predictions.parquet md5 0123456789abcdef0123456789abcdef" in card
    assert "train: benchmark train" in card   # the stage commands of dvc.yaml
    assert "tracking off (tracking.enabled: false)" in card


def test_the_reproducibility_card_lists_each_data_source_with_its_checksum(built):
    paths, markdown = built
    table_sha = hashlib.sha256((paths["outputs"] / "faces.parquet").read_bytes()).hexdigest()
    assert f"sha256 {table_sha}" in _section(markdown, "Reproducibility card")


def test_with_tracking_the_cards_are_artifacts_of_the_report_run_and_name_the_pipeline_runs(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setitem(__import__("test_report").SMALL, "tracking.enabled", True)
    paths = build_report(tmp_path)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("crossmodal-bias")
    (report,) = client.search_runs([experiment.experiment_id], filter_string="tags.`benchmark.kind` = 'stage' AND "
                                                                             "tags.stage = 'report'")
    parent = client.get_run(report.data.tags["mlflow.parentRunId"])
    card = _section(paths["md"].read_text(), "Reproducibility card")
    assert parent.info.run_id in card and f"report: {report.info.run_id}" in card
    assert [a.path for a in client.list_artifacts(report.info.run_id, "cards")] == [
        "cards/model_card.md", "cards/reproducibility_card.md"]
    logged = mlflow.artifacts.load_text(f"runs:/{report.info.run_id}/cards/reproducibility_card.md")
    assert "## Reproducibility card" in logged and parent.info.run_id in logged


def test_a_pipeline_run_by_dvc_in_an_experiment_is_reproduced_by_applying_it():
    recorded = cards.Recorded("dvc exp run", {"dvc.exp_name": "wide-net"})
    assert cards.reproduction_command("abc123", recorded) == ("git checkout abc123 && make setup && "
                                                              "dvc exp apply wide-net && dvc repro")


def test_the_model_card_gives_the_verdict_rules_detectable_effects_as_upper_bounds_with_at_most_and_beyond():
    entry = {"macro": {"mde_rule": 1.5, "largest_effect": 30.0, "power": {"rule": [0.9, 1.0]}},
             "average_gap": {"mde_rule": None, "largest_effect": 4.0, "power": {"rule": [0.0, 0.1]}}}
    power = {"target": 0.8, "alpha": 0.05, "primary_size": 8,
             "designs": {"adfes": {"subjects": 22, "tasks": {"emotion": entry}}}}
    line = next(x for x in cards.limitations({"source": "published"}, power) if x.startswith("ADFES"))
    assert "average gap of > 4.0 pp" in line and "macro accuracy of <= 1.5 pp" in line
    assert "upper bounds, from Holm's first step over the 8 primary hypotheses" in line
