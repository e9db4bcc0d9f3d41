"""Fidelity of a scenario: a large simulated sample beside the table it was fitted on.

Compared per dataset, for the frozen models' own (uncorrected) predictions: per-cell accuracies of both tasks, the
paper's summaries (macro accuracy, largest and average gap), the confusion over all emotion classes (total variation
distance per cell), calibration (expected calibration error of the predicted class's probability), the gender logit's
and the emotion logits' location and spread, and the within-cell correlation between the gender logit and the
emotion logits (the dependence the corrector exploits). For a scenario with cells by age group too, the same
accuracies and summaries for the attributes ``age_group`` and ``gender*age_group``: the age model's predicted group
(its declared rule) and emotion, per age-group x emotion cell, with the gap as max - min over the groups.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.core import design as designs
from benchmark.core import metrics
from benchmark.core.design import CellLayout
from benchmark.core.labels import GENDER_COLUMNS, GENDERS
from benchmark.core.outputs import OutputsTable
from benchmark.core.scores import softmax
from benchmark.infra.errors import BenchmarkError
from benchmark.sources import sim, sim_scenario
from benchmark.sources.sim_fit import vectors

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Fidelity:
    """The comparison tables; every one has columns ``real``, ``sim`` and ``diff`` (= sim - real).

    summary : index (dataset, task, metric), percent.
    cells : index (dataset, task, gender, emotion), accuracy in percent.
    confusion : index (dataset, gender, emotion), column ``tv`` only: total variation distance in [0, 1] between the
        real and simulated distributions of the predicted emotion class.
    outputs : index (dataset, quantity): the gender logit z and the gender probability of the true gender, the emotion
        logits (means over the 12 cells of each cell's mean or sd; logit units), and the within-cell correlation of z
        with each emotion logit (pooled over cells).
    calibration : index (dataset, task), expected calibration error in percent.
    attribute_summary : index (dataset, attribute, task, metric), percent: the summaries under each attribute beyond
        gender that the scenario's cells model (``age_group``, ``gender*age_group``; no rows for cells by gender).
    attribute_cells : index (dataset, attribute, task, group, emotion), accuracy in percent, likewise.
    """

    summary: pd.DataFrame
    cells: pd.DataFrame
    confusion: pd.DataFrame
    outputs: pd.DataFrame
    calibration: pd.DataFrame
    attribute_summary: pd.DataFrame
    attribute_cells: pd.DataFrame


def _gender_probs(table: OutputsTable) -> np.ndarray:
    """(n_images, 2) gender probabilities, ``GENDERS`` order."""
    return table.frame[list(GENDER_COLUMNS)].to_numpy(dtype=np.float64)


def predictions(table: OutputsTable) -> dict[str, np.ndarray]:
    """The frozen models' own predictions (argmax), task -> labels of shape (n_images,)."""
    gender = np.asarray(GENDERS)[_gender_probs(table).argmax(axis=1)]
    emotion = np.asarray(table.emotion_classes)[table.emotion_logits().argmax(axis=1)]
    return {"gender": gender, "emotion": emotion}


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, *, bins: int = CALIBRATION_BINS) -> float:
    """ECE in percent: the image-weighted mean |accuracy - mean confidence| over equal-width confidence bins."""
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gaps = [abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).sum()
            for b in range(bins) if (which == b).any()]
    return 100.0 * float(np.sum(gaps)) / len(confidence)


def _cell_rows(table: OutputsTable) -> dict[tuple[str, str], np.ndarray]:
    frame = table.frame
    return {(g, e): ((frame["gender"] == g) & (frame["emotion"] == e)).to_numpy()
            for g in GENDERS for e in table.design.emotions}


def _describe(table: OutputsTable) -> dict[str, pd.Series]:
    """Everything compared, for one table: series keyed like the Fidelity tables (without the dataset level)."""
    preds = predictions(table)
    frame = table.frame
    summary, cells, calibration = {}, {}, {}
    layout = CellLayout(GENDERS, table.design.emotions)
    for task, predicted in preds.items():
        cell = metrics.cell_accuracies(group=frame["gender"].to_numpy(), emotion=frame["emotion"].to_numpy(),
                                       correct=predicted == frame[task].to_numpy(), layout=layout)
        summary.update({(task, k): v for k, v in metrics.summarize(cell, layout).as_dict().items()})
        cells.update({(task, g, e): cell.loc[(g, e), "accuracy"] for g, e in cell.index})
        probs = _gender_probs(table) if task == "gender" else softmax(table.emotion_logits())
        calibration[task] = expected_calibration_error(probs.max(axis=1), predicted == frame[task].to_numpy())
    x = vectors(table)
    sign = np.where(frame["gender"].to_numpy() == "male", 1.0, -1.0)
    p_true = np.where(sign > 0, _gender_probs(table)[:, 0], _gender_probs(table)[:, 1])
    classes = list(table.emotion_classes)
    confusion, per_cell = {}, []
    residuals = np.zeros_like(x)
    for key, rows in _cell_rows(table).items():
        confusion[key] = pd.Series(preds["emotion"][rows]).value_counts(normalize=True).reindex(classes, fill_value=0.0)
        residuals[rows] = (x[rows] - x[rows].mean(axis=0)) / x[rows].std(axis=0, ddof=1)
        per_cell.append({"z toward the true gender: mean": (sign[rows] * x[rows, 0]).mean(),
                         "z: sd": x[rows, 0].std(ddof=1), "p(true gender): mean": p_true[rows].mean(),
                         "p(true gender) > 0.99: share": (p_true[rows] > 0.99).mean(),
                         "emotion logits: mean": x[rows, 1:].mean(), "emotion logits: sd": x[rows, 1:].std(axis=0, ddof=1).mean()})
    within = np.corrcoef(residuals.T)[0, 1:]
    outputs = pd.concat([pd.DataFrame(per_cell).mean(),
                         pd.Series({f"corr(z, emo_{c}) within cells": r for c, r in zip(classes, within)})])
    return {"summary": pd.Series(summary), "cells": pd.Series(cells), "confusion": confusion,
            "outputs": outputs, "calibration": pd.Series(calibration)}


def further_attributes(scenario: sim_scenario.Scenario) -> tuple[str, ...]:
    """The attributes beyond gender whose cells ``scenario`` models: every attribute of its ``cells_by`` and their
    intersections, except gender alone (``age_group``, ``gender*age_group``); none for cells by gender."""
    parts = scenario.cells_by
    return tuple(designs.INTERSECTION.join(combo) for r in range(1, len(parts) + 1)
                 for combo in itertools.combinations(parts, r) if combo != ("gender",))


def _describe_attribute(table: OutputsTable, name: str) -> dict[str, pd.Series]:
    """Cell accuracies and summaries of the attribute ``name``'s own prediction (argmax of its declared group
    probabilities) and of emotion, over ``name``'s groups x emotions; series keyed (task, metric) and (task, group,
    emotion)."""
    attribute = designs.attribute_of(table.design, name)
    truth = attribute.truth(table.frame)
    predicted = {name: np.asarray(attribute.groups)[attribute.group_probabilities(table.frame).argmax(axis=1)],
                 "emotion": predictions(table)["emotion"]}
    layout = designs.layout(table.design, attribute)
    summary, cells = {}, {}
    for task, labels in predicted.items():
        correct = labels == (truth if task == name else table.frame["emotion"].to_numpy())
        cell = metrics.cell_accuracies(group=truth, emotion=table.frame["emotion"].to_numpy(), correct=correct,
                                       layout=layout)
        summary.update({(task, k): v for k, v in metrics.summarize(cell, layout).as_dict().items()})
        cells.update({(task, g, e): cell.loc[(g, e), "accuracy"] for g, e in cell.index})
    return {"summary": pd.Series(summary, dtype=float), "cells": pd.Series(cells, dtype=float)}


def _pair(real: pd.Series, simulated: pd.Series, names: list[str]) -> pd.DataFrame:
    out = pd.DataFrame({"real": real, "sim": simulated})
    out["diff"] = out["sim"] - out["real"]
    out.index.names = names
    return out


def compare(tables: dict[str, OutputsTable], scenario: sim_scenario.Scenario, *, scale: int = 50, seed: int = 0) -> Fidelity:
    """Sample ``scale`` times each dataset's design from ``scenario`` and compare it with ``tables`` (dataset -> table)."""
    simulated = sim.sample(scenario, {d: t.design for d, t in tables.items()}, seed=seed, scale=scale)
    parts: dict[str, list[pd.DataFrame]] = {k: [] for k in ("summary", "cells", "confusion", "outputs", "calibration",
                                                            "attribute_summary", "attribute_cells")}
    for dataset, table in tables.items():
        for name in further_attributes(scenario):
            real, fake = _describe_attribute(table, name), _describe_attribute(simulated[dataset], name)
            parts["attribute_summary"].append(pd.concat({(dataset, name): _pair(real["summary"], fake["summary"],
                                                                                ["task", "metric"])}))
            parts["attribute_cells"].append(pd.concat({(dataset, name): _pair(real["cells"], fake["cells"],
                                                                              ["task", "group", "emotion"])}))
        real, fake = _describe(table), _describe(simulated[dataset])
        parts["summary"].append(pd.concat({dataset: _pair(real["summary"], fake["summary"], ["task", "metric"])}))
        parts["cells"].append(pd.concat({dataset: _pair(real["cells"], fake["cells"], ["task", "gender", "emotion"])}))
        parts["outputs"].append(pd.concat({dataset: _pair(real["outputs"], fake["outputs"], ["quantity"])}))
        parts["calibration"].append(pd.concat({dataset: _pair(real["calibration"], fake["calibration"], ["task"])}))
        tv = {key: 0.5 * float(np.abs(real["confusion"][key] - fake["confusion"][key]).sum()) for key in real["confusion"]}
        parts["confusion"].append(pd.concat({dataset: pd.Series(tv, name="tv").rename_axis(["gender", "emotion"]).to_frame()}))
    frames = {}
    for name, pieces in parts.items():
        if not pieces:  # no attribute beyond gender
            levels = ["dataset", "attribute", "task"] + (["metric"] if name == "attribute_summary" else ["group", "emotion"])
            frames[name] = pd.DataFrame(columns=["real", "sim", "diff"], dtype=float,
                                        index=pd.MultiIndex.from_tuples([], names=levels))
            continue
        frame = pd.concat(pieces)
        frame.index = frame.index.set_names(["dataset", "attribute"] if name.startswith("attribute") else "dataset",
                                            level=[0, 1] if name.startswith("attribute") else 0)
        frames[name] = frame
    return Fidelity(**frames)


def _block(title: str, frame: pd.DataFrame, digits: int = 2) -> str:
    return f"{title}\n{frame.round(digits).to_string()}\n"


def format_report(fidelity: Fidelity, *, scenario: str, scale: int, seed: int) -> str:
    """The comparison as plain text (what ``benchmark simulate check`` prints)."""
    worst_cells = fidelity.cells.assign(abs_diff=fidelity.cells["diff"].abs()).groupby(["dataset", "task"])["abs_diff"].max()
    return "\n".join([
        f"Fidelity of scenario {scenario!r}: simulated sample at {scale}x the design (seed {seed}) minus the fitted table.",
        _block("Paper summaries (percent)", fidelity.summary),
        _block("Cell accuracies (percent): largest |diff| per dataset and task", worst_cells.to_frame("max |diff|")),
        _block("Cell accuracies (percent)", fidelity.cells.unstack("gender")[["real", "sim"]], 1),
        _block("Emotion confusion over all classes: total variation distance per cell", fidelity.confusion["tv"].unstack("emotion"), 3),
        _block("Calibration of the predicted class's probability: ECE (percent)", fidelity.calibration),
        _block("Outputs: cell means and sds averaged over the 12 cells (logit units), within-cell correlations", fidelity.outputs, 3),
        *_attribute_blocks(fidelity),
    ])


def _attribute_blocks(fidelity: Fidelity) -> list[str]:
    """The report's part on the attributes beyond gender (age group and its intersection with gender), if any."""
    cells = fidelity.attribute_cells
    if cells.empty:
        return []
    worst = cells.assign(abs_diff=cells["diff"].abs()).groupby(["dataset", "attribute", "task"], sort=False)["abs_diff"].max()
    out = [_block("Attributes beyond gender: summaries (percent; gaps are max - min over the groups)",
                  fidelity.attribute_summary),
           _block("Attributes beyond gender: cell accuracies (percent), largest |diff| per dataset, attribute and task",
                  worst.to_frame("max |diff|"))]
    for name in cells.index.get_level_values("attribute").unique():
        out.append(_block(f"Cell accuracies by {name} (percent)",
                          cells.xs(name, level="attribute").unstack("group")[["real", "sim"]], 1))
    return out


def check_files(scenario_path: str, table_paths: list, *, scale: int = 50, seed: int = 0) -> str:
    """Compare the scenario (a path or shipped name) with the outputs tables at ``table_paths``; the report's text."""
    from benchmark.sources.sim_fit import read_tables

    scenario = sim.read(scenario_path)
    tables = read_tables(table_paths, attribute=designs.INTERSECTION.join(scenario.cells_by))
    missing = [d for d in tables if d not in scenario.datasets]
    if missing:
        raise BenchmarkError(f"{scenario_path}: scenario {scenario.name!r} has no dataset {missing[0]!r}; "
                             f"it has {', '.join(scenario.datasets)}")
    return format_report(compare(tables, scenario, scale=scale, seed=seed), scenario=scenario.name, scale=scale, seed=seed)
