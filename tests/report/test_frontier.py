"""The accuracy-fairness frontier and the report's fairness sections: curves over strength, the Pareto front's panel,
the audit and bias-profile tables in the report."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from test_report import build_report

from benchmark.infra import processes
from benchmark.report.frontier import curve_of, frontier_figures, pareto_front


def test_curve_of_reads_the_strength_from_the_name_or_the_default():
    assert curve_of("group_recalibration@4", 1.0) == ("group_recalibration", 4.0)
    assert curve_of("group_recalibration", 1.0) == ("group_recalibration", 1.0)
    assert curve_of("corrector", 1.0) is None


def _stats(methods: dict[str, tuple[float, float]]) -> pd.DataFrame:
    rows = []
    for method, (macro, gap) in methods.items():
        for task in ("gender", "emotion"):
            for metric, value in (("macro", macro), ("average_gap", gap)):
                rows.append({"split": "faces->adfes", "partition": "test", "dataset": "adfes", "method": method,
                             "task": task, "metric": metric, "estimate": value, "ci_low": value - 1,
                             "ci_high": value + 1})
    return pd.DataFrame(rows)


def test_one_figure_per_held_out_group_with_the_pareto_panel_for_the_tuned_split(tmp_path):
    (tmp_path / "tune").mkdir()
    (tmp_path / "tune" / "best_params.yaml").write_text(yaml.safe_dump({
        "objective": "pareto", "split": "faces->adfes", "method": "group_recalibration", "cv_macro": 80.0,
        "cv_average_gap": 5.0, "pareto": [{"trial": 0, "cv_macro": 80.0, "cv_average_gap": 5.0},
                                          {"trial": 1, "cv_macro": 82.0, "cv_average_gap": 7.0}]}))
    front = pareto_front(tmp_path / "tune")
    assert front is not None and front["method"] == "group_recalibration"
    stats = _stats({"uncorrected": (80, 10), "group_recalibration@0": (84, 8), "group_recalibration@4": (83, 5),
                    "group_recalibration": (83.5, 6)})
    made = frontier_figures(stats, out_dir=tmp_path, default_strength=1.0, ci=0.95, pareto=front)
    assert [f.file for f in made] == ["frontier_faces-to-adfes_adfes.png"]
    assert "Pareto front" in made[0].caption and (tmp_path / made[0].file).stat().st_size > 10_000


def test_frontier_figures_drawn_by_worker_processes_are_the_same_files_as_drawn_here(tmp_path, monkeypatch):
    one = _stats({"uncorrected": (80, 10), "group_recalibration@4": (83, 5)})
    stats = pd.concat([one, one.assign(split="adfes->faces", dataset="faces", estimate=one["estimate"] + 1)])
    drawn = {}
    for cores in ([0], [0, 1]):
        monkeypatch.setattr(processes, "available_cores", lambda cores=cores: cores)
        out = tmp_path / f"{len(cores)}-cores"
        out.mkdir()
        made = frontier_figures(stats, out_dir=out, default_strength=1.0, ci=0.95)
        drawn[len(cores)] = {f.file: (out / f.file).read_bytes() for f in made}
    assert list(drawn[1]) == ["frontier_adfes-to-faces_faces.png", "frontier_faces-to-adfes_adfes.png"]
    assert drawn[2] == drawn[1]


def test_no_pareto_panel_without_a_pareto_study(tmp_path):
    (tmp_path / "best_params.yaml").write_text(yaml.safe_dump({"objective": "macro", "split": "faces->adfes"}))
    assert pareto_front(tmp_path) is None


@pytest.fixture(scope="module")
def report_md(tmp_path_factory) -> str:
    return build_report(tmp_path_factory.mktemp("fair-report"))["md"].read_text()


def test_report_shows_the_frontier_the_audit_and_the_bias_profile(report_md):
    for heading in ("## Accuracy-fairness frontier", "## Predicted-attribute audit", "## Training data bias profile"):
        assert heading in report_md
    assert "frontier_faces-to-adfes_adfes.png" in report_md
    assert "| method | emotion metric | by true group [CI] | by predicted group [CI] | predicted - true [CI] |" in report_md
