"""The ``sim`` source: a generative model of the per-image frozen outputs, sampled from a scenario file.

Each image is one vector ``x`` of ``1 + n_classes`` numbers: the gender logit ``z = log(p_male / p_female)`` followed
by the emotion model's raw logits (model order). Per dataset and cell (true gender x true emotion)::

    x = mean_cell + sd_cell * (v_subject + e_image),   v_subject ~ N(0, subject_cov),  e_image ~ N(0, noise_corr_cell)

``mean_cell``, ``sd_cell`` and ``noise_corr_cell`` are the cell's own, so the gender output depends on the true
emotion, the emotion logits on the true gender, and z and the emotion logits are correlated within a cell;
``subject_cov`` (standardised units, one per dataset) correlates the images of one person across all their cells.
``z`` is clipped to ``+-z_clip`` and turned back into ``p_male = sigmoid(z)``, ``p_female = sigmoid(-z)``.
How the parameters are fitted is in :mod:`benchmark.sources.sim_fit` and docs/SIMULATION.md. A scenario file (YAML)
holds only these summary parameters and the design, never per-image rows.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from benchmark import atomic, outputs, paths, textfiles
from benchmark.errors import BenchmarkError
from benchmark.labels import DATASET_EMOTIONS, GENDERS, emotion_column, gender_column
from benchmark.outputs import OutputsTable

if TYPE_CHECKING:
    from benchmark.config import DataSettings

FORMAT = "benchmark-sim-scenario/1"
#: How the fitted cells relate the two modalities: ``observed`` keeps every dependence of the fitted table; ``none``
#: makes z depend on the true gender only, the emotion logits on the true emotion only, and z independent of them.
DEPENDENCES: tuple[str, ...] = ("observed", "none")
#: File-name schemes the sampler can write (``generic`` for datasets without a known scheme).
NAMINGS: tuple[str, ...] = ("faces", "adfes", "generic")
#: Shipped scenarios, package data in benchmark/scenarios/<name>.yaml.
SHIPPED: tuple[str, ...] = ("paper", "null")
FACES_AGE_CODES = {"young": "y", "middle": "m", "older": "o"}
FACES_SET_CODES = ("a", "b")
#: ADFES spells happy as Joy in its file names; the other emotions are the capitalised canonical names.
ADFES_FILE_EMOTION = {"happy": "Joy"}
SIGNIFICANT_DIGITS = 6


@dataclass(frozen=True)
class CellModel:
    """One true-gender x true-emotion cell.

    Attributes
    ----------
    n : int
        Images of the fitted table in this cell (for reference; sampling uses the design).
    mean : array of shape (n_dims,)
        Mean of x (z, then the emotion logits in model order), in logit units.
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
    (FACES: 2 picture sets, ADFES: 1); ``age_groups``: gender -> age group -> subjects (FACES names only).
    """

    subjects: dict[str, int]
    images_per_emotion: int
    naming: str
    age_groups: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetModel:
    """The generative model of one dataset: its design, subject effect and 12 cells keyed by (gender, emotion)."""

    design: Design
    subject_cov: np.ndarray
    cells: dict[tuple[str, str], CellModel]


@dataclass(frozen=True)
class Scenario:
    """A fitted scenario: everything needed to sample outputs tables, and where it was fitted from."""

    name: str
    description: str
    dependence: str
    emotion_classes: tuple[str, ...]
    z_clip: float
    fitted_from: list[dict[str, Any]]
    fit: dict[str, Any]
    datasets: dict[str, DatasetModel]

    @property
    def n_dims(self) -> int:
        """Length of x: the gender logit plus one logit per emotion class."""
        return 1 + len(self.emotion_classes)


# ----------------------------------------------------------------------------------------------------------- YAML

def _round(values: np.ndarray) -> list:
    """Nested lists of floats rounded to ``SIGNIFICANT_DIGITS`` (stable bytes, exact YAML round trip)."""
    return np.vectorize(lambda v: float(f"{v:.{SIGNIFICANT_DIGITS}g}"), otypes=[float])(np.asarray(values)).tolist()


def round_parameters(values: np.ndarray) -> np.ndarray:
    """``values`` rounded as they are stored in a scenario file (fitting rounds, so a round trip is exact)."""
    return np.asarray(_round(values), dtype=np.float64)


def cell_key(gender: str, emotion: str) -> str:
    """YAML key of a cell: ``male/anger``."""
    return f"{gender}/{emotion}"


def to_dict(scenario: Scenario) -> dict[str, Any]:
    """The scenario as plain YAML-ready data (the file layout; see docs/SIMULATION.md)."""
    datasets = {}
    for name, model in scenario.datasets.items():
        design = {"subjects": dict(model.design.subjects), "images_per_emotion": model.design.images_per_emotion,
                  "naming": model.design.naming}
        if model.design.age_groups:
            design["age_groups"] = {g: dict(a) for g, a in model.design.age_groups.items()}
        cells = {cell_key(g, e): {"n": c.n, "mean": _round(c.mean), "sd": _round(c.sd),
                                  "noise_corr": _round(c.noise_corr)}
                 for (g, e), c in model.cells.items()}
        datasets[name] = {"design": design, "subject_cov": _round(model.subject_cov), "cells": cells}
    return {"format": FORMAT, "name": scenario.name, "description": scenario.description,
            "dependence": scenario.dependence, "emotion_classes": list(scenario.emotion_classes),
            "dimensions": ["z = log(p_male / p_female)"] + [emotion_column(c) for c in scenario.emotion_classes],
            "z_clip": scenario.z_clip, "fitted_from": scenario.fitted_from, "fit": scenario.fit, "datasets": datasets}


def dumps(scenario: Scenario) -> str:
    """The scenario file's text (deterministic: same parameters, same bytes)."""
    header = (f"# Simulation scenario {scenario.name!r}: fitted summary parameters only (no per-image rows).\n"
              "# Written by `benchmark simulate fit`; the model and every field: docs/SIMULATION.md.\n")
    return header + yaml.safe_dump(to_dict(scenario), sort_keys=False, default_flow_style=None, width=120)


def write(scenario: Scenario, path: Path | str) -> Path:
    """Write the scenario file atomically; returns its path."""
    atomic.write_text(path, dumps(scenario))
    return Path(path)


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


def _read_dataset(r: _Reader, name: str, raw: Any, n_dims: int) -> DatasetModel:
    path = f"datasets.{name}"
    raw_design = r.get(raw, "design", path)
    subjects = r.get(raw_design, "subjects", f"{path}.design")
    if not isinstance(subjects, dict) or sorted(subjects) != sorted(GENDERS):
        raise r.fail(f"{path}.design.subjects", f"a count per gender ({', '.join(GENDERS)})", subjects)
    naming = r.get(raw_design, "naming", f"{path}.design")
    if naming not in NAMINGS:
        raise r.fail(f"{path}.design.naming", f"one of {', '.join(NAMINGS)}", naming)
    per_emotion = r.count(r.get(raw_design, "images_per_emotion", f"{path}.design"), f"{path}.design.images_per_emotion", 1)
    if naming == "faces" and per_emotion > len(FACES_SET_CODES):
        raise r.fail(f"{path}.design.images_per_emotion", f"at most {len(FACES_SET_CODES)} with FACES naming", per_emotion)
    ages = raw_design.get("age_groups") or {}
    design = Design({g: r.count(subjects[g], f"{path}.design.subjects.{g}", 1) for g in GENDERS}, per_emotion, naming,
                    {g: {a: r.count(k, f"{path}.design.age_groups.{g}.{a}", 0) for a, k in ages[g].items()} for g in ages})
    if naming == "faces":
        for g in GENDERS:
            groups = design.age_groups.get(g, {})
            if not groups or set(groups) - set(FACES_AGE_CODES) or sum(groups.values()) < 1:
                raise r.fail(f"{path}.design.age_groups.{g}", f"subject counts for some of {', '.join(FACES_AGE_CODES)}", groups)
    raw_cells = r.get(raw, "cells", path)
    cells = {}
    for g in GENDERS:
        for e in DATASET_EMOTIONS:
            key = f"{path}.cells.{cell_key(g, e)}"
            c = r.get(raw_cells, cell_key(g, e), f"{path}.cells")
            sd = r.matrix(r.get(c, "sd", key), f"{key}.sd", (n_dims,))
            if (sd < 0).any():
                raise r.fail(f"{key}.sd", "non-negative standard deviations", sd.tolist())
            cells[(g, e)] = CellModel(r.count(r.get(c, "n", key), f"{key}.n", 0),
                                      r.matrix(r.get(c, "mean", key), f"{key}.mean", (n_dims,)), sd,
                                      r.covariance(r.get(c, "noise_corr", key), f"{key}.noise_corr", n_dims))
    subject_cov = r.covariance(r.get(raw, "subject_cov", path), f"{path}.subject_cov", n_dims)
    return DatasetModel(design, subject_cov, cells)


def from_dict(raw: Any, *, where: str) -> Scenario:
    """Build and validate a scenario from parsed YAML; errors name ``where`` and the offending key."""
    r = _Reader(where)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        got = raw.get("format") if isinstance(raw, dict) else raw
        raise r.fail("format", f"{FORMAT!r} (a file written by `benchmark simulate fit`)", got)
    classes = r.get(raw, "emotion_classes", "")
    if not isinstance(classes, list) or not classes or len(set(classes)) != len(classes):
        raise r.fail("emotion_classes", "a non-empty list of unique class names", classes)
    dependence = r.get(raw, "dependence", "")
    if dependence not in DEPENDENCES:
        raise r.fail("dependence", f"one of {', '.join(DEPENDENCES)}", dependence)
    z_clip = r.get(raw, "z_clip", "")
    if isinstance(z_clip, bool) or not isinstance(z_clip, (int, float)) or not 0 < z_clip < 700:
        raise r.fail("z_clip", "a number in (0, 700)", z_clip)
    raw_datasets = r.get(raw, "datasets", "")
    if not isinstance(raw_datasets, dict) or not raw_datasets:
        raise r.fail("datasets", "a mapping of dataset name -> model", raw_datasets)
    n_dims = 1 + len(classes)
    datasets = {str(name): _read_dataset(r, str(name), model, n_dims) for name, model in raw_datasets.items()}
    return Scenario(str(r.get(raw, "name", "")), str(raw.get("description", "")), dependence, tuple(classes),
                    float(z_clip), list(raw.get("fitted_from") or []), dict(raw.get("fit") or {}), datasets)


def resolve(name_or_path: str | Path) -> Path:
    """Path of a scenario file: an existing path, or the name of a shipped scenario (``paper``, ``null``)."""
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
    return hashlib.sha256(resolve(name_or_path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------------- sampling

def matrix_root(cov: np.ndarray) -> np.ndarray:
    """A matrix ``A`` with ``A @ A.T == cov`` for a (numerically) positive-semidefinite ``cov`` (eigenvalues < 0 -> 0).

    Each eigenvector's sign is fixed (largest-magnitude entry positive), so the same draws give the same sample on
    every LAPACK, whose choice of sign is arbitrary.
    """
    values, vectors = np.linalg.eigh(cov)
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])
    return vectors * np.where(signs == 0, 1.0, signs) * np.sqrt(np.clip(values, 0.0, None))


def dataset_rng(seed: int, dataset: str) -> np.random.Generator:
    """The random stream of one dataset: a function of (seed, dataset name) only, so datasets are independent."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(dataset.encode())]))


def _subjects(design: Design, scale: int) -> list[tuple[str, str, str]]:
    """(subject id, gender, age group or '') for every subject of the scaled design, female ids first."""
    out = []
    for gender in sorted(GENDERS, key=lambda g: g != "female"):
        ages = [a for a, k in design.age_groups.get(gender, {}).items() for _ in range(k)] or [""]
        for i in range(design.subjects[gender] * scale):
            number = len(out) + 1
            subject = {"faces": f"{number:03d}", "adfes": f"{gender[0].upper()}{i + 1:02d}"}.get(design.naming, f"S{number:04d}")
            out.append((subject, gender, ages[i % len(ages)]))
    return out


def image_name(naming: str, *, subject: str, gender: str, emotion: str, repeat: int, age: str) -> str:
    """A file name in the dataset's own scheme (FACES ``004_y_f_a_a.jpg``, ADFES ``F01-Joy-Apex.jpg``)."""
    if naming == "faces":
        return f"{subject}_{FACES_AGE_CODES[age]}_{gender[0]}_{emotion[0]}_{FACES_SET_CODES[repeat]}.jpg"
    if naming == "adfes":
        spelled = ADFES_FILE_EMOTION.get(emotion, emotion.capitalize())
        return f"{subject}-Neutral.jpg" if emotion == "neutral" else f"{subject}-{spelled}-Apex.jpg"
    return f"{subject}_{emotion}_{repeat}.jpg"


def sample_vectors(model: DatasetModel, *, rng: np.random.Generator, scale: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """Draw every image of the scaled design.

    Returns
    -------
    index : DataFrame of shape (n_images, 6)
        ``subject``, ``gender``, ``emotion``, ``repeat``, ``age_group``, ``image_id``, ordered by subject, emotion, repeat.
    x : array of shape (n_images, n_dims)
        z (unclipped) then the emotion logits, logit units.
    """
    subjects = _subjects(model.design, scale)
    n_dims = model.subject_cov.shape[0]
    effects = rng.standard_normal((len(subjects), n_dims)) @ matrix_root(model.subject_cov).T
    reps = model.design.images_per_emotion
    rows, blocks = [], []
    for gender in GENDERS:
        members = [i for i, s in enumerate(subjects) if s[1] == gender]
        for emotion in DATASET_EMOTIONS:
            cell = model.cells[(gender, emotion)]
            who = np.repeat(members, reps)
            noise = rng.standard_normal((len(who), n_dims)) @ matrix_root(cell.noise_corr).T
            blocks.append(cell.mean + cell.sd * (effects[who] + noise))
            rows.extend((i, subjects[i][0], gender, emotion, k, subjects[i][2]) for i in members for k in range(reps))
    index = pd.DataFrame(rows, columns=["order", "subject", "gender", "emotion", "repeat", "age_group"])
    index["image_id"] = [image_name(model.design.naming, subject=s, gender=g, emotion=e, repeat=k, age=a)
                         for s, g, e, k, a in zip(index["subject"], index["gender"], index["emotion"],
                                                  index["repeat"], index["age_group"])]
    order = np.lexsort((index["repeat"], index["emotion"].map(DATASET_EMOTIONS.index), index["order"]))
    return index.iloc[order].drop(columns="order").reset_index(drop=True), np.vstack(blocks)[order]


def sample_table(scenario: Scenario, dataset: str, *, seed: int, scale: int = 1,
                 metadata: dict[str, Any] | None = None) -> OutputsTable:
    """One dataset's outputs table drawn from ``scenario`` (``scale`` multiplies the number of subjects)."""
    if dataset not in scenario.datasets:
        raise BenchmarkError(f"data.datasets: scenario {scenario.name!r} has no dataset {dataset!r}; "
                             f"it has {', '.join(scenario.datasets)}")
    model = scenario.datasets[dataset]
    index, x = sample_vectors(model, rng=dataset_rng(seed, dataset), scale=scale)
    z = np.clip(x[:, 0], -scenario.z_clip, scenario.z_clip)
    frame = pd.DataFrame({"dataset": dataset, "image_id": index["image_id"], "subject": index["subject"],
                          "gender": index["gender"], "emotion": index["emotion"],
                          gender_column("male"): 1.0 / (1.0 + np.exp(-z)), gender_column("female"): 1.0 / (1.0 + np.exp(z))})
    for j, c in enumerate(scenario.emotion_classes):
        frame[emotion_column(c)] = x[:, 1 + j]
    if model.design.naming == "faces":
        frame["age_group"] = index["age_group"]
        frame["picture_set"] = [FACES_SET_CODES[k] for k in index["repeat"]]
    meta = {"source": "sim", "scenario": scenario.name, "seed": seed, "scale": scale, **(metadata or {})}
    return OutputsTable(frame, scenario.emotion_classes, meta)


def sample(scenario: Scenario, *, seed: int, scale: int = 1, datasets: list[str] | None = None,
           metadata: dict[str, Any] | None = None) -> dict[str, OutputsTable]:
    """Outputs tables of ``datasets`` (default: all of the scenario's) drawn with ``seed``; dataset -> table."""
    return {d: sample_table(scenario, d, seed=seed, scale=scale, metadata=metadata)
            for d in (datasets or list(scenario.datasets))}


def load(settings: "DataSettings", dataset: str) -> OutputsTable:
    """The ``sim`` source: sample ``dataset`` from the scenario file ``data.input`` with ``data.seed``."""
    scenario = read(settings.input)
    return sample_table(scenario, dataset, seed=settings.seed, scale=settings.sim.scale,
                        metadata={"scenario_file": str(settings.input), "scenario_sha256": sha256_of(settings.input)})


def write_sample(name_or_path: str | Path, output_dir: Path, *, seed: int, scale: int = 1,
                 datasets: list[str] | None = None) -> list[Path]:
    """Sample a scenario and write ``<output_dir>/<dataset>.parquet`` per dataset; returns the paths written."""
    scenario = read(name_or_path)
    meta = {"scenario_file": str(name_or_path), "scenario_sha256": sha256_of(name_or_path)}
    written = []
    for dataset, table in sample(scenario, seed=seed, scale=scale, datasets=datasets, metadata=meta).items():
        target = paths.outputs_table(dataset, Path(output_dir))
        outputs.write(table, target)
        written.append(target)
    return written
