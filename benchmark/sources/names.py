"""The datasets' file-naming schemes: FACES ``{ID}_{y|m|o}_{m|f}_{a|d|f|h|n|s}_{a|b}.jpg`` and ADFES stills
``{F|M}{NN}-{Emotion}-Apex.jpg`` / ``{F|M}{NN}-Neutral.jpg``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from benchmark.labels import DATASET_EMOTIONS, canonical_emotion, canonical_gender

FACES_PATTERN = re.compile(r"^(?P<id>\d{1,3})_(?P<age>[ymo])_(?P<gender>[mf])_(?P<emotion>[adfhns])_(?P<set>[ab])\.(?:jpe?g|png)$", re.I)
ADFES_PATTERN = re.compile(r"^(?P<gender>[FM])(?P<num>\d{2})-(?P<emotion>[A-Za-z]+)(?:-Apex)?\.(?:jpe?g|png)$")
AGE_GROUPS = {"y": "young", "m": "middle", "o": "older"}
SCHEMES = {
    "faces": "{ID}_{y|m|o}_{m|f}_{a|d|f|h|n|s}_{a|b}.jpg",
    "adfes": "{F|M}{NN}-{Emotion}-Apex.jpg or {F|M}{NN}-Neutral.jpg",
}


@dataclass(frozen=True)
class ParsedName:
    """What a file name says about its image."""

    subject: str
    gender: str
    emotion: str | None  # None: an emotion outside the six shared ones (ADFES: contempt, embarrassment ...)
    raw_emotion: str
    extras: dict[str, Any] = field(default_factory=dict)


def parse_faces(name: str) -> ParsedName | None:
    """Parse a FACES file name; None when it does not follow the scheme."""
    m = FACES_PATTERN.match(name)
    if m is None:
        return None
    return ParsedName(subject=f"{int(m['id']):03d}", gender=canonical_gender(m["gender"]),
                      emotion=canonical_emotion(m["emotion"]), raw_emotion=m["emotion"].lower(),
                      extras={"age_group": AGE_GROUPS[m["age"].lower()], "picture_set": m["set"].lower()})


def parse_adfes(name: str) -> ParsedName | None:
    """Parse an ADFES still's file name; None when it does not follow the scheme.

    Neutral stills have no ``-Apex``; every other emotion must have it.
    """
    m = ADFES_PATTERN.match(name)
    if m is None:
        return None
    raw = m["emotion"]
    is_apex = "-Apex" in name
    if (raw.lower() == "neutral") == is_apex:
        return None
    emotion = canonical_emotion(raw)
    return ParsedName(subject=f"{m['gender']}{m['num']}", gender=canonical_gender(m["gender"]),
                      emotion=emotion if emotion in DATASET_EMOTIONS else None, raw_emotion=raw.lower())


PARSERS = {"faces": parse_faces, "adfes": parse_adfes}


def parse(dataset: str, name: str) -> ParsedName | None:
    """Parse ``name`` under ``dataset``'s scheme."""
    return PARSERS[dataset](name)
