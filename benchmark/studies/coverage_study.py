"""Do the intervals keep their promise? Coverage and test size measured against the simulator's known truth.

A study draws ``replicates`` independent samples of one dataset from a scenario (:mod:`benchmark.sources.sim`) at a
given scale (1: the real design), predicts them with two fixed prediction rules, runs the project's statistics on each
replicate exactly as the evaluate stage does (:func:`benchmark.stats.group_statistics`, same budgets and interval
method), and counts how often each interval holds the truth and how often each test rejects. The **truth** of a
metric is its value for the same rules on one very large sample of the scenario (``truth_scale`` times the design).

Two comparisons:

- ``methods``: ``method`` and ``reference`` (any registered methods) are fitted once, on a sample of
  ``train_dataset`` (as the cross-dataset splits do), and applied unchanged to every replicate; the truth of their
  difference is the difference of their truths (under the ``null`` scenario with two linear methods, about 0);
- ``aa``: the reference rule run twice on outputs jittered with independent normal noise (``aa_noise`` logits),
  so the two prediction sets are exchangeable within every person and every difference is exactly 0 in truth: the
  A/A setting in which a test's rejection rate is its size.

Per metric family (task x metric: cells, per-emotion gaps, signed gaps, pair gaps, macro, largest and average gap)
the summary gives the coverage of the estimates' and the differences' intervals, the worst row of the family (e.g.
the least covered cell), the mean interval width and the rejection rate of the permutation test at ``alpha``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.core import design as designs
from benchmark.core import predictions
from benchmark.core.design import Attribute, CellLayout, DatasetDesign
from benchmark.core.outputs import OutputsTable
from benchmark.core.scores import softmax
from benchmark.core.settings import Settings
from benchmark.infra import atomic
from benchmark.infra.errors import BenchmarkError
from benchmark.methods.method import FitTask, check_results
from benchmark.methods.method_registry import build_method
from benchmark.sources import sim
from benchmark.stats import StatsConfig, group_statistics, metric_entries
from benchmark.stats.coverage_table import MEASURED_COLUMNS

log = logging.getLogger(__name__)

__all__ = ["COMPARISONS", "CoverageStudy", "StudyResult", "fitted_predictions", "measure_coverage", "other_dataset", "summarise",
           "measured_rows", "to_markdown", "write"]

COMPARISONS: tuple[str, ...] = ("methods", "aa")
KEY = ["method", "task", "metric", "group", "emotion"]
#: offsets of the training and truth samples' seeds, far from the replicates' seeds (seed + r)
TRAIN_SEED_OFFSET, TRUTH_SEED_OFFSET = 1_000_003, 2_000_003
AA_NAMES = ("run_a", "run_b")


@dataclass(frozen=True)
class CoverageStudy:
    """What a coverage study draws and compares (see the module docstring)."""

    scenario: str = "paper"
    dataset: str = "adfes"
    attribute: str = "gender"
    comparison: str = "methods"
    method: str = "crossmodal_linear"
    reference: str = "uncorrected"
    train_dataset: str | None = None
    train_scale: int = 1
    replicates: int = 500
    scale: int = 1
    truth_scale: int = 200
    aa_noise: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            raise BenchmarkError(f"--comparison: {self.comparison!r} is not one of {', '.join(COMPARISONS)}")
        for name in ("replicates", "scale", "truth_scale", "train_scale"):
            if getattr(self, name) < 1:
                raise BenchmarkError(f"--{name.replace('_', '-')}: expected an integer >= 1, got {getattr(self, name)}")
        if self.comparison == "methods" and self.method == self.reference:
            raise BenchmarkError(f"--method and --reference must differ, got {self.method!r} twice")
        if self.aa_noise <= 0:
            raise BenchmarkError(f"--aa-noise: expected a positive sd in logits, got {self.aa_noise}")

    @property
    def names(self) -> tuple[str, str]:
        """(compared, reference) as they appear in the statistics."""
        return AA_NAMES if self.comparison == "aa" else (self.method, self.reference)


@dataclass(frozen=True)
class StudyResult:
    """records: one row per (replicate, method, task, metric, group, emotion) with ``covered``, ``diff_covered``,
    ``rejected`` (NaN where not applicable) and widths; truth: the truth per row; summary: :func:`summarise`;
    seconds: wall time of the replicates' statistics; n_subjects, n_images: the size of one replicate (its design)."""

    study: CoverageStudy
    records: pd.DataFrame
    truth: pd.DataFrame
    summary: pd.DataFrame
    seconds: float
    n_subjects: int
    n_images: int


# ------------------------------------------------------------------------------------------------- predictions

def _jittered(table: OutputsTable, attribute: Attribute, sd: float, rng: np.random.Generator) -> OutputsTable:
    """A copy of ``table`` whose emotion logits and attribute-model log-probabilities carry independent N(0, sd^2)
    noise (the attribute outputs re-normalised per part)."""
    frame = table.frame.copy()
    columns = table.emotion_columns
    frame[columns] = frame[columns].to_numpy(dtype=np.float64) + sd * rng.standard_normal((len(frame), len(columns)))
    for part in attribute.parts:
        outputs = frame[list(part.outputs)].to_numpy(dtype=np.float64)
        noisy = np.log(np.clip(outputs, 1e-300, None)) + sd * rng.standard_normal(outputs.shape)
        frame[list(part.outputs)] = softmax(noisy)
    return OutputsTable(frame, table.design, table.emotion_classes, dict(table.metadata))


def _labels(table: OutputsTable, attribute: Attribute, group_probs: np.ndarray, emotion_probs: np.ndarray,
            method: str) -> pd.DataFrame:
    """The prediction rows statistics read (one seed), from a method's probabilities."""
    rows = predictions.make_rows(table, attribute=attribute, split="coverage", fold=0, method=method, seed=0,
                                 partition="test", group_probs=group_probs, emotion_probs=emotion_probs)
    keep = ["seed", "image_id", "subject", attribute.name, "emotion", f"pred_{attribute.name}", "pred_emotion"]
    return rows[keep]


def fitted_predictions(name: str, settings: Settings, train: OutputsTable, tables: dict[str, OutputsTable],
                       attribute: Attribute) -> dict[str, pd.DataFrame]:
    """Fit method ``name`` once on ``train`` and predict every table (partition name -> rows)."""
    method = build_method(name, settings)
    task = FitTask(train, tables, 0, attribute)
    result = check_results(name, [task], method.run([task]))[0]
    return {part: _labels(tables[part], attribute, probs.attribute, probs.emotion, name) for part, probs in result.items()}


def _samples(study: CoverageStudy, scenario: sim.Scenario, design: DatasetDesign) -> dict[str, OutputsTable]:
    tables = {f"r{r}": sim.sample_table(scenario, design, seed=study.seed + r, scale=study.scale)
              for r in range(study.replicates)}
    tables["truth"] = sim.sample_table(scenario, design, seed=study.seed + TRUTH_SEED_OFFSET, scale=study.truth_scale)
    return tables


def prediction_sets(study: CoverageStudy, settings: Settings,
                    declared: dict[str, DatasetDesign]) -> tuple[dict[str, dict[str, pd.DataFrame]], CellLayout, str]:
    """partition ('r0' ... and 'truth') -> {compared name: rows, reference name: rows}, the cells and the attribute."""
    if study.dataset not in declared:
        raise BenchmarkError(f"--dataset: {study.dataset!r} is not declared; declared: {', '.join(declared)}")
    design = declared[study.dataset]
    attribute = designs.attribute_of(design, study.attribute)
    scenario = sim.read(study.scenario)
    tables = _samples(study, scenario, design)
    a, b = study.names
    train_name = study.train_dataset or other_dataset(study.dataset, declared)
    if train_name not in declared:
        raise BenchmarkError(f"--train-dataset: {train_name!r} is not declared; declared: {', '.join(declared)}")
    train = sim.sample_table(scenario, declared[train_name], seed=study.seed + TRAIN_SEED_OFFSET,
                             scale=study.train_scale)
    if study.comparison == "aa":
        rng = np.random.default_rng([study.seed, TRUTH_SEED_OFFSET])
        rows = {name: fitted_predictions(study.reference, settings, train,
                               {part: _jittered(t, attribute, study.aa_noise, rng) for part, t in tables.items()},
                               attribute) for name in (a, b)}
    else:
        rows = {name: fitted_predictions(name, settings, train, tables, attribute) for name in (a, b)}
    by_partition = {part: {name: rows[name][part].assign(method=name) for name in (a, b)} for part in tables}
    return by_partition, designs.layout(design, attribute), attribute.name


def other_dataset(dataset: str, declared: dict[str, DatasetDesign]) -> str:
    """The cross-dataset partner of the shipped pair (faces <-> adfes); the dataset itself otherwise."""
    shipped = sorted(designs.shipped())
    return next((d for d in shipped if d != dataset), dataset) if dataset in shipped else dataset


# ----------------------------------------------------------------------------------------------------- scoring

Statistics = Callable[..., pd.DataFrame]


def truth_table(rows: dict[str, pd.DataFrame], layout: CellLayout, attribute: str, names: tuple[str, str], *,
                exchangeable: bool) -> pd.DataFrame:
    """The truth per row: ``truth`` (each rule's metric on the large sample) and ``truth_diff`` (compared -
    reference; exactly 0 when the two rules are exchangeable), keyed like the statistics table."""
    from benchmark.core.metrics import channels
    from benchmark.stats.cells import channel_sums, channel_totals, predicted, subject_design
    from benchmark.stats.resampling import seed_mean_metrics

    tasks = predictions.tasks(attribute)
    design = subject_design(pd.concat(list(rows.values()), ignore_index=True), layout, tasks, "truth")
    values = {}
    totals = channel_totals(design, channels())
    for name, r in rows.items():
        sums = channel_sums(predicted(r, design, "truth"), design, list(totals))
        values[name] = seed_mean_metrics(np.ones((1, len(design.subjects))), sums, totals, layout)[0]
    frames = []
    entries = metric_entries(layout)
    for name in names:
        diff = np.zeros_like(values[name]) if exchangeable else values[names[0]] - values[names[1]]
        frame = pd.DataFrame([(name, task, *e) for task in tasks for e in entries], columns=KEY)
        frame["truth"] = values[name].reshape(-1)
        frame["truth_diff"] = diff.reshape(-1) if name == names[0] else np.nan
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def score(table: pd.DataFrame, truth: pd.DataFrame, *, alpha: float) -> pd.DataFrame:
    """Per statistics row: whether its interval holds the truth (``covered``), whether its difference's interval holds
    the true difference (``diff_covered``), whether the test rejects at ``alpha`` (``rejected``), and the widths.
    NaN where a row has no such interval or test."""
    merged = table.fillna({"group": "", "emotion": ""}).merge(truth.fillna({"group": "", "emotion": ""}), on=KEY,
                                                             how="left", validate="one_to_one")
    out = merged[KEY + ["truth", "estimate", "ci_low", "ci_high", "truth_diff", "diff", "diff_ci_low",
                        "diff_ci_high"]].copy()

    def within(low: pd.Series, high: pd.Series, value: pd.Series) -> pd.Series:
        ok = low.notna() & high.notna() & value.notna()
        return ((low <= value + 1e-9) & (value <= high + 1e-9)).where(ok).astype(float)

    out["covered"] = within(merged["ci_low"], merged["ci_high"], merged["truth"])
    out["width"] = merged["ci_high"] - merged["ci_low"]
    out["diff_covered"] = within(merged["diff_ci_low"], merged["diff_ci_high"], merged["truth_diff"])
    out["diff_width"] = merged["diff_ci_high"] - merged["diff_ci_low"]
    out["rejected"] = (merged["p_perm"] < alpha).where(merged["p_perm"].notna()).astype(float)
    return out


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    """Per family (task x metric): coverage of estimates and of differences (share of intervals holding the truth),
    the worst row's coverage (over the family's methods, groups and emotions), mean widths, the rejection rate, and
    the range of the true differences."""
    rows = []
    for (task, metric), fam in records.groupby(["task", "metric"], sort=False):
        row_key = ["method", "group", "emotion"]
        per_row = fam.groupby(row_key, dropna=False)[["covered", "diff_covered"]].mean()
        rows.append({
            "task": task, "metric": metric,
            "intervals": int(fam["covered"].notna().sum()),
            "coverage": fam["covered"].mean(), "worst_row": per_row["covered"].min(),
            "width": fam["width"].mean(),
            "diff_intervals": int(fam["diff_covered"].notna().sum()),
            "diff_coverage": fam["diff_covered"].mean(), "diff_worst_row": per_row["diff_covered"].min(),
            "diff_width": fam["diff_width"].mean(),
            "rejection": fam["rejected"].mean(),
            "truth_diff_min": fam["truth_diff"].min(), "truth_diff_max": fam["truth_diff"].max(),
        })
    return pd.DataFrame(rows)


def measure_coverage(study: CoverageStudy, settings: Settings, *, declared: dict[str, DatasetDesign] | None = None,
        statistics: Statistics = group_statistics, config: StatsConfig | None = None,
        alpha: float | None = None) -> StudyResult:
    """Run a coverage study.

    settings : the methods' settings (train section) and, unless ``config``/``alpha`` are given, the statistics'
        budgets, interval method and alpha (evaluate section).
    declared : dataset declarations (default: the shipped ones).
    statistics : the function under test, called like :func:`benchmark.stats.group_statistics` once per replicate.
    """
    declared = declared if declared is not None else designs.shipped()
    config = config or StatsConfig.from_settings(settings.evaluate)
    alpha = settings.evaluate.alpha if alpha is None else alpha
    sets, layout, attribute = prediction_sets(study, settings, declared)
    names = study.names
    truth = truth_table(sets.pop("truth"), layout, attribute, names, exchangeable=study.comparison == "aa")
    records, start, size = [], time.perf_counter(), (0, 0)
    for r in range(study.replicates):
        table = statistics(sets.pop(f"r{r}"), reference=names[1], config=replace(config, seed=config.seed + r),
                           key=f"coverage|{r}", layout=layout, tasks=predictions.tasks(attribute))
        size = int(table["n_subjects"].iloc[0]), int(table["n_images"].iloc[0])
        records.append(score(table, truth, alpha=alpha).assign(replicate=r))
        if (r + 1) % max(1, study.replicates // 10) == 0:
            log.info("coverage: %d of %d replicates (%.0f s)", r + 1, study.replicates, time.perf_counter() - start)
    seconds = time.perf_counter() - start
    frame = pd.concat(records, ignore_index=True)
    return StudyResult(study, frame, truth, summarise(frame), seconds, *size)


def _pct(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def to_markdown(result: StudyResult, *, command: str = "") -> str:
    """The summary as a Markdown table with a one-line caption (coverage and rejection in percent, widths in pp)."""
    s = result.study
    lines = [f"Scenario `{s.scenario}`, {s.dataset.upper()} x{s.scale} ({s.attribute}), {s.replicates} replicates, "
             f"comparison `{s.comparison}` ({' - '.join(s.names)}); truth from x{s.truth_scale}."
             + (f" Command: `{command}`." if command else ""), "",
             "| task | metric | estimate coverage % (worst row) | mean width | difference coverage % (worst row) | "
             "mean width | rejection % | true differences |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result.summary.to_dict("records"):
        truth = ("" if math.isnan(r["truth_diff_min"]) else
                 f"{r['truth_diff_min']:+.1f} to {r['truth_diff_max']:+.1f}")
        lines.append(f"| {r['task']} | {r['metric']} | {_pct(r['coverage'])} ({_pct(r['worst_row'])}) | "
                     f"{r['width']:.1f} | {_pct(r['diff_coverage'])} ({_pct(r['diff_worst_row'])}) | "
                     f"{r['diff_width']:.1f} | {_pct(r['rejection'])} | {truth} |")
    return "\n".join(lines) + "\n"


def write(result: StudyResult, path: Path) -> list[Path]:
    """Write the summary as CSV at ``path`` and the per-replicate records as parquet beside it (atomically)."""
    records = path.with_suffix(".parquet")
    atomic.write_text(path, result.summary.to_csv(index=False))
    atomic.write_with(records, lambda tmp: result.records.to_parquet(tmp, index=False))
    return [path, records]


def measured_rows(result: StudyResult, *, config: StatsConfig) -> pd.DataFrame:
    """A study's summary in the shipped table's layout: one row per (task, metric, kind), kind ``estimate`` or
    ``difference``, with the design and the statistics settings it was measured at."""
    study = result.study
    base = {"scenario": study.scenario, "comparison": study.comparison, "dataset": study.dataset,
            "attribute": study.attribute, "n_subjects": result.n_subjects, "n_images": result.n_images,
            "ci_method": config.ci_method, "ci": config.ci, "n_resamples": config.n_resamples,
            "replicates": study.replicates}
    rows = []
    for r in result.summary.to_dict("records"):
        for kind, prefix in (("estimate", ""), ("difference", "diff_")):
            rows.append({**base, "task": r["task"], "metric": r["metric"], "kind": kind,
                         "coverage": r[f"{prefix}coverage"], "worst_row": r[f"{prefix}worst_row"],
                         "width": r[f"{prefix}width"], "rejection": r["rejection"] if kind == "difference" else None})
    return pd.DataFrame(rows, columns=MEASURED_COLUMNS)
