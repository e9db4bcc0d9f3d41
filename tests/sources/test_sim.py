"""The `sim` source: scenario files (round trip, validation, no rows), sampling (valid tables with the real designs
and naming schemes, seeded), the fit (recovers known parameters, deterministic), fidelity to the published outputs,
the null scenario's missing cross-modal dependence, and the `benchmark simulate` commands."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from scenario_parameters import scenario_parameters
from toy import EMOTIONS

from benchmark.cli import cli, main
from benchmark.core import outputs
from benchmark.core.design import shipped
from benchmark.core.labels import GENDERS
from benchmark.experiment.params import load_settings
from benchmark.infra.errors import BenchmarkError
from benchmark.sources import load as load_source
from benchmark.sources import names, sim, sim_check, sim_fit, sim_scenario

SHIPPED = shipped()
PAPER_DESIGNS = {d: SHIPPED[d] for d in ("faces", "adfes")}

#: Published tolerances of the fidelity requirement (percentage points): FACES 2, ADFES 5.
FIDELITY_TOLERANCE = {"faces": 2.0, "adfes": 5.0}


@pytest.fixture(scope="module")
def paper():
    return sim_scenario.read("paper")


@pytest.fixture(scope="module")
def null():
    return sim_scenario.read("null")


@pytest.fixture(scope="module")
def paper_sample(paper):
    return sim.sample(paper, PAPER_DESIGNS, seed=0)


# ------------------------------------------------------------------------------------------------ sampling

def test_sample_is_a_valid_outputs_table(paper_sample):
    for dataset, table in paper_sample.items():
        outputs.validate(table, where=dataset)


def test_sample_has_the_real_designs(paper_sample):
    faces, adfes = paper_sample["faces"].frame, paper_sample["adfes"].frame
    assert faces.groupby("gender")["subject"].nunique().to_dict() == {"female": 85, "male": 86}
    assert (faces.groupby(["subject", "emotion"]).size() == 2).all() and len(faces) == 171 * 12
    assert adfes.groupby("gender")["subject"].nunique().to_dict() == {"female": 10, "male": 12}
    assert (adfes.groupby(["subject", "emotion"]).size() == 1).all() and len(adfes) == 22 * 6


def test_sample_names_follow_the_dataset_schemes(paper_sample):
    for dataset, table in paper_sample.items():
        for row in table.frame.itertuples():
            parsed = names.parse(SHIPPED[dataset].images, row.image_id)
            assert parsed is not None, row.image_id
            assert (parsed.subject, parsed.labels["gender"], parsed.emotion) == (row.subject, row.gender, row.emotion)


def _per_image_names(naming: str, design: sim_scenario.Design, emotions: tuple[str, ...], scale: int) -> list[tuple]:
    """(subject, gender, emotion, repeat, age group, image name) of every image, ordered by subject, emotion and
    repeat, each name formatted on its own: what the vectorised sampling must reproduce."""
    rows = []
    for subject, gender, age in sim._subjects(design, scale):
        for emotion in emotions:
            for k in range(design.images_per_emotion):
                if naming == "faces":
                    name = f"{subject}_{sim_scenario.FACES_AGE_CODES[age]}_{gender[0]}_{emotion[0]}_{'ab'[k]}.jpg"
                elif naming == "adfes":
                    name = (f"{subject}-Neutral.jpg" if emotion == "neutral" else
                            f"{subject}-{sim.ADFES_FILE_EMOTION.get(emotion, emotion.capitalize())}-Apex.jpg")
                else:
                    name = f"{subject}_{emotion}_{k}.jpg"
                rows.append((subject, gender, emotion, k, age, name))
    return rows


@pytest.mark.parametrize("scenario, dataset, naming, pinned", [
    ("paper", "faces", "faces", ["001_y_f_n_a.jpg", "001_y_f_n_b.jpg", "001_y_f_h_a.jpg", "513_o_m_a_b.jpg"]),
    ("age", "faces", "faces", ["001_y_f_n_a.jpg", "001_y_f_n_b.jpg", "001_y_f_h_a.jpg", "513_o_m_a_b.jpg"]),
    ("paper", "adfes", "adfes", ["F01-Neutral.jpg", "F01-Joy-Apex.jpg", "F01-Sad-Apex.jpg", "M36-Anger-Apex.jpg"]),
    ("paper", "faces", "generic", ["S0001_neutral_0.jpg", "S0001_neutral_1.jpg", "S0001_happy_0.jpg",
                                   "S0513_anger_1.jpg"]),
])
def test_sample_index_is_every_image_in_order_with_its_name(scenario, dataset, naming, pinned):
    read = sim_scenario.read(scenario)
    model = read.datasets[dataset]
    model = dataclasses.replace(model, design=dataclasses.replace(model.design, naming=naming))
    emotions = SHIPPED[dataset].emotions
    index, x = sim.sample_vectors(model, emotions=emotions, rng=np.random.default_rng(0), scale=3,
                                  cells_by=read.cells_by)
    assert list(index.itertuples(index=False, name=None)) == _per_image_names(naming, model.design, emotions, 3)
    assert index["image_id"].iloc[[0, 1, 2, -1]].tolist() == pinned
    assert len(x) == len(index)


def test_sample_scale_multiplies_the_subjects(paper):
    table = sim.sample_table(paper, SHIPPED["adfes"], seed=0, scale=3)
    assert table.frame.groupby("gender")["subject"].nunique().to_dict() == {"female": 30, "male": 36}
    outputs.validate(table, where="scaled")


def test_sample_is_identical_for_the_same_seed_and_differs_for_another(paper):
    a = sim.sample_table(paper, SHIPPED["adfes"], seed=5).frame
    assert a.equals(sim.sample_table(paper, SHIPPED["adfes"], seed=5).frame)
    assert not np.allclose(a["emo_anger"], sim.sample_table(paper, SHIPPED["adfes"], seed=6).frame["emo_anger"])


def test_sample_of_one_dataset_does_not_depend_on_the_others(paper):
    alone = sim.sample(paper, {"adfes": SHIPPED["adfes"]}, seed=1)["adfes"].frame
    assert alone.equals(sim.sample(paper, PAPER_DESIGNS, seed=1)["adfes"].frame)


def test_sample_gender_probabilities_stay_within_the_clip(paper):
    table = sim.sample_table(paper, SHIPPED["faces"], seed=0, scale=5)
    z = sim_fit.gender_logit(table)
    assert np.abs(z).max() <= paper.z_clip + 1e-6
    assert np.allclose(table.frame[["p_male", "p_female"]].sum(axis=1), 1.0)


def test_sample_unknown_dataset_names_the_scenario_datasets(paper):
    import dataclasses

    rafdb = dataclasses.replace(SHIPPED["adfes"], name="rafdb")
    with pytest.raises(BenchmarkError, match="has no dataset 'rafdb'; it has faces, adfes"):
        sim.sample_table(paper, rafdb, seed=0)


def test_sim_source_is_the_default_and_records_the_scenario(tmp_path):
    (tmp_path / "params.yaml").write_text("data:\n  datasets: [adfes]\ntrain:\n  splits: ['cv:adfes']\n")
    settings = load_settings(tmp_path / "params.yaml", overrides={"data.input": str(sim_scenario.resolve("paper"))})
    assert settings.data.source == "sim"
    table = load_source(settings.data, SHIPPED["adfes"])
    assert table.metadata["source"] == "sim" and table.metadata["scenario"] == "paper"
    assert table.metadata["scenario_sha256"] == sim.sha256_of("paper") and table.metadata["seed"] == 0


# ---------------------------------------------------------------------------------------------- scenario files

def test_scenario_round_trips_through_yaml_exactly(paper, tmp_path):
    sim_scenario.write(paper, tmp_path / "copy.yaml")
    again = sim_scenario.read(tmp_path / "copy.yaml")
    before, after = scenario_parameters(paper), scenario_parameters(again)
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert dataclasses.replace(again, datasets={}) == dataclasses.replace(paper, datasets={})
    assert sim_scenario.dumps(again) == sim_scenario.resolve("paper").read_text()


def test_freshly_fitted_parameters_round_trip_through_yaml(toy_table, tmp_path):
    scenario = sim_fit.fit({"faces": toy_table}, name="toy", settings=sim_fit.FitSettings(draws=2000))
    sim_scenario.write(scenario, tmp_path / "toy.yaml")
    again, before = scenario_parameters(sim_scenario.read(tmp_path / "toy.yaml")), scenario_parameters(scenario)
    assert all(np.array_equal(before[k], again[k]) for k in before)


@pytest.mark.parametrize("name", sim_scenario.SHIPPED)
def test_shipped_scenario_holds_only_summary_parameters(name):
    raw = yaml.safe_load(sim_scenario.resolve(name).read_text())
    assert "jpg" not in sim_scenario.resolve(name).read_text()
    age_groups = len(SHIPPED["faces"].attributes["age_group"].groups) if "age_group" in raw.get("cells_by", []) else 1
    for model in raw["datasets"].values():
        assert set(model) == {"design", "subject_cov", "cells"}
        assert len(model["cells"]) == len(GENDERS) * age_groups * len(EMOTIONS)
        assert all(set(cell) == {"n", "mean", "sd", "noise_corr"} for cell in model["cells"].values())


def test_sampling_names_a_cell_the_scenario_lacks(tmp_path):
    raw = yaml.safe_load(sim_scenario.resolve("paper").read_text())
    del raw["datasets"]["adfes"]["cells"]["male/fear"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(BenchmarkError, match=r"scenario 'paper' has no cell male/fear of dataset 'adfes'"):
        sim.sample_table(sim_scenario.read(tmp_path / "bad.yaml"), SHIPPED["adfes"], seed=0)


def test_read_names_a_cell_key_that_is_not_gender_slash_emotion(tmp_path):
    raw = yaml.safe_load(sim_scenario.resolve("paper").read_text())
    raw["datasets"]["adfes"]["cells"]["other/fear"] = raw["datasets"]["adfes"]["cells"].pop("male/fear")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(BenchmarkError, match=r"bad.yaml: datasets.adfes.cells.other/fear: expected a key"):
        sim_scenario.read(tmp_path / "bad.yaml")


def test_read_rejects_a_covariance_that_is_not_positive_semidefinite(tmp_path):
    raw = yaml.safe_load(sim_scenario.resolve("paper").read_text())
    raw["datasets"]["faces"]["subject_cov"][0][0] = -1.0
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(BenchmarkError, match=r"datasets.faces.subject_cov: expected a symmetric positive-semidefinite"):
        sim_scenario.read(tmp_path / "bad.yaml")


def test_read_rejects_a_file_of_another_format(tmp_path):
    (tmp_path / "params.yaml").write_text("data:\n  source: sim\n")
    with pytest.raises(BenchmarkError, match="format: expected 'benchmark-sim-scenario/1'"):
        sim_scenario.read(tmp_path / "params.yaml")


def test_read_rejects_a_folder_such_as_the_published_csv_folder(tmp_path):
    with pytest.raises(BenchmarkError, match="is not a file; the sim source reads a scenario YAML"):
        sim_scenario.read(tmp_path)


def test_matrix_root_does_not_depend_on_the_eigenvector_signs_lapack_picks(paper, monkeypatch):
    cov = paper.datasets["adfes"].cells[("male", "fear")].noise_corr
    root = sim.matrix_root(cov)
    assert np.allclose(root @ root.T, cov, atol=1e-9)
    eigh = np.linalg.eigh
    monkeypatch.setattr(np.linalg, "eigh", lambda m: (eigh(m)[0], -eigh(m)[1]))
    assert np.array_equal(sim.matrix_root(cov), root)


def test_unknown_scenario_lists_the_shipped_ones():
    with pytest.raises(BenchmarkError, match="scenario file not found; .* shipped scenarios \\(paper, null, age\\)"):
        sim_scenario.resolve("nope")


# --------------------------------------------------------------------------------------------------------- fit

def test_fit_recovers_the_parameters_of_a_simulated_table(paper):
    """A large sample of a known scenario, refitted, gives back its cells and subject effect. The means may differ by
    sampling noise plus the calibration, which matches the sample's own accuracies (measured: at most 0.2 sd)."""
    truth = paper.datasets["adfes"]
    table = sim.sample_table(paper, SHIPPED["adfes"], seed=3, scale=100)
    refit = sim_fit.fit_dataset(table, dataset="adfes", dependence="observed",
                                settings=sim_fit.FitSettings(draws=5000, prior_images=0.0))
    for key, cell in truth.cells.items():
        got = refit.cells[key]
        assert np.allclose(got.mean, cell.mean, atol=0.25 * cell.sd), key
        assert np.allclose(got.sd, cell.sd, rtol=0.1), key
        assert np.allclose(got.noise_corr + refit.subject_cov, cell.noise_corr + truth.subject_cov, atol=0.1), key
    assert np.allclose(refit.subject_cov, truth.subject_cov, atol=0.1)


def test_fit_is_deterministic(toy_table):
    settings = sim_fit.FitSettings(draws=2000)
    first = sim_scenario.dumps(sim_fit.fit({"faces": toy_table}, name="toy", settings=settings))
    assert first == sim_scenario.dumps(sim_fit.fit({"faces": toy_table}, name="toy", settings=settings))


def test_fit_reproduces_the_cell_accuracies_of_its_table(toy_table):
    scenario = sim_fit.fit({"faces": toy_table}, name="toy", settings=sim_fit.FitSettings(draws=5000))
    fidelity = sim_check.compare({"faces": toy_table}, scenario, scale=200, seed=0)
    assert fidelity.cells["diff"].abs().max() < 5.0


def test_fit_rejects_an_unknown_dependence(toy_table):
    with pytest.raises(BenchmarkError, match="dependence 'some' is unknown; expected one of observed, none"):
        sim_fit.fit({"faces": toy_table}, name="toy", dependence="some")


@pytest.mark.needs_shared
@pytest.mark.parametrize("name", sim_scenario.SHIPPED)
def test_shipped_scenario_is_the_fit_of_the_published_outputs(published_tables, name):
    scenario = sim_scenario.read(name)
    tables = {d: published_tables[d] for d in scenario.datasets}
    fresh = sim_fit.fit(tables, name=name, dependence=scenario.dependence, cells_by=scenario.cells_by)
    assert fresh.fitted_from == scenario.fitted_from
    assert (fresh.cells_by, fresh.age_outputs, fresh.fit) == (scenario.cells_by, scenario.age_outputs, scenario.fit)
    shipped, refit = scenario_parameters(scenario), scenario_parameters(fresh)
    assert shipped.keys() == refit.keys()
    assert all(np.allclose(shipped[k], refit[k], rtol=1e-4, atol=1e-5) for k in shipped), name


# ---------------------------------------------------------------------------------------------------- fidelity

@pytest.fixture(scope="module")
def paper_fidelity(published_tables, paper):
    return sim_check.compare(published_tables, paper, scale=50, seed=0)


@pytest.mark.needs_shared
@pytest.mark.parametrize("metric", ["macro", "average_gap"])
def test_paper_scenario_reproduces_the_published_summaries(paper_fidelity, metric):
    diff = paper_fidelity.summary["diff"].xs(metric, level="metric")
    for (dataset, task), value in diff.items():
        assert abs(value) <= FIDELITY_TOLERANCE[dataset], (dataset, task, value)


@pytest.mark.needs_shared
def test_paper_scenario_reproduces_the_emotion_confusion(paper_fidelity):
    tv = paper_fidelity.confusion["tv"]
    assert tv.xs("faces").max() < 0.05 and tv.xs("adfes").max() < 0.1


@pytest.mark.needs_shared
def test_paper_scenario_reproduces_the_within_cell_dependence(paper_fidelity):
    outputs_ = paper_fidelity.outputs
    corr = outputs_[outputs_.index.get_level_values("quantity").str.startswith("corr(z")]
    assert corr["diff"].abs().max() < 0.05


# ------------------------------------------------------------------------------------------------- dependence

def _dependence(table) -> dict[str, float]:
    """How much z depends on the true emotion given the gender, the emotion logits on the true gender given the
    emotion (largest mean differences, in sd units), and z on the emotion logits within a cell (largest |corr|)."""
    frame, x = table.frame, sim_fit.vectors(table)
    gender, emotion = frame["gender"].to_numpy(), frame["emotion"].to_numpy()
    z_on_emotion = max(np.ptp([x[(gender == g) & (emotion == e), 0].mean() for e in EMOTIONS]) / x[gender == g, 0].std()
                       for g in GENDERS)
    logits_on_gender = max(np.abs((x[(gender == "male") & (emotion == e), 1:].mean(0) - x[(gender == "female") & (emotion == e), 1:].mean(0))
                                  / x[emotion == e, 1:].std(0)).max() for e in EMOTIONS)
    within = max(np.abs(np.corrcoef(x[(gender == g) & (emotion == e)].T)[0, 1:]).max() for g in GENDERS for e in EMOTIONS)
    return {"z_on_emotion": z_on_emotion, "logits_on_gender": logits_on_gender, "within_cell": within}


def test_null_scenario_parameters_have_no_cross_modal_dependence(null):
    for model in null.datasets.values():
        assert not model.subject_cov[0, 1:].any()
        for (g, e), cell in model.cells.items():
            assert not cell.noise_corr[0, 1:].any()
            same_gender = model.cells[(g, EMOTIONS[0])]
            same_emotion = model.cells[(GENDERS[0], e)]
            assert (cell.mean[0], cell.sd[0], cell.noise_corr[0, 0]) == (same_gender.mean[0], same_gender.sd[0], same_gender.noise_corr[0, 0])
            assert np.array_equal(cell.mean[1:], same_emotion.mean[1:]) and np.array_equal(cell.sd[1:], same_emotion.sd[1:])
            assert np.array_equal(cell.noise_corr[1:, 1:], same_emotion.noise_corr[1:, 1:])


@pytest.mark.parametrize("dataset", ["faces", "adfes"])
def test_null_sample_shows_no_cross_modal_dependence_where_paper_shows_it(paper, null, dataset):
    in_null = _dependence(sim.sample_table(null, SHIPPED[dataset], seed=0, scale=50))
    in_paper = _dependence(sim.sample_table(paper, SHIPPED[dataset], seed=0, scale=50))
    assert all(value < 0.2 for value in in_null.values()), in_null
    assert all(value > 0.3 for value in in_paper.values()), in_paper


# ---------------------------------------------------------------------------------------------------------- CLI

def test_cli_fit_sample_check_round_trip(toy_table, tmp_path):
    outputs.write(toy_table, tmp_path / "toy.parquet")
    runner = CliRunner()
    fitted = runner.invoke(cli, ["simulate", "fit", str(tmp_path / "toy.parquet"), "-o", str(tmp_path / "toy.yaml"),
                                 "--name", "toy"], catch_exceptions=False)
    assert fitted.exit_code == 0 and fitted.output.strip() == f"wrote {tmp_path / 'toy.yaml'}"
    assert sim_scenario.read(tmp_path / "toy.yaml").name == "toy"
    sampled = runner.invoke(cli, ["simulate", "sample", str(tmp_path / "toy.yaml"), "-o", str(tmp_path / "out"), "--seed", "2"],
                            catch_exceptions=False)
    assert sampled.exit_code == 0 and sampled.output.strip() == f"wrote {tmp_path / 'out' / 'faces.parquet'}"
    assert outputs.read(tmp_path / "out" / "faces.parquet").metadata["seed"] == 2
    checked = runner.invoke(cli, ["simulate", "check", str(tmp_path / "toy.yaml"), str(tmp_path / "toy.parquet"), "--scale", "5"],
                            catch_exceptions=False)
    assert checked.exit_code == 0
    assert "Paper summaries (percent)" in checked.output and "total variation distance" in checked.output


def test_cli_simulate_sample_accepts_a_shipped_name(tmp_path):
    result = CliRunner().invoke(cli, ["simulate", "sample", "null", "-o", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0
    assert outputs.read(tmp_path / "adfes.parquet").metadata["scenario"] == "null"


def test_cli_simulate_fit_missing_table_is_one_line(tmp_path, capsys):
    code = main(["simulate", "fit", str(tmp_path / "none.parquet"), "-o", str(tmp_path / "s.yaml"), "--name", "x"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "none.parquet: outputs table not found" in err
    assert not (tmp_path / "s.yaml").exists()
