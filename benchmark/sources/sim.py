"""The ``sim`` source: a generative model of the per-image frozen outputs, sampled from a scenario file
(:mod:`benchmark.sources.sim_scenario`: the format).

Each image is one vector ``x``: the gender logit ``z = log(p_male / p_female)``, the emotion model's raw logits (model
order) and, in a scenario with age outputs, the log-probabilities of the age model's bins. Per dataset and cell (the
true groups of the scenario's ``cells_by`` x the true emotion)::

    x = mean_cell + sd_cell * (v_subject + e_image),   v_subject ~ N(0, subject_cov),  e_image ~ N(0, noise_corr_cell)

``mean_cell``, ``sd_cell`` and ``noise_corr_cell`` are the cell's own, so the gender output depends on the true
emotion, the emotion logits on the true gender, and z and the emotion logits are correlated within a cell;
``subject_cov`` (standardised units, one per dataset) correlates the images of one person across all their cells.
``z`` is clipped to ``+-z_clip`` and turned back into ``p_male = sigmoid(z)``, ``p_female = sigmoid(-z)``; the age
log-probabilities into probabilities by a softmax (rows sum to 1). Every subject belongs to one age group of the
design. How the parameters are fitted is in :mod:`benchmark.sources.sim_fit` and docs/SIMULATION.md.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import special

from benchmark.core import outputs
from benchmark.core.design import DatasetDesign, parse_attribute
from benchmark.core.labels import GENDERS, emotion_column, gender_column
from benchmark.core.outputs import OutputsTable
from benchmark.infra import paths
from benchmark.infra.errors import BenchmarkError
from benchmark.sources.sim_scenario import (
    AGE,
    DEFAULT_CELLS_BY,
    FACES_AGE_CODES,
    FACES_SET_CODES,
    DatasetModel,
    Design,
    Scenario,
    read,
    sha256_of,
)

if TYPE_CHECKING:
    from benchmark.core.settings import DataSettings

#: ADFES spells happy as Joy in its file names; the other emotions are the capitalised canonical names.
ADFES_FILE_EMOTION = {"happy": "Joy"}


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


def _name_stem(naming: str, *, subject: str, gender: str, age: str) -> str:
    """The subject's part of its image names, the same for every image (FACES ``004_y_f_``, ADFES ``F01-``)."""
    if naming == "faces":
        return f"{subject}_{FACES_AGE_CODES[age]}_{gender[0]}_"
    return f"{subject}-" if naming == "adfes" else f"{subject}_"


def _name_tail(naming: str, *, emotion: str, repeat: int) -> str:
    """The image's part of its name after the subject's stem (FACES ``a_a.jpg``, ADFES ``Joy-Apex.jpg``)."""
    if naming == "faces":
        return f"{emotion[0]}_{FACES_SET_CODES[repeat]}.jpg"
    if naming == "adfes":
        spelled = ADFES_FILE_EMOTION.get(emotion, emotion.capitalize())
        return "Neutral.jpg" if emotion == "neutral" else f"{spelled}-Apex.jpg"
    return f"{emotion}_{repeat}.jpg"


def _image_names(naming: str, subjects: np.ndarray, emotions: tuple[str, ...], reps: int, *, who: np.ndarray,
                 emotion: np.ndarray, repeat: np.ndarray) -> np.ndarray:
    """File names in the dataset's own scheme (FACES ``004_y_f_a_a.jpg``, ADFES ``F01-Joy-Apex.jpg``, else
    ``S0001_anger_0.jpg``) of many images at once: each is its subject's stem plus its (emotion, repeat) tail, so no
    string is formatted per image.

    subjects : object array of shape (n_subjects, 3), (subject id, gender, age group) per row as :func:`_subjects`
    gives them; who, emotion, repeat : int arrays of shape (n_images,), indices into ``subjects``, ``emotions`` and
    ``range(reps)``. Returns an object array of str of shape (n_images,).
    """
    stems = np.array([_name_stem(naming, subject=s, gender=g, age=a) for s, g, a in subjects], dtype=object)
    tails = np.array([[_name_tail(naming, emotion=e, repeat=k) for k in range(reps)] for e in emotions], dtype=object)
    return stems[who] + tails[emotion, repeat]


def _cell_groups(model: DatasetModel, cells_by: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """(gender, age group or None) of every group of subjects that has cells, in sampling order."""
    if AGE not in cells_by:
        return [(g, None) for g in GENDERS]
    return [(g, a) for g in GENDERS for a, k in model.design.age_groups[g].items() if k > 0]


def _key(gender: str, age: str | None, emotion: str) -> tuple[str, ...]:
    return (gender, emotion) if age is None else (gender, age, emotion)


def sample_vectors(model: DatasetModel, *, emotions: tuple[str, ...], rng: np.random.Generator, scale: int = 1,
                   cells_by: tuple[str, ...] = DEFAULT_CELLS_BY) -> tuple[pd.DataFrame, np.ndarray]:
    """Draw every image of the scaled design, for each of ``emotions`` (the dataset's declared emotions, in order),
    from the cells keyed by ``cells_by`` (the scenario's).

    Returns
    -------
    index : DataFrame of shape (n_images, 6)
        ``subject``, ``gender``, ``emotion``, ``repeat``, ``age_group``, ``image_id``, ordered by subject, emotion, repeat.
    x : array of shape (n_images, n_dims)
        z (unclipped), the emotion logits, then any age log-probabilities; logit units.
    """
    subjects = np.array(_subjects(model.design, scale), dtype=object)  # (n_subjects, 3): id, gender, age group
    _, genders, ages = subjects.T
    n_dims = model.subject_cov.shape[0]
    effects = rng.standard_normal((len(subjects), n_dims)) @ matrix_root(model.subject_cov).T
    reps = model.design.images_per_emotion
    keys, blocks = [], []  # per cell: (subject, emotion, repeat) int arrays of its images; their vectors
    for gender, age in _cell_groups(model, cells_by):
        members = np.flatnonzero((genders == gender) & ((age is None) | (ages == age)))
        who = np.repeat(members, reps)
        for e, emotion in enumerate(emotions):
            cell = model.cells[_key(gender, age, emotion)]
            noise = rng.standard_normal((len(who), n_dims)) @ matrix_root(cell.noise_corr).T
            blocks.append(cell.mean + cell.sd * (effects[who] + noise))
            keys.append((who, np.full(len(who), e), np.tile(np.arange(reps), len(members))))
    who, emotion, repeat = (np.concatenate(k) for k in zip(*keys))
    order = np.lexsort((repeat, emotion, who))
    return (_image_index(model.design.naming, subjects, emotions, reps, who=who[order], emotion=emotion[order],
                         repeat=repeat[order]), np.vstack(blocks)[order])


def _image_index(naming: str, subjects: np.ndarray, emotions: tuple[str, ...], reps: int, *, who: np.ndarray,
                 emotion: np.ndarray, repeat: np.ndarray) -> pd.DataFrame:
    """The index :func:`sample_vectors` returns, of shape (n_images, 6), from each image's subject, emotion and
    repeat (int arrays of shape (n_images,), as :func:`_image_names` reads them)."""
    ids, genders, ages = subjects.T
    names = _image_names(naming, subjects, emotions, reps, who=who, emotion=emotion, repeat=repeat)
    return pd.DataFrame({"subject": ids[who], "gender": genders[who],
                         "emotion": np.array(emotions, dtype=object)[emotion], "repeat": repeat, "age_group": ages[who],
                         "image_id": names})


def _check_declaration(scenario: Scenario, model: DatasetModel, design: DatasetDesign) -> None:
    """The scenario has every cell the declaration ``design`` needs, and its age outputs are the declared ones."""
    dataset = design.name
    missing = [f"{'/'.join(_key(g, a, e))}" for g, a in _cell_groups(model, scenario.cells_by) for e in design.emotions
               if _key(g, a, e) not in model.cells]
    if missing:
        raise BenchmarkError(f"data.input: scenario {scenario.name!r} has no cell {missing[0]} of dataset {dataset!r}; "
                             f"its declaration has emotions {', '.join(design.emotions)}")
    if not scenario.age_outputs:
        return
    declared = design.attributes.get(AGE)
    groups = list(dict.fromkeys(a for g, a in _cell_groups(model, scenario.cells_by)))
    if declared is None or declared.outputs != scenario.age_outputs or set(groups) - set(declared.groups):
        has = (f"declares {AGE} groups {', '.join(declared.groups)} with outputs {', '.join(declared.outputs)}"
               if declared else f"declares no attribute {AGE}")
        raise BenchmarkError(f"data.input: scenario {scenario.name!r} models {AGE} groups {', '.join(groups)} with "
                             f"outputs {', '.join(scenario.age_outputs)}, but dataset {dataset!r} {has}")


def sample_table(scenario: Scenario, design: DatasetDesign, *, seed: int, scale: int = 1,
                 metadata: dict[str, Any] | None = None) -> OutputsTable:
    """One dataset's outputs table drawn from ``scenario`` (``scale`` multiplies the number of subjects), for the
    emotions its declaration ``design`` names; with the true age group of every subject when the design has age
    groups, and the age model's probabilities (the declared columns) when the scenario has age outputs."""
    dataset = design.name
    if dataset not in scenario.datasets:
        raise BenchmarkError(f"data.datasets: scenario {scenario.name!r} has no dataset {dataset!r}; "
                             f"it has {', '.join(scenario.datasets)}")
    model = scenario.datasets[dataset]
    _check_declaration(scenario, model, design)
    index, x = sample_vectors(model, emotions=design.emotions, rng=dataset_rng(seed, dataset), scale=scale,
                              cells_by=scenario.cells_by)
    z = np.clip(x[:, 0], -scenario.z_clip, scenario.z_clip)
    logits = x[:, scenario.emotion_dims]
    columns = {"dataset": dataset, "image_id": index["image_id"], "subject": index["subject"],
               "gender": index["gender"], "emotion": index["emotion"],
               gender_column("male"): 1.0 / (1.0 + np.exp(-z)), gender_column("female"): 1.0 / (1.0 + np.exp(z)),
               **{emotion_column(c): logits[:, j] for j, c in enumerate(scenario.emotion_classes)}}
    if scenario.age_outputs:
        probabilities = special.softmax(x[:, scenario.age_dims], axis=1)
        columns.update({c: probabilities[:, j] for j, c in enumerate(scenario.age_outputs)})
    if model.design.age_groups:
        columns[AGE] = index["age_group"]
    if model.design.naming == "faces":
        columns["picture_set"] = np.array(FACES_SET_CODES, dtype=object)[index["repeat"].to_numpy()]
    frame = pd.DataFrame(columns)
    meta = {"source": "sim", "scenario": scenario.name, "seed": seed, "scale": scale, **(metadata or {})}
    return OutputsTable(frame, design, scenario.emotion_classes, meta)


def unmodelled(scenario: Scenario, design: DatasetDesign, attribute: str) -> str | None:
    """Why ``scenario`` cannot simulate dataset ``design`` with the protected ``attribute`` (one sentence), or None
    when it can: it must model the dataset, key its cells by every part of the attribute, and sample a table that
    holds the attribute's truth and model outputs as the declaration names them."""
    if design.name not in scenario.datasets:
        return f"scenario {scenario.name!r} has no dataset {design.name!r} (it has {', '.join(scenario.datasets)})"
    missing = [part for part in parse_attribute(attribute) if part not in scenario.cells_by]
    if missing:
        return (f"scenario {scenario.name!r} does not model {missing[0]} on {design.name} (its cells are by "
                f"{', '.join(scenario.cells_by)})")
    try:
        outputs.validate(sample_table(scenario, design, seed=0), where=f"scenario {scenario.name!r}",
                         attribute=attribute)
    except BenchmarkError as err:
        return str(err)
    return None


def sample(scenario: Scenario, designs: dict[str, DatasetDesign], *, seed: int, scale: int = 1,
           metadata: dict[str, Any] | None = None) -> dict[str, OutputsTable]:
    """Outputs tables of the datasets of ``designs`` (name -> declaration) drawn with ``seed``; dataset -> table."""
    return {name: sample_table(scenario, d, seed=seed, scale=scale, metadata=metadata) for name, d in designs.items()}


def load(settings: DataSettings, design: DatasetDesign) -> OutputsTable:
    """The ``sim`` source: sample the dataset ``design`` declares from the scenario file ``data.input`` with
    ``data.seed``."""
    scenario = read(settings.input)
    return sample_table(scenario, design, seed=settings.seed, scale=settings.sim.scale,
                        metadata={"scenario_file": str(settings.input), "scenario_sha256": sha256_of(settings.input)})


def write_sample(name_or_path: str | Path, output_dir: Path, declared: dict[str, DatasetDesign], *, seed: int,
                 scale: int = 1) -> list[Path]:
    """Sample every dataset of a scenario, as its declaration in ``declared`` names it, and write
    ``<output_dir>/<dataset>.parquet`` per dataset; returns the paths written."""
    scenario = read(name_or_path)
    missing = [d for d in scenario.datasets if d not in declared]
    if missing:
        raise BenchmarkError(f"{name_or_path}: dataset {missing[0]!r} of scenario {scenario.name!r} is not declared; "
                             "declare it in data.declarations (docs/DATASETS.md)")
    designs = {d: declared[d] for d in scenario.datasets}
    meta = {"scenario_file": str(name_or_path), "scenario_sha256": sha256_of(name_or_path)}
    written = []
    for dataset, table in sample(scenario, designs, seed=seed, scale=scale, metadata=meta).items():
        target = paths.outputs_table(dataset, Path(output_dir))
        outputs.write(table, target)
        written.append(target)
    return written
