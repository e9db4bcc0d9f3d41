"""`benchmark scaling`: every point of a grid measured in its own process and written as a table, JSON and a figure;
power laws fitted per curve; a bad grid is one line naming its option (times are reported, never asserted)."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.infra import processes
from benchmark.tools import scaling, scaling_work
from benchmark.tools.scaling import Point

#: one or two tiny points per curve but the report's (its own test, below)
TINY = ["--curves", "trainer_rows,trainer_models,evaluate_subjects,evaluate_resamples,evaluate_images",
        "--rows-scales", "1,2", "--rows-models", "2", "--row-epochs", "2000", "--models", "3", "--subjects-scales", "1",
        "--subjects-resamples", "20", "--resamples", "30", "--images", "4000", "--repeats", "1"]


def _point(curve: str, seconds: float, **sizes) -> Point:
    return Point(curve=curve, seconds=seconds, cpu_seconds=seconds, all_seconds=(seconds,), all_cpu_seconds=(seconds,),
                 start_rss_mb=100.0, peak_rss_mb=120.0, peak_since="work", load_before=None, load_after=None, **sizes)


def test_scaling_writes_every_point_with_positive_times_and_memory(tmp_path, capsys):
    assert main(["scaling", "-o", str(tmp_path / "out"), *TINY]) == 0
    table = pd.read_csv(tmp_path / "out" / "scaling.csv")
    assert list(table.columns) == list(scaling.COLUMNS)
    assert table["curve"].tolist() == ["trainer_rows", "trainer_rows", "trainer_models", "evaluate_subjects",
                                       "evaluate_resamples", "evaluate_images"]
    assert (table[["seconds", "cpu_seconds", "peak_rss_mb"]] > 0).all().all()
    trainer = table[table["curve"].str.startswith("trainer")]
    assert trainer["rows"].tolist() == [2052, 4104, 2052] and trainer["models"].tolist() == [2, 2, 3]
    assert trainer["epochs"].tolist() == [1, 1, 1] and (trainer["cpu_us_per_model_epoch_row"] > 0).all()
    evaluated = table[table["curve"].str.startswith("evaluate")]
    assert evaluated["subjects"].tolist() == [171, 171, 4104] and evaluated["resamples"].tolist() == [20, 30, 20]
    assert evaluated["rows"].tolist() == [2052, 2052, 4104]  # without person ids: as many subjects as images
    written = json.loads((tmp_path / "out" / "scaling.json").read_text())
    assert [f["curve"] for f in written["fits"]] == ["trainer_rows"]   # the only curve with two sizes
    assert written["command"].startswith(f"benchmark scaling -o {tmp_path / 'out'} --curves trainer_rows,")
    assert (tmp_path / "out" / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "trainer_rows: CPU s per model-epoch ~ rows^" in out and "between the two largest: ^" in out


@pytest.mark.slow
def test_the_report_curve_times_the_report_stage_on_a_small_pipelines_outputs(tmp_path):
    options = ["--curves", "report", "--report-splits", "1", "--report-methods", "2,3", "--repeats", "1"]
    assert main(["scaling", "-o", str(tmp_path), *options]) == 0
    table = pd.read_csv(tmp_path / "scaling.csv")
    assert table[["splits", "methods"]].values.tolist() == [[1, 2], [1, 3]]
    assert (table["seconds"] > 0).all() and (table["figures"] > 0).all()


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--models", "1,x", "--models: '1,x' is not a list of whole numbers; expected comma-separated whole numbers >= 1"),
    ("--report-splits", "2,5", "--report-splits: '2,5' has a value out of range; expected comma-separated whole "
                               "numbers >= 1 and <= 4"),
    ("--resamples", "100,100", "--resamples: '100,100' repeats a value"),
    ("--curves", "trainer,report", "--curves: unknown curve 'trainer'; expected a comma-separated subset of "
                                   "trainer_rows, trainer_models"),
    ("--repeats", "0", "--repeats: 0 is below 1; expected a whole number >= 1"),
])
def test_a_bad_grid_is_one_line_naming_the_option_and_writes_nothing(tmp_path, capsys, option, value, message):
    assert main(["scaling", "-o", str(tmp_path / "out"), option, value]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.strip().count("\n") == 0
    assert not (tmp_path / "out").exists()


def test_an_output_dir_that_is_a_file_is_refused_before_measuring(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    assert main(["scaling", "-o", str(tmp_path / "taken"), *TINY]) == 1
    assert capsys.readouterr().err == (f"error: --output-dir: {tmp_path / 'taken'} exists and is not a folder; "
                                       "expected a folder (created if missing)\n")


def test_power_law_fits_recover_the_exponents_of_exact_power_laws():
    points = [_point("evaluate_subjects", 0.002 * n ** 1.5, subjects=n) for n in (171, 342, 1710)]
    points += [_point("report", 0.5 * s ** 1.0 * m ** 0.5, splits=s, methods=m) for s in (1, 2, 4) for m in (2, 6)]
    fits = {(f.curve, f.variable): f for f in scaling.fit_power_laws(points)}
    assert fits["evaluate_subjects", "subjects"].exponent == pytest.approx(1.5)
    assert fits["evaluate_subjects", "subjects"].prefactor == pytest.approx(0.002)
    assert fits["evaluate_subjects", "subjects"].tail_exponent == pytest.approx(1.5)
    assert fits["report", "splits"].exponent == pytest.approx(1.0)
    assert fits["report", "methods"].exponent == pytest.approx(0.5)
    assert [fits[k].growth() for k in fits] == ["super-linear", "linear", "sub-linear"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="the platform cannot pin a process to a core")
def test_a_point_runs_pinned_to_one_core_so_work_shared_over_cores_stays_in_its_process():
    assert len(scaling_work.in_fresh_process(processes.available_cores)) == 1
