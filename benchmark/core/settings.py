"""The settings types: params.yaml's sections as frozen dataclasses, and building them from a mapping.

Each stage reads one section. Every key is declared here once, as a dataclass field with its default and,
where it matters, its allowed range or choices; :func:`build` checks keys, types, ranges and choices. This module
is at the bottom of the package: it imports no registry. Names that registries and dataset declarations define
(sources, methods, frozen models, datasets, splits) are checked where both are visible, in :mod:`benchmark.experiment.params`.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from benchmark.infra import paths
from benchmark.infra.errors import BenchmarkError


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
class SimSettings:
    """How ``data.source: sim`` samples from the scenario file ``data.input`` (with ``data.seed``)."""

    scale: int = _spec(1, low=1, high=1000, help="multiplies the number of subjects of the scenario's design")


@dataclass(frozen=True)
class ImagesSettings:
    """How ``data.source: images`` turns the raw images under ``data.input`` (``faces/``, ``adfes/``) into outputs.

    Models are names from ``benchmark.frozen.model_registry`` or ``module:factory`` for a user's own frozen model.
    """

    gender_model: str = _spec("fairface", help="fairface | agegender (bundled) | module:factory")
    emotion_model: str = _spec("emonet", help="emonet | fer (bundled) | module:factory")
    fairface_weights: str = _spec(str(paths.MODELS_DIR / "fairface_alldata_20191111.pt"))
    emonet_weights: str = _spec(str(paths.MODELS_DIR / "emonet_8.pth"))
    device: str = _spec("auto", choices=("auto", "cpu", "cuda"), help="auto: cuda when available, else cpu")
    precision: str = _spec("fp32", choices=("fp32", "tf32", "bf16"),
                           help="fp32: IEEE float32; tf32 / bf16 (CUDA only): faster, agreement with fp32 is measured")
    batch_size: int = _spec(64, low=1, high=4096)
    num_workers: int = _spec(2, low=0, high=64, help="processes that decode and resize chips for the models; 0: in-process")
    detect_workers: int = _spec(0, low=0, high=256, help="processes that detect faces and cut chips; 0: one per core, 1: in-process")
    detector: str = _spec("cnn", choices=("cnn", "cnn_torch", "hog"),
                          help="face detector: cnn (dlib's MMOD, FairFace's; CPU), cnn_torch (our torch port of the same "
                               "network and weights; CPU or CUDA per data.images.device) or hog (dlib)")
    upsample: int = _spec(1, low=0, high=3, help="times the detector upsamples the image (FairFace: 1)")
    max_side: int = _spec(800, low=0, high=10000, help="resize so the longer side is this before detection (0: as is)")
    chip_size: int = _spec(224, low=32, high=1024, help="aligned face chip side in pixels")
    padding: float = _spec(0.25, low=0.0, high=2.0, help="dlib face-chip padding around the aligned face")
    strict: bool = _spec(False, help="every file-level warning (names, reads, counts, faces) becomes an error")


@dataclass(frozen=True)
class DataSettings:
    """The ``data`` section: which source writes the outputs tables, and from where."""

    source: str = _spec("sim", help="one of the loaders in benchmark.sources.LOADERS")
    input: str = _spec(str(paths.DEFAULT_SCENARIO),
                       help="the fetch stage's input: sim scenario file, published CSV folder, or raw image folder")
    datasets: list = _spec(["faces", "adfes"], help="declared datasets to fetch (benchmark/declarations, or yours)")
    attribute: str = _spec("gender", help="the protected attribute: a declared attribute or an intersection a*b; "
                                          "cells are its groups x the emotions")
    declarations: list = _spec([], help="YAML files declaring more datasets (docs/DATASETS.md)")
    declare: dict = _spec({}, help="datasets declared inline: name -> declaration (docs/DATASETS.md)")
    seed: int = _spec(0, low=0)
    published: PublishedSettings = field(default_factory=PublishedSettings)
    sim: SimSettings = field(default_factory=SimSettings)
    images: ImagesSettings = field(default_factory=ImagesSettings)


@dataclass(frozen=True)
class TrackingSettings:
    """The ``tracking`` section: where MLflow runs go."""

    uri: str = _spec("sqlite:///mlflow.db", help="overridden by the MLFLOW_TRACKING_URI environment variable")
    experiment: str = _spec("crossmodal-bias")
    enabled: bool = _spec(True)


#: where the corrector trains (``train.device``); resolved by :mod:`benchmark.methods.device`
TRAIN_DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: the interval methods of the statistics (``evaluate.ci_method``; :mod:`benchmark.stats`): ``bound``: score intervals
#: for cells and error-bound intervals for the rest; ``bca`` and ``percentile``: plain subject-bootstrap intervals;
#: ``calibrated``: exact-type intervals of proportions combined by MOVER, pre-tested error bounds for the gaps
CI_METHODS: tuple[str, ...] = ("percentile", "bca", "bound", "calibrated")


@dataclass(frozen=True)
class CorrectorSettings:
    """The ``train.corrector`` section: the correction network and its training (paper defaults)."""

    input: str = _spec("logits", choices=("logits", "probs"),
                       help="emotion inputs: raw logits (the authors' code) or their softmax (the paper's text)")
    depth: int = _spec(2, low=1, high=16, help="hidden layers")
    width: int = _spec(24, low=1, high=4096, help="units per hidden layer")
    dropout: float = _spec(0.2, low=0.0, high=0.95, help="dropout probability after each hidden ReLU")
    attribute_weight: float = _spec(0.5, low=0.0, high=1.0,
                                    help="w in w * CE_attribute + (1 - w) * CE_emotion (the paper: gender, w = 0.5)")
    lr: float = _spec(1e-3, low=1e-7, high=1.0, help="Adam learning rate")
    batch_size: int = _spec(32, low=1, high=65536)
    epochs: int = _spec(500, low=1, high=100000, help="training epochs; the last epoch's weights are used")


@dataclass(frozen=True)
class LinearSettings:
    """The ``train.linear`` section: the logistic-regression baselines (``unimodal``, ``crossmodal_linear``)."""

    input: str = _spec("logits", choices=("logits", "probs"), help="emotion inputs: raw logits or their softmax")
    C: float = _spec(1.0, low=1e-6, high=1e6, help="inverse L2 strength (scikit-learn's C) on standardised inputs")
    max_iter: int = _spec(1000, low=10, high=100000, help="L-BFGS iterations")


@dataclass(frozen=True)
class FairnessSettings:
    """The ``train.fairness`` section: the fairness post-processing baselines (docs/FAIRNESS_BASELINES.md)."""

    strength: float = _spec(1.0, low=0.0, high=1e6,
                            help="group_recalibration: weight of the squared per-emotion gap penalty beside the "
                                 "cross-entropy (0: plain group-aware recalibration); name@s in train.methods "
                                 "overrides it per method")
    ridge: float = _spec(1e-3, low=0.0, high=1e3,
                         help="group_recalibration: L2 penalty on the offsets (keeps classes absent from training finite)")
    threshold_objective: str = _spec("balanced_accuracy_score", choices=("accuracy_score", "balanced_accuracy_score"),
                                     help="threshold_optimizer: what Fairlearn's ThresholdOptimizer maximises under "
                                          "equalized odds")


@dataclass(frozen=True)
class CVSettings:
    """The ``train.cv`` section: subject-grouped folds of the ``cv:<dataset>`` splits (balanced by attribute group)."""

    folds: dict = _spec({"faces": 5, "adfes": 0},
                        help="dataset -> folds; 0 = leave one subject out; datasets not listed get default_folds")
    default_folds: int = _spec(5, low=0, help="folds of a cv:<dataset> split whose dataset is not in folds")
    seed: int = _spec(0, low=0, help="seeds the assignment of subjects to folds")

    def folds_of(self, dataset: str) -> int:
        """Folds of ``cv:<dataset>`` (0 = leave one subject out)."""
        return int(self.folds.get(dataset, self.default_folds))


@dataclass(frozen=True)
class TrainSettings:
    """The ``train`` section: which methods run on which splits."""

    methods: list = _spec(["uncorrected"], help="built-in method names or module:factory plug-ins")
    method_params: dict = _spec({}, help="plug-in spec -> keyword arguments its factory receives")
    splits: list = _spec(["faces->adfes", "adfes->faces"])
    seed: int = _spec(0, low=0, help="first seed; stochastic methods run seeds seed, seed+1, ..., seed+n_seeds-1")
    n_seeds: int = _spec(10, low=1)
    device: str = _spec("cpu", choices=TRAIN_DEVICES,
                        help="where the correction networks train (and tune's trials); auto: cuda when available. cuda "
                             "agrees with cpu to float32 rounding, not bit for bit (docs/ARCHITECTURE.md)")
    cv: CVSettings = field(default_factory=CVSettings)
    corrector: CorrectorSettings = field(default_factory=CorrectorSettings)
    linear: LinearSettings = field(default_factory=LinearSettings)
    fairness: FairnessSettings = field(default_factory=FairnessSettings)
    tuned_params: str = _spec(str(paths.TUNE_DIR / "best_params.yaml"),
                              help="the configuration `benchmark tune` chose; read by corrector_tuned (a corrector "
                                   "study) or group_recalibration_tuned (a group_recalibration study)")


@dataclass(frozen=True)
class EvaluateSettings:
    """The ``evaluate`` section: the reference method comparisons are made against, and the statistics' budgets."""

    reference: str = _spec("uncorrected")
    contrasts: list = _spec([["corrector", "unimodal"], ["crossmodal_linear", "unimodal"],
                             ["corrector", "crossmodal_linear"]],
                            help="pairs [a, b] of methods compared directly (a - b) wherever both ran")
    n_resamples: int = _spec(10_000, low=1, help="subject-cluster bootstrap resamples (stratified by the attribute)")
    ci: float = _spec(0.95, low=0.5, high=0.999, help="confidence level of every interval")
    ci_method: str = _spec("bound", choices=CI_METHODS,
                           help="bound: score intervals for cells, error-bound intervals for the rest (docs/STATISTICS.md); "
                                "bca / percentile: plain bootstrap intervals; calibrated: exact-type proportion "
                                "intervals combined by MOVER, pre-tested bounds for gaps (issue 23)")
    n_permutations: int = _spec(10_000, low=1, help="subject-level sign flips per permutation test")
    primary: list = _spec(["corrector", "corrector vs unimodal"],
                          help="the primary family's comparisons in each held-out design: a method (its difference to "
                               "the reference) or a contrast 'a vs b' of evaluate.contrasts; Holm over exactly these "
                               "x tasks x primary_metrics, every other comparison exploratory (docs/STATISTICS.md)")
    primary_metrics: list = _spec(["macro", "average_gap"], help="scalar metrics of the primary family")
    alpha: float = _spec(0.05, low=0.0001, high=0.5,
                         help="family-wise error rate of the primary family (Holm); the level of every verdict")
    seed: int = _spec(0, low=0, help="seeds every bootstrap and permutation draw")
    memory_budget_mb: int = _spec(64, low=16, help="the most memory (MiB) one chunk of resamples or permutations "
                                  "may take with its products; more chunks for larger designs, the same numbers")


@dataclass(frozen=True)
class PowerSettings:
    """The ``power`` section: the minimum detectable effects the report prints beside its findings (``benchmark
    power``, docs/STATISTICS.md): planted effects of known size on the held-out designs simulated from a scenario."""

    scenario: str = _spec(str(paths.DEFAULT_SCENARIO),
                          help="scenario the held-out designs are simulated from (the one fitted to the published "
                               "outputs by default)")
    replicates: int = _spec(200, low=10, high=100_000, help="simulated samples per design")
    target: float = _spec(0.8, low=0.5, high=0.99, help="power at which an effect counts as detectable")
    truth_scale: int = _spec(100, low=1, high=1000, help="size of the sample the reference's truth is taken from")
    seed: int = _spec(0, low=0)
    churn: float = _spec(0.5, low=0.0, high=10.0,
                         help="right predictions a planted method breaks per unit of its net gain (clustered by person)")
    rule_resamples: int = _spec(2000, low=100, high=100_000,
                                help="bootstrap resamples of the verdict rule's interval in each planted replicate")


@dataclass(frozen=True)
class TuneSpaceSettings:
    """The ``tune.space`` section: inclusive [low, high] ranges of the tunable parameters (the corrector's, and
    group_recalibration's ``strength``)."""

    depth: list = _spec([1, 4], low=1, high=8)
    width: list = _spec([8, 128], low=2, high=1024)
    dropout: list = _spec([0.0, 0.5], low=0.0, high=0.95)
    attribute_weight: list = _spec([0.1, 0.9], low=0.0, high=1.0)
    lr: list = _spec([1.0e-4, 1.0e-2], low=1e-6, high=1.0)
    epochs: list = _spec([100, 1000], low=1, high=10000)
    batch_size: list = _spec([16, 128], low=1, high=4096)
    input: list = _spec(["logits", "probs"], choices=("logits", "probs"))
    strength: list = _spec([0.0, 64.0], low=0.0, high=1e6, help="group_recalibration's fairness strength (tune.method)")


@dataclass(frozen=True)
class TuneSettings:
    """The ``tune`` section: an Optuna study over the variants of ``tune.method``, scored by CV inside the training
    dataset."""

    study: str = _spec("corrector")
    method: str = _spec("corrector", choices=("corrector", "group_recalibration"),
                        help="what the study tunes: the corrector's variants, or group_recalibration's fairness strength")
    storage: str = _spec("sqlite:///optuna.db", help="any SQLAlchemy URL; PostgreSQL for several workers")
    n_trials: int = _spec(30, low=1, help="trials one `benchmark tune` invocation runs")
    pipeline_trials: int = _spec(5, low=1, help="trials of the DVC stage `tune` (a fresh study each `dvc repro`)")
    jobs: int = _spec(0, low=0, help="trial processes on this machine, each on one core; 0 = one per core")
    split: str = _spec("faces->adfes", help="the study tunes on CV folds of this split's training dataset")
    cv_folds: int = _spec(3, low=2, help="subject-grouped folds inside the training dataset")
    n_seeds: int = _spec(1, low=1, help="seeds per configuration, trained together")
    objective: str = _spec("macro", choices=("macro", "macro_minus_gap", "pareto"))
    gap_weight: float = _spec(0.5, low=0.0)
    pareto_pick: str = _spec("balanced", choices=("max_macro", "min_gap", "balanced"))
    pick: str = _spec("cheapest_within_se", choices=("best", "cheapest_within_se"),
                      help="single objective: the best trial, or the cheapest to train whose CV score is within one "
                           "standard error (over folds) of the best")
    start_from_defaults: bool = _spec(True, help="a fresh corrector study's first trial is train.corrector's "
                                                 "configuration, so the study shows what tuning adds to it")
    pruning: bool = _spec(True)
    prune_epochs: list[int] = _spec([100, 200, 400, 800], low=1,
                                    help="epochs at which a trial reports its CV score and the pruner may stop it")
    seed: int = _spec(0, low=0)
    heartbeat_s: int = _spec(10, low=1)
    max_retry: int = _spec(1, low=0)
    space: TuneSpaceSettings = field(default_factory=TuneSpaceSettings)


@dataclass(frozen=True)
class Settings:
    """All of params.yaml."""

    data: DataSettings = field(default_factory=DataSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    power: PowerSettings = field(default_factory=PowerSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    tune: TuneSettings = field(default_factory=TuneSettings)


def _closest(key: str, known: list[str]) -> str:
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    return f"; did you mean '{match[0]}'?" if match else f"; known keys: {', '.join(sorted(known))}"


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
        item_type = next(iter(typing.get_args(tp)), None)
        for item in value if item_type is int else []:
            if isinstance(item, bool) or not isinstance(item, int):
                raise BenchmarkError(f"{where}: expected a list of integers, got {item!r} in {value!r}")
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
    _check_text(where, value, f)
    return value


def _check_text(where: str, value: Any, f: dataclasses.Field) -> None:
    """Names and paths as given, never silently reinterpreted: a string is not blank and not padded with spaces, and
    a list of names (a field whose default is a list of strings) is non-empty and names each item once."""
    texts = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    for text in texts:
        if not text.strip():
            raise BenchmarkError(f"{where}: empty value {text!r}; expected a non-empty name")
        if text != text.strip():
            raise BenchmarkError(f"{where}: {text!r} has leading or trailing spaces; expected {text.strip()!r}")
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if isinstance(default, list) and default and all(isinstance(d, str) for d in default):
        if not value:
            raise BenchmarkError(f"{where}: empty list; expected at least one item")
        repeated = [t for i, t in enumerate(texts) if t in texts[:i]]
        if repeated:
            raise BenchmarkError(f"{where}: {repeated[0]!r} is listed twice in {value!r}; list each item once")


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
