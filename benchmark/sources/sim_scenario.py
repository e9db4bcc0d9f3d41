"""The simulation scenario format: the fitted model's data types and its YAML file (read, validate, write).

A scenario file (``benchmark-sim-scenario/1``, docs/SIMULATION.md) holds summary parameters and the design only,
never per-image rows. Each image is a vector ``x`` of ``n_dims`` numbers: the gender logit
``z = log(p_male / p_female)``, the emotion model's raw logits (model order) and, in a scenario with age outputs, the
log-probabilities of the age model's bins (FairFace's 9). Its cells are keyed by the true groups of the attributes
the scenario models (``cells_by``: gender, or gender and age group) and the true emotion: ``male/anger`` or
``male/young/anger``. A file without ``cells_by`` and ``age_outputs`` is a gender x emotion scenario, read and
written exactly as before these keys existed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmark.core.labels import GENDERS, emotion_column
from benchmark.infra import atomic, textfiles
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.hashing import sha256_file

FORMAT = "benchmark-sim-scenario/1"
#: How the fitted cells relate the two modalities: ``observed`` keeps every dependence of the fitted table; ``none``
#: makes z depend on the true gender only, the emotion logits on the true emotion only, and z independent of them.
DEPENDENCES: tuple[str, ...] = ("observed", "none")
#: File-name schemes the sampler can write (``generic`` for datasets without a known scheme).
NAMINGS: tuple[str, ...] = ("faces", "adfes", "generic")
#: Shipped scenarios, package data in benchmark/scenarios/<name>.yaml.
SHIPPED: tuple[str, ...] = ("paper", "null", "age")
AGE = "age_group"
#: The attributes a scenario's cells may be keyed by (with the true emotion): gender always, since z is the gender
#: model's logit; the age group too when the scenario models age outputs (subjects' groups come from the design).
CELLS_BY: tuple[tuple[str, ...], ...] = (("gender",), ("gender", AGE))
DEFAULT_CELLS_BY: tuple[str, ...] = CELLS_BY[0]
FACES_AGE_CODES = {"young": "y", "middle": "m", "older": "o"}
FACES_SET_CODES = ("a", "b")
SIGNIFICANT_DIGITS = 6
TOP_KEYS: tuple[str, ...] = ("format", "name", "description", "dependence", "cells_by", "emotion_classes",
                             "age_outputs", "dimensions", "z_clip", "fitted_from", "fit", "datasets")
DATASET_KEYS: tuple[str, ...] = ("design", "subject_cov", "cells")
DESIGN_KEYS: tuple[str, ...] = ("subjects", "images_per_emotion", "naming", "age_groups")
CELL_KEYS: tuple[str, ...] = ("n", "mean", "sd", "noise_corr")

#: A cell's key: the true group of each attribute of ``cells_by``, then the true emotion.
CellKey = tuple[str, ...]


@dataclass(frozen=True)
class CellModel:
    """One cell (true groups of ``cells_by`` x true emotion).

    Attributes
    ----------
    n : int
        Images of the fitted table in this cell (for reference; sampling uses the design).
    mean : array of shape (n_dims,)
        Mean of x (z, the emotion logits in model order, then any age log-probabilities), in logit units.
    sd : array of shape (n_dims,)
        Marginal standard deviation of x within the cell (subject and image variation together), logit units.
    noise_corr : array of shape (n_dims, n_dims)
        Covariance of the image-level part ``e`` in standardised units; ``subject_cov + noise_corr`` is the cell's
        correlation matrix (up to the positive-semidefinite projection described in docs/SIMULATION.md).
    """

    n: int
    mean: np.ndarray
    sd: np.ndarray
    noise_corr: np.ndarray


@dataclass(frozen=True)
class Design:
    """How many subjects and images a sample has (at scale 1) and how its files are named.

    ``subjects``: gender -> number of subjects; ``images_per_emotion``: images of each subject per dataset emotion
    (FACES: 2 picture sets, ADFES: 1); ``age_groups``: gender -> age group -> subjects (FACES names them; a scenario
    with cells by age group needs them).
    """

    subjects: dict[str, int]
    images_per_emotion: int
    naming: str
    age_groups: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetModel:
    """The generative model of one dataset: its design, subject effect and cells (keys: :data:`CellKey`)."""

    design: Design
    subject_cov: np.ndarray
    cells: dict[CellKey, CellModel]


@dataclass(frozen=True)
class Scenario:
    """A fitted scenario: everything needed to sample outputs tables, and where it was fitted from.

    ``cells_by`` names the attributes whose true groups key the cells (:data:`CELLS_BY`); ``age_outputs`` the
    outputs-table columns of the age model's probabilities whose logs are the last coordinates of x (empty when the
    scenario has no age outputs).
    """

    name: str
    description: str
    dependence: str
    emotion_classes: tuple[str, ...]
    z_clip: float
    fitted_from: list[dict[str, Any]]
    fit: dict[str, Any]
    datasets: dict[str, DatasetModel]
    cells_by: tuple[str, ...] = DEFAULT_CELLS_BY
    age_outputs: tuple[str, ...] = ()

    @property
    def n_dims(self) -> int:
        """Length of x: the gender logit, one logit per emotion class, one log-probability per age output."""
        return 1 + len(self.emotion_classes) + len(self.age_outputs)

    @property
    def emotion_dims(self) -> slice:
        """Where the emotion logits sit in x."""
        return slice(1, 1 + len(self.emotion_classes))

    @property
    def age_dims(self) -> slice:
        """Where the age log-probabilities sit in x (empty without age outputs)."""
        return slice(1 + len(self.emotion_classes), self.n_dims)


# ----------------------------------------------------------------------------------------------------- writing

def _round(values: np.ndarray) -> list:
    """Nested lists of floats rounded to ``SIGNIFICANT_DIGITS`` (stable bytes, exact YAML round trip)."""
    return np.vectorize(lambda v: float(f"{v:.{SIGNIFICANT_DIGITS}g}"), otypes=[float])(np.asarray(values)).tolist()


def round_parameters(values: np.ndarray) -> np.ndarray:
    """``values`` rounded as they are stored in a scenario file (fitting rounds, so a round trip is exact)."""
    return np.asarray(_round(values), dtype=np.float64)


def cell_key(*parts: str) -> str:
    """YAML key of a cell: its groups and emotion joined by ``/`` (``male/anger``, ``male/young/anger``)."""
    return "/".join(parts)


def dimensions(scenario: Scenario) -> list[str]:
    """What each coordinate of x is, in order (written to the file for the reader)."""
    return (["z = log(p_male / p_female)"] + [emotion_column(c) for c in scenario.emotion_classes]
            + [f"log {column}" for column in scenario.age_outputs])


def to_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain YAML-ready data (the file layout; see docs/SIMULATION.md). ``cells_by`` and
    ``age_outputs`` are written only when they differ from a gender x emotion scenario's."""
    datasets = {}
    for name, model in scenario.datasets.items():
        design = {"subjects": dict(model.design.subjects), "images_per_emotion": model.design.images_per_emotion,
                  "naming": model.design.naming}
        if model.design.age_groups:
            design["age_groups"] = {g: dict(a) for g, a in model.design.age_groups.items()}
        cells = {cell_key(*key): {"n": c.n, "mean": _round(c.mean), "sd": _round(c.sd),
                                  "noise_corr": _round(c.noise_corr)}
                 for key, c in model.cells.items()}
        datasets[name] = {"design": design, "subject_cov": _round(model.subject_cov), "cells": cells}
    out: dict[str, Any] = {"format": FORMAT, "name": scenario.name, "description": scenario.description,
                           "dependence": scenario.dependence}
    if scenario.cells_by != DEFAULT_CELLS_BY:
        out["cells_by"] = list(scenario.cells_by)
    out["emotion_classes"] = list(scenario.emotion_classes)
    if scenario.age_outputs:
        out["age_outputs"] = list(scenario.age_outputs)
    out.update({"dimensions": dimensions(scenario), "z_clip": scenario.z_clip, "fitted_from": scenario.fitted_from,
                "fit": scenario.fit, "datasets": datasets})
    return out


def dumps(scenario: Scenario) -> str:
    """The scenario file's text (deterministic: same parameters, same bytes)."""
    header = (f"# Simulation scenario {scenario.name!r}: fitted summary parameters only (no per-image rows).\n"
              "# Written by `benchmark simulate fit`; the model and every field: docs/SIMULATION.md.\n")
    return header + yaml.safe_dump(to_dict(scenario), sort_keys=False, default_flow_style=None, width=120)


def write(scenario: Scenario, path: Path | str) -> Path:
    """Write the scenario file atomically; returns its path."""
    atomic.write_text(path, dumps(scenario))
    return Path(path)


# ----------------------------------------------------------------------------------------------------- reading

class _Reader:
    """Typed access to a parsed scenario file, raising one-line errors that name the file and key."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, expected: str, got: Any) -> BenchmarkError:
        return BenchmarkError(f"{self.where}: {key}: expected {expected}, got {str(got)[:80]!r}")

    def get(self, node: Any, key: str, path: str) -> Any:
        """``node[key]``; ``path`` is the dotted key of ``node`` ('' at the top), for the message."""
        if not isinstance(node, dict) or key not in node:
            raise BenchmarkError(f"{self.where}: missing key {path + '.' if path else ''}{key}")
        return node[key]

    def known_keys(self, node: Any, path: str, allowed: tuple[str, ...]) -> None:
        """Reject a key of ``node`` outside ``allowed`` (a misspelt key would otherwise be ignored)."""
        unknown = sorted(set(map(str, node)) - set(allowed)) if isinstance(node, dict) else []
        if unknown:
            raise BenchmarkError(f"{self.where}: {path + '.' if path else ''}{unknown[0]}: unknown key; expected "
                                 f"some of {', '.join(allowed)}")

    def names(self, value: Any, key: str) -> tuple[str, ...]:
        if (not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value)
                or len(set(value)) != len(value)):
            raise self.fail(key, "a non-empty list of unique names", value)
        return tuple(value)

    def matrix(self, value: Any, key: str, shape: tuple[int, ...]) -> np.ndarray:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise self.fail(key, f"numbers of shape {shape}", value) from None
        if array.shape != shape or not np.isfinite(array).all():
            raise self.fail(key, f"finite numbers of shape {shape}", f"shape {array.shape}")
        return array

    def covariance(self, value: Any, key: str, n: int) -> np.ndarray:
        array = self.matrix(value, key, (n, n))
        if not np.allclose(array, array.T, atol=1e-9) or np.linalg.eigvalsh(array).min() < -1e-4:
            raise self.fail(key, "a symmetric positive-semidefinite matrix", "a matrix that is not")
        return array

    def count(self, value: Any, key: str, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(key, f"an integer >= {low}", value)
        return value


def _read_design(r: _Reader, raw: Any, path: str, cells_by: tuple[str, ...]) -> Design:
    r.known_keys(raw, path, DESIGN_KEYS)
    subjects = r.get(raw, "subjects", path)
    if not isinstance(subjects, dict) or sorted(subjects) != sorted(GENDERS):
        raise r.fail(f"{path}.subjects", f"a count per gender ({', '.join(GENDERS)})", subjects)
    naming = r.get(raw, "naming", path)
    if naming not in NAMINGS:
        raise r.fail(f"{path}.naming", f"one of {', '.join(NAMINGS)}", naming)
    per_emotion = r.count(r.get(raw, "images_per_emotion", path), f"{path}.images_per_emotion", 1)
    if naming == "faces" and per_emotion > len(FACES_SET_CODES):
        raise r.fail(f"{path}.images_per_emotion", f"at most {len(FACES_SET_CODES)} with FACES naming", per_emotion)
    ages = raw.get("age_groups") or {}
    if not isinstance(ages, dict) or not all(isinstance(a, dict) for a in ages.values()):
        raise r.fail(f"{path}.age_groups", "a mapping gender -> age group -> subjects", ages)
    design = Design({g: r.count(subjects[g], f"{path}.subjects.{g}", 1) for g in GENDERS}, per_emotion, naming,
                    {g: {a: r.count(k, f"{path}.age_groups.{g}.{a}", 0) for a, k in ages[g].items()} for g in ages})
    for g in GENDERS:
        groups = design.age_groups.get(g, {})
        if naming == "faces" and (not groups or set(groups) - set(FACES_AGE_CODES) or sum(groups.values()) < 1):
            raise r.fail(f"{path}.age_groups.{g}", f"subject counts for some of {', '.join(FACES_AGE_CODES)}", groups)
        if AGE in cells_by and sum(groups.values()) != design.subjects[g]:
            raise r.fail(f"{path}.age_groups.{g}", f"subject counts per age group summing to subjects.{g} "
                                                   f"({design.subjects[g]}), as cells by {AGE} need", groups)
    return design


def _read_cells(r: _Reader, raw: Any, path: str, *, design: Design, cells_by: tuple[str, ...],
                n_dims: int) -> dict[CellKey, CellModel]:
    if not isinstance(raw, dict) or not raw:
        raise r.fail(path, f"a mapping {'/'.join(cells_by)}/emotion -> cell model", raw)
    cells = {}
    for name in raw:
        parts = tuple(str(name).split("/"))
        groups_ok = (len(parts) == len(cells_by) + 1 and parts[0] in GENDERS and all(parts)
                     and (AGE not in cells_by or parts[1] in design.age_groups.get(parts[0], {})))
        if not groups_ok:
            raise r.fail(f"{path}.{name}", f"a key {'/'.join(f'<{a}>' for a in cells_by)}/<emotion> with gender one "
                                           f"of {', '.join(GENDERS)}" + (" and an age group of the design"
                                                                        if AGE in cells_by else ""), name)
        key = f"{path}.{cell_key(*parts)}"
        c = raw[name]
        r.known_keys(c, key, CELL_KEYS)
        sd = r.matrix(r.get(c, "sd", key), f"{key}.sd", (n_dims,))
        if (sd < 0).any():
            raise r.fail(f"{key}.sd", "non-negative standard deviations", sd.tolist())
        cells[parts] = CellModel(r.count(r.get(c, "n", key), f"{key}.n", 0),
                                 r.matrix(r.get(c, "mean", key), f"{key}.mean", (n_dims,)), sd,
                                 r.covariance(r.get(c, "noise_corr", key), f"{key}.noise_corr", n_dims))
    return cells


def _read_dataset(r: _Reader, name: str, raw: Any, *, cells_by: tuple[str, ...], n_dims: int) -> DatasetModel:
    path = f"datasets.{name}"
    r.known_keys(raw, path, DATASET_KEYS)
    design = _read_design(r, r.get(raw, "design", path), f"{path}.design", cells_by)
    cells = _read_cells(r, r.get(raw, "cells", path), f"{path}.cells", design=design, cells_by=cells_by, n_dims=n_dims)
    subject_cov = r.covariance(r.get(raw, "subject_cov", path), f"{path}.subject_cov", n_dims)
    return DatasetModel(design, subject_cov, cells)


def from_dict(raw: Any, *, where: str) -> Scenario:
    """Build and validate a scenario from parsed YAML; errors name ``where`` and the offending key."""
    r = _Reader(where)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        got = raw.get("format") if isinstance(raw, dict) else raw
        raise r.fail("format", f"{FORMAT!r} (a file written by `benchmark simulate fit`)", got)
    r.known_keys(raw, "", TOP_KEYS)
    classes = r.names(r.get(raw, "emotion_classes", ""), "emotion_classes")
    dependence = r.get(raw, "dependence", "")
    if dependence not in DEPENDENCES:
        raise r.fail("dependence", f"one of {', '.join(DEPENDENCES)}", dependence)
    cells_by = tuple(raw.get("cells_by", DEFAULT_CELLS_BY)) if isinstance(raw.get("cells_by", []), list) else None
    if cells_by not in CELLS_BY:
        raise r.fail("cells_by", "one of " + " or ".join(f"[{', '.join(c)}]" for c in CELLS_BY), raw.get("cells_by"))
    age_outputs = r.names(raw["age_outputs"], "age_outputs") if "age_outputs" in raw else ()
    if bool(age_outputs) != (AGE in cells_by):
        raise r.fail("age_outputs", f"the age model's probability columns exactly when cells_by has {AGE}",
                     raw.get("age_outputs"))
    if dependence != "observed" and cells_by != DEFAULT_CELLS_BY:
        raise r.fail("dependence", f"observed with cells_by [{', '.join(cells_by)}] (the null construction is "
                                   "defined for cells by gender)", dependence)
    z_clip = r.get(raw, "z_clip", "")
    if isinstance(z_clip, bool) or not isinstance(z_clip, (int, float)) or not 0 < z_clip < 700:
        raise r.fail("z_clip", "a number in (0, 700)", z_clip)
    raw_datasets = r.get(raw, "datasets", "")
    if not isinstance(raw_datasets, dict) or not raw_datasets:
        raise r.fail("datasets", "a mapping of dataset name -> model", raw_datasets)
    n_dims = 1 + len(classes) + len(age_outputs)
    datasets = {str(name): _read_dataset(r, str(name), model, cells_by=cells_by, n_dims=n_dims)
                for name, model in raw_datasets.items()}
    return Scenario(str(r.get(raw, "name", "")), str(raw.get("description", "")), dependence, classes,
                    float(z_clip), list(raw.get("fitted_from") or []), dict(raw.get("fit") or {}), datasets,
                    cells_by, age_outputs)


def resolve(name_or_path: str | Path) -> Path:
    """Path of a scenario file: an existing path, or the name of a shipped scenario (``paper``, ``null``, ``age``)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    if str(name_or_path) in SHIPPED:
        return Path(str(resources.files("benchmark") / "scenarios" / f"{name_or_path}.yaml"))
    raise BenchmarkError(f"{name_or_path}: scenario file not found; give a path to a scenario YAML or one of the "
                         f"shipped scenarios ({', '.join(SHIPPED)})")


def read(name_or_path: str | Path) -> Scenario:
    """Read and validate a scenario file (a path, or a shipped scenario's name)."""
    path = resolve(name_or_path)
    if not path.is_file():
        raise BenchmarkError(f"{path}: is not a file; the sim source reads a scenario YAML (data.input, e.g. "
                             f"benchmark/scenarios/paper.yaml), not a folder")
    try:
        raw = textfiles.load_yaml(path)  # strict: UTF-8, each key once
    except yaml.YAMLError as err:
        raise BenchmarkError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from err
    return from_dict(raw, where=str(path))


def sha256_of(name_or_path: str | Path) -> str:
    """Hex sha256 of a scenario file's bytes (recorded in every sampled table's metadata)."""
    return sha256_file(resolve(name_or_path))
