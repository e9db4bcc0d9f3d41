"""The report stage: report.md, a self-contained report.html and figures; the reproduction table with CIs and flags,
the methods comparison with significance marks, the data source stated plainly, provenance."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from conftest import REPO
from toy import make_toy_table
from toy_predictions import write_pipeline_predictions

from benchmark.core import outputs
from benchmark.core.paper import PAPER_TABLE
from benchmark.experiment.params import load_settings
from benchmark.infra.errors import BenchmarkError
from benchmark.report import figures
from benchmark.report.reproduction import OUTSIDE, WITHIN, reproduction_rows
from benchmark.stages import evaluate, report

METHODS = {"uncorrected": (1, 0.0), "corrector": (3, 3.0), "label_mask": (1, 1.0)}
SMALL = {"tracking.enabled": False, "evaluate.n_resamples": 300, "evaluate.n_permutations": 300}
FIGURE_KINDS = ("cells", "gaps", "forest", "confusion")


def build_report(root: Path, *, source: str = "toy", scenario: str | None = None, methods=None,
                 outputs_metadata: dict | None = None, overrides: dict | None = None) -> dict[str, Path]:
    """Evaluate and report a toy predictions table under ``root``; returns the paths involved."""
    settings = load_settings(REPO / "params.yaml", overrides={**SMALL, **(overrides or {})})
    p = {"predictions": root / "results" / "predictions.parquet", "stats": root / "results" / "stats.parquet",
         "confusion": root / "results" / "confusion.parquet", "metrics": root / "reports" / "metrics.json",
         "cells": root / "reports" / "cells.csv", "md": root / "reports" / "report.md",
         "html": root / "reports" / "report.html", "figures": root / "reports" / "figures", "outputs": root / "outputs"}
    p["predictions"].parent.mkdir(parents=True, exist_ok=True)
    write_pipeline_predictions(p["predictions"], methods=methods or METHODS, source=source, scenario=scenario,
                               subjects_per_gender=8)
    p["outputs"].mkdir(exist_ok=True)
    table = make_toy_table(dataset="faces")
    table.metadata.update(outputs_metadata or {})
    outputs.write(table, p["outputs"] / "faces.parquet")
    evaluate.run(settings, source=p["predictions"], metrics_path=p["metrics"], cells_path=p["cells"],
                 stats_path=p["stats"], confusion_path=p["confusion"])
    report.run(settings, metrics_path=p["metrics"], md_path=p["md"], html_path=p["html"], stats_path=p["stats"],
               confusion_path=p["confusion"], figures_dir=p["figures"], outputs_dir=p["outputs"],
               predictions_path=p["predictions"], lock_path=REPO / "constraints.txt")
    return p


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    return build_report(tmp_path_factory.mktemp("report"))


def _table_rows(markdown: str, header_start: str) -> list[list[str]]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_report_writes_markdown_html_and_every_figure(built):
    names = sorted(p.name for p in built["figures"].glob("*.png"))
    expected = sorted([f"{kind}_faces-to-adfes_{slot}.png" for kind in FIGURE_KINDS
                       for slot in ("adfes_test", "faces_train")] + ["frontier_faces-to-adfes_adfes.png", "verdicts_faces-to-adfes_adfes.png"])
    assert names == expected
    assert built["md"].exists() and built["html"].exists()


def test_html_embeds_every_figure_and_requests_nothing_external(built):
    page = built["html"].read_text()
    assert page.count('src="data:image/png;base64,') == len(list(built["figures"].glob("*.png")))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page


def test_markdown_links_every_figure(built):
    markdown = built["md"].read_text()
    for png in built["figures"].glob("*.png"):
        assert f"](figures/{png.name})" in markdown


def test_reproduction_table_shows_the_papers_twelve_numbers_beside_ours_with_cis(built):
    rows = _table_rows(built["md"].read_text(), "| dataset | task | metric | paper uncorrected")
    assert len(rows) == 12
    paper = {(d, t): v for (d, t), v in PAPER_TABLE.items()}
    ci = re.compile(r"^-?\d+\.\d\d \[-?\d+\.\d\d, -?\d+\.\d\d\]$")
    for i, row in enumerate(rows):
        dataset, task = row[0], row[1]
        assert float(row[3]) == paper[(dataset, task)]["uncorrected"][i % 3]
        assert float(row[6]) == paper[(dataset, task)]["corrected"][i % 3]
        assert ci.match(row[4]) and ci.match(row[7]), row
        assert row[5].strip("*") in (WITHIN, OUTSIDE) and row[8].strip("*") in (WITHIN, OUTSIDE)


def test_reproduction_rows_flag_a_paper_value_outside_our_ci():
    slot = {"macro": 90.0, "macro_ci_low": 89.0, "macro_ci_high": 91.0, "largest_gap": 21.0,
            "largest_gap_ci_low": 15.0, "largest_gap_ci_high": 30.0, "average_gap": 8.0, "average_gap_ci_low": 5.0,
            "average_gap_ci_high": 12.0}
    doc = {"results": {"faces->adfes": {"uncorrected": {"faces_train": {"gender": slot}}}}}
    rows = reproduction_rows(doc)
    faces_gender = rows[(rows["dataset"] == "faces") & (rows["task"] == "gender")].set_index("metric")
    assert faces_gender.loc["macro", "check_uncorrected"] == OUTSIDE  # paper 95.98 is not in [89, 91]
    assert faces_gender.loc["largest gap", "check_uncorrected"] == WITHIN  # paper 21.18 in [15, 30]
    assert faces_gender.loc["macro", "check_corrected"] == "not run"


def test_one_run_interval_is_the_t_prediction_interval_from_the_seeds():
    from benchmark.report.reproduction import one_run_interval

    low, high = one_run_interval(20.0, 2.0, 10, level=0.95)
    half = 2.2621571628 * 2.0 * (1 + 1 / 10) ** 0.5      # t(0.975, 9) x sd x sqrt(1 + 1/n)
    assert (low, high) == pytest.approx((20.0 - half, 20.0 + half))
    assert one_run_interval(3.0, 11.9, 10, level=0.95)[0] == 0.0           # a gap cannot be negative
    assert all(v != v for v in one_run_interval(20.0, 0.0, 1, level=0.95))   # one seed: undefined (NaN)


def test_a_single_run_paper_value_outside_our_seed_mean_ci_can_lie_within_one_runs_spread():
    from benchmark.report.reproduction import RUN_WITHIN

    # the paper's corrected ADFES emotion largest gap is 40.00; our seed mean 21.5 [9.5, 36.3], seed sd 11.9 over 10
    slot = {"largest_gap": 21.5, "largest_gap_ci_low": 9.5, "largest_gap_ci_high": 36.3, "largest_gap_seed_sd": 11.9,
            "n_seeds": 10}
    doc = {"statistics": {"ci": 0.95}, "results": {"faces->adfes": {"corrector": {"adfes_test": {"emotion": slot}}}}}
    rows = reproduction_rows(doc).set_index(["dataset", "task", "metric"])
    row = rows.loc[("adfes", "emotion", "largest gap")]
    assert row["check_corrected"] == OUTSIDE
    assert row["check_corrected_run"] == RUN_WITHIN


def test_methods_comparison_marks_the_significant_emotion_gain(built):
    rows = _table_rows(built["md"].read_text(), "| task | method | seeds | macro | Δ macro")
    corrector = [r for r in rows if r[0] == "emotion" and r[1] == "corrector"]
    assert corrector and all(r[4].endswith(" *") for r in corrector)
    gender = [r for r in rows if r[0] == "gender" and r[1] == "corrector"]
    assert all("p=1.0000" in r[4] and not r[4].endswith("*") for r in gender)  # identical gender predictions


def test_report_states_the_source_plainly(built):
    assert "source `toy`" in built["md"].read_text()


def test_report_announces_simulated_data_and_its_scenario(tmp_path):
    paths = build_report(tmp_path, source="sim", scenario="paper-like", methods={"uncorrected": (1, 0.0)})
    markdown = paths["md"].read_text()
    assert "**Warning: these data are simulated** (source `sim`, scenario `paper-like`)" in markdown
    assert 'class="warning"' in paths["html"].read_text()
    assert not list(paths["figures"].glob("forest_*.png"))  # nothing to compare with


def test_report_takes_the_scenario_from_the_outputs_tables_when_predictions_lack_it(tmp_path):
    paths = build_report(tmp_path, source="sim", methods={"uncorrected": (1, 0.0)},
                         outputs_metadata={"source": "sim", "scenario": "null"})
    assert "(source `sim`, scenario `null`)" in paths["md"].read_text()


def test_report_names_the_frozen_models_of_an_images_run(tmp_path):
    paths = build_report(tmp_path, source="images", methods={"uncorrected": (1, 0.0)},
                         outputs_metadata={"source": "images", "gender_model": {"name": "agegender", "sha256": "ab"},
                                           "emotion_model": {"name": "fer", "classes": ["angry"]}})
    markdown = paths["md"].read_text()
    assert "gender by `agegender`, emotions by `fer`" in markdown
    assert "FairFace" not in markdown.split("## ")[0]   # the opening paragraphs name no model that was not run


def test_report_replaces_stale_figures(tmp_path):
    paths = build_report(tmp_path)
    stale = paths["figures"] / "cells_old-split_faces_test.png"
    stale.write_bytes(b"old")
    build_report(tmp_path)
    assert not stale.exists()
    assert not list(tmp_path.glob("reports/.figures*"))


def test_report_without_evaluate_outputs_names_the_missing_file(tmp_path):
    settings = load_settings(REPO / "params.yaml", overrides=SMALL)
    with pytest.raises(BenchmarkError, match=r"metrics.json: not found; run `benchmark evaluate`"):
        report.run(settings, metrics_path=tmp_path / "metrics.json", md_path=tmp_path / "r.md",
                   html_path=tmp_path / "r.html", stats_path=tmp_path / "s.parquet",
                   confusion_path=tmp_path / "c.parquet", figures_dir=tmp_path / "figures")
    assert not (tmp_path / "r.md").exists()


def test_provenance_lists_checksums_commit_versions_and_seeds(built):
    markdown = built["md"].read_text()
    section = markdown[markdown.index("## Provenance"):]
    sha = re.search(r"\| [^|]*faces\.parquet \| ([0-9a-f]{64}) \|", section)
    assert sha, section[:2000]
    assert "git commit: `" in section and "train.seed = 0" in section and "evaluate.seed = 0" in section
    assert "| numpy |" in section and "| matplotlib |" in section
    assert "n_resamples: 300" in section  # the settings in force
    assert re.search(r"package versions: the environment (matches|differs from) the lock \S*constraints\.txt", section)


def _labelled(fig) -> list[str]:
    problems = []
    if not fig._suptitle or not fig._suptitle.get_text():
        problems.append("no title")
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        if not ax.get_title():
            problems.append(f"axis without title: {ax}")
    if not any(ax.get_xlabel() for ax in fig.axes) or not any(ax.get_ylabel() for ax in fig.axes):
        problems.append("missing axis labels")
    return problems


def test_every_figure_has_titles_axis_labels_and_a_legend(built):
    stats = pd.read_parquet(built["stats"])
    group = stats[(stats["dataset"] == "adfes")]
    confusion = pd.read_parquet(built["confusion"])
    made = [figures.cell_bars(group, reference="uncorrected", methods=["corrector", "label_mask"], title="t", ci=0.95),
            figures.gap_bars(group, methods=["uncorrected", "corrector"], title="t", ci=0.95),
            figures.forest(group, reference="uncorrected", methods=["corrector"], title="t", ci=0.95, alpha=0.05),
            figures.confusion_matrices(confusion[confusion["dataset"] == "adfes"], methods=["uncorrected"], title="t")]
    try:
        for fig in made:
            assert _labelled(fig) == []
        assert made[0].legends and made[1].axes[0].get_legend() and made[2].legends
        assert "%" in made[0].axes[0].get_ylabel() and "pp" in made[1].axes[0].get_ylabel()
    finally:
        for fig in made:
            plt.close(fig)


@pytest.mark.slow
@pytest.mark.needs_shared
def test_dvc_repro_on_the_published_source_reports_the_paper_numbers_with_cis(tmp_path, paper_outputs_dir):
    from project import copy_project, run, set_params

    project = copy_project(tmp_path / "project")
    set_params(project, {"data.source": "published", "data.input": str(paper_outputs_dir),
                         "train.methods": ["uncorrected"], "evaluate.reference": "uncorrected",
                         "evaluate.n_resamples": 1000, "evaluate.n_permutations": 200, "tracking.enabled": False,
                         "power.replicates": 20, "power.rule_resamples": 200})
    run(project, "dvc", "repro")
    markdown = (project / "reports" / "report.md").read_text()
    rows = _table_rows(markdown, "| dataset | task | metric | paper uncorrected")
    for i, row in enumerate(rows):
        paper = PAPER_TABLE[(row[0], row[1])]["uncorrected"][i % 3]
        assert row[4].startswith(f"{paper:.2f} [") and row[5] == WITHIN, row
    assert "source `published`" in markdown
    page = (project / "reports" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(list((project / "reports" / "figures").glob("*.png"))) > 0
    doc = json.loads((project / "reports" / "metrics.json").read_text())
    assert doc["results"]["faces->adfes"]["uncorrected"]["adfes_test"]["emotion"]["macro_ci_low"] < 80.69
    shown = run(project, "dvc", "metrics", "show")
    assert "reports/headline.json" in shown.stdout and "faces-to-adfes.emotion.reference.macro" in shown.stdout


def test_a_report_of_calibrated_intervals_says_how_they_are_built(tmp_path):
    p = build_report(tmp_path, overrides={"evaluate.ci_method": "calibrated"})
    text = p["md"].read_text()
    assert "combined by MOVER" in text and "Korn-Graubard" in text
    assert p["html"].exists() and len(list(p["figures"].glob("*.png"))) > 0
