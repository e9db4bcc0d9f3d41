"""``benchmark scaling``: how each cost of the benchmark grows with the data, measured point by point.

Curves (:data:`CURVES`); "scale" multiplies the subjects of the simulated FACES design (scenario ``paper``: 171 people
x 12 images = 2,052 rows per scale):

- ``trainer_rows``: the vectorised trainer (:func:`benchmark.methods.trainer.train_many`, one stack on one core, the
  paper's ``CorrectorSettings`` but ``epochs = max(1, round(row_epochs / rows))``) training ``rows_models`` networks
  on a FACES table of each of ``rows_scales``;
- ``trainer_models``: K networks of ``models`` at once on the FACES-sized table (scale 1), the same epoch rule;
- ``evaluate_subjects`` / ``evaluate_resamples``: one comparison (:func:`benchmark.stats.compare`: a 10-seed method
  against a 1-seed reference, both tasks, every metric: bootstrap CIs, permutation test, McNemar) on a FACES table of
  each of ``subjects_scales`` with ``subjects_resamples``, and at scale 1 with each of ``resamples``; a point's
  resamples are its bootstrap resamples and its permutations;
- ``evaluate_images``: the same comparison on a FACES table of about each of ``images`` images **without person
  ids** (every image its own subject: scale ``round(images / 2052)``), with ``subjects_resamples``. The reference is the uncorrected models' predictions,
  the method the same with a tenth of each seed's predictions redrawn at random (times do not depend on the values);
- ``report``: the report stage (:func:`benchmark.stages.report.run`) over the first ``splits`` of
  :data:`REPORT_SPLITS` x the first ``methods`` of :data:`REPORT_METHODS`: a small pipeline on the sim source is
  trained once (2 seeds, 5 corrector epochs); each point keeps its splits' and methods' predictions and evaluates them
  (200 resamples; untimed), then times the report.

Every point runs in a freshly spawned process pinned to one core (:mod:`benchmark.tools.scaling_work`) that times its work
``repeats`` times on one thread and reports the least wall-clock and the least CPU seconds over the runs (the least
disturbed by other load; the two minima may come from different runs), and
its peak resident memory; the 1-minute load average before and after each point is recorded beside it. Each curve gets
a power law ``CPU seconds ~ x^b`` fitted by least squares on log-log (:func:`fit_power_laws`);
:mod:`benchmark.tools.scaling_figure` draws them.
"""

from __future__ import annotations

import math
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.infra import atomic
from benchmark.infra.errors import BenchmarkError
from benchmark.tools.scaling_work import (
    FACES_IMAGES,
    REPORT_METHODS,
    REPORT_SPLITS,
    comparison_point,
    in_fresh_process,
    prepare_report_inputs,
    report_point,
    trainer_point,
)

CURVES: tuple[str, ...] = ("trainer_rows", "trainer_models", "evaluate_subjects", "evaluate_resamples", "evaluate_images",
                           "report")
#: CSV columns, in order; a column that does not apply to a curve is empty
COLUMNS: tuple[str, ...] = (
    "curve", "scale", "rows", "subjects", "models", "epochs", "seeds", "resamples", "splits", "methods", "figures",
    "seconds", "cpu_seconds", "cpu_us_per_model_epoch_row", "start_rss_mb", "peak_rss_mb", "work_rss_mb",
    "peak_since", "load_before", "load_after")


@dataclass(frozen=True)
class ScalingGrid:
    """What to measure (see the module docstring); every count >= 1, lists ascending without repeats."""

    curves: tuple[str, ...]
    rows_scales: tuple[int, ...]     # trainer_rows: sim scales of the training table
    rows_models: int                 # trainer_rows: networks trained at once at each scale
    row_epochs: int                  # rows x epochs of every trainer point (epochs = round(row_epochs / rows), >= 1)
    models: tuple[int, ...]          # trainer_models: K
    subjects_scales: tuple[int, ...]  # evaluate_subjects: sim scales
    subjects_resamples: int          # evaluate_subjects, evaluate_images: resamples (= permutations) of each point
    resamples: tuple[int, ...]       # evaluate_resamples: resamples (= permutations) at scale 1
    images: tuple[int, ...]          # evaluate_images: images (each its own subject), about
    report_splits: tuple[int, ...]   # report: how many of REPORT_SPLITS
    report_methods: tuple[int, ...]  # report: how many of REPORT_METHODS
    repeats: int                     # timed runs per point (the minimum is reported)


@dataclass(frozen=True)
class Point:
    """One measured point; fields that do not apply to its curve are None. Times in seconds (wall clock, and CPU
    time of the point's process; fits use CPU time), memory in MiB."""

    curve: str
    seconds: float                   # the fastest of ``all_seconds`` (wall clock)
    cpu_seconds: float               # the fastest of ``all_cpu_seconds``
    all_seconds: tuple[float, ...]
    all_cpu_seconds: tuple[float, ...]
    start_rss_mb: float | None
    peak_rss_mb: float
    peak_since: str                  # work | process
    load_before: float | None
    load_after: float | None
    scale: int | None = None
    rows: int | None = None          # training rows (trainer) or images (evaluate)
    subjects: int | None = None
    models: int | None = None
    epochs: int | None = None
    seeds: int | None = None
    resamples: int | None = None
    splits: int | None = None
    methods: int | None = None
    figures: int | None = None

    @property
    def cpu_us_per_model_epoch_row(self) -> float | None:
        """Trainer points: CPU microseconds per model, epoch and training row (x 500 epochs x rows: one paper model)."""
        return None if self.models is None else 1e6 * self.cpu_seconds / (self.models * self.epochs * self.rows)

    @property
    def work_rss_mb(self) -> float | None:
        """What the work added to the resident set at its peak (MiB); None where the peak counts from the start."""
        return None if self.start_rss_mb is None or self.peak_since != "work" else self.peak_rss_mb - self.start_rss_mb

    def fitted(self) -> tuple[float, float]:
        """(variable, cost) of this point as its curve is fitted and drawn (:data:`CURVE_AXES`); the report's
        variable is splits x methods (its fit is joint, see :func:`fit_power_laws`)."""
        if self.curve == "trainer_rows":
            return self.rows, self.cpu_seconds / (self.models * self.epochs)
        if self.curve == "trainer_models":
            return self.models, self.cpu_seconds / self.epochs
        if self.curve in ("evaluate_subjects", "evaluate_images"):
            return self.subjects, self.cpu_seconds
        if self.curve == "evaluate_resamples":
            return self.resamples, self.cpu_seconds
        return self.splits * self.methods, self.cpu_seconds

    def row(self) -> dict[str, Any]:
        values = {**asdict(self), "cpu_us_per_model_epoch_row": self.cpu_us_per_model_epoch_row,
                  "work_rss_mb": self.work_rss_mb}
        return {c: values[c] for c in COLUMNS}


@dataclass(frozen=True)
class PowerLaw:
    """``cost ~ prefactor * variable ** exponent``, least squares on log-log over ``points`` points of ``curve``;
    ``tail_exponent``: the slope between its two largest points (where fixed costs weigh least; None for the report's
    joint fit)."""

    curve: str
    cost: str
    variable: str
    exponent: float
    prefactor: float
    points: int
    tail_exponent: float | None = None

    def growth(self, tolerance: float = 0.1) -> str:
        """linear, sub-linear or super-linear (exponent within ``tolerance`` of 1 counts as linear; of 0, flat)."""
        if abs(self.exponent) <= tolerance:
            return "flat"
        if abs(self.exponent - 1.0) <= tolerance:
            return "linear"
        return "sub-linear" if self.exponent < 1.0 else "super-linear"


@dataclass(frozen=True)
class ScalingRun:
    """Everything one run measured."""

    grid: ScalingGrid
    points: list[Point]
    fits: list[PowerLaw]
    wall_seconds: float
    load_average: tuple[float | None, float | None]   # before and after the whole run
    machine: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------- the grid

def parse_counts(text: str, *, option: str, high: int | None = None) -> tuple[int, ...]:
    """``"1,3,10"`` -> (1, 3, 10): whole numbers >= 1 (and <= ``high``), each once, returned ascending."""
    bound = f" and <= {high}" if high is not None else ""
    expected = f"expected comma-separated whole numbers >= 1{bound}, e.g. 1,2,4"
    items = [item.strip() for item in str(text).split(",")]
    if not text or not all(re.fullmatch(r"\d+", item) for item in items):
        raise BenchmarkError(f"{option}: {text!r} is not a list of whole numbers; {expected}")
    values = [int(item) for item in items]
    if any(v < 1 or (high is not None and v > high) for v in values):
        raise BenchmarkError(f"{option}: {text!r} has a value out of range; {expected}")
    if len(set(values)) != len(values):
        raise BenchmarkError(f"{option}: {text!r} repeats a value; {expected}")
    return tuple(sorted(values))


def parse_curves(text: str) -> tuple[str, ...]:
    """``"trainer_rows,report"`` -> the named curves in :data:`CURVES` order."""
    names = [n.strip() for n in str(text).split(",")]
    unknown = [n for n in names if n not in CURVES]
    if unknown or not names:
        raise BenchmarkError(f"--curves: unknown curve {unknown[0] if unknown else text!r}; "
                             f"expected a comma-separated subset of {', '.join(CURVES)}")
    return tuple(c for c in CURVES if c in names)


def grid_from_options(*, curves: str, rows_scales: str, rows_models: int, row_epochs: int, models: str,
                      subjects_scales: str, subjects_resamples: int, resamples: str, images: str, report_splits: str,
                      report_methods: str, repeats: int) -> ScalingGrid:
    """The grid from the command line's texts; a bad value raises one BenchmarkError naming its option."""
    for option, value in (("--rows-models", rows_models), ("--row-epochs", row_epochs),
                          ("--subjects-resamples", subjects_resamples), ("--repeats", repeats)):
        if value < 1:
            raise BenchmarkError(f"{option}: {value} is below 1; expected a whole number >= 1")
    return ScalingGrid(
        curves=parse_curves(curves), rows_scales=parse_counts(rows_scales, option="--rows-scales"),
        rows_models=rows_models, row_epochs=row_epochs, models=parse_counts(models, option="--models"),
        subjects_scales=parse_counts(subjects_scales, option="--subjects-scales"),
        subjects_resamples=subjects_resamples, resamples=parse_counts(resamples, option="--resamples"),
        images=parse_counts(images, option="--images"),
        report_splits=parse_counts(report_splits, option="--report-splits", high=len(REPORT_SPLITS)),
        report_methods=parse_counts(report_methods, option="--report-methods", high=len(REPORT_METHODS)),
        repeats=repeats)


def check_output_dir(output_dir: Path) -> None:
    """Refuse, before any measuring, an ``--output-dir`` that exists but is not a folder."""
    if output_dir.exists() and not output_dir.is_dir():
        raise BenchmarkError(f"--output-dir: {output_dir} exists and is not a folder; expected a folder (created if "
                             "missing)")


# ------------------------------------------------------------------------------------------------- the whole run

def _tasks(grid: ScalingGrid, report_folder: Path) -> Iterator[tuple[str, Callable[..., dict[str, Any]], tuple]]:
    """(curve, child function, its arguments) of every point of ``grid``, in order."""
    for curve in grid.curves:
        if curve == "trainer_rows":
            for scale in grid.rows_scales:
                yield curve, trainer_point, (scale, grid.rows_models, grid.row_epochs, grid.repeats)
        elif curve == "trainer_models":
            for k in grid.models:
                yield curve, trainer_point, (1, k, grid.row_epochs, grid.repeats)
        elif curve == "evaluate_subjects":
            for scale in grid.subjects_scales:
                yield curve, comparison_point, (scale, grid.subjects_resamples, grid.repeats)
        elif curve == "evaluate_resamples":
            for n in grid.resamples:
                yield curve, comparison_point, (1, n, grid.repeats)
        elif curve == "evaluate_images":
            for n in grid.images:
                yield curve, comparison_point, (max(1, round(n / FACES_IMAGES)), grid.subjects_resamples, grid.repeats,
                                                False)
        elif curve == "report":
            for splits in grid.report_splits:
                for methods in grid.report_methods:
                    yield curve, report_point, (report_folder, splits, methods, grid.repeats)


def _load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def run_scaling(grid: ScalingGrid, *, on_point: Callable[[Point], None] = lambda p: None) -> ScalingRun:
    """Measure every point of ``grid`` (each in its own process), fit the power laws; ``on_point`` sees each point
    as soon as it is measured."""
    load_before, start = _load_average(), time.perf_counter()
    points = []
    with tempfile.TemporaryDirectory(prefix="benchmark-scaling-") as folder:
        if "report" in grid.curves:
            prepare_report_inputs(Path(folder))
        for curve, function, args in _tasks(grid, Path(folder)):
            before = _load_average()
            measured = in_fresh_process(function, *args)
            point = Point(curve=curve, load_before=before, load_after=_load_average(), **measured)
            points.append(point)
            on_point(point)
    return ScalingRun(grid, points, fit_power_laws(points), time.perf_counter() - start, (load_before, _load_average()),
                      machine_facts())


def machine_facts() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {"machine": f"{platform.processor() or platform.machine()} ({platform.platform()})",
            "cpus": os.cpu_count(), "python": platform.python_version(), "torch": metadata.version("torch"),
            "numpy": np.__version__}


# ------------------------------------------------------------------------------------------------------- the fits

#: per fitted curve: (its cost, the variable it is fitted against); see :meth:`Point.fitted`
CURVE_AXES: dict[str, tuple[str, str]] = {
    "trainer_rows": ("CPU s per model-epoch", "rows"),
    "trainer_models": ("CPU s per epoch, all K models", "models"),
    "evaluate_subjects": ("CPU s per comparison", "subjects"),
    "evaluate_resamples": ("CPU s per comparison", "resamples"),
    "evaluate_images": ("CPU s per comparison", "images (no person ids)"),
    "report": ("CPU s per report", "splits x methods"),
}


def fit_power_laws(points: list[Point]) -> list[PowerLaw]:
    """One power law per curve with at least two distinct x; the report's time is fitted jointly as
    ``a * splits^b * methods^c`` (two PowerLaw rows sharing the prefactor) when both vary."""
    fits = []
    for curve, (cost, variable) in CURVE_AXES.items():
        mine = sorted(p.fitted() for p in points if p.curve == curve)
        if curve != "report" and len({x for x, _ in mine}) >= 2:
            x, y = np.log([x for x, _ in mine]), np.log([y for _, y in mine])
            slope, intercept = np.polyfit(x, y, 1)
            tail = (y[-1] - y[-2]) / (x[-1] - x[-2])
            fits.append(PowerLaw(curve, cost, variable, float(slope), float(math.exp(intercept)), len(mine),
                                 float(tail)))
    mine = [p for p in points if p.curve == "report"]
    varying = [v for v in ("splits", "methods") if len({getattr(p, v) for p in mine}) >= 2]
    if varying:
        design = np.column_stack([np.ones(len(mine))] + [np.log([getattr(p, v) for p in mine]) for v in varying])
        coef, *_ = np.linalg.lstsq(design, np.log([p.cpu_seconds for p in mine]), rcond=None)
        fits += [PowerLaw("report", CURVE_AXES["report"][0], v, float(b), float(math.exp(coef[0])), len(mine))
                 for v, b in zip(varying, coef[1:])]
    return fits


# ----------------------------------------------------------------------------------------------------- outputs

def command_line(grid: ScalingGrid, output_dir: Path) -> str:
    """The ``benchmark scaling`` command that measures ``grid``."""
    def counts(values: tuple[int, ...]) -> str:
        return ",".join(map(str, values))

    g = grid
    return (f"benchmark scaling -o {output_dir} --curves {','.join(g.curves)} --rows-scales {counts(g.rows_scales)} "
            f"--rows-models {g.rows_models} --row-epochs {g.row_epochs} --models {counts(g.models)} "
            f"--subjects-scales {counts(g.subjects_scales)} --subjects-resamples {g.subjects_resamples} "
            f"--resamples {counts(g.resamples)} --images {counts(g.images)} --report-splits {counts(g.report_splits)} "
            f"--report-methods {counts(g.report_methods)} --repeats {g.repeats}")


def write_tables(result: ScalingRun, output_dir: Path) -> list[Path]:
    """``scaling.csv`` (one row per point, :data:`COLUMNS`) and ``scaling.json`` (the command, the grid, the machine,
    every repeat's times, the fits) in ``output_dir``, each written atomically; the figure:
    :func:`benchmark.tools.scaling_figure.write_figure`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = output_dir / "scaling.csv", output_dir / "scaling.json"
    frame = pd.DataFrame([p.row() for p in result.points], columns=list(COLUMNS))
    atomic.write_text(csv_path, frame.to_csv(index=False, float_format="%.6g"))
    atomic.write_json(json_path, {
        "command": command_line(result.grid, output_dir), "grid": asdict(result.grid), "machine": result.machine,
        "wall_seconds": result.wall_seconds, "load_average": list(result.load_average),
        "points": [{**p.row(), "all_seconds": list(p.all_seconds), "all_cpu_seconds": list(p.all_cpu_seconds)}
                   for p in result.points],
        "fits": [{**asdict(f), "growth": f.growth()} for f in result.fits]})
    return [csv_path, json_path]


def point_line(p: Point) -> str:
    """One terminal line per measured point."""
    if p.curve.startswith("trainer"):
        what = f"{p.models} model(s) x {p.rows} rows x {p.epochs} epochs"
    elif p.curve == "evaluate_images":
        what = f"{p.rows} images without person ids, {p.resamples} resamples"
    elif p.curve.startswith("evaluate"):
        what = f"{p.subjects} subjects ({p.rows} images), {p.resamples} resamples"
    else:
        what = f"{p.splits} split(s) x {p.methods} method(s), {p.figures} figures"
    what += f": {p.seconds:.2f} s ({p.cpu_seconds:.2f} s CPU)"
    load = "" if p.load_before is None else f", load {p.load_before:.2f}/{p.load_after:.2f}"
    return f"{p.curve}: {what}; peak RSS {p.peak_rss_mb:.0f} MiB{load}"


def fit_line(f: PowerLaw) -> str:
    """One terminal line per fit."""
    tail = "" if f.tail_exponent is None else f"; between the two largest: ^{f.tail_exponent:.2f}"
    return f"{f.curve}: {f.cost} ~ {f.variable}^{f.exponent:.2f} ({f.growth()}, {f.points} points{tail})"
