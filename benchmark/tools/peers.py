"""``benchmark peers``: the statistics against Fairlearn's ``MetricFrame`` bootstrap, on the same predictions with the
same number of resamples, side by side in one run.

Predictions: the ``uncorrected`` method (the frozen models' own argmax, one seed) on FACES and ADFES, from the
simulated sample (scenario ``paper``, seed 0) or from the authors' published outputs (a folder holding their CSVs).

- **Fairlearn** (0.15, the ``fairness`` extra): ``MetricFrame(metrics=accuracy_score, y_true=emotion,
  y_pred=predicted emotion, sensitive_features=[attribute, emotion], n_boot=B, ci_quantiles=[0.025, 0.975])``, i.e.
  the cell accuracies of the emotion task with percentile intervals from B resamples of **rows** (images).
- **Ours** (:func:`benchmark.stats.group_statistics` with the project's default settings but B resamples): every metric
  of both tasks (cells, per-emotion and pairwise gaps, signed gaps, macro, largest and average gap) with its interval,
  from B resamples of **subjects** (each person's images together), stratified by group; the seed sd; no comparison
  (one method).

Ours does more than Fairlearn here, so the ratio (Fairlearn's seconds over ours) understates the difference for equal
work. Both run on one thread in this process, each ``repeats`` times after one untimed warm-up call of ours (imports,
first allocations; Fairlearn's first run is timed: it has no separate start-up); the least wall-clock and the least
CPU time of each are reported (CPU time is what other jobs on a shared machine inflate least), with the largest
difference between the two tools' cell accuracies (they must agree: same predictions, same cells).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from benchmark import stats
from benchmark.core import design as designs
from benchmark.core.outputs import OutputsTable
from benchmark.core.predictions import tasks as run_tasks
from benchmark.core.settings import Settings, build
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.optional import require
from benchmark.methods.method import FitTask
from benchmark.methods.method_registry import build_method

__all__ = ["DATASETS", "PeerPoint", "peer_lines", "prediction_rows", "run_peers"]

DATASETS: tuple[str, ...] = ("faces", "adfes")
ATTRIBUTE = "gender"
SCENARIO = "paper"


@dataclass(frozen=True)
class PeerPoint:
    """One dataset's timings: seconds are the least of ``repeats`` runs (wall clock, one thread)."""

    dataset: str
    source: str
    images: int
    subjects: int
    resamples: int
    repeats: int
    fairlearn_seconds: float
    ours_seconds: float
    ratio: float                     # fairlearn_seconds / ours_seconds
    fairlearn_cpu_seconds: float     # CPU time of this process over the same runs (least of the repeats)
    ours_cpu_seconds: float
    cpu_ratio: float                 # fairlearn_cpu_seconds / ours_cpu_seconds: what other load inflates least
    cell_agreement: float            # max |our cell accuracy - Fairlearn's| in percentage points (0: the same cells)
    fairlearn_all_seconds: tuple[float, ...]
    ours_all_seconds: tuple[float, ...]
    machine: str
    load_average: tuple[float, float] | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _table(dataset: str, published: Path | None) -> OutputsTable:
    design = designs.shipped()[dataset]
    if published is not None:
        from benchmark.sources import published as source

        return source.load(design, published)
    from benchmark.sources import sim

    return sim.sample_table(sim.read(SCENARIO), design, seed=0, scale=1)


def prediction_rows(table: OutputsTable, attribute_name: str = ATTRIBUTE) -> pd.DataFrame:
    """The ``uncorrected`` method's prediction rows of ``table`` (one seed): what :func:`benchmark.stats.compare`
    and the evaluate stage read."""
    attribute = designs.attribute_of(table.design, attribute_name)
    probabilities = build_method("uncorrected", build(Settings, {})).run(
        [FitTask(table, {"test": table}, 0, attribute)])[0]["test"]
    f = table.frame
    return pd.DataFrame({
        "seed": 0, "image_id": f["image_id"], "subject": f["subject"], attribute_name: f[attribute_name],
        "emotion": f["emotion"],
        f"pred_{attribute_name}": np.asarray(attribute.groups, dtype=object)[probabilities.attribute.argmax(axis=1)],
        "pred_emotion": np.asarray(table.emotion_classes, dtype=object)[probabilities.emotion.argmax(axis=1)]})


def _fairlearn(rows: pd.DataFrame, resamples: int, seed: int) -> pd.Series:
    """Fairlearn's bootstrap of the emotion task's cell accuracies; returns its point estimates (percent) by
    (attribute group, emotion)."""
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import accuracy_score

    frame = MetricFrame(metrics=accuracy_score, y_true=rows["emotion"].to_numpy(), y_pred=rows["pred_emotion"].to_numpy(),
                        sensitive_features=rows[[ATTRIBUTE, "emotion"]], n_boot=resamples, ci_quantiles=[0.025, 0.975],
                        random_state=seed)
    return 100.0 * frame.by_group


def _ours(rows: pd.DataFrame, table: OutputsTable, resamples: int, seed: int) -> pd.DataFrame:
    attribute = designs.attribute_of(table.design, ATTRIBUTE)
    return stats.group_statistics({"uncorrected": rows}, reference=None, key=table.design.name,
                                  config=stats.StatsConfig(n_resamples=resamples, n_permutations=resamples, seed=seed),
                                  layout=designs.layout(table.design, attribute), tasks=run_tasks(ATTRIBUTE))


def _timed(work: Callable[..., Any], *args: Any, repeats: int) -> tuple[list[float], list[float], Any]:
    """Wall and CPU seconds of ``repeats`` calls of ``work(*args)``, and the last call's result."""
    seconds, cpu, result = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = work(*args)
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return seconds, cpu, result


def _agreement(ours: pd.DataFrame, fairlearn: pd.Series) -> float:
    """max |our emotion-task cell accuracy - Fairlearn's| over the cells both have (percentage points)."""
    cells = ours[(ours["task"] == "emotion") & (ours["metric"] == "cell")].set_index(["group", "emotion"])["estimate"]
    theirs = fairlearn.rename_axis(["group", "emotion"])
    joined = pd.concat([cells, theirs], axis=1, join="inner")
    if len(joined) != len(cells):
        raise BenchmarkError(f"peers: Fairlearn has {len(theirs)} cells and ours {len(cells)}; they must be the same")
    return float((joined.iloc[:, 0] - joined.iloc[:, 1]).abs().max())


def run_peers(*, resamples: int = 1000, repeats: int = 3, published: Path | None = None,
              datasets: tuple[str, ...] = DATASETS, seed: int = 0) -> list[PeerPoint]:
    """Time Fairlearn's bootstrap and ours on each dataset's ``uncorrected`` predictions (module docstring).

    published : folder of the authors' CSVs (``faces_emonet_fairface.csv``, ...); None: the simulated sample.
    """
    require("fairlearn", user="benchmark peers")
    if resamples < 1 or repeats < 1:
        raise BenchmarkError(f"peers: resamples and repeats must be >= 1, got {resamples} and {repeats}")
    points = []
    for dataset in datasets:
        table = _table(dataset, published)
        rows = prediction_rows(table)
        before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        with threadpool_limits(1):
            _ours(rows, table, min(resamples, 10), seed)  # warm-up: imports and first allocations
            ours_seconds, ours_cpu, ours = _timed(_ours, rows, table, resamples, seed, repeats=repeats)
            fairlearn_seconds, fairlearn_cpu, fairlearn = _timed(_fairlearn, rows, resamples, seed, repeats=repeats)
        after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        points.append(PeerPoint(
            dataset=dataset, source="published" if published is not None else f"sim ({SCENARIO}, seed 0)",
            images=len(rows), subjects=int(rows["subject"].nunique()), resamples=resamples, repeats=repeats,
            fairlearn_seconds=min(fairlearn_seconds), ours_seconds=min(ours_seconds),
            ratio=min(fairlearn_seconds) / min(ours_seconds), fairlearn_cpu_seconds=min(fairlearn_cpu),
            ours_cpu_seconds=min(ours_cpu), cpu_ratio=min(fairlearn_cpu) / min(ours_cpu),
            cell_agreement=_agreement(ours, fairlearn),
            fairlearn_all_seconds=tuple(fairlearn_seconds), ours_all_seconds=tuple(ours_seconds),
            machine=f"{platform.processor() or platform.machine()} ({platform.platform()}), {os.cpu_count()} CPUs",
            load_average=None if before is None else (before, after)))
    return points


def peer_lines(points: list[PeerPoint]) -> list[str]:
    """One terminal line per dataset."""
    return [f"{p.dataset} ({p.source}; {p.images} images, {p.subjects} subjects), {p.resamples} resamples: "
            f"Fairlearn MetricFrame {p.fairlearn_seconds:.2f} s (emotion cells, rows), ours {p.ours_seconds:.3f} s "
            f"(every metric of both tasks, subjects): {p.ratio:,.0f}x (CPU time: {p.fairlearn_cpu_seconds:.2f} s / "
            f"{p.ours_cpu_seconds:.3f} s, {p.cpu_ratio:,.0f}x); cell accuracies agree within "
            f"{p.cell_agreement:.1e} pp" + ("" if p.load_average is None else
                                            f"; load {p.load_average[0]:.2f}/{p.load_average[1]:.2f}")
            for p in points]
