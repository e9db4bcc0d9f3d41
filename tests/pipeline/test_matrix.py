"""Every design the README and docs offer, through every stage: one `dvc repro` per combination, at the smallest
budgets that still run each stage (fetch, tune, train, evaluate, power, report), in a fresh copy of the project.

Each combination must leave the report (Markdown and HTML), metrics.json and power.json, hold the design's groups
for the attribute in force, and say of every held-out design either what it could have shown or, in one line, why
the minimum detectable effects were not computed. The runs use umask 0022, and every file and folder they write is
readable by others, as that umask says (issue 21: atomic writes used to leave them private).

Combinations (attribute; source; splits; methods):

- gender; sim, scenario paper; faces->adfes and cv:adfes; a plug-in method from a file and corrector_tuned
- gender; sim, scenario null; adfes->faces; the README's fairness variant of train.methods (`dvc exp run -n fair`)
- gender; table with a dataset declared in YAML only (7 emotions); kdef7->adfes and cv:kdef7; the README's tuned
  fairness variant (`-n fair-tuned`: tune.method group_recalibration, objective pareto)
- age_group; sim, scenario age; cv:faces
- age_group and gender*age_group; published (docs/AGE.md, its methods); cv:faces
- gender; images (the bundled agegender and fer models on test pictures); faces->adfes
"""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import PAPER_OUTPUTS, REPO
from project import copy_project, env, set_params
from toy import KDEF, adfes_like_table, seven_emotion_table

from benchmark.core.protocol import parse_split

pytestmark = pytest.mark.slow

#: the smallest budgets that still run every stage; `power.replicates` 10 is its lowest allowed value
TINY = {"train.n_seeds": 1, "train.corrector.epochs": 3, "train.cv.folds": {"faces": 2, "adfes": 2},
        "train.cv.default_folds": 2, "evaluate.n_resamples": 20, "evaluate.n_permutations": 20,
        "power.replicates": 10, "power.truth_scale": 1, "power.rule_resamples": 100, "tune.pipeline_trials": 1,
        "tune.cv_folds": 2,
        "tune.space.epochs": [2, 3], "tune.prune_epochs": [1], "tracking.enabled": False}
GENDERS = ("male", "female")
FACES_AGES = ("young", "middle", "older")
PLUGIN = "examples/temperature_method.py:make"
#: README "Fairness baselines": dvc exp run -n fair -S 'train.methods=[...]'
FAIR = ["uncorrected", "label_mask", "unimodal", "crossmodal_linear", "corrector", "corrector_tuned",
        "group_recalibration", "group_recalibration@0", "group_recalibration@4", "group_recalibration@16",
        "group_recalibration@64", "lp_equal_opportunity", "lp_equalized_odds", "threshold_optimizer"]
#: README: dvc exp run -n fair-tuned -S tune.method=group_recalibration -S tune.objective=pareto -S 'train.methods=[...]'
FAIR_TUNED = {"tune.method": "group_recalibration", "tune.objective": "pareto",
              "train.methods": ["uncorrected", "label_mask", "group_recalibration", "group_recalibration_tuned",
                                "lp_equal_opportunity", "threshold_optimizer"]}
#: docs/AGE.md: the methods of its run
AGE_METHODS = ["uncorrected", "label_mask", "unimodal", "crossmodal_linear", "corrector"]


@dataclass(frozen=True)
class Cell:
    """One combination: params over TINY, what to put in the copy first, and the groups each dataset must show."""

    id: str
    params: dict
    groups: dict[str, tuple[str, ...]]
    setup: Callable[[Path], None] | None = None
    marks: tuple = field(default_factory=tuple)


def _kdef_tables(project: Path) -> None:
    """A seven-emotion dataset declared only in YAML, and an ADFES-like table (tests/toy.py)."""
    (project / "tables").mkdir()
    seven_emotion_table(6, seed=0).to_csv(project / "tables" / "kdef7.csv", index=False)
    adfes_like_table(seed=1).to_csv(project / "tables" / "adfes.csv", index=False)
    (project / "kdef.yaml").write_text(yaml.safe_dump(KDEF))


def _pictures(project: Path) -> None:
    """FACES and ADFES folders of test pictures: two people of each gender in each."""
    from face_pictures import write_adfes, write_faces

    write_faces(project / "data" / "raw" / "faces", subjects=((1, "y", "f"), (2, "o", "m"), (3, "m", "f"), (4, "y", "m")))
    write_adfes(project / "data" / "raw" / "adfes", subjects=("F01", "M01", "F02", "M02"), extra=())


NEEDS_SHARED = (pytest.mark.needs_shared,)
CELLS = [
    Cell("gender-sim-paper-plugin", {"data.input": "benchmark/scenarios/paper.yaml",
                                     "train.splits": ["faces->adfes", "cv:adfes"],
                                     "train.methods": ["uncorrected", "corrector", "corrector_tuned", PLUGIN]},
         {"faces": GENDERS, "adfes": GENDERS}),
    Cell("gender-sim-null-fair", {"data.input": "benchmark/scenarios/null.yaml", "train.splits": ["adfes->faces"],
                                  "train.methods": FAIR, "tune.split": "adfes->faces"},
         {"faces": GENDERS, "adfes": GENDERS}),
    Cell("gender-table-yaml-declared-fair-tuned",
         {"data.source": "table", "data.input": "tables", "data.datasets": ["kdef7", "adfes"],
          "data.declarations": ["kdef.yaml"], "train.splits": ["kdef7->adfes", "cv:kdef7"],
          "tune.split": "kdef7->adfes", "evaluate.contrasts": [], **FAIR_TUNED},
         {"kdef7": GENDERS, "adfes": GENDERS}, _kdef_tables),
    Cell("age-sim-age", {"data.input": "benchmark/scenarios/age.yaml", "data.attribute": "age_group",
                         "data.datasets": ["faces"], "train.splits": ["cv:faces"], "train.methods": AGE_METHODS},
         {"faces": FACES_AGES}),
    Cell("age-published", {"data.source": "published", "data.input": str(PAPER_OUTPUTS), "data.attribute": "age_group",
                           "data.datasets": ["faces"], "train.splits": ["cv:faces"], "train.methods": AGE_METHODS},
         {"faces": FACES_AGES}, marks=NEEDS_SHARED),
    Cell("gender-x-age-published", {"data.source": "published", "data.input": str(PAPER_OUTPUTS),
                                    "data.attribute": "gender*age_group", "data.datasets": ["faces"],
                                    "train.splits": ["cv:faces"], "train.methods": AGE_METHODS},
         {"faces": tuple(f"{g}*{a}" for g in GENDERS for a in FACES_AGES)}, marks=NEEDS_SHARED),
    Cell("gender-images-bundled-models",
         {"data.source": "images", "data.input": "data/raw", "data.images.gender_model": "agegender",
          "data.images.emotion_model": "fer", "data.images.detector": "hog", "data.images.upsample": 0,
          "data.images.max_side": 0, "data.images.num_workers": 0, "data.images.detect_workers": 1,
          "data.images.device": "cpu", "train.splits": ["faces->adfes"],
          "train.methods": ["uncorrected", "unimodal", "corrector"]},
         {"faces": GENDERS, "adfes": GENDERS}, _pictures),
]


def _repro(project: Path) -> subprocess.CompletedProcess:
    """`dvc repro` under umask 0022 (a team's shared folder), with the project's interpreter first on PATH."""
    return subprocess.run(["bash", "-c", "umask 0022 && dvc repro"], cwd=project, env=env(), capture_output=True,
                          text=True, timeout=1200)


def _written(project: Path) -> list[Path]:
    """What the pipeline wrote: every file and folder under data/outputs, results and reports."""
    roots = [project / "data" / "outputs", project / "results", project / "reports"]
    return [p for root in roots if root.exists() for p in [root, *root.rglob("*")]
            if p.name not in (".gitkeep", ".gitignore")]


@pytest.mark.parametrize("cell", [pytest.param(c, id=c.id, marks=c.marks) for c in CELLS])
def test_every_offered_design_runs_every_stage_and_reports_its_groups(cell, tmp_path, request):
    if any(m.name == "needs_shared" for m in cell.marks):
        request.getfixturevalue("paper_outputs_dir")  # skipped (or failed in CI) without ../shared
    project = copy_project(tmp_path / "project")
    if cell.setup is not None:
        cell.setup(project)
    set_params(project, _params(cell))
    done = _repro(project)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "Traceback" not in output, output[-4000:]
    for stage in ("fetch", "tune", "train", "evaluate", "power", "report"):
        assert f"Running stage '{stage}'" in done.stdout, stage

    doc = json.loads((project / "reports" / "metrics.json").read_text())
    attribute = yaml.safe_load((project / "params.yaml").read_text())["data"]["attribute"]
    assert doc["attribute"] == attribute
    assert {d: tuple(doc["design"][d]["groups"]) for d in cell.groups} == cell.groups
    report, html = (project / "reports" / "report.md").read_text(), (project / "reports" / "report.html").read_text()
    assert f"Protected attribute: **{attribute}**" in report and "<html" in html
    for groups in cell.groups.values():
        assert all(group in report for group in groups), groups

    power = json.loads((project / "results" / "power.json").read_text())
    assert power["attribute"] == attribute
    assert set(power["designs"]) == {parse_split(split).test for split in _params(cell)["train.splits"]}
    for entry in power["designs"].values():
        if "not_simulated" in entry:
            assert f"Minimum detectable effects not computed: {entry['not_simulated']}." in report
        else:
            assert set(entry["tasks"]) == {attribute, "emotion"} and f"scenario `{entry['scenario']}`" in report

    modes = {str(p.relative_to(project)): oct(stat.S_IMODE(p.stat().st_mode)) for p in _written(project)}
    assert "reports/report.html" in modes and "results/predictions.parquet" in modes
    assert {path: mode for path, mode in modes.items()
            if mode != (oct(0o755) if (project / path).is_dir() else oct(0o644))} == {}


def _params(cell: Cell) -> dict:
    return {**TINY, **cell.params}


def test_the_matrix_covers_every_attribute_source_and_split_form_the_readme_offers():
    params = [_params(c) for c in CELLS]
    attributes = {p.get("data.attribute", "gender") for p in params}
    sources = {p.get("data.source", "sim") for p in params}
    scenarios = {Path(p["data.input"]).stem for p in params if p.get("data.source", "sim") == "sim"}
    forms = {"cv" if s.startswith("cv:") else "A->B" for p in params for s in p["train.splits"]}
    assert attributes == {"gender", "age_group", "gender*age_group"}
    assert sources == {"sim", "published", "table", "images"} and scenarios == {"paper", "null", "age"}
    assert forms == {"cv", "A->B"}
    assert any(PLUGIN in p["train.methods"] for p in params)
    assert any(p["train.methods"] == FAIR for p in params) and any(p.get("tune.method") == FAIR_TUNED["tune.method"]
                                                                   for p in params)
    assert (REPO / PLUGIN.split(":")[0]).exists()
