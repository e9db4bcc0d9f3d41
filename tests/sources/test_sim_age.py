"""The `age` scenario and cells by gender x age group: the scenario file (exact round trip, one-line errors), samples
(valid outputs tables for age_group and gender*age_group, FACES' age design kept, seeded), the fit with age outputs
(reproduces its table's age-group accuracies), fidelity to the published FACES outputs, and the `sim` source and
`benchmark simulate` commands with such a scenario."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from scenario_parameters import scenario_parameters

from benchmark.cli import cli, main
from benchmark.core import design as designs
from benchmark.core import outputs
from benchmark.core.labels import AGE_COLUMNS, GENDERS
from benchmark.experiment.params import load_settings
from benchmark.infra.errors import BenchmarkError
from benchmark.sources import load as load_source
from benchmark.sources import names, sim, sim_check, sim_fit, sim_scenario

FACES = designs.shipped()["faces"]
AGE_GROUPS = FACES.attributes["age_group"].groups
ATTRIBUTES = ("gender", "age_group", "gender*age_group")
#: FACES' subjects per age group (58 / 56 / 57), and per gender x age group, as the published table has them.
SUBJECTS_PER_AGE_GROUP = {"young": 58, "middle": 56, "older": 57}
SUBJECTS_PER_GENDER_AND_AGE = {("male", "young"): 29, ("male", "middle"): 29, ("male", "older"): 28,
                               ("female", "young"): 29, ("female", "middle"): 27, ("female", "older"): 29}
#: Fidelity tolerances (percentage points) for a 50x sample against the table the scenario was fitted on: cell
#: accuracies of the age_group attribute, and the summaries (macro, largest and average gap) of both attributes.
CELL_TOLERANCE = 3.0
SUMMARY_TOLERANCE = 2.0


@pytest.fixture(scope="module")
def age():
    return sim_scenario.read("age")


@pytest.fixture(scope="module")
def age_sample(age):
    return sim.sample_table(age, FACES, seed=0)


def _write(raw: dict, path) -> str:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


# ---------------------------------------------------------------------------------------------- scenario file

def test_age_scenario_has_cells_by_gender_age_group_and_emotion(age):
    assert age.cells_by == ("gender", "age_group") and age.age_outputs == AGE_COLUMNS
    assert age.n_dims == 1 + len(age.emotion_classes) + len(AGE_COLUMNS) == 18
    assert set(age.datasets["faces"].cells) == {(g, a, e) for g in GENDERS for a in AGE_GROUPS for e in FACES.emotions}


def test_age_scenario_round_trips_through_yaml_exactly(age, tmp_path):
    assert sim_scenario.dumps(age) == sim_scenario.resolve("age").read_text()
    sim_scenario.write(age, tmp_path / "copy.yaml")
    again = sim_scenario.read(tmp_path / "copy.yaml")
    before, after = scenario_parameters(age), scenario_parameters(again)
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    assert dataclasses.replace(again, datasets={}) == dataclasses.replace(age, datasets={})
    assert again.datasets["faces"].design == age.datasets["faces"].design


def _bad_cells_by(raw):
    raw["cells_by"] = ["gender", "race"]


def _missing_age_outputs(raw):
    del raw["age_outputs"]


def _age_outputs_without_age_cells(raw):
    del raw["cells_by"]


def _misspelt_key(raw):
    raw["cell_by"] = raw.pop("cells_by")


def _unknown_age_group_in_a_cell(raw):
    cells = raw["datasets"]["faces"]["cells"]
    cells["male/teen/anger"] = cells.pop("male/young/anger")


def _age_groups_not_summing_to_the_subjects(raw):
    raw["datasets"]["faces"]["design"]["age_groups"]["male"]["older"] = 1


def _null_dependence_with_age_cells(raw):
    raw["dependence"] = "none"


def _wrong_number_of_age_dimensions(raw):
    raw["datasets"]["faces"]["cells"]["female/older/sad"]["mean"].pop()


@pytest.mark.parametrize("mutate, message", [
    (_bad_cells_by, r"bad.yaml: cells_by: expected one of \[gender\] or \[gender, age_group\], got"),
    (_missing_age_outputs, r"bad.yaml: age_outputs: expected the age model's probability columns exactly when "
                           r"cells_by has age_group"),
    (_age_outputs_without_age_cells, r"bad.yaml: age_outputs: expected the age model's probability columns"),
    (_misspelt_key, r"bad.yaml: cell_by: unknown key; expected some of format, name"),
    (_unknown_age_group_in_a_cell, r"bad.yaml: datasets.faces.cells.male/teen/anger: expected a key "
                                   r"<gender>/<age_group>/<emotion> .* and an age group of the design"),
    (_age_groups_not_summing_to_the_subjects, r"bad.yaml: datasets.faces.design.age_groups.male: expected subject "
                                              r"counts per age group summing to subjects.male \(86\)"),
    (_null_dependence_with_age_cells, r"bad.yaml: dependence: expected observed with cells_by \[gender, age_group\]"),
    (_wrong_number_of_age_dimensions, r"bad.yaml: datasets.faces.cells.female/older/sad.mean: expected finite "
                                      r"numbers of shape \(18,\)"),
], ids=lambda v: v.__name__.strip("_") if callable(v) else "")
def test_bad_age_scenario_key_is_one_line_naming_file_and_key(tmp_path, mutate, message):
    raw = yaml.safe_load(sim_scenario.resolve("age").read_text())
    mutate(raw)
    with pytest.raises(BenchmarkError, match=message) as err:
        sim_scenario.read(_write(raw, tmp_path / "bad.yaml"))
    assert "\n" not in str(err.value)


def test_bad_scenario_key_through_the_cli_is_one_line_and_writes_nothing(tmp_path, capsys):
    raw = yaml.safe_load(sim_scenario.resolve("age").read_text())
    _bad_cells_by(raw)
    code = main(["simulate", "sample", _write(raw, tmp_path / "bad.yaml"), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "bad.yaml: cells_by: expected" in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------- sampling

@pytest.mark.parametrize("attribute", ATTRIBUTES)
def test_age_sample_is_a_valid_outputs_table_for_each_attribute(age_sample, attribute):
    outputs.validate(age_sample, where="age sample", attribute=attribute)


def test_age_sample_age_outputs_are_probabilities_summing_to_one(age_sample):
    probs = age_sample.frame[list(AGE_COLUMNS)].to_numpy()
    assert (probs >= 0).all() and (probs <= 1).all()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-12)


def test_age_sample_keeps_the_faces_subject_design(age_sample):
    frame = age_sample.frame
    subjects = frame.drop_duplicates("subject")
    assert subjects.groupby("age_group")["subject"].nunique().to_dict() == SUBJECTS_PER_AGE_GROUP
    assert subjects.groupby(["gender", "age_group"]).size().to_dict() == SUBJECTS_PER_GENDER_AND_AGE
    assert (frame.groupby("subject")["age_group"].nunique() == 1).all()
    assert (frame.groupby(["subject", "emotion"]).size() == 2).all() and len(frame) == 171 * 12


def test_age_sample_scale_multiplies_each_age_group(age):
    table = sim.sample_table(age, FACES, seed=0, scale=2)
    subjects = table.frame.drop_duplicates("subject")
    assert subjects.groupby("age_group")["subject"].nunique().to_dict() == {a: 2 * k for a, k in SUBJECTS_PER_AGE_GROUP.items()}
    outputs.validate(table, where="scaled", attribute="gender*age_group")


def test_age_sample_file_names_carry_each_subjects_age_group(age_sample):
    for row in age_sample.frame.itertuples():
        parsed = names.parse(FACES.images, row.image_id)
        assert (parsed.subject, parsed.labels["gender"], parsed.labels["age_group"], parsed.emotion) == \
            (row.subject, row.gender, row.age_group, row.emotion)


def test_age_sample_is_identical_for_the_same_seed_and_differs_for_another(age, age_sample):
    assert age_sample.frame.equals(sim.sample_table(age, FACES, seed=0).frame)
    other = sim.sample_table(age, FACES, seed=1).frame
    assert not np.allclose(age_sample.frame["p_age_20-29"], other["p_age_20-29"])


def test_age_sample_for_a_declaration_with_other_age_outputs_names_both(age):
    renamed = dataclasses.replace(FACES.attributes["age_group"], outputs=tuple(f"q{i}" for i in range(9)))
    design = dataclasses.replace(FACES, attributes={**FACES.attributes, "age_group": renamed})
    with pytest.raises(BenchmarkError, match=r"scenario 'age' models age_group groups young, middle, older with "
                                             r"outputs p_age_0-2, .* but dataset 'faces' declares age_group groups "
                                             r"young, middle, older with outputs q0"):
        sim.sample_table(age, design, seed=0)


def test_sim_source_with_the_age_scenario_gives_tables_for_the_age_attributes(tmp_path):
    (tmp_path / "params.yaml").write_text("data:\n  source: sim\n  input: age\n  datasets: [faces]\n"
                                          "  attribute: gender*age_group\ntrain:\n  splits: ['cv:faces']\n")
    settings = load_settings(tmp_path / "params.yaml")
    table = load_source(settings.data, FACES)
    assert table.metadata["scenario"] == "age" and table.metadata["scenario_sha256"] == sim.sha256_of("age")
    for attribute in ATTRIBUTES:
        outputs.validate(table, where="sim source", attribute=attribute)


# --------------------------------------------------------------------------------------------------------- fit

@pytest.fixture(scope="module")
def refit(age_sample, tmp_path_factory):
    """An age scenario fitted (through the files, as the CLI does) to a real-design sample of the shipped one."""
    folder = tmp_path_factory.mktemp("refit")
    outputs.write(age_sample, folder / "faces.parquet")
    path = sim_fit.fit_files([folder / "faces.parquet"], output=folder / "refit.yaml", name="refit",
                             cells_by=("gender", "age_group"), settings=sim_fit.FitSettings(draws=5000))
    return sim_scenario.read(path)


def test_fit_with_age_cells_records_the_rule_it_calibrated_to(refit):
    rule = refit.fitted_from[0]["age_rule"]
    assert rule == designs.to_dict(FACES)["attributes"]["age_group"]["rule"]
    assert refit.fit["age_calibration_temperature"] == sim_fit.FitSettings().age_temperature


def test_fit_with_age_cells_reproduces_the_age_group_accuracies_of_its_table(refit, age_sample):
    fidelity = sim_check.compare({"faces": age_sample}, refit, scale=50, seed=0)
    cells = fidelity.attribute_cells["diff"].xs("age_group", level="attribute")
    assert cells.abs().max() <= CELL_TOLERANCE, cells.abs().groupby(level="task").max()
    assert fidelity.attribute_summary["diff"].xs("age_group", level="attribute").abs().max() <= SUMMARY_TOLERANCE


def test_fit_with_age_cells_needs_the_age_outputs(age):
    without = sim.sample_table(sim_scenario.read("paper"), FACES, seed=0)  # age_group truth, no age outputs
    with pytest.raises(BenchmarkError, match=r"simulate fit: faces: missing column\(s\) p_age_0-2, .* that "
                                             r"data.attribute 'gender\*age_group' needs"):
        sim_fit.fit({"faces": without}, name="x", cells_by=("gender", "age_group"))


def test_fit_rejects_the_null_dependence_with_age_cells(age_sample):
    with pytest.raises(BenchmarkError, match="dependence 'none' is defined for cells by gender only"):
        sim_fit.fit({"faces": age_sample}, name="x", dependence="none", cells_by=("gender", "age_group"))


def test_fit_rejects_cells_by_an_attribute_it_cannot_sample(age_sample):
    with pytest.raises(BenchmarkError, match="cells by 'age_group' are not supported; expected one of 'gender', "
                                             "'gender,age_group'"):
        sim_fit.fit({"faces": age_sample}, name="x", cells_by=("age_group",))


# ---------------------------------------------------------------------------------------------------- fidelity

@pytest.fixture(scope="module")
def age_fidelity(published_tables, age):
    return sim_check.compare({"faces": published_tables["faces"]}, age, scale=50, seed=0)


@pytest.mark.needs_shared
@pytest.mark.parametrize("task", ["age_group", "emotion"])
def test_age_scenario_reproduces_the_published_age_group_cell_accuracies(age_fidelity, task):
    diff = age_fidelity.attribute_cells["diff"].xs(("age_group", task), level=("attribute", "task"))
    assert diff.abs().max() <= CELL_TOLERANCE, diff.abs().idxmax()


@pytest.mark.needs_shared
@pytest.mark.parametrize("attribute", ["age_group", "gender*age_group"])
def test_age_scenario_reproduces_the_published_macro_and_age_gaps(age_fidelity, attribute):
    diff = age_fidelity.attribute_summary["diff"].xs(attribute, level="attribute")
    assert diff.abs().max() <= SUMMARY_TOLERANCE, diff


@pytest.mark.needs_shared
def test_age_scenario_keeps_the_papers_gender_fidelity(age_fidelity):
    assert age_fidelity.summary["diff"].abs().max() <= SUMMARY_TOLERANCE


# --------------------------------------------------------------------------------------------------------- CLI

def test_cli_simulate_fit_passes_cells_by_to_the_fit(monkeypatch, tmp_path):
    seen = {}

    def fake_fit_files(paths, **kwargs):
        seen.update(kwargs)
        return kwargs["output"]

    monkeypatch.setattr(sim_fit, "fit_files", fake_fit_files)
    result = CliRunner().invoke(cli, ["simulate", "fit", "t.parquet", "-o", str(tmp_path / "s.yaml"), "--name", "s",
                                      "--cells-by", "gender,age_group"], catch_exceptions=False)
    assert result.exit_code == 0 and seen["cells_by"] == ("gender", "age_group")


def test_cli_simulate_fit_refuses_cells_by_other_attributes(tmp_path):
    result = CliRunner().invoke(cli, ["simulate", "fit", "t.parquet", "-o", str(tmp_path / "s.yaml"), "--name", "s",
                                      "--cells-by", "gender,race"])
    assert result.exit_code == 2 and "'gender,race' is not one of 'gender', 'gender,age_group'" in result.output


def test_cli_simulate_check_reports_the_age_group_accuracies_per_cell(age_sample, tmp_path):
    outputs.write(age_sample, tmp_path / "faces.parquet")
    result = CliRunner().invoke(cli, ["simulate", "check", "age", str(tmp_path / "faces.parquet"), "--scale", "2"],
                                catch_exceptions=False)
    assert result.exit_code == 0
    assert "Cell accuracies by age_group (percent)" in result.output
    assert "Attributes beyond gender: summaries" in result.output and "gender*age_group" in result.output


def test_cli_simulate_check_of_a_gender_scenario_has_no_age_part(tmp_path):
    table = sim.sample_table(sim_scenario.read("paper"), designs.shipped()["adfes"], seed=0)
    outputs.write(table, tmp_path / "adfes.parquet")
    result = CliRunner().invoke(cli, ["simulate", "check", "paper", str(tmp_path / "adfes.parquet"), "--scale", "2"],
                                catch_exceptions=False)
    assert result.exit_code == 0 and "Attributes beyond gender" not in result.output
