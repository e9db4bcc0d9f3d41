"""File-naming schemes: what a picture's file name says about it.

Built in: FACES ``{ID}_{y|m|o}_{m|f}_{a|d|f|h|n|s}_{a|b}.jpg`` and ADFES stills ``{F|M}{NN}-{Emotion}-Apex.jpg`` /
``{F|M}{NN}-Neutral.jpg``. A declared dataset may instead give a regular expression (``images.naming: pattern``)
whose named groups are ``emotion``, optionally ``subject`` (else the file's stem: every image its own subject) and
any attribute (``gender``, ``age_group`` ...); ``images.codes`` maps a group's spellings to labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.core.design import ImagesDeclaration
from benchmark.core.labels import canonical_emotion, canonical_group

FACES_PATTERN = re.compile(r"^(?P<id>\d{1,3})_(?P<age>[ymo])_(?P<gender>[mf])_(?P<emotion>[adfhns])_(?P<set>[ab])\.(?:jpe?g|png)$", re.I)
ADFES_PATTERN = re.compile(r"^(?P<gender>[FM])(?P<num>\d{2})-(?P<emotion>[A-Za-z]+)(?:-Apex)?\.(?:jpe?g|png)$")
SCHEMES = {
    "faces": "{ID}_{y|m|o}_{m|f}_{a|d|f|h|n|s}_{a|b}.jpg",
    "adfes": "{F|M}{NN}-{Emotion}-Apex.jpg or {F|M}{NN}-Neutral.jpg",
}


@dataclass(frozen=True)
class ParsedName:
    """What a file name says about its image.

    emotion : the canonical emotion (any, also outside a dataset's declared ones: the scan decides what it keeps);
    labels : attribute -> group (e.g. gender, age_group); extras : other fields (FACES' picture set).
    """

    subject: str
    emotion: str
    raw_emotion: str
    labels: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


def parse_faces(name: str) -> ParsedName | None:
    """Parse a FACES file name; None when it does not follow the scheme."""
    m = FACES_PATTERN.match(name)
    if m is None:
        return None
    return ParsedName(subject=f"{int(m['id']):03d}", emotion=canonical_emotion(m["emotion"]),
                      raw_emotion=m["emotion"].lower(),
                      labels={"gender": canonical_group("gender", m["gender"]),
                              "age_group": canonical_group("age_group", m["age"])},
                      extras={"picture_set": m["set"].lower()})


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
    return ParsedName(subject=f"{m['gender']}{m['num']}", emotion=canonical_emotion(raw) or raw.lower(),
                      raw_emotion=raw.lower(), labels={"gender": canonical_group("gender", m["gender"])})


def parse_pattern(declaration: ImagesDeclaration, name: str) -> ParsedName | None:
    """Parse ``name`` with a declared regular expression; None when it does not match."""
    assert declaration.pattern is not None
    m = re.match(declaration.pattern, name)
    if m is None:
        return None
    fields = {k: v for k, v in m.groupdict().items() if v is not None}

    def decode(key: str, value: str) -> str:
        return declaration.codes.get(key, {}).get(value, value)

    raw = fields.pop("emotion")
    emotion = decode("emotion", raw)
    subject = fields.pop("subject", None) or Path(name).stem
    labels = {k: canonical_group(k, decode(k, v)) for k, v in fields.items()}
    return ParsedName(subject=subject, emotion=canonical_emotion(emotion) or emotion, raw_emotion=raw.lower(),
                      labels=labels)


PARSERS = {"faces": parse_faces, "adfes": parse_adfes}


def scheme(declaration: ImagesDeclaration) -> str:
    """The scheme in words, for messages."""
    return SCHEMES.get(declaration.naming) or f"matching {declaration.pattern}"


def parse(declaration: ImagesDeclaration, name: str) -> ParsedName | None:
    """Parse ``name`` under the declared scheme."""
    if declaration.naming == "pattern":
        return parse_pattern(declaration, name)
    return PARSERS[declaration.naming](name)
