"""The report marks what its intervals cannot promise: families whose measured coverage fell short at the run's
design (from the shipped measured table), designs that were never measured, and degenerate intervals."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from benchmark.report import coverage_marks, figures, tables  # noqa: E402
from benchmark.stats import coverage_table  # noqa: E402

DESIGN = {"dataset": "adfes", "attribute": "gender", "n_subjects": 22, "n_images": 132, "ci_method": "bound",
          "ci": 0.95}


def _measured(**short: float) -> pd.DataFrame:
    """A measured table of the design: every family at 0.96 except ``metric_kind=value`` ones."""
    rows = []
    for comparison in ("methods", "aa"):
        for metric in ("macro", "average_gap", "largest_gap"):
            for kind in ("estimate", "difference"):
                value = short.get(f"{metric}_{kind}", 0.96) if comparison == "methods" else 0.97
                worst = 0.88 if (metric, kind, comparison) == ("macro", "estimate", "aa") else value
                rows.append({**DESIGN, "scenario": "paper", "comparison": comparison, "n_resamples": 10000,
                             "replicates": 500, "task": "emotion", "metric": metric, "kind": kind, "coverage": value,
                             "worst_row": worst, "width": 10.0, "rejection": None})
    return pd.DataFrame(rows, columns=coverage_table.MEASURED_COLUMNS)


def test_a_family_below_the_promise_is_marked_and_named_with_its_coverage():
    measured = coverage_marks.lookup(_measured(largest_gap_difference=0.905), **DESIGN)
    assert measured.approximate("emotion", "largest_gap", "difference")
    assert not measured.approximate("emotion", "largest_gap", "estimate")
    assert not measured.approximate("emotion", "macro", "difference")
    sentence = measured.sentence("ADFES test")
    assert "emotion largest_gap differences 90.5%" in sentence and coverage_marks.APPROXIMATE in sentence


def test_a_design_whose_families_all_held_says_so_with_the_lowest():
    sentence = coverage_marks.lookup(_measured(), **DESIGN).sentence("ADFES test")
    assert "at least 93%" in sentence and "lowest 96.0%" in sentence


def test_the_least_covered_single_interval_is_named_beside_the_families():
    sentence = coverage_marks.lookup(_measured(), **DESIGN).sentence("ADFES test")
    assert "least covered single interval (one macro estimate of the emotion task) held it in 88.0%" in sentence


def test_an_unmeasured_design_says_not_measured_and_marks_nothing():
    measured = coverage_marks.lookup(_measured(macro_estimate=0.5), **{**DESIGN, "n_subjects": 23})
    assert not measured.measured and not measured.approximate("emotion", "macro", "estimate")
    assert "was not measured at the design of ADFES test" in measured.sentence("ADFES test")


def test_other_statistics_settings_count_as_not_measured():
    measured = coverage_marks.lookup(_measured(macro_estimate=0.5), **{**DESIGN, "ci_method": "bca"})
    assert not measured.measured


def test_the_shipped_table_has_the_measured_layout():
    table = coverage_marks.measured_table()
    assert list(table.columns) == coverage_table.MEASURED_COLUMNS and len(table) > 0
    assert (table["replicates"] >= 500).all()


def test_a_marked_family_carries_the_mark_in_the_methods_table():
    rows = []
    for method in ("uncorrected", "corrector"):
        for metric in ("macro", "largest_gap", "average_gap"):
            rows.append({"method": method, "task": "emotion", "metric": metric, "group": None, "emotion": None, "estimate": 50.0, "ci_low": 45.0,
                         "ci_high": 55.0, "note": "", "n_seeds": 1, "seed_sd": 0.0, "contrast": False,
                         "diff": 1.0, "diff_ci_low": -1.0, "diff_ci_high": 3.0, "p_perm": 0.3, "p_holm": 0.6})
    measured = coverage_marks.lookup(_measured(largest_gap_difference=0.9), **DESIGN)
    table = tables.methods_table(pd.DataFrame(rows), reference="uncorrected", alpha=0.05,
                                 approximate=measured.approximate)
    corrector = table[table["method"] == "corrector"].iloc[0]
    marked = [column for column, value in corrector.items() if str(value).endswith(coverage_marks.APPROXIMATE)]
    assert marked == ["Δ largest gap"]


def test_a_zero_width_interval_is_marked_in_tables():
    assert tables.fmt_ci(100.0, 100.0, 100.0).endswith(tables.DEGENERATE)
    assert not tables.fmt_ci(90.0, 85.0, 95.0).endswith(tables.DEGENERATE)


def test_a_zero_width_interval_is_drawn_as_a_labelled_red_cross():
    fig, ax = plt.subplots()
    figures._draw_ci(ax, [0.0, 1.0], pd.Series([100.0, 80.0]), pd.Series([100.0, 90.0]))
    handles, labels = ax.get_legend_handles_labels()
    assert labels == [figures.DEGENERATE_LABEL]
    assert list(handles[0].get_xdata()) == [0.0] and list(handles[0].get_ydata()) == [100.0]
    plt.close(fig)
