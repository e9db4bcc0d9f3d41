"""The work of one ``benchmark scaling`` point (:mod:`benchmark.tools.scaling`), run in its own freshly spawned process.

A point builds its inputs, warms up (first calls, allocations), then times its work ``repeats`` times on one thread
(BLAS and OpenMP limited to one; the trainer's torch ops are single-threaded anyway), in wall-clock and in CPU seconds
of the process (on one thread the two agree on an idle core; CPU time is what other jobs on a shared machine inflate
least), and returns them with the process's memory: ``start_rss_mb``, the resident set when the work starts (interpreter, libraries, inputs), and
``peak_rss_mb``, its peak during the work (Linux: the high-water mark is reset when the work starts, ``peak_since`` =
``work``; elsewhere getrusage's peak since the process started, ``process``). Each point function imports the
heavy libraries its own work needs inside it, so only the trainer's points load torch (importing it alone is about
0.6 GB of resident memory here); every point's process also holds what spawning imports (the launching module,
pandas, threadpoolctl). The process is pinned to one core, so work that shares itself out over the available cores
(the report's figures, the trainer's stacks) runs in it, where its CPU time and memory are counted.

Inputs: "scale" multiplies the subjects of the simulated FACES design (scenario ``paper``: 171 people x 12 images =
2,052 rows per scale).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from benchmark.infra.processes import available_cores, ignore_interrupts, stop_workers_on_error

if TYPE_CHECKING:
    from benchmark.core.outputs import OutputsTable
    from benchmark.core.settings import Settings
    from benchmark.methods.method import Probabilities

SCENARIO, DATASET, ATTRIBUTE = "paper", "faces", "gender"
#: the default pipeline's splits, in params.yaml's order; a report point takes the first ``splits`` of them
REPORT_SPLITS: tuple[str, ...] = ("faces->adfes", "adfes->faces", "cv:faces", "cv:adfes")
#: methods that need no tune stage; a report point takes the first ``methods`` of them (the reference first)
REPORT_METHODS: tuple[str, ...] = ("uncorrected", "label_mask", "unimodal", "crossmodal_linear", "corrector",
                                   "group_recalibration")
#: the small pipeline whose outputs the report points read (its budgets do not change what the report draws)
REPORT_PIPELINE = {"train": {"splits": list(REPORT_SPLITS), "methods": list(REPORT_METHODS), "n_seeds": 2,
                             "corrector": {"epochs": 5}},
                   "evaluate": {"n_resamples": 200, "n_permutations": 200}, "tracking": {"enabled": False}}
COMPARISON_SEEDS = 10    # seeds of the compared method (the default pipeline's train.n_seeds)
FACES_IMAGES = 2052      # images of the simulated FACES design at scale 1
REDRAWN = 0.1            # share of each of its seeds' predictions redrawn at random
WARM_ROWS = 64           # rows of the trainer's warm-up


def _one_core() -> None:
    """Pin this process to one core (where the platform can), so the work it times runs there alone: code that
    shares work out over :func:`~benchmark.infra.processes.available_cores` (the report's figures, the trainer's stacks)
    then runs in this process, whose CPU time and peak memory are what a point measures."""
    ignore_interrupts()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {available_cores()[0]})


def in_fresh_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``function(*args)`` in a newly spawned process pinned to one core (nothing inherited: its memory is its own)."""
    context = multiprocessing.get_context("spawn")
    with (ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_one_core) as pool,
          stop_workers_on_error(pool)):
        return pool.submit(function, *args).result()


# ------------------------------------------------------------------------------------------ timing and memory

def _reset_peak_rss() -> bool:
    """Reset this process's resident-set high-water mark (Linux: value 5 to /proc/self/clear_refs); whether it was."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _status_mb(key: str) -> float | None:
    """A memory line of /proc/self/status (Linux; ``VmRSS`` now, ``VmHWM`` its high-water mark) in MiB."""
    try:
        with open("/proc/self/status") as handle:
            found = re.search(rf"^{key}:\s+(\d+) kB", handle.read(), re.MULTILINE)
    except OSError:
        return None
    return None if found is None else int(found.group(1)) / 2**10


def _peak_rss_mb(reset: bool) -> tuple[float, str]:
    """The peak resident set (MiB) and since when it counts: since the reset (``work``), else since the process
    started (``process``: getrusage's maxrss, which on Linux also keeps the peak of the process that spawned this one
    from before its exec, so it is only an upper bound)."""
    if reset and (peak := _status_mb("VmHWM")) is not None:
        return peak, "work"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak / 2**20 if sys.platform == "darwin" else peak / 2**10), "process"   # bytes on macOS, KiB elsewhere


def _timed(work: Callable[[], object], repeats: int) -> dict[str, Any]:
    """Run ``work`` ``repeats`` times on one thread: the wall and CPU seconds of each run (in the order they ran), the
    resident set at its start and its peak."""
    with threadpool_limits(1):
        reset, start_rss = _reset_peak_rss(), _status_mb("VmRSS")
        wall, cpu = [], []
        for _ in range(repeats):
            begin, begin_cpu = time.perf_counter(), time.process_time()
            work()
            wall.append(time.perf_counter() - begin)
            cpu.append(time.process_time() - begin_cpu)
    peak, since = _peak_rss_mb(reset)
    return {"seconds": min(wall), "cpu_seconds": min(cpu), "all_seconds": tuple(wall), "all_cpu_seconds": tuple(cpu),
            "start_rss_mb": start_rss, "peak_rss_mb": peak, "peak_since": since}


def _faces_table(scale: int) -> OutputsTable:
    from benchmark.core import design as designs
    from benchmark.sources import sim

    return sim.sample_table(sim.read(SCENARIO), designs.shipped()[DATASET], seed=0, scale=scale)


# ---------------------------------------------------------------------------------------------------- the points

def trainer_point(scale: int, models: int, row_epochs: int, repeats: int) -> dict[str, Any]:
    """Time ``models`` paper networks (``CorrectorSettings`` but ``epochs = max(1, round(row_epochs / rows))``)
    trained at once by the vectorised trainer, one stack on one core, on a FACES table of ``scale``."""
    from benchmark.core import design as designs
    from benchmark.core.settings import CorrectorSettings
    from benchmark.methods.network import Architecture, TrainingData
    from benchmark.methods.trainer import train_many

    table = _faces_table(scale)
    attribute = designs.attribute_of(table.design, ATTRIBUTE)
    paper = CorrectorSettings()
    data = TrainingData.from_table(table, attribute, input=paper.input)
    settings = replace(paper, epochs=max(1, round(row_epochs / len(data))))
    arch = Architecture.for_attribute(len(table.emotion_classes), attribute, depth=paper.depth, width=paper.width)
    seeds = list(range(models))
    warm = TrainingData(data.x[:WARM_ROWS], data.attribute[:WARM_ROWS], data.emotion[:WARM_ROWS])
    train_many([warm] * models, seeds, arch=arch, settings=replace(settings, epochs=1), workers=1)
    timed = _timed(lambda: train_many([data] * models, seeds, arch=arch, settings=settings, workers=1), repeats)
    return {**timed, "scale": scale, "rows": len(data), "models": models, "epochs": settings.epochs}


def _prediction_rows(table: OutputsTable, uncorrected: Probabilities, *, seed: int,
                     redrawn: float) -> pd.DataFrame:
    """Prediction rows as :func:`benchmark.stats.compare` reads them: the uncorrected predictions of ``table`` with a
    share ``redrawn`` of each task's predictions replaced by a random class (drawn with ``seed``)."""
    from benchmark.core import design as designs

    attribute = designs.attribute_of(table.design, ATTRIBUTE)
    rng = np.random.default_rng(seed)
    predicted = {}
    for task, classes, probs in ((ATTRIBUTE, attribute.groups, uncorrected.attribute),
                                 ("emotion", table.emotion_classes, uncorrected.emotion)):
        index = probs.argmax(axis=1)
        redraw = rng.random(len(index)) < redrawn
        index[redraw] = rng.integers(0, len(classes), size=int(redraw.sum()))
        predicted[f"pred_{task}"] = np.asarray(classes)[index]
    f = table.frame
    return pd.DataFrame({"seed": seed, "image_id": f["image_id"], "subject": f["subject"], ATTRIBUTE: f[ATTRIBUTE],
                         "emotion": f["emotion"], **predicted})


def comparison_point(scale: int, resamples: int, repeats: int, person_ids: bool = True) -> dict[str, Any]:
    """Time one comparison (:func:`benchmark.stats.compare`, ``resamples`` bootstrap resamples and as many
    permutations) of a 10-seed method against a 1-seed reference on a FACES table of ``scale``: the reference is the
    uncorrected predictions, the method the same with a tenth of each seed's predictions redrawn at random.
    Without ``person_ids`` every image is its own subject (its classes of alike images, and so the time, depend on
    how often the seeds disagree: a tenth redrawn independently per seed makes many)."""
    from benchmark import stats
    from benchmark.core import design as designs
    from benchmark.core.settings import Settings, build
    from benchmark.methods.method import FitTask
    from benchmark.methods.method_registry import build_method

    table = _faces_table(scale)
    attribute = designs.attribute_of(table.design, ATTRIBUTE)
    uncorrected = build_method("uncorrected", build(Settings, {})).run(
        [FitTask(table, {"test": table}, 0, attribute)])[0]["test"]
    reference = _prediction_rows(table, uncorrected, seed=0, redrawn=0.0)
    method = pd.concat([_prediction_rows(table, uncorrected, seed=s, redrawn=REDRAWN) for s in range(COMPARISON_SEEDS)],
                       ignore_index=True)
    if not person_ids:
        reference["subject"], method["subject"] = reference["image_id"], method["image_id"]
    layout = designs.layout(table.design, attribute)
    del table, uncorrected

    def compare(n: int) -> pd.DataFrame:
        return stats.compare(method, reference, layout=layout, attribute=ATTRIBUTE,
                             config=stats.StatsConfig(n_resamples=n, n_permutations=n))

    compare(10)
    timed = _timed(lambda: compare(resamples), repeats)
    return {**timed, "scale": scale, "rows": len(reference), "subjects": int(reference["subject"].nunique()),
            "seeds": COMPARISON_SEEDS, "resamples": resamples}


def _report_settings() -> Settings:
    from benchmark.core.settings import Settings, build

    return build(Settings, REPORT_PIPELINE, "scaling report pipeline")


def prepare_report_inputs(folder: Path) -> None:
    """Sample the sim source and train every split x method of :data:`REPORT_PIPELINE` once: ``folder``/outputs and
    ``folder``/predictions.parquet."""
    from benchmark.core import design as designs
    from benchmark.sources import sim
    from benchmark.stages import train

    sim.write_sample(SCENARIO, folder / "outputs", designs.shipped(), seed=0)
    train.run(_report_settings(), outputs_dir=folder / "outputs", target=folder / "predictions.parquet")


def report_point(folder: Path, splits: int, methods: int, repeats: int) -> dict[str, Any]:
    """Keep the first ``splits`` x ``methods`` of the predictions in ``folder`` and evaluate them (untimed), then time
    the report stage (:func:`benchmark.stages.report.run`) on those results."""
    from benchmark.core import predictions
    from benchmark.infra import paths
    from benchmark.stages import evaluate, report

    here = folder / f"report_{splits}x{methods}"
    read = predictions.read(folder / "predictions.parquet")
    keep = read.frame["split"].isin(REPORT_SPLITS[:splits]) & read.frame["method"].isin(REPORT_METHODS[:methods])
    predictions.write(read.frame[keep.to_numpy()], here / "predictions.parquet", emotion_classes=read.emotion_classes,
                      metadata=predictions.metadata(read.attribute, read.designs, **read.metadata))
    settings = _report_settings()
    results = {"metrics_path": here / "reports" / "metrics.json", "stats_path": here / "results" / "stats.parquet",
               "confusion_path": here / "results" / "confusion.parquet"}
    evaluate.run(settings, source=here / "predictions.parquet", cells_path=here / "reports" / "cells.csv", **results)
    figures_dir = here / "reports" / "figures"

    def run_report() -> None:
        report.run(settings, md_path=here / "reports" / "report.md", html_path=here / "reports" / "report.html",
                   figures_dir=figures_dir, outputs_dir=folder / "outputs", predictions_path=here / "predictions.parquet",
                   tune_dir=here / "tune", lock_path=paths.LOCK, **results)

    timed = _timed(run_report, repeats)
    return {**timed, "splits": splits, "methods": methods, "figures": len(list(figures_dir.glob("*.png")))}
