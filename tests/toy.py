"""Deterministic toy outputs tables for tests: the full 2 x 6 (gender x emotion) design with a known structure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.core import design as designs
from benchmark.core.design import DatasetDesign
from benchmark.core.labels import EMONET_EMOTIONS, GENDERS, emotion_column, gender_column
from benchmark.core.outputs import OutputsTable

#: the paper's emotions, as FACES and ADFES declare them
EMOTIONS: tuple[str, ...] = designs.shipped()["faces"].emotions
GENDER = designs.attribute_of(designs.shipped()["faces"], "gender")


def toy_design(dataset: str) -> DatasetDesign:
    """The shipped declaration of ``dataset`` (faces, adfes), else a gender x 6 emotions declaration of that name."""
    shipped = designs.shipped()
    if dataset in shipped:
        return shipped[dataset]
    return designs.dataset_from_dict(dataset, {"emotions": list(EMOTIONS),
                                               "attributes": {"gender": {"groups": list(GENDERS)}}}, where="toy")


def design(*, subjects_per_gender: int, images_per_cell: int, digits: int = 2):
    """The full 2 x 6 design in a fixed order: (gender, subject, emotion, k) for every image."""
    for gender in GENDERS:
        for s in range(subjects_per_gender):
            subject = f"{gender[0]}{s:0{digits}d}"
            for emotion in EMOTIONS:
                for k in range(images_per_cell):
                    yield gender, subject, emotion, k


def make_toy_table(*, dataset: str = "faces", subjects_per_gender: int = 6, images_per_cell: int = 2,
                   seed: int = 0, gender_noise: float = 1.0, emotion_noise: float = 1.0) -> OutputsTable:
    """A valid outputs table: each subject has ``images_per_cell`` images of every dataset emotion.

    Gender probabilities are a logistic of (+2 for male, -2 for female) plus Gaussian noise; emotion logits are 3 on
    the true class plus Gaussian noise on all 8 EmoNet classes.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for gender, subject, emotion, k in design(subjects_per_gender=subjects_per_gender, images_per_cell=images_per_cell):
        z = (2.0 if gender == "male" else -2.0) + gender_noise * rng.normal()
        p_male = 1.0 / (1.0 + np.exp(-z))
        logits = emotion_noise * rng.normal(size=len(EMONET_EMOTIONS))
        logits[EMONET_EMOTIONS.index(emotion)] += 3.0
        row = {"dataset": dataset, "image_id": f"{subject}_{emotion}_{k}.jpg", "subject": subject,
               "gender": gender, "emotion": emotion,
               gender_column("male"): p_male, gender_column("female"): 1.0 - p_male}
        row.update({emotion_column(c): float(v) for c, v in zip(EMONET_EMOTIONS, logits)})
        rows.append(row)
    return OutputsTable(pd.DataFrame(rows), toy_design(dataset), EMONET_EMOTIONS, {"source": "toy"})


# ------------------------------------------------ a third dataset declared in YAML only (docs/DATASETS.md)

KDEF = {"format": "benchmark-datasets/1", "datasets": {"kdef7": {
    "description": "a seven-expression set with its own subject ids",
    "emotions": ["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"],
    "subject": "person",
    "attributes": {"gender": {"groups": ["male", "female"]}}}}}


def seven_emotion_table(n_per_gender: int, seed: int) -> pd.DataFrame:
    """One picture per person and emotion, person ids like KDEF's AF07 / AM12, EmoNet-like logits."""
    rng = np.random.default_rng(seed)
    rows = []
    for gender, letter in (("male", "M"), ("female", "F")):
        for i in range(n_per_gender):
            for emotion in KDEF["datasets"]["kdef7"]["emotions"]:
                logits = rng.normal(size=len(EMONET_EMOTIONS))
                logits[EMONET_EMOTIONS.index(emotion)] += 2.5
                p_male = 1 / (1 + np.exp(-((2.0 if gender == "male" else -2.0) + rng.normal())))
                rows.append({"image_id": f"A{letter}{i:02d}{emotion[:2].upper()}S.JPG", "person": f"A{letter}{i:02d}",
                             "gender": gender, "emotion": emotion, "p_male": p_male, "p_female": 1 - p_male,
                             **{emotion_column(c): v for c, v in zip(EMONET_EMOTIONS, logits)}})
    return pd.DataFrame(rows)


def adfes_like_table(seed: int) -> pd.DataFrame:
    frame = make_toy_table(dataset="adfes", subjects_per_gender=4, images_per_cell=1, seed=seed).frame
    return frame.drop(columns=["dataset"])
