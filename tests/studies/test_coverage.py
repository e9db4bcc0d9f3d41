"""The coverage harness (``benchmark simulate coverage``): how often intervals hold the simulator's truth and how often
tests reject, counted exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from benchmark.experiment.params import load_settings
from benchmark.infra.errors import BenchmarkError
from benchmark.stats import StatsConfig, coverage_table, group_statistics
from benchmark.studies import coverage_study

TINY = StatsConfig(n_resamples=20, n_permutations=20)


def _settings():
    return load_settings(REPO / "params.yaml", overrides={"tracking.enabled": False})


def _alternating(rows, *, reference, config, key, layout, tasks):
    """The real statistics table with every interval replaced: on even replicates [-100, 100] for estimates and
    differences (always holds the truth) and p = 0; on odd ones [1000, 1000] (never) and p = 1."""
    table = group_statistics(rows, reference=reference, config=TINY, key=key, layout=layout, tasks=tasks)
    even = int(key.split("|")[1]) % 2 == 0
    low, high = (-100.0, 100.0) if even else (1000.0, 1000.0)
    for column, value in (("ci_low", low), ("ci_high", high), ("diff_ci_low", low), ("diff_ci_high", high)):
        table[column] = np.where(table[column].notna(), value, np.nan)
    table["p_perm"] = np.where(table["p_perm"].notna(), 0.0 if even else 1.0, np.nan)
    return table


def test_coverage_and_rejection_are_the_exact_shares_of_replicates():
    study = coverage_study.CoverageStudy(dataset="adfes", method="unimodal", reference="uncorrected", replicates=4,
                                   truth_scale=1)
    result = coverage_study.measure_coverage(study, _settings(), statistics=_alternating, config=TINY, alpha=0.05)
    summary = result.summary
    assert len(summary) > 0
    assert (summary["coverage"] == 0.5).all() and (summary["worst_row"] == 0.5).all()
    assert (summary["diff_coverage"] == 0.5).all() and (summary["rejection"] == 0.5).all()
    assert set(result.records["replicate"]) == {0, 1, 2, 3}
    assert (result.n_subjects, result.n_images) > (0, 0)


def test_an_aa_comparison_has_a_true_difference_of_exactly_zero():
    study = coverage_study.CoverageStudy(dataset="adfes", comparison="aa", reference="uncorrected", replicates=1,
                                   truth_scale=1)
    result = coverage_study.measure_coverage(study, _settings(), config=TINY, alpha=0.05)
    compared = result.truth.dropna(subset=["truth_diff"])
    assert len(compared) > 0 and (compared["truth_diff"] == 0.0).all()


def test_score_counts_an_interval_holding_the_truth_on_its_edge_and_a_p_below_alpha():
    key = {"method": ["m", "m"], "task": ["emotion"] * 2, "metric": ["macro", "cell"], "group": [None, "female"],
           "emotion": [None, "happy"]}
    table = pd.DataFrame({**key, "estimate": [50.0, 80.0], "ci_low": [40.0, 81.0], "ci_high": [60.0, 90.0],
                          "diff": [1.0, 2.0], "diff_ci_low": [0.0, 2.5], "diff_ci_high": [2.0, 3.0],
                          "p_perm": [0.049, 0.05]})
    truth = pd.DataFrame({**key, "truth": [60.0, 80.0], "truth_diff": [0.0, 2.0]})
    scored = coverage_study.score(table, truth, alpha=0.05)
    assert scored["covered"].tolist() == [1.0, 0.0]
    assert scored["diff_covered"].tolist() == [1.0, 0.0]
    assert scored["rejected"].tolist() == [1.0, 0.0]
    assert scored["width"].tolist() == [20.0, 9.0]


def test_the_measured_table_keeps_other_studies_and_replaces_the_same_one(tmp_path):
    study = coverage_study.CoverageStudy(dataset="adfes", method="unimodal", replicates=2, truth_scale=1)
    result = coverage_study.measure_coverage(study, _settings(), statistics=_alternating, config=TINY, alpha=0.05)
    path = tmp_path / "coverage.csv"
    rows = coverage_study.measured_rows(result, config=TINY)
    assert set(rows["kind"]) == {"estimate", "difference"} and len(rows) == 2 * len(result.summary)
    coverage_table.merge_measured(path, rows)
    coverage_table.merge_measured(path, rows.assign(comparison="aa", scenario="null"))
    coverage_table.merge_measured(path, rows.assign(coverage=0.25))
    coverage_table.merge_measured(path, rows.assign(comparison="aa", scenario="null", coverage=0.75))
    table = coverage_table.read_measured(path)
    assert len(table) == 2 * len(rows)
    assert (table.loc[table["comparison"] == "methods", "coverage"] == 0.25).all()
    null = table[table["scenario"] == "null"]  # a scenario named null is not a missing value
    assert len(null) == len(rows) and (null["coverage"] == 0.75).all()
    assert table.loc[table["kind"] == "estimate", "rejection"].isna().all()
    assert list(table.columns) == coverage_table.MEASURED_COLUMNS


def test_a_measured_table_with_other_columns_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "coverage.csv"
    path.write_text("dataset,coverage\nadfes,0.9\n")
    with pytest.raises(BenchmarkError, match="coverage.csv"):
        coverage_table.merge_measured(path, pd.DataFrame(columns=coverage_table.MEASURED_COLUMNS))
    assert path.read_text() == "dataset,coverage\nadfes,0.9\n"


def test_an_undeclared_dataset_is_one_clear_error():
    with pytest.raises(BenchmarkError, match="--dataset"):
        coverage_study.measure_coverage(coverage_study.CoverageStudy(dataset="nope", replicates=1), _settings(), config=TINY)


def test_the_documented_command_merges_its_study_into_the_measured_table(tmp_path, monkeypatch, capsys):
    # docs/STATISTICS.md's `benchmark simulate coverage ... --comparison aa --measured benchmark/stats/coverage.csv`,
    # on a copy of the shipped table, with 2 replicates and small statistics budgets
    import shutil

    import yaml

    from benchmark.cli import main

    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "benchmark" / "stats" / "coverage.csv", tmp_path / "coverage.csv")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"tracking": {"enabled": False}, "evaluate": {
        "n_resamples": 20, "n_permutations": 20}}))
    shipped = coverage_table.read_measured(tmp_path / "coverage.csv")
    assert main(["-q", "simulate", "coverage", "--dataset", "adfes", "--scenario", "null", "--comparison", "aa",
                 "--replicates", "2", "--truth-scale", "1", "--measured", "coverage.csv"]) == 0
    merged = coverage_table.read_measured(tmp_path / "coverage.csv")
    new = merged[(merged["replicates"] == 2) & (merged["n_resamples"] == 20)]
    assert len(new) > 0 and set(zip(new["scenario"], new["comparison"], new["dataset"])) == {("null", "aa", "adfes")}
    assert len(merged) == len(shipped) + len(new)  # the shipped studies (other budgets) are kept
    assert capsys.readouterr().err == ""
