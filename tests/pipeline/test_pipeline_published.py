"""End to end: `dvc repro` on the published source (local mirror) reproduces the paper's uncorrected rows."""

from __future__ import annotations

import json

import pytest
from project import copy_project, run, set_params

from benchmark.core.paper import PAPER_PARTITION, PAPER_SPLIT, PAPER_TABLE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def published_project(tmp_path_factory, paper_outputs_dir):
    project = copy_project(tmp_path_factory.mktemp("published") / "project")
    set_params(project, {"data.source": "published", "data.input": str(paper_outputs_dir),
                         "train.methods": ["uncorrected"], "evaluate.reference": "uncorrected",
                         "tune.pipeline_trials": 1, "tune.space.epochs": [50, 100],
                         "power.replicates": 20, "power.rule_resamples": 200})
    first = run(project, "dvc", "repro")
    return project, first


def test_dvc_repro_reproduces_the_paper_uncorrected_rows(published_project):
    project, _ = published_project
    doc = json.loads((project / "reports" / "metrics.json").read_text())
    for (dataset, task), paper in PAPER_TABLE.items():
        slot = doc["results"][PAPER_SPLIT]["uncorrected"][f"{dataset}_{PAPER_PARTITION[dataset]}"][task]
        assert (slot["macro"], slot["largest_gap"], slot["average_gap"]) == paper["uncorrected"], (dataset, task)


def test_second_dvc_repro_is_a_no_op(published_project):
    project, _ = published_project
    second = run(project, "dvc", "repro")
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout


def test_dvc_metrics_show_prints_the_headline_with_the_papers_held_out_numbers(published_project):
    project, _ = published_project
    shown = json.loads(run(project, "dvc", "metrics", "show", "--json").stdout)
    headline = shown[""]["data"]["reports/headline.json"]["data"]
    assert headline["faces-to-adfes"]["emotion"]["reference"]["macro"] == 80.69   # ADFES, held out
    assert headline["adfes-to-faces"]["gender"]["reference"]["macro"] == 95.98    # FACES, held out


def test_report_shows_the_paper_numbers_beside_ours(published_project):
    project, _ = published_project
    report = (project / "reports" / "report.md").read_text()
    assert "91.67" in report and "16.67" in report
