"""Deterministic synthetic predictions tables for the statistics, evaluate and report tests.

Two builders:
- :func:`clustered_predictions`: per-image correctness drawn from a logistic model with a per-subject random effect
  (images of one person are correlated, as in FACES and ADFES), so the population difference between two methods is
  known: :func:`population_difference`.
- :func:`pipeline_predictions`: a predictions table shaped like the train stage's (split faces->adfes, both
  partitions, several methods and seeds), written with ``benchmark.core.predictions``, from tests/toy.py outputs tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special
from toy import EMOTIONS, GENDER, design, make_toy_table

from benchmark.core import predictions
from benchmark.core.design import CellLayout
from benchmark.core.labels import EMONET_EMOTIONS, GENDERS
from benchmark.core.scores import softmax

#: the cells of every toy table: 2 genders x the paper's 6 emotions
LAYOUT = CellLayout(GENDERS, EMOTIONS)


def _wrong(true: np.ndarray, labels: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    """A label different from each true label, drawn uniformly."""
    out = true.copy()
    for i, t in enumerate(true):
        out[i] = rng.choice([x for x in labels if x != t])
    return out


def clustered_predictions(*, subjects_per_gender: int = 20, images_per_cell: int = 2,
                          logits: dict[str, float] | None = None, seeds: dict[str, int] | None = None,
                          subject_sd: float = 1.5, seed: int = 0, dataset: str = "faces") -> pd.DataFrame:
    """Prediction rows of several methods over one set of images (split ``s``, partition ``test``).

    Image i of subject s is correct for method m with probability sigmoid(logits[m] + u_s), u_s ~ N(0, subject_sd);
    the same u_s for every method (paired) and both tasks. ``seeds[m]`` seeds per method (default 1).
    """
    logits = logits or {"reference": 0.0, "method": 1.0}
    seeds = seeds or {}
    rng = np.random.default_rng(seed)
    images = [{"dataset": dataset, "image_id": f"{subject}_{emotion}_{k}", "subject": subject, "gender": gender,
               "emotion": emotion}
              for gender, subject, emotion, k in design(subjects_per_gender=subjects_per_gender,
                                                        images_per_cell=images_per_cell, digits=3)]
    base = pd.DataFrame(images)
    effect = pd.Series(rng.normal(0.0, subject_sd, base["subject"].nunique()), index=base["subject"].unique())
    u = base["subject"].map(effect).to_numpy()
    parts = []
    for method, logit in logits.items():
        for s in range(seeds.get(method, 1)):
            rows = base.copy()
            for task, labels in (("gender", GENDERS), ("emotion", EMOTIONS)):
                correct = rng.random(len(rows)) < special.expit(logit + u)
                wrong = _wrong(rows[task].to_numpy(), labels, rng)
                rows[f"pred_{task}"] = np.where(correct, rows[task].to_numpy(), wrong)
            parts.append(rows.assign(split="s", fold=0, method=method, seed=s, partition="test"))
    return pd.concat(parts, ignore_index=True)


def population_difference(logit: float, reference_logit: float, *, subject_sd: float = 1.5) -> float:
    """E[sigmoid(logit + u)] - E[sigmoid(reference_logit + u)] in percent, u ~ N(0, subject_sd) (Gauss-Hermite)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    return 100.0 * float(np.sum(weights * (special.expit(logit + subject_sd * nodes)
                                           - special.expit(reference_logit + subject_sd * nodes))))


def pipeline_predictions(*, methods: dict[str, tuple[int, float]] | None = None, subjects_per_gender: int = 4,
                         seed: int = 0) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """A train-stage-shaped predictions table over toy FACES (train partition) and ADFES (test partition).

    ``methods`` maps name -> (n_seeds, boost): each seed's predicted probabilities are the toy outputs' with the true
    class's emotion logit raised by ``boost`` for a random half of the images (0: the frozen models' own predictions).
    """
    methods = methods or {"uncorrected": (1, 0.0), "better": (3, 3.0)}
    tables = {"faces": make_toy_table(dataset="faces", subjects_per_gender=subjects_per_gender, seed=seed,
                                      emotion_noise=1.5, gender_noise=2.0),
              "adfes": make_toy_table(dataset="adfes", subjects_per_gender=subjects_per_gender, seed=seed + 1,
                                      images_per_cell=1, emotion_noise=1.5, gender_noise=2.0)}
    rng = np.random.default_rng(seed)
    parts = []
    for name, (n_seeds, boost) in methods.items():
        for s in range(n_seeds):
            for partition, dataset in (("test", "adfes"), ("train", "faces")):
                table = tables[dataset]
                logits = table.emotion_logits().copy()
                true = np.array([EMONET_EMOTIONS.index(e) for e in table.frame["emotion"]])
                lucky = rng.random(len(true)) < 0.5
                logits[np.flatnonzero(lucky), true[lucky]] += boost
                parts.append(predictions.make_rows(table, attribute=GENDER, split="faces->adfes", fold=0, method=name,
                                                   seed=s, partition=partition,
                                                   group_probs=GENDER.group_probabilities(table.frame),
                                                   emotion_probs=softmax(logits)))
    return pd.concat(parts, ignore_index=True), EMONET_EMOTIONS


def write_pipeline_predictions(path: Path, *, source: str = "toy", scenario: str | None = None, **kwargs) -> Path:
    """:func:`pipeline_predictions` written as a predictions parquet (metadata: source and optional scenario)."""
    frame, classes = pipeline_predictions(**kwargs)
    designs = {d: make_toy_table(dataset=d, subjects_per_gender=1).design for d in ("faces", "adfes")}
    meta = predictions.metadata("gender", designs, source=source, **({"scenario": scenario} if scenario else {}))
    predictions.write(frame, path, emotion_classes=classes, metadata=meta)
    return path
