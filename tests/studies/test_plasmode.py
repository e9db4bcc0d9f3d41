"""Plasmode validation on real people (``benchmark simulate plasmode`` / ``widths``, benchmark.studies.plasmode):
subsamples of the published outputs' persons against the metrics of all of them."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import REPO

from benchmark.experiment.params import load_settings
from benchmark.infra.errors import BenchmarkError
from benchmark.stats import StatsConfig
from benchmark.studies import plasmode

TINY = StatsConfig(n_resamples=20, n_permutations=20)


def _settings():
    return load_settings(REPO / "params.yaml", overrides={"tracking.enabled": False})


def test_sizes_are_parsed_per_group_and_a_bad_item_is_one_error_naming_the_option():
    assert plasmode.parse_sizes("female=10, male=12") == (("female", 10), ("male", 12))
    with pytest.raises(BenchmarkError, match="--sizes: 'male12'"):
        plasmode.parse_sizes("female=10,male12")


def test_regrouping_moves_images_between_persons_of_their_own_cell_only(paper_outputs_dir):
    import numpy as np

    faces, _ = plasmode.published_rows(_settings(), paper_outputs_dir, "faces", "gender", ("uncorrected",))
    moved = plasmode.regroup(faces, "gender", 0.5, "uncorrected", np.random.default_rng(0))["uncorrected"]
    before = faces["uncorrected"]
    assert (moved["subject"] != before["subject"]).mean() > 0.2
    person_group = before.drop_duplicates("subject").set_index("subject")["gender"]
    assert (moved["subject"].map(person_group) == moved["gender"]).all()  # a person keeps one group
    assert moved.drop(columns="subject").equals(before.drop(columns="subject"))  # the same images and predictions


def test_a_plasmode_replicate_holds_the_sizes_persons_and_its_truth_is_all_persons(paper_outputs_dir):
    study = plasmode.PlasmodeStudy(dataset="faces", sizes=(("female", 4), ("male", 5)), replicates=2)
    records, truth = plasmode.run(study, _settings(), paper_outputs_dir, config=TINY, ci_methods=("calibrated", "bca"))
    assert set(records["ci_method"]) == {"calibrated", "bca"} and set(records["replicate"]) == {0, 1}
    rows, _ = plasmode.published_rows(_settings(), paper_outputs_dir, "faces", "gender",
                                      (study.method, study.reference))
    reference = rows[study.reference]
    macro = truth[(truth["method"] == study.reference) & (truth["task"] == "emotion") & (truth["metric"] == "macro")]
    per_group = (reference["pred_emotion"] == reference["emotion"]).groupby(
        [reference["gender"], reference["emotion"]]).mean()
    assert macro["truth"].iloc[0] == pytest.approx(100 * per_group.mean())  # all 171 persons, not a subsample
    assert records.groupby(["ci_method", "replicate"]).size().nunique() == 1


def test_more_persons_than_published_is_one_error_naming_the_option(paper_outputs_dir):
    study = plasmode.PlasmodeStudy(dataset="adfes", sizes=(("female", 40), ("male", 5)), replicates=1)
    with pytest.raises(BenchmarkError, match="--sizes: female=40"):
        plasmode.run(study, _settings(), paper_outputs_dir, config=TINY)


def test_the_documented_plasmode_command_writes_rows_and_families(tmp_path, monkeypatch, paper_outputs_dir, capsys):
    # docs/STATISTICS.md's `benchmark simulate plasmode --outputs <paper-outputs> ...`, with 2 replicates
    from benchmark.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"tracking": {"enabled": False}}))
    assert main(["-q", "simulate", "plasmode", "--outputs", str(paper_outputs_dir), "--replicates", "2",
                 "--seed", "700000", "--n-resamples", "20", "--n-permutations", "20", "--agreement", "0.5",
                 "--ci-methods", "calibrated,bca,bound", "--rows", "plasmode.csv"]) == 0
    families = pd.read_csv(tmp_path / "plasmode.families.csv")
    assert set(families["ci_method"]) == {"calibrated", "bca", "bound"}
    assert (pd.read_csv(tmp_path / "plasmode.csv")["n"] == 2).all()
    assert capsys.readouterr().err == ""


def test_the_documented_widths_command_gives_bca_a_ratio_of_one(tmp_path, monkeypatch, paper_outputs_dir):
    # docs/STATISTICS.md's `benchmark simulate widths --outputs <paper-outputs> ...`, with 50 resamples
    from benchmark.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"tracking": {"enabled": False}}))
    assert main(["-q", "simulate", "widths", "--outputs", str(paper_outputs_dir), "--ci-methods", "calibrated,bound",
                 "--n-resamples", "50", "-o", "widths.csv"]) == 0
    table = pd.read_csv(tmp_path / "widths.csv")
    assert set(table["ci_method"]) == {"calibrated", "bound", "bca"} and set(table["dataset"]) == {"faces", "adfes"}
    bca = table[table["ci_method"] == "bca"]
    assert (bca["ratio_to_bca"].dropna() == 1.0).all() and len(bca["ratio_to_bca"].dropna()) > 0
