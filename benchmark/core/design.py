"""Designs as data: what a dataset declares, and the protected attribute whose groups x emotions make the cells.

A **dataset declaration** (YAML, see docs/DATASETS.md) names the dataset's true emotion labels (any set, in the
order of the report), the protected attributes it has ground truth for (each with its groups and the outputs-table
columns that hold the attribute model's probabilities), the subject column (or none: every image is its own subject)
and, for the ``images`` source, its file-name scheme and expected counts. FACES and ADFES are two shipped
declarations (``benchmark/declarations/*.yaml``); a user adds one in a YAML file (``data.declarations``) or inline in
params.yaml (``data.declare``) without code.

The **protected attribute** in force (``data.attribute``) is one declared attribute (``gender``, ``age_group``) or an
intersection of several (``gender*age_group``): its groups are the product of the parts' groups (first part major,
spelled ``male*young``), its model outputs the parts' columns side by side. The cells of every metric are its groups
x the dataset's emotions (:class:`CellLayout`).

This module is at the bottom of the package: plain data types, YAML parsing and their one-line errors.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from benchmark.infra import textfiles
from benchmark.infra.errors import BenchmarkError

FORMAT = "benchmark-datasets/1"
#: separates the parts of an intersection, in ``data.attribute`` and in the intersection's group names
INTERSECTION = "*"
#: a name of a dataset, an attribute or a group: letters, digits, ``_``, ``-`` and ``+`` (FairFace's ``70+``)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_+\-]*$")
#: built-in file-name schemes of the ``images`` source (benchmark.sources.names); ``pattern`` is a declared regex
NAMINGS: tuple[str, ...] = ("faces", "adfes", "pattern")
#: group probabilities of one output must sum to 1 within this (a rule moves probability mass, it creates none)
RULE_TOLERANCE = 1e-9
DECLARATIONS_PACKAGE_DIR = "declarations"


@dataclass(frozen=True)
class AttributeDeclaration:
    """One protected attribute of a dataset.

    Attributes
    ----------
    name : str
        The attribute, also the outputs-table column holding each image's true group.
    groups : tuple of str
        The groups, in report order.
    outputs : tuple of str
        Outputs-table columns holding the attribute model's probabilities (each row sums to 1).
    rule : tuple of n_outputs rows of n_groups weights
        How the frozen model's outputs become group probabilities (``outputs @ rule``), the uncorrected prediction
        being their argmax. The identity when the outputs are one per group; e.g. FairFace's 9 age bins -> 3 groups.
    """

    name: str
    groups: tuple[str, ...]
    outputs: tuple[str, ...]
    rule: tuple[tuple[float, ...], ...]

    @property
    def rule_matrix(self) -> np.ndarray:
        """The rule as an array of shape (n_outputs, n_groups)."""
        return np.array(self.rule, dtype=np.float64)

    @property
    def is_identity(self) -> bool:
        """Whether each output is one group's probability (no rule needed)."""
        return len(self.outputs) == len(self.groups) and np.array_equal(self.rule_matrix, np.eye(len(self.groups)))


@dataclass(frozen=True)
class ImagesDeclaration:
    """How the ``images`` source finds a dataset's files and what a complete copy holds.

    naming : 'faces', 'adfes' (built-in schemes) or 'pattern' (``pattern``, a regex with named groups ``emotion``,
        ``subject`` and the attributes; ``codes`` maps a group's spelling in file names to its label).
    expected_images, expected_subjects, per_subject_emotion : counts of a complete copy (None: not checked).
    """

    naming: str
    pattern: str | None = None
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    expected_images: int | None = None
    expected_subjects: int | None = None
    per_subject_emotion: int | None = None


@dataclass(frozen=True)
class DatasetDesign:
    """One dataset's declaration.

    subject : the column of person ids (statistics resample people), or None when the dataset has none and every
        image is its own subject (in-the-wild pictures); the report says so.
    """

    name: str
    emotions: tuple[str, ...]
    attributes: dict[str, AttributeDeclaration]
    subject: str | None = "subject"
    description: str = ""
    images: ImagesDeclaration | None = None


@dataclass(frozen=True)
class Attribute:
    """The protected attribute in force: one declared attribute or an intersection (``gender*age_group``).

    Attributes
    ----------
    name : str
        As ``data.attribute`` spells it.
    parts : tuple of AttributeDeclaration
        One per part, in the order of ``name``.
    """

    name: str
    parts: tuple[AttributeDeclaration, ...]

    @property
    def groups(self) -> tuple[str, ...]:
        """Group names: the part's groups, or for an intersection every combination (``male*young``), first part major."""
        return tuple(INTERSECTION.join(combo) for combo in itertools.product(*(p.groups for p in self.parts)))

    @property
    def outputs(self) -> tuple[str, ...]:
        """Outputs-table columns of the attribute model(s), parts side by side."""
        return tuple(c for p in self.parts for c in p.outputs)

    @property
    def truth_columns(self) -> tuple[str, ...]:
        """Outputs-table columns holding the true group of each part."""
        return tuple(p.name for p in self.parts)

    def truth(self, frame: pd.DataFrame) -> np.ndarray:
        """True group of every row, object array of shape (n_images,) (parts joined with ``*``)."""
        columns = [frame[c].astype(str).to_numpy() for c in self.truth_columns]
        if len(columns) == 1:
            return columns[0].astype(object)
        return np.array([INTERSECTION.join(values) for values in zip(*columns)], dtype=object)

    def model_outputs(self, frame: pd.DataFrame) -> np.ndarray:
        """The attribute model's probabilities, shape (n_images, n_outputs), float64."""
        return frame[list(self.outputs)].to_numpy(dtype=np.float64)

    def group_probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncorrected group probabilities, shape (n_images, n_groups), rows summing to 1.

        Each part's outputs go through its rule; an intersection takes the product of its parts' probabilities
        (so its argmax is the combination of the parts' argmaxes).
        """
        joint = np.ones((len(frame), 1))
        for part in self.parts:
            probs = frame[list(part.outputs)].to_numpy(dtype=np.float64) @ part.rule_matrix
            joint = (joint[:, :, None] * probs[:, None, :]).reshape(len(frame), -1)
        return joint


@dataclass(frozen=True)
class CellLayout:
    """The cells of one evaluation: groups x emotions, group-major (cell index = g * n_emotions + e)."""

    groups: tuple[str, ...]
    emotions: tuple[str, ...]

    @property
    def n_cells(self) -> int:
        return len(self.groups) * len(self.emotions)

    def cells(self) -> list[tuple[str, str]]:
        """(group, emotion) of every cell in index order."""
        return [(g, e) for g in self.groups for e in self.emotions]

    def pairs(self) -> list[tuple[int, int]]:
        """Index pairs (i < j) of groups, for the pairwise gaps."""
        return list(itertools.combinations(range(len(self.groups)), 2))


def layout(design: DatasetDesign, attribute: Attribute) -> CellLayout:
    """The cells of ``design`` under ``attribute``."""
    return CellLayout(attribute.groups, design.emotions)


# ----------------------------------------------------------------------------------------------------- parsing


class _Reader:
    """Typed access to parsed YAML, with one-line errors naming the file (or params key) and the dotted key."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, expected: str, got: Any) -> BenchmarkError:
        return BenchmarkError(f"{self.where}: {key}: expected {expected}, got {str(got)[:80]!r}")

    def mapping(self, value: Any, key: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, "a mapping", value)
        return value

    def names(self, value: Any, key: str, *, what: str) -> tuple[str, ...]:
        if (not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value)
                or len(set(value)) != len(value)):
            raise self.fail(key, f"a non-empty list of unique {what}", value)
        return tuple(v.strip() for v in value)

    def name(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not NAME_PATTERN.match(value):
            raise self.fail(key, "a name of letters, digits, _, - or +", value)
        return value

    def count(self, value: Any, key: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(key, "a positive integer or null", value)
        return value

    def known_keys(self, raw: dict, key: str, allowed: tuple[str, ...]) -> None:
        unknown = sorted(set(map(str, raw)) - set(allowed))
        if unknown:
            raise BenchmarkError(f"{self.where}: {key}.{unknown[0]}: unknown key; expected some of {', '.join(allowed)}")


def _rule(r: _Reader, raw: Any, key: str, groups: tuple[str, ...],
          outputs: tuple[str, ...]) -> tuple[tuple[float, ...], ...]:
    """The rule (n_outputs rows of n_groups weights) from ``group -> {output column: weight}``; identity when absent."""
    if raw is None:
        if len(outputs) != len(groups):
            raise r.fail(key, f"a rule mapping the {len(outputs)} outputs to the {len(groups)} groups "
                              "(required when outputs are not one per group)", None)
        return tuple(tuple(float(i == j) for j in range(len(groups))) for i in range(len(outputs)))
    raw = r.mapping(raw, key)
    r.known_keys(raw, key, groups)
    matrix = np.zeros((len(outputs), len(groups)))
    for j, group in enumerate(groups):
        weights = r.mapping(raw.get(group, {}), f"{key}.{group}")
        for column, weight in weights.items():
            if column not in outputs:
                raise r.fail(f"{key}.{group}.{column}", f"one of the outputs ({', '.join(outputs)})", column)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
                raise r.fail(f"{key}.{group}.{column}", "a weight in [0, 1]", weight)
            matrix[outputs.index(column), j] = float(weight)
    sums = matrix.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > RULE_TOLERANCE)
    if len(bad):
        raise r.fail(key, f"weights of each output summing to 1 over the groups ({outputs[bad[0]]} sums to "
                          f"{sums[bad[0]]:g})", "")
    return tuple(tuple(float(w) for w in row) for row in matrix)


def _attribute(r: _Reader, name: str, raw: Any, key: str) -> AttributeDeclaration:
    raw = r.mapping(raw, key)
    r.known_keys(raw, key, ("groups", "outputs", "rule"))
    if "groups" not in raw:
        raise BenchmarkError(f"{r.where}: {key}: missing key groups")
    groups = r.names(raw["groups"], f"{key}.groups", what="group names")
    for group in groups:
        r.name(group, f"{key}.groups")
    outputs = r.names(raw.get("outputs", [f"p_{g}" for g in groups]), f"{key}.outputs", what="column names")
    return AttributeDeclaration(name, groups, outputs, _rule(r, raw.get("rule"), f"{key}.rule", groups, outputs))


def _images(r: _Reader, raw: Any, key: str) -> ImagesDeclaration:
    raw = r.mapping(raw, key)
    r.known_keys(raw, key, ("naming", "pattern", "codes", "expected"))
    naming = raw.get("naming")
    if naming not in NAMINGS:
        raise r.fail(f"{key}.naming", f"one of {', '.join(NAMINGS)}", naming)
    pattern = raw.get("pattern")
    if naming == "pattern":
        if not isinstance(pattern, str):
            raise r.fail(f"{key}.pattern", "a regular expression with named groups (?P<emotion>...)", pattern)
        try:
            compiled = re.compile(pattern)
        except re.error as err:
            raise r.fail(f"{key}.pattern", f"a valid regular expression ({err})", pattern) from None
        if "emotion" not in compiled.groupindex:
            raise r.fail(f"{key}.pattern", "a named group (?P<emotion>...)", pattern)
    codes = {str(k): {str(a): str(b) for a, b in r.mapping(v, f"{key}.codes.{k}").items()}
             for k, v in r.mapping(raw.get("codes") or {}, f"{key}.codes").items()}
    expected = r.mapping(raw.get("expected") or {}, f"{key}.expected")
    r.known_keys(expected, f"{key}.expected", ("images", "subjects", "per_subject_emotion"))
    return ImagesDeclaration(naming, pattern, codes, r.count(expected.get("images"), f"{key}.expected.images"),
                             r.count(expected.get("subjects"), f"{key}.expected.subjects"),
                             r.count(expected.get("per_subject_emotion"), f"{key}.expected.per_subject_emotion"))


DATASET_KEYS: tuple[str, ...] = ("description", "emotions", "attributes", "subject", "images")


def dataset_from_dict(name: str, raw: Any, *, where: str, key: str = "") -> DatasetDesign:
    """Build and validate one declaration; errors name ``where`` and the dotted key under ``key``."""
    r = _Reader(where)
    key = key or name
    r.name(name, key)
    raw = r.mapping(raw, key)
    r.known_keys(raw, key, DATASET_KEYS)
    for required in ("emotions", "attributes"):
        if required not in raw:
            raise BenchmarkError(f"{where}: {key}: missing key {required}")
    emotions = r.names(raw["emotions"], f"{key}.emotions", what="emotion labels")
    attributes_raw = r.mapping(raw["attributes"], f"{key}.attributes")
    if not attributes_raw:
        raise r.fail(f"{key}.attributes", "at least one protected attribute", attributes_raw)
    attributes = {}
    for attr_name, attr_raw in attributes_raw.items():
        attr_name = r.name(attr_name, f"{key}.attributes")
        if attr_name in ("emotion", "subject", "dataset", "image_id"):
            raise r.fail(f"{key}.attributes", "an attribute name other than dataset, image_id, subject, emotion", attr_name)
        attributes[attr_name] = _attribute(r, attr_name, attr_raw, f"{key}.attributes.{attr_name}")
    subject = raw.get("subject", "subject")
    if subject is not None and not isinstance(subject, str):
        raise r.fail(f"{key}.subject", "a column name, or null when every image is its own subject", subject)
    images = _images(r, raw["images"], f"{key}.images") if raw.get("images") is not None else None
    return DatasetDesign(name, emotions, attributes, subject, str(raw.get("description", "")), images)


def read_file(path: Path | str) -> dict[str, DatasetDesign]:
    """The declarations in a YAML file (``format: benchmark-datasets/1``, ``datasets: {name: declaration}``)."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"{path}: dataset declarations file not found; data.declarations lists YAML files "
                             "declaring datasets (docs/DATASETS.md)")
    try:
        raw = textfiles.load_yaml(path)  # strict: UTF-8, each key once
    except yaml.YAMLError as err:
        raise BenchmarkError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from err
    r = _Reader(str(path))
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        got = raw.get("format") if isinstance(raw, dict) else raw
        raise r.fail("format", f"{FORMAT!r}", got)
    r.known_keys(raw, "(top level)", ("format", "datasets"))
    datasets = r.mapping(raw.get("datasets"), "datasets")
    return {str(n): dataset_from_dict(str(n), d, where=str(path), key=f"datasets.{n}") for n, d in datasets.items()}


def shipped() -> dict[str, DatasetDesign]:
    """The declarations shipped with the package (FACES and ADFES), by name."""
    folder = resources.files("benchmark") / DECLARATIONS_PACKAGE_DIR
    out: dict[str, DatasetDesign] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            out.update(read_file(Path(str(entry))))
    return out


def catalogue(files: list[str] = (), inline: dict[str, Any] | None = None) -> dict[str, DatasetDesign]:
    """Every declared dataset: the shipped ones, then each file of ``files``, then ``inline`` (params.yaml).

    A name declared twice is an error (rename the user's dataset, or leave the shipped name alone).
    """
    out = shipped()
    sources = [(str(f), read_file(f)) for f in files]
    sources.append(("params.yaml data.declare", {str(n): dataset_from_dict(str(n), d, where="data.declare")
                                                 for n, d in (inline or {}).items()}))
    for where, found in sources:
        for name, design in found.items():
            if name in out:
                raise BenchmarkError(f"{where}: dataset {name!r} is already declared; give yours another name")
            out[name] = design
    return out


def parse_attribute(name: str) -> tuple[str, ...]:
    """The parts of ``data.attribute`` (``gender*age_group`` -> ('gender', 'age_group'))."""
    parts = tuple(p.strip() for p in name.split(INTERSECTION))
    if not all(NAME_PATTERN.match(p) for p in parts) or len(set(parts)) != len(parts):
        raise BenchmarkError(f"data.attribute: {name!r} is not an attribute name or an intersection of distinct "
                             f"names joined by {INTERSECTION!r} (e.g. gender*age_group)")
    return parts


def attribute_of(design: DatasetDesign, name: str) -> Attribute:
    """The attribute ``name`` (or intersection) of ``design``; one line naming what the dataset lacks otherwise."""
    parts = parse_attribute(name)
    missing = [p for p in parts if p not in design.attributes]
    if missing:
        raise BenchmarkError(f"data.attribute: dataset {design.name!r} declares no attribute {missing[0]!r}; it has "
                             f"{', '.join(design.attributes)}")
    return Attribute(name, tuple(design.attributes[p] for p in parts))


# ----------------------------------------------------------------------------------------------- serialising


def to_dict(design: DatasetDesign) -> dict[str, Any]:
    """The declaration as plain data (the YAML layout), e.g. for a table's metadata; :func:`dataset_from_dict`
    reads it back to an equal declaration."""
    attributes = {}
    for name, a in design.attributes.items():
        entry: dict[str, Any] = {"groups": list(a.groups), "outputs": list(a.outputs)}
        if not a.is_identity:
            entry["rule"] = {g: {o: a.rule[i][j] for i, o in enumerate(a.outputs) if a.rule[i][j]}
                             for j, g in enumerate(a.groups)}
        attributes[name] = entry
    out: dict[str, Any] = {"description": design.description, "emotions": list(design.emotions),
                           "attributes": attributes, "subject": design.subject}
    if design.images is not None:
        i = design.images
        images: dict[str, Any] = {"naming": i.naming}
        if i.pattern is not None:
            images["pattern"] = i.pattern
        if i.codes:
            images["codes"] = {k: dict(v) for k, v in i.codes.items()}
        expected = {"images": i.expected_images, "subjects": i.expected_subjects,
                    "per_subject_emotion": i.per_subject_emotion}
        if any(v is not None for v in expected.values()):
            images["expected"] = expected
        out["images"] = images
    return out
