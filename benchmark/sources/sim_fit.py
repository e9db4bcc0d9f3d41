"""Fit a simulation scenario (:mod:`benchmark.sources.sim`) to outputs tables. Deterministic: same tables and
settings, same scenario file.

Cells are the true groups of ``cells_by`` (gender, or gender and age group) x the true emotion; with age group, x also
carries the log of the age model's probabilities (FairFace's 9 bins). Per dataset, in the order they are computed
(docs/SIMULATION.md gives the reasons):

1. Moments: the mean and covariance of x = (z, emotion logits[, age log-probabilities]) per cell (``observed``), or
   per true gender for z and per true emotion for the logits with no covariance between them (``none``, the null
   scenario; cells by gender only).
2. Shrinkage: each cell's correlation matrix is pulled toward the dataset's pooled within-cell correlation with the
   weight of ``prior_images`` images, which matters for small cells (ADFES: 10-12 images; FACES by gender x age
   group: 54-58); sds stay the cell's.
3. Subject effect: from the standardised residuals, the between-subject covariance ``(n S_means - S) / (n - 1)``
   (the one-way random-effects moment estimator, n images per subject), projected to positive semidefinite; each
   cell's image-level part is its correlation matrix minus the subject part, projected likewise.
4. Calibration: the means are moved (a little: a ridge in units of the cell's sd) so that the Gaussian's gender
   accuracy, its distribution of the predicted emotion class (argmax over all classes) and, with age outputs, its
   distribution of the predicted age group (the declared rule) match the table's; the Gaussian alone gets the tails
   slightly wrong, and these are exactly what the benchmark's accuracies count.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, special

from benchmark.core import design as designs
from benchmark.core import outputs
from benchmark.core.labels import GENDER_COLUMNS, GENDERS
from benchmark.core.outputs import OutputsTable
from benchmark.infra.errors import BenchmarkError
from benchmark.sources import names
from benchmark.sources.sim import matrix_root
from benchmark.sources.sim_scenario import (
    AGE,
    CELLS_BY,
    DEFAULT_CELLS_BY,
    DEPENDENCES,
    FACES_AGE_CODES,
    FACES_SET_CODES,
    CellKey,
    CellModel,
    DatasetModel,
    Design,
    Scenario,
    round_parameters,
)

#: Probabilities are floored here before taking z = log(p_male) - log(p_female), so a stored 0 gives a finite z.
PROBABILITY_FLOOR = 1e-15
#: Metadata keys of a table copied into the scenario's ``fitted_from`` (what the table was made from).
PROVENANCE_KEYS = ("source", "file", "sha256", "repository", "commit", "scenario", "seed")


@dataclass(frozen=True)
class FitSettings:
    """Knobs of the fit, recorded in the scenario file.

    prior_images : weight (in images) of the pooled covariance in each cell's covariance.
    ridge : penalty on the calibration's mean shifts, per squared cell sd; small = match the accuracies closely.
    draws : Monte Carlo draws per cell for the emotion calibration.
    temperature : softmax temperature (logit units) that smooths the argmax during the emotion calibration.
    age_temperature : the same for the age calibration, on the age groups' log-probabilities (whose gaps are much
        smaller than the emotion logits'; docs/SIMULATION.md gives the measurement).
    seed : seed of the calibration's draws.
    """

    prior_images: float = 20.0
    ridge: float = 0.03
    draws: int = 20000
    temperature: float = 0.3
    age_temperature: float = 0.05
    seed: int = 0

    def as_dict(self, *, age: bool = False) -> dict[str, Any]:
        """The settings as recorded in a scenario file; ``age``: with the age calibration's own setting."""
        out = {"prior_images": self.prior_images, "ridge": self.ridge, "calibration_draws": self.draws,
               "calibration_temperature": self.temperature, "calibration_seed": self.seed}
        return {**out, "age_calibration_temperature": self.age_temperature} if age else out


def gender_logit(table: OutputsTable) -> np.ndarray:
    """z = log(p_male) - log(p_female) per image, shape (n_images,), probabilities floored at ``PROBABILITY_FLOOR``."""
    probs = np.clip(table.frame[list(GENDER_COLUMNS)].to_numpy(dtype=np.float64), PROBABILITY_FLOOR, None)
    return np.log(probs[:, 0]) - np.log(probs[:, 1])


def vectors(table: OutputsTable, *, age_outputs: tuple[str, ...] = ()) -> np.ndarray:
    """x per image, shape (n_images, 1 + n_classes + n_age_outputs): z, the raw emotion logits in model order, then
    the log of each age output column (probabilities floored at ``PROBABILITY_FLOOR``)."""
    ages = np.log(np.clip(table.frame[list(age_outputs)].to_numpy(dtype=np.float64), PROBABILITY_FLOOR, None))
    return np.column_stack([gender_logit(table), table.emotion_logits(), ages])


def nearest_psd(matrix: np.ndarray, *, floor: float = 0.0) -> np.ndarray:
    """The symmetric matrix with ``matrix``'s eigenvectors and its eigenvalues raised to at least ``floor``."""
    values, vectors_ = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors_ * np.clip(values, floor, None)) @ vectors_.T


def _moments(x: np.ndarray, groups: np.ndarray) -> dict[Any, tuple[int, np.ndarray, np.ndarray]]:
    """group -> (n, mean of shape (d,), covariance of shape (d, d) with ddof=1; zeros for a single row)."""
    out = {}
    for key in sorted(set(groups.tolist())):
        rows = x[groups == key]
        cov = np.cov(rows.T, ddof=1).reshape(x.shape[1], x.shape[1]) if len(rows) > 1 else np.zeros((x.shape[1],) * 2)
        out[key] = (len(rows), rows.mean(axis=0), cov)
    return out


def _correlation(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(cov))
    return cov / np.outer(sd, sd)


def _shrink(cov: np.ndarray, n: int, pooled_corr: np.ndarray, prior_images: float) -> np.ndarray:
    """``cov`` with its correlation matrix pulled toward ``pooled_corr``: ``((n - 1) R + prior_images R_pooled) /
    (n - 1 + prior_images)``; the variances stay the cell's own (their scale differs between cells by over 10x)."""
    sd = np.sqrt(np.diag(cov))
    corr = ((n - 1) * _correlation(cov) + prior_images * pooled_corr) / (n - 1 + prior_images)
    return corr * np.outer(sd, sd)


def _cell_moments(x: np.ndarray, cell_of: np.ndarray, gender: np.ndarray, emotion: np.ndarray, *,
                  cells: list[CellKey], dependence: str, prior_images: float
                  ) -> dict[CellKey, tuple[int, np.ndarray, np.ndarray]]:
    """cell -> (n, mean, shrunk covariance) of x under ``dependence`` (steps 1 and 2), for each of ``cells`` (keys
    as in the scenario file; ``cell_of`` is each image's key joined by ``/``)."""
    by_cell = _moments(x, cell_of)
    dof = sum(n - 1 for n, _, _ in by_cell.values())
    pooled = _correlation(sum((n - 1) * _correlation(cov) for n, _, cov in by_cell.values()) / dof)
    out = {}
    if dependence == "observed":
        for key in cells:
            n, mean, cov = by_cell["/".join(key)]
            out[key] = (n, mean, _shrink(cov, n, pooled, prior_images))
        return out
    by_gender = _moments(x[:, :1], gender)
    by_emotion = _moments(x[:, 1:], emotion)
    for g, e in cells:
        n_g, mean_z, var_z = by_gender[g]
        n_e, mean_l, cov_l = by_emotion[e]
        cov = np.zeros_like(pooled)
        cov[:1, :1] = var_z
        cov[1:, 1:] = _shrink(cov_l, n_e, _correlation(pooled[1:, 1:]), prior_images)
        out[(g, e)] = (by_cell[f"{g}/{e}"][0], np.concatenate([mean_z, mean_l]), cov)
    return out


def subject_covariance(x: np.ndarray, *, subjects: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """Between-subject covariance of the standardised residuals (step 3), shape (d, d), positive semidefinite.

    ``means`` and ``sds`` are each image's cell mean and sd, shape (n_images, d).
    """
    w = (x - means) / sds
    keys, inverse, counts = np.unique(subjects, return_inverse=True, return_counts=True)
    if len(keys) < 2 or counts.min() < 2:
        raise BenchmarkError("simulate fit: a subject effect needs at least 2 subjects with 2 or more images each")
    subject_means = np.zeros((len(keys), x.shape[1]))
    np.add.at(subject_means, inverse, w)
    subject_means /= counts[:, None]
    n = len(counts) / np.sum(1.0 / counts)  # harmonic mean of images per subject
    total = w.T @ w / len(w)
    between = np.cov(subject_means.T, ddof=1)
    return nearest_psd((n * between - total) / (n - 1))


def _image_part(corr: np.ndarray, subject_cov: np.ndarray, *, dependence: str) -> np.ndarray:
    """The image-level covariance ``PSD(corr - subject_cov)`` (step 3); for ``none`` the z block and the logit block
    are projected separately and the covariance between them is exactly zero."""
    if dependence == "observed":
        return nearest_psd(corr - subject_cov)
    out = np.zeros_like(corr)
    out[:1, :1] = nearest_psd(corr[:1, :1] - subject_cov[:1, :1])
    out[1:, 1:] = nearest_psd(corr[1:, 1:] - subject_cov[1:, 1:])
    return out


def _calibrate_gender(mean: float, sd: float, *, male: bool, accuracy: float, ridge: float) -> float:
    """Mean of z whose Gaussian accuracy (z > 0 for male, z < 0 for female) is closest to ``accuracy`` (step 4)."""
    sign = 1.0 if male else -1.0

    def loss(delta: float) -> float:
        margin = sign * (mean + delta * sd) / sd
        return -(accuracy * special.log_ndtr(margin) + (1 - accuracy) * special.log_ndtr(-margin)) + ridge * delta ** 2 / 2

    return mean + optimize.minimize_scalar(loss, bounds=(-10.0, 10.0), method="bounded",
                                           options={"xatol": 1e-8}).x * sd


def _calibrate_emotion(mean: np.ndarray, sd: np.ndarray, corr: np.ndarray, *, target: np.ndarray,
                       settings: FitSettings, stream: int) -> np.ndarray:
    """Logit means whose Gaussian argmax distribution is closest (cross-entropy) to ``target`` (step 4).

    mean, sd : shape (k,) logit units; corr : shape (k, k); target : class frequencies, shape (k,).
    """
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, stream]))
    noise = sd * (rng.standard_normal((settings.draws, len(mean))) @ matrix_root(corr).T)
    tau = settings.temperature

    def loss(delta: np.ndarray) -> tuple[float, np.ndarray]:
        soft = special.softmax((mean + delta * sd + noise) / tau, axis=1)
        p = np.clip(soft.mean(axis=0), 1e-12, None)
        a = soft * (target / p)
        grad_mean = -(a - soft * a.sum(axis=1, keepdims=True)).mean(axis=0) / tau
        value = -float(target @ np.log(p)) + settings.ridge * float(delta @ delta) / 2
        return value, grad_mean * sd + settings.ridge * delta

    result = optimize.minimize(loss, np.zeros(len(mean)), jac=True, method="L-BFGS-B")
    return mean + result.x * sd


def _calibrate_age(mean: np.ndarray, sd: np.ndarray, corr: np.ndarray, *, rule: np.ndarray, target: np.ndarray,
                   settings: FitSettings, stream: int) -> np.ndarray:
    """Age log-probability means whose Gaussian distribution of the predicted age group is closest (cross-entropy)
    to ``target`` (step 4). The predicted group is the argmax of ``softmax(x) @ rule`` (the declared rule from the
    age model's bins to the groups), smoothed as a softmax of the groups' log-probabilities with ``age_temperature``.

    mean, sd : shape (k,), log-probability units; corr : shape (k, k); rule : shape (k, n_groups);
    target : group frequencies, shape (n_groups,).
    """
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, stream]))
    noise = sd * (rng.standard_normal((settings.draws, len(mean))) @ matrix_root(corr).T)
    tau = settings.age_temperature

    def loss(delta: np.ndarray) -> tuple[float, np.ndarray]:
        probs = special.softmax(mean + delta * sd + noise, axis=1)
        groups = np.clip(probs @ rule, 1e-300, None)
        soft = special.softmax(np.log(groups) / tau, axis=1)
        p = np.clip(soft.mean(axis=0), 1e-12, None)
        d_soft = -(target / p) / len(soft)  # d loss / d soft, the same for every draw
        d_log_groups = soft * (d_soft - soft @ d_soft[:, None]) / tau
        d_probs = (d_log_groups / groups) @ rule.T
        d_x = probs * (d_probs - (probs * d_probs).sum(axis=1, keepdims=True))
        value = -float(target @ np.log(p)) + settings.ridge * float(delta @ delta) / 2
        return value, d_x.sum(axis=0) * sd + settings.ridge * delta

    result = optimize.minimize(loss, np.zeros(len(mean)), jac=True, method="L-BFGS-B")
    return mean + result.x * sd


def _design(table: OutputsTable, dataset: str, cells_by: tuple[str, ...]) -> Design:
    """Subjects per gender, images per subject and emotion, and the naming scheme: the dataset's own when every image
    id of the table follows it (FACES: with the subjects' age groups), else ``generic``. With cells by age group, the
    subjects per gender and age group come from the table's ``age_group`` column, in the declared group order."""
    frame = table.frame
    subjects = frame.drop_duplicates("subject")
    per_emotion = max(1, int(round(frame.groupby(["subject", "emotion"], observed=True).size().mean())))
    counts = {g: int((subjects["gender"] == g).sum()) for g in GENDERS}
    ages = {}
    if AGE in cells_by:
        age = subjects[AGE].astype(str).to_numpy()
        ages = {g: {a: int(((subjects["gender"] == g).to_numpy() & (age == a)).sum())
                    for a in table.design.attributes[AGE].groups} for g in GENDERS}
    naming = table.design.images
    parsed = ([names.parse(naming, i) for i in subjects["image_id"]]
              if naming is not None and naming.naming in names.PARSERS else [None])
    if any(p is None for p in parsed) or (dataset == "faces" and per_emotion > len(FACES_SET_CODES)):
        return Design(counts, per_emotion, "generic", ages)
    if dataset == "faces" and not ages:
        age = np.array([p.labels["age_group"] for p in parsed])
        ages = {g: {a: int(((subjects["gender"] == g).to_numpy() & (age == a)).sum()) for a in FACES_AGE_CODES} for g in GENDERS}
    return Design(counts, per_emotion, dataset, ages)


def _cells(table: OutputsTable, cells_by: tuple[str, ...]) -> tuple[list[CellKey], np.ndarray]:
    """Every cell of the table's declaration (groups of ``cells_by`` x emotions, first attribute major) and each
    image's cell key joined by ``/``, shape (n_images,)."""
    groups = [table.design.attributes[a].groups for a in cells_by] + [table.design.emotions]
    columns = [table.frame[c].astype(str).to_numpy() for c in (*cells_by, "emotion")]
    return list(itertools.product(*groups)), np.array(["/".join(parts) for parts in zip(*columns)])


def fit_dataset(table: OutputsTable, *, dataset: str, dependence: str, settings: FitSettings,
                cells_by: tuple[str, ...] = DEFAULT_CELLS_BY) -> DatasetModel:
    """The generative model of one dataset's table (steps 1-4), with cells by ``cells_by`` x emotion; with age
    group among them, x carries the log age outputs the dataset declares, calibrated to its declared rule."""
    frame = table.frame
    age = table.design.attributes[AGE] if AGE in cells_by else None
    x = vectors(table, age_outputs=age.outputs if age else ())
    emo, ages = slice(1, 1 + len(table.emotion_classes)), slice(1 + len(table.emotion_classes), None)
    gender, emotion = frame["gender"].astype(str).to_numpy(), frame["emotion"].astype(str).to_numpy()
    cells, cell_of = _cells(table, cells_by)
    moments = _cell_moments(x, cell_of, gender, emotion, cells=cells, dependence=dependence,
                            prior_images=settings.prior_images)
    sds = {key: np.sqrt(np.diag(cov)) for key, (_, _, cov) in moments.items()}
    if any((sd <= 0).any() for sd in sds.values()):
        raise BenchmarkError(f"simulate fit: {dataset}: an output is constant within a cell; it cannot be modelled")
    index = [tuple(key.split("/")) for key in cell_of]
    subject_cov = subject_covariance(x, subjects=frame["subject"].astype(str).to_numpy(),
                                     means=np.array([moments[key][1] for key in index]),
                                     sds=np.array([sds[key] for key in index]))
    if dependence == "none":
        subject_cov[0, 1:] = subject_cov[1:, 0] = 0.0
    # what the table says each cell's (or, for `none`, each group's) classifiers do
    group_z = {key: key if dependence == "observed" else key[0] for key in moments}
    group_l = {key: key if dependence == "observed" else key[1] for key in moments}
    predicted_male = x[:, 0] >= 0  # the uncorrected rule: argmax(p_male, p_female), ties to male
    predicted = x[:, emo].argmax(axis=1)
    if age:
        predicted_age = designs.Attribute(AGE, (age,)).group_probabilities(frame).argmax(axis=1)
    cells_out, z_means, l_means = {}, {}, {}
    for key, (n, mean, cov) in moments.items():
        sd = sds[key]
        corr = cov / np.outer(sd, sd)
        noise_corr = _image_part(corr, subject_cov, dependence=dependence)
        total = subject_cov + noise_corr
        in_cell = cell_of == "/".join(key)
        if group_z[key] not in z_means:
            rows = in_cell if dependence == "observed" else gender == key[0]
            z_means[group_z[key]] = _calibrate_gender(mean[0], sd[0] * math.sqrt(total[0, 0]), male=key[0] == "male",
                                                      accuracy=float(np.mean(predicted_male[rows] == (key[0] == "male"))),
                                                      ridge=settings.ridge)
        if group_l[key] not in l_means:
            rows = in_cell if dependence == "observed" else emotion == key[1]
            target = np.bincount(predicted[rows], minlength=len(table.emotion_classes)) / rows.sum()
            l_means[group_l[key]] = _calibrate_emotion(mean[emo], sd[emo], total[emo, emo], target=target,
                                                       settings=settings,
                                                       stream=zlib.crc32(f"{dataset}/{group_l[key]}".encode()))
        parts = [[z_means[group_z[key]]], l_means[group_l[key]]]
        if age:
            target = np.bincount(predicted_age[in_cell], minlength=len(age.groups)) / in_cell.sum()
            parts.append(_calibrate_age(mean[ages], sd[ages], total[ages, ages], rule=age.rule_matrix,
                                        target=target, settings=settings,
                                        stream=zlib.crc32(f"{dataset}/{AGE}/{key}".encode())))
        cells_out[key] = CellModel(int(n), round_parameters(np.concatenate(parts)), round_parameters(sd),
                                   round_parameters(noise_corr))
    return DatasetModel(_design(table, dataset, cells_by), round_parameters(subject_cov), cells_out)


def provenance(table: OutputsTable, dataset: str, cells_by: tuple[str, ...] = DEFAULT_CELLS_BY) -> dict[str, Any]:
    """What a fitted table was made from: dataset, rows and the source's file name and sha256 when known; with cells
    by age group, the declared rule from the age outputs to the groups that the calibration matched."""
    out = {"dataset": dataset, "rows": len(table.frame),
           **{k: table.metadata[k] for k in PROVENANCE_KEYS if k in table.metadata}}
    if AGE in cells_by:
        out["age_rule"] = designs.to_dict(table.design)["attributes"][AGE].get("rule", "identity")
    return out


def fit(tables: dict[str, OutputsTable], *, name: str, dependence: str = "observed", description: str = "",
        settings: FitSettings | None = None, cells_by: tuple[str, ...] = DEFAULT_CELLS_BY) -> Scenario:
    """Fit a scenario to outputs tables (dataset -> table; one emotion label space), with cells by ``cells_by``
    (:data:`~benchmark.sources.sim_scenario.CELLS_BY`) x emotion.

    ``dependence="none"`` fits the null scenario: the same marginals with every cross-modal dependence removed (cells
    by gender only). Cells by age group need every table to declare ``age_group`` with the same output columns.
    """
    settings = settings or FitSettings()
    cells_by = tuple(cells_by)
    if dependence not in DEPENDENCES:
        raise BenchmarkError(f"simulate fit: dependence {dependence!r} is unknown; expected one of {', '.join(DEPENDENCES)}")
    if cells_by not in CELLS_BY:
        raise BenchmarkError(f"simulate fit: cells by {','.join(cells_by)!r} are not supported; expected one of "
                             + ", ".join(repr(",".join(c)) for c in CELLS_BY))
    if dependence != "observed" and cells_by != DEFAULT_CELLS_BY:
        raise BenchmarkError(f"simulate fit: dependence {dependence!r} is defined for cells by gender only")
    classes = {t.emotion_classes for t in tables.values()}
    if len(classes) != 1:
        raise BenchmarkError(f"simulate fit: the tables use different emotion classes {sorted(classes)}; fit one emotion model")
    for dataset, table in tables.items():
        outputs.validate(table, where=f"simulate fit: {dataset}", attribute=designs.INTERSECTION.join(cells_by))
    age_outputs = {t.design.attributes[AGE].outputs for t in tables.values()} if AGE in cells_by else {()}
    if len(age_outputs) != 1:
        raise BenchmarkError(f"simulate fit: the tables declare different {AGE} outputs {sorted(age_outputs)}; fit "
                             "one age model")
    models = {d: fit_dataset(t, dataset=d, dependence=dependence, settings=settings, cells_by=cells_by)
              for d, t in tables.items()}
    z_max = max(float(np.abs(gender_logit(t)).max()) for t in tables.values())
    return Scenario(name=name, description=description, dependence=dependence, emotion_classes=next(iter(classes)),
                    z_clip=float(max(1, math.ceil(z_max))),
                    fitted_from=[provenance(t, d, cells_by) for d, t in tables.items()], fit=settings.as_dict(age=AGE in cells_by),
                    datasets=models, cells_by=cells_by, age_outputs=next(iter(age_outputs)))


def read_tables(paths: list[Path], *, attribute: str = "gender") -> dict[str, OutputsTable]:
    """Outputs tables (parquet, as ``benchmark fetch`` writes them, one dataset each, valid for ``attribute``) keyed
    by dataset."""
    tables: dict[str, OutputsTable] = {}
    for path in paths:
        table = outputs.read(path, attribute=attribute)
        if table.design.name in tables:
            raise BenchmarkError(f"{path}: dataset {table.design.name!r} appears in more than one input table; give "
                                 "each once")
        tables[table.design.name] = table
    return tables


def fit_files(paths: list[Path], *, output: Path, name: str, dependence: str = "observed", description: str = "",
              settings: FitSettings | None = None, cells_by: tuple[str, ...] = DEFAULT_CELLS_BY) -> Path:
    """Fit a scenario to the outputs tables at ``paths`` (cells by ``cells_by`` x emotion) and write it to
    ``output``; returns ``output``."""
    from benchmark.sources import sim_scenario

    tables = read_tables(paths, attribute=designs.INTERSECTION.join(cells_by))
    scenario = fit(tables, name=name, dependence=dependence, description=description, settings=settings,
                   cells_by=cells_by)
    return sim_scenario.write(scenario, output)
