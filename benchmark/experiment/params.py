"""Loading params.yaml and cross-checking it against what the registries and the dataset declarations define.

:mod:`benchmark.core.settings` builds the typed settings (keys, types, ranges, choices); this module sees both the settings
and the names the rest of the package defines (sources, methods and their plug-ins, frozen models, declared
datasets, their attributes, splits between them) and checks every constraint between keys before any stage starts,
each failure one line naming the key and what it expects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from benchmark.core import design as designs
from benchmark.core.design import Attribute, DatasetDesign
from benchmark.core.protocol import parse_split, shared_attribute
from benchmark.core.settings import Settings, TuneSpaceSettings, build
from benchmark.infra import paths, textfiles
from benchmark.infra.errors import BenchmarkError


def load_settings(path: Path | str = paths.PARAMS, overrides: dict[str, Any] | None = None) -> Settings:
    """Read and validate params.yaml; ``overrides`` maps dotted keys to values (applied before validation)."""
    path = Path(path)
    if not path.exists():
        raise BenchmarkError(f"{path}: params file not found; run from the project root or pass --params PATH")
    try:
        raw = textfiles.load_yaml(path) or {}  # strict: UTF-8, each key once
    except yaml.YAMLError as err:
        raise BenchmarkError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from err
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        settings = build(Settings, raw)
        check(settings)
    except BenchmarkError as err:
        raise BenchmarkError(f"{path}: {err}") from None
    return settings


def catalogue(settings: Settings) -> dict[str, DatasetDesign]:
    """Every declared dataset: shipped, in ``data.declarations`` files and inline in ``data.declare``."""
    return designs.catalogue(list(settings.data.declarations), settings.data.declare)


def run_designs(settings: Settings) -> dict[str, DatasetDesign]:
    """The declarations of ``data.datasets``, by name (validated: every one is declared)."""
    declared = catalogue(settings)
    unknown = [d for d in settings.data.datasets if d not in declared]
    if unknown:
        raise BenchmarkError(f"data.datasets has undeclared dataset {unknown[0]!r}; declared: {', '.join(declared)} "
                             "(declare yours in data.declarations or data.declare, docs/DATASETS.md)")
    return {d: declared[d] for d in settings.data.datasets}


def split_attribute(split: str, designs_by_name: dict[str, DatasetDesign], attribute: str, *,
                    where: str = "train.splits") -> Attribute:
    """The attribute of ``split`` from the datasets' declarations (:func:`benchmark.core.protocol.shared_attribute`)."""
    parsed = parse_split(split, where=where)
    missing = [d for d in parsed.datasets if d not in designs_by_name]
    if missing:
        raise BenchmarkError(f"{where}: split {split!r} needs dataset {missing[0]!r}, which is not in data.datasets "
                             f"({', '.join(designs_by_name)}); add it there or name a split between those")
    attributes = {d: designs.attribute_of(designs_by_name[d], attribute) for d in parsed.datasets}
    return shared_attribute(split, attributes, where=where)


def check_declared(names: Iterable[str], declared: dict[str, DatasetDesign], *, where: str) -> None:
    """Every dataset of ``names`` is declared; else one line (``where`` names the key) listing the declared ones."""
    unknown = [name for name in names if name not in declared]
    if unknown:
        raise BenchmarkError(f"{where} dataset {unknown[0]!r}, which is not declared; declared: "
                             f"{', '.join(sorted(declared))} (declare yours in data.declarations or data.declare, "
                             "docs/DATASETS.md)")


def _check_data(settings: Settings) -> dict[str, DatasetDesign]:
    from benchmark.sources import LOADERS

    data = settings.data
    if data.source not in LOADERS:
        raise BenchmarkError(f"data.source {data.source!r} is unknown; expected one of {', '.join(LOADERS)}")
    if not data.datasets or len(set(data.datasets)) != len(data.datasets):
        raise BenchmarkError(f"data.datasets: expected a non-empty list of distinct dataset names, got {data.datasets!r}")
    chosen = run_designs(settings)
    designs.parse_attribute(data.attribute)
    for design in chosen.values():
        missing = [p for p in designs.parse_attribute(data.attribute) if p not in design.attributes]
        if missing:
            raise BenchmarkError(f"data.attribute: dataset {design.name!r} (data.datasets) declares no attribute "
                                 f"{missing[0]!r}; it has {', '.join(design.attributes)}: choose another attribute "
                                 f"or remove {design.name} from data.datasets")
    if data.source == "images":
        from benchmark.frozen.model_registry import check_model_name

        check_model_name(data.images.gender_model, task="gender", where="data.images.gender_model")
        check_model_name(data.images.emotion_model, task="emotion", where="data.images.emotion_model")
    return chosen


def _check_train(settings: Settings, chosen: dict[str, DatasetDesign]) -> None:
    from benchmark.methods.method_registry import check_method_name

    train = settings.train
    check_declared(train.cv.folds, catalogue(settings), where="train.cv.folds names")
    for dataset, folds in train.cv.folds.items():
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 0 or folds == 1:
            raise BenchmarkError(f"train.cv.folds.{dataset}: {folds!r}; expected 0 (leave one subject out) or an "
                                 "integer >= 2 (1 fold leaves no training subjects)")
    if train.cv.default_folds == 1:
        raise BenchmarkError("train.cv.default_folds: 1 fold leaves no training subjects; use 0 (leave one subject "
                             "out) or >= 2")
    if not train.methods or len(set(train.methods)) != len(train.methods):
        raise BenchmarkError(f"train.methods: expected a non-empty list of distinct methods, got {train.methods!r}")
    for method in train.methods:
        check_method_name(method)
    for spec, kwargs in train.method_params.items():
        if spec not in train.methods:
            raise BenchmarkError(f"train.method_params.{spec}: not a method of train.methods "
                                 f"({', '.join(train.methods)})")
        if not isinstance(kwargs, dict):
            raise BenchmarkError(f"train.method_params.{spec}: expected a mapping of keyword arguments, got {kwargs!r}")
    if not train.splits:
        raise BenchmarkError("train.splits: expected at least one split, e.g. faces->adfes or cv:faces")
    for split in train.splits:
        split_attribute(split, chosen, settings.data.attribute)
    if train.device == "cuda":   # before any stage works: no silent fallback to the CPU
        from benchmark.methods.device import resolve_device

        resolve_device("cuda", where="train.device")


def _check_tune(settings: Settings) -> None:
    tune = settings.tune
    for f in dataclasses.fields(TuneSpaceSettings):
        bounds = getattr(tune.space, f.name)
        if f.name != "input" and (len(bounds) != 2 or bounds[0] > bounds[1]):
            raise BenchmarkError(f"tune.space.{f.name}: expected [low, high] with low <= high, got {bounds!r}")
    if not tune.space.input:
        raise BenchmarkError("tune.space.input: expected a non-empty list of logits and/or probs")
    split = parse_split(tune.split, where="tune.split")
    if split.is_cv:
        raise BenchmarkError(f"tune.split: {tune.split!r}; expected a split A->B (the study runs CV inside A)")
    check_declared(split.datasets, catalogue(settings), where=f"tune.split: {tune.split!r} names")


def check(settings: Settings) -> None:
    """Constraints between keys, each with a sentence saying which key needs what."""
    chosen = _check_data(settings)
    _check_train(settings, chosen)
    if settings.evaluate.reference not in settings.train.methods:
        raise BenchmarkError(f"evaluate.reference {settings.evaluate.reference!r} must be one of train.methods "
                             f"({', '.join(settings.train.methods)})")
    _check_contrasts(settings)
    _check_tune(settings)


def _check_contrasts(settings: Settings) -> None:
    """Each contrast is a pair of two different method names (built in or plug-in specs); a pair whose methods did not
    both run is reported as not computed, not an error, so the default pairs work with fewer methods."""
    from benchmark.methods.method_registry import check_method_name

    seen = set()
    for i, pair in enumerate(settings.evaluate.contrasts):
        where = f"evaluate.contrasts[{i}]"
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(m, str) for m in pair):
            raise BenchmarkError(f"{where}: expected a pair [method_a, method_b] (difference a - b), got {pair!r}")
        if pair[0] == pair[1]:
            raise BenchmarkError(f"{where}: a method compared with itself ({pair[0]!r}); name two different methods")
        if tuple(pair) in seen:
            raise BenchmarkError(f"{where}: {pair!r} is listed twice")
        seen.add(tuple(pair))
        for name in pair:
            check_method_name(name, where=where)
