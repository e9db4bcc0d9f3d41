"""params.yaml -> typed, validated settings.

Each stage reads one section. Every key is declared here once, as a dataclass field with its default and,
where it matters, its allowed range or choices. Loading checks everything before any stage work starts:
unknown keys (with the closest known key suggested), wrong types, out-of-range values, unknown choices.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmark import paths
from benchmark.errors import BenchmarkError
from benchmark.labels import DATASETS

def _spec(default: Any, *, choices: tuple | None = None, low: float | None = None,
          high: float | None = None, help: str = "") -> Any:
    """A dataclass field with validation metadata (choices, or an inclusive range [low, high])."""
    meta = {"choices": choices, "low": low, "high": high, "help": help}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class PublishedSettings:
    """Where the authors' published CSVs come from when ``data.source: published``."""

    download: bool = _spec(False, help="fetch the pinned files over HTTPS into data.input when they are missing")


@dataclass(frozen=True)
class DataSettings:
    """The ``data`` section: which source writes the outputs tables, and from where."""

    source: str = _spec("published", help="one of the loaders in benchmark.sources.LOADERS")
    input: str = _spec(str(paths.PUBLISHED_DIR),
                       help="the fetch stage's input: sim scenario file, published CSV folder, or raw image folder")
    datasets: list = _spec(list(DATASETS))
    seed: int = _spec(0, low=0)
    published: PublishedSettings = field(default_factory=PublishedSettings)


@dataclass(frozen=True)
class TrackingSettings:
    """The ``tracking`` section: where MLflow runs go."""

    uri: str = _spec("sqlite:///mlflow.db", help="overridden by the MLFLOW_TRACKING_URI environment variable")
    experiment: str = _spec("crossmodal-bias")
    enabled: bool = _spec(True)


@dataclass(frozen=True)
class TrainSettings:
    """The ``train`` section: which methods run on which splits."""

    methods: list = _spec(["uncorrected"])
    splits: list = _spec(["faces->adfes", "adfes->faces"])
    seed: int = _spec(0, low=0, help="first seed; stochastic methods run seeds seed, seed+1, ..., seed+n_seeds-1")
    n_seeds: int = _spec(10, low=1)


@dataclass(frozen=True)
class EvaluateSettings:
    """The ``evaluate`` section: the reference method comparisons are made against."""

    reference: str = _spec("uncorrected")


@dataclass(frozen=True)
class Settings:
    """All of params.yaml."""

    data: DataSettings = field(default_factory=DataSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)


def _closest(key: str, known: list[str]) -> str:
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else f"; known keys: {', '.join(sorted(known))}"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _check_value(where: str, f: dataclasses.Field, value: Any, tp: Any) -> Any:
    """Check one scalar or list value against its field's type and metadata; return it converted."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if tp is bool:
        if not isinstance(value, bool):
            raise BenchmarkError(f"{where}: expected true or false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BenchmarkError(f"{where}: expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BenchmarkError(f"{where}: expected a number, got {value!r}")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise BenchmarkError(f"{where}: expected a string, got {value!r}")
    elif tp is list or typing.get_origin(tp) is list:
        if not isinstance(value, list):
            raise BenchmarkError(f"{where}: expected a list, got {value!r}")
    elif tp is dict:
        if not isinstance(value, dict):
            raise BenchmarkError(f"{where}: expected a mapping, got {value!r}")
    meta = f.metadata
    choices, low, high = meta.get("choices"), meta.get("low"), meta.get("high")
    items = value if isinstance(value, list) else [value]
    for item in items:
        if choices is not None and item not in choices:
            raise BenchmarkError(f"{where}: {item!r} is not one of {', '.join(map(str, choices))}")
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            if (low is not None and item < low) or (high is not None and item > high):
                lo = "-inf" if low is None else low
                hi = "inf" if high is None else high
                raise BenchmarkError(f"{where}: {item!r} is out of range; expected a value in [{lo}, {hi}]")
    return value


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def build(cls: type, raw: Any, where: str = "") -> Any:
    """Build dataclass ``cls`` from the mapping ``raw`` (a params section), validating every key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise BenchmarkError(f"{where or 'params'}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise BenchmarkError(f"{_join(where, key)}: unknown key{_closest(str(key), list(fields))}")
    kwargs = {}
    for name, f in fields.items():
        if name not in raw:
            continue
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = build(tp, raw[name], _join(where, name))
        else:
            kwargs[name] = _check_value(_join(where, name), f, raw[name], tp)
    return cls(**kwargs)


def load_settings(path: Path | str = paths.PARAMS, overrides: dict[str, Any] | None = None) -> Settings:
    """Read and validate params.yaml; ``overrides`` maps dotted keys to values (applied before validation)."""
    path = Path(path)
    if not path.exists():
        raise BenchmarkError(f"{path}: params file not found; run from the project root or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
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
        _check_cross_field(settings)
    except BenchmarkError as err:
        raise BenchmarkError(f"{path}: {err}") from None
    return settings


def _check_cross_field(settings: Settings) -> None:
    """Constraints between keys, each with a sentence saying which key needs what."""
    from benchmark.methods.registry import METHODS
    from benchmark.protocol import SPLITS
    from benchmark.sources import LOADERS

    if settings.data.source not in LOADERS:
        raise BenchmarkError(f"data.source {settings.data.source!r} is unknown; expected one of {', '.join(LOADERS)}")
    for method in settings.train.methods:
        if method not in METHODS:
            raise BenchmarkError(f"train.methods has unknown method {method!r}{_closest(method, list(METHODS))}")
    if settings.evaluate.reference not in settings.train.methods:
        raise BenchmarkError(f"evaluate.reference {settings.evaluate.reference!r} must be one of train.methods ({', '.join(settings.train.methods)})")
    for split in settings.train.splits:
        if split not in SPLITS:
            raise BenchmarkError(f"train.splits has unknown split {split!r}; expected some of {', '.join(SPLITS)}")
    unknown = [d for d in settings.data.datasets if d not in DATASETS]
    if unknown:
        raise BenchmarkError(f"data.datasets has unknown dataset {unknown[0]!r}; expected some of {', '.join(DATASETS)}")


def as_dict(obj: Any) -> dict[str, Any]:
    """Settings (or a section) as a plain nested dict, e.g. for logging as params."""
    return dataclasses.asdict(obj)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'a': {'b': 1}} -> {'a.b': 1}``."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
