"""What the data could have shown: the smallest difference the report's verdict rule detects with the target power.

For one held-out design (a dataset at its real size), simulated from a fitted scenario (:mod:`benchmark.sources.sim`):
``replicates`` samples are predicted by the reference method (fitted as :mod:`benchmark.studies.coverage_study` does, once per
worker: the same fit each time), and a **planted method** is made from the reference person by person, so the true
size of its effect is known from the scenario. A method fixes a person's face or it does not, and it breaks some
right predictions on the way; so, per task, person and cell (:func:`plant`):

- the person is **fixed** with probability p = min(1, (1 + churn) q): all their wrong predictions there become right;
- the person is **broken** with probability about p - q (drawn independently): each of their right predictions there
  becomes wrong with probability e / (100 - e), e the cell's true error rate (a broken person gets as many new
  errors as the reference made there), so in expectation a cell loses (p - q) of its errors' worth of right
  predictions and its accuracy moves by exactly q x e (``churn``: the expected breaks per unit of net gain);

where q is the share of the cell's errors removed:

- **macro accuracy**: q = lambda in every cell, a true gain of lambda x (100 - macro) percentage points;
- **average gap**: q moves the cell's accuracy a share lambda of the way up to the best group's in that emotion, so
  every per-emotion gap (max - min over the groups) shrinks by the share lambda: a true change of -lambda x the
  average gap.

For each lambda of a grid the share of replicates in which a procedure detects the planted effect is its power; the
**minimum detectable effect** is the true effect at which the power, interpolated linearly in lambda, reaches the
target (80 %). Two procedures are counted:

- **the verdict rule** (``mde_rule``): Holm over the primary family of m hypotheses (docs/STATISTICS.md "One rule
  from test to verdict") rejects a hypothesis at least when its interval at level 1 - alpha / m (Holm's first
  step: Bonferroni) excludes 0; so the share of replicates whose configured interval (``evaluate.ci_method``, with
  ``power.rule_resamples`` bootstrap resamples) of planted - reference at that level excludes 0 on the planted side
  is a **lower bound** of the rule's power, and its MDE an **upper bound** of the rule's MDE;
- **the permutation test alone** (``mde`` at ``alpha``, ``mde_holm`` at ``alpha / family_size``): the subject-level
  test of the evaluate stage (same number of permutations), which the verdicts no longer read (exploratory p).

Draws are coupled across lambda (one uniform number per person and per image), so the power curve is smooth.
docs/STATISTICS.md ("What the data could have shown") has the reasoning and measured values.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.core import design as designs
from benchmark.core import predictions
from benchmark.core.design import Attribute, CellLayout, DatasetDesign
from benchmark.core.metrics import signed_pairs, spread
from benchmark.core.outputs import OutputsTable
from benchmark.core.settings import Settings
from benchmark.infra import memory, processes
from benchmark.infra.errors import BenchmarkError
from benchmark.sources import sim
from benchmark.stats.analysis import predicted_difference_intervals
from benchmark.stats.cells import (
    Predicted,
    SubjectDesign,
    by_group,
    correctness,
    predicted,
    subject_design,
    subject_sums,
)
from benchmark.stats.config import StatsConfig
from benchmark.stats.resampling import chunks, seed_cells
from benchmark.studies import coverage_study

log = logging.getLogger(__name__)

__all__ = ["GRID", "KINDS", "PowerStudy", "measure_power", "minimum_detectable", "plant"]

#: lambda: the share of the reference's errors (macro) or of its gaps (average gap) the planted method removes
GRID: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
#: what is planted -> the metric whose test is counted
KINDS: dict[str, str] = {"macro": "macro", "gap": "average_gap"}
TRUTH_SEED_OFFSET, TRAIN_SEED_OFFSET = coverage_study.TRUTH_SEED_OFFSET, coverage_study.TRAIN_SEED_OFFSET
_TIE_TOLERANCE = 1e-9  # percent, as the evaluate stage's permutation test


@dataclass(frozen=True)
class PowerStudy:
    """One held-out design's power simulation (see the module docstring)."""

    scenario: str
    dataset: str
    attribute: str = "gender"
    reference: str = "uncorrected"
    train_dataset: str | None = None
    scale: int = 1
    replicates: int = 200
    truth_scale: int = 100
    target: float = 0.8
    seed: int = 0
    churn: float = 0.5  # expected right predictions broken per unit of net gain (power.churn)
    rule_resamples: int = 2000  # bootstrap resamples of the verdict rule's interval (power.rule_resamples)


def _cell_accuracy(rows, layout: CellLayout, tasks: tuple[str, str]) -> np.ndarray:
    """Cell accuracies (T, C) percent of one prediction set (one seed)."""
    design = subject_design(rows, layout, tasks, "truth")
    _, correct = correctness(rows, design, "truth")
    return seed_cells(np.ones((1, len(design.subjects))), subject_sums(correct, design), design.counts)[0, :, 0]


def flip_probabilities(truth: np.ndarray, layout: CellLayout, lam: float) -> dict[str, np.ndarray]:
    """Per kind, the share q (T, C) of a cell's errors the planted method removes in expectation: lambda for macro;
    for the gap the share that lifts the cell lambda of the way to its emotion's best group. truth (T, C) percent."""
    acc = by_group(truth, layout)  # (T, k, E)
    best = acc.max(axis=-2, keepdims=True)
    room = 100.0 - acc
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(room > 0, lam * (best - acc) / room, 0.0)
    return {"macro": np.full(truth.shape, lam), "gap": gap.reshape(truth.shape)}


@dataclass(frozen=True)
class PlantingDraws:
    """One replicate's uniform numbers, shared by every lambda and kind: fix (T, n_subjects) and broken
    (T, n_subjects) per task and person, image (T, n_images) per task and image."""

    fix: np.ndarray
    broken: np.ndarray
    image: np.ndarray

    @classmethod
    def of(cls, n_tasks: int, n_subjects: int, n_images: int, rng: np.random.Generator) -> PlantingDraws:
        return cls(rng.random((n_tasks, n_subjects)), rng.random((n_tasks, n_subjects)), rng.random((n_tasks, n_images)))


def plant(correct: np.ndarray, design: SubjectDesign, shares: np.ndarray, truth: np.ndarray, churn: float,
          draws: PlantingDraws) -> np.ndarray:
    """The planted method's correctness (T, n_images) bool from the reference's (T, n_images), person by person (the
    module docstring): in cell c a person is fixed when their ``draws.fix`` < p_c = min(1, (1 + churn) q_c) (all their
    wrong predictions there become right) and broken when their ``draws.broken`` < b_c (each right prediction there
    becomes wrong when its ``draws.image`` < r_c = min(1, e_c / (100 - e_c))), with
    b_c = min(1, (p_c - q_c) e_c / (r_c (100 - e_c))), so the cell's expected accuracy moves by q_c e_c percentage
    points (less only where b_c is capped at 1). shares q (T, C); truth (T, C) the reference's true cell accuracy,
    percent, e = 100 - truth."""
    fix = np.minimum(1.0, (1.0 + churn) * shares)
    error = np.clip(100.0 - truth, 0.0, 100.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(error < 100.0, np.minimum(1.0, error / (100.0 - error)), 0.0)
        broken = np.where(rate > 0, np.minimum(1.0, (fix - shares) * error / (rate * (100.0 - error))), 0.0)
    person, cell = design.image_subject, design.image_cell
    fixed = draws.fix[:, person] < fix[:, cell]
    breaks = (draws.broken[:, person] < broken[:, cell]) & (draws.image < rate[:, cell])
    return np.where(correct, ~breaks, fixed)


def _planted_prediction(reference: Predicted, planted: np.ndarray, design: SubjectDesign) -> Predicted:
    """The planted method's predictions (one seed) from the reference's: each image it gets right predicted as the
    truth, each it breaks (right in the reference, wrong here) as the next class after the truth (groups or emotions
    order), every other wrong prediction the reference's; planted (T, n_images) bool."""
    n_emotions, n_groups = len(design.layout.emotions), len(design.layout.groups)
    group, emotion = np.divmod(design.image_cell, n_emotions)
    false_cell = reference.false_cell.copy()  # (T, 1, n_images)
    for t in range(len(design.tasks)):
        if t == len(design.tasks) - 1:  # the emotion task: the next emotion, in the image's group
            broken = group * n_emotions + (emotion + 1) % n_emotions
        else:  # the attribute: the next group, with the image's emotion
            broken = ((group + 1) % n_groups) * n_emotions + emotion
        was_right = reference.correct[t, 0]
        false_cell[t, 0] = np.where(planted[t], -1, np.where(was_right, broken, false_cell[t, 0]))
    return Predicted(reference.seeds, planted[:, None, :].copy(), false_cell)


def true_effects(truth: np.ndarray, layout: CellLayout) -> dict[str, np.ndarray]:
    """Per kind, the true effect (T,) in percentage points at lambda = 1: 100 - macro, and -average gap."""
    return {"macro": 100.0 - truth.mean(axis=-1), "gap": -spread(by_group(truth, layout)).mean(axis=-1)}


#: permutations between two checks of which planted sets are settled (:func:`planted_p`)
SETTLE_CHECK = 500


def planted_p(sums: np.ndarray, reference: np.ndarray, counts: np.ndarray, flips: np.ndarray,
              layout: CellLayout, *, settled_at: float | None = None) -> dict[str, np.ndarray]:
    """Two-sided subject-level permutation p of macro accuracy and of the average gap, planted - reference, for many
    planted sets at once: the test of :func:`benchmark.stats.significance.permutation_p` (one seed), for two metrics.

    sums (n_subjects, S, T, C) correct counts of S planted sets; reference (n_subjects, T, C); counts (n_subjects, C);
    flips (P, n_subjects) bool. Returns metric -> (S, T).

    Exchanging subjects moves each cell's accuracy linearly: A - m for the planted set and B + m for the reference,
    with m = flips @ (100 x the subjects' count differences / the cell's images). So one product per chunk of
    permutations gives what the metrics need, no more: the mean of m over the cells (macro), and for two groups the
    per-emotion difference of m between the groups (each gap is |signed difference|), else m itself.

    ``settled_at``: a (set, task) whose p of both metrics is already at least this after some of the permutations
    (p can only grow with more of them) is no longer tested; its p is then the count so far, a value >= settled_at
    below the full count's. Every comparison ``p < level`` with level <= settled_at is the full test's (curtailed
    sampling): the power study needs only those. None: every permutation for every set.
    """
    n, n_sets, n_tasks, n_cells = sums.shape
    cell_n = counts.sum(axis=0)
    acc_a, acc_b = 100.0 * sums.sum(axis=0) / cell_n, 100.0 * reference.sum(axis=0)[None] / cell_n  # (S | 1, T, C)
    share = 100.0 * (sums - reference[:, None]) / cell_n  # (n, S, T, C): what exchanging one subject moves
    two_groups = len(layout.groups) == 2
    pairs = n_sets * n_tasks  # (set, task), flattened: the A axis

    def gap_part(acc: np.ndarray) -> np.ndarray:
        """What the average gap is a function of, before the (set, task) axis: (..., S, T, C) -> (..., X, S * T);
        signed differences per emotion (X = E, two groups), else the cells (X = C)."""
        part = np.moveaxis(signed_pairs(by_group(acc, layout), layout) if two_groups else acc, -1, -3)
        return part.reshape(part.shape[:-2] + (-1,))

    def average_gap(part: np.ndarray) -> np.ndarray:
        """(..., X, A) -> (..., A)."""
        if two_groups:
            return np.abs(part).mean(axis=-2)
        return spread(by_group(np.moveaxis(part, -2, -1), layout)).mean(axis=-1)

    parts = np.concatenate([share.mean(axis=-1).reshape(n, 1, pairs), gap_part(share)], axis=1)  # (n, 1 + X, A)
    base_a = gap_part(acc_a)
    base_b = gap_part(np.broadcast_to(acc_b, acc_a.shape))
    observed = {"macro": (acc_a.mean(axis=-1) - acc_b.mean(axis=-1)).reshape(-1),
                "average_gap": average_gap(base_a) - average_gap(base_b)}
    exceed = {m: np.zeros(pairs, dtype=np.int64) for m in observed}
    active = np.arange(pairs)
    step = SETTLE_CHECK if settled_at is not None else len(flips)
    for start in range(0, len(flips), step):
        if not len(active):
            break
        columns = parts[:, :, active].reshape(n, -1)
        for part in chunks(min(step, len(flips) - start), columns.shape[1]):
            rows = flips[start + part.start:start + part.stop]
            moved = (rows.astype(np.float64) @ columns).reshape(len(rows), -1, len(active))
            permuted = {"macro": observed["macro"][active] - 2.0 * moved[:, 0],
                        "average_gap": average_gap(base_a[:, active] - moved[:, 1:])
                        - average_gap(base_b[:, active] + moved[:, 1:])}
            for m in exceed:
                exceed[m][active] += (np.abs(permuted[m]) >= np.abs(observed[m][active]) - _TIE_TOLERANCE).sum(axis=0)
        if settled_at is not None:
            settled = np.all([(1.0 + exceed[m][active]) / (1.0 + len(flips)) >= settled_at for m in exceed], axis=0)
            active = active[~settled]
    return {m: ((1.0 + exceed[m]) / (1.0 + len(flips))).reshape(n_sets, n_tasks) for m in exceed}


#: the metric of each kind in the rule's intervals, and the side of 0 its planted effect lies on (+1: a gain)
_RULE_METRICS: tuple[str, ...] = tuple(KINDS.values())
_PLANTED_SIDE: dict[str, int] = {"macro": 1, "gap": -1}


def _replicate(rows, layout: CellLayout, tasks: tuple[str, str], truth: np.ndarray, *, churn: float,
               n_permutations: int, rule: StatsConfig, rule_level: float, key: str, settled_at: float,
               rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Per kind, at every lambda: the permutation p of the planted method against the reference (``"p"``,
    (len(GRID), T); exact below ``settled_at``, :func:`planted_p`) and whether the configured interval at ``rule_level`` excludes 0 on the planted side (``"rule"``,
    (len(GRID), T) bool)."""
    rows = rows.sort_values("image_id", kind="stable").reset_index(drop=True)
    design = subject_design(rows, layout, tasks, "replicate")
    if len(rows) != len(design.image_ids) or (rows["image_id"].to_numpy() != design.image_ids).any():
        raise ValueError("power: a replicate's rows must predict each image once (one seed)")
    reference_prediction = predicted(rows, design, "replicate")
    correct = reference_prediction.correct  # (T, 1, n_images)
    draws = PlantingDraws.of(len(tasks), len(design.subjects), len(design.image_ids), rng)
    flips = rng.random((n_permutations, len(design.subjects))) < 0.5
    reference = subject_sums(correct, design)[:, :, 0]  # (n, T, C)
    planted = [plant(correct[:, 0], design, q, truth, churn, draws)
               for lam in GRID for q in flip_probabilities(truth, layout, lam).values()]  # lambda-major, kinds inside
    p = planted_p(np.stack([subject_sums(x[:, None, :], design)[:, :, 0] for x in planted], axis=1), reference,
                  design.counts, flips, layout, settled_at=settled_at)  # metric -> (L * kinds, T)
    low, high = predicted_difference_intervals(
        design, reference_prediction, [_planted_prediction(reference_prediction, x, design) for x in planted],
        config=rule, level=rule_level, key=key, metrics=_RULE_METRICS)  # (L * kinds, T, metrics)
    kinds = list(KINDS)
    out = {}
    for i, kind in enumerate(kinds):
        j = _RULE_METRICS.index(KINDS[kind])
        side = low[:, :, j] > 0 if _PLANTED_SIDE[kind] > 0 else high[:, :, j] < 0
        out[kind] = {"p": p[KINDS[kind]].reshape(len(GRID), len(kinds), -1)[:, i],
                     "rule": side.reshape(len(GRID), len(kinds), -1)[:, i]}
    return out


@dataclass(frozen=True)
class _Replicates:
    """What a worker needs to simulate, predict and test its share of one study's replicates."""

    study: PowerStudy
    scenario: sim.Scenario
    settings: Settings
    design: DatasetDesign
    train: OutputsTable  # what the reference method is fitted on
    attribute: Attribute
    truth: np.ndarray  # (T, C) percent: the reference's cell accuracies in the very large sample
    settled_at: float  # the largest level a p is compared with: above it a test can stop (planted_p)
    rule_level: float  # the confidence level of Holm's first step, 1 - alpha / m


def _replicates(numbers: list[int], *, job: _Replicates) -> list[dict[str, dict[str, np.ndarray]]]:
    """:func:`_replicate` of replicates ``numbers``, each sampled with its own seed (study seed + r) and tested with
    its own random stream, so the result does not depend on how replicates are shared out between workers. The
    reference is fitted once per call (the same fit every time: same train table, same seed)."""
    study, layout = job.study, designs.layout(job.design, job.attribute)
    tables = {f"r{r}": sim.sample_table(job.scenario, job.design, seed=study.seed + r, scale=study.scale) for r in numbers}
    rows = coverage_study.fitted_predictions(study.reference, job.settings, job.train, tables, job.attribute)
    tasks = predictions.tasks(job.attribute.name)
    evaluate = job.settings.evaluate
    rule = dataclasses.replace(StatsConfig.from_settings(evaluate), n_resamples=study.rule_resamples)
    return [_replicate(rows[f"r{r}"], layout, tasks, job.truth, churn=study.churn,
                       n_permutations=evaluate.n_permutations, rule=rule, rule_level=job.rule_level,
                       key=f"power|{study.dataset}|{study.seed + r}", settled_at=job.settled_at,
                       rng=np.random.default_rng([evaluate.seed, study.seed + r, zlib.crc32(study.dataset.encode())]))
            for r in numbers]


def workers(study: PowerStudy) -> int:
    """Processes the replicates are shared out to: one block per core."""
    return min(study.replicates, len(processes.available_cores()))


def footprint(study: PowerStudy, sample: OutputsTable, *, n_cells: int, n_permutations: int) -> list[memory.Need]:
    """The memory one design's simulation holds, by the key that makes it (for :func:`benchmark.infra.memory.check`),
    from ``sample``, one table of the design at scale 1: every worker holds the tables and predictions of its block of
    replicates at once (together about the sampled table's bytes per replicate at ``study.scale``: tracemalloc's
    marginal peak per FACES replicate was 391 KB against the table's 360 KB), the truth sample at
    ``study.truth_scale`` with its predictions (1.5 tables per unit), and while one replicate is tested its
    permutation draws (float64 becoming bool, per subject) and its planted sets (every lambda and kind, float64 sums
    per subject and cell and task), and the verdict rule's bootstrap of the reference and one planted set (weights
    per resample and subject, resampled rates and metrics per cell and task: tracemalloc's peak of one FACES call at
    2,000 resamples was 12.6 MB, this formula's 12.7 MB)."""
    table = float(sample.frame.memory_usage(deep=True).sum())
    subjects = sample.frame["subject"].nunique() * study.scale
    planted = 2 * len(GRID) * 2 * n_cells * 8 * subjects
    rule = study.rule_resamples * 8 * (subjects + 26 * 2 * n_cells)
    return [memory.Need("power.replicates", study.replicates, study.replicates * table * study.scale),
            memory.Need("power.rule_resamples", study.rule_resamples, workers(study) * rule),
            memory.Need("power.truth_scale", study.truth_scale, 1.5 * table * study.truth_scale),
            memory.Need("evaluate.n_permutations", n_permutations,
                        workers(study) * (9 * subjects * n_permutations + planted))]


def minimum_detectable(power: np.ndarray, effect_at_one: float, target: float) -> float | None:
    """The true effect (pp, absolute) at which ``power`` over :data:`GRID` first reaches ``target``, interpolated
    linearly in lambda; None when it never does (not detectable even when all errors or gaps are removed)."""
    grid = np.array(GRID)
    above = np.flatnonzero(power >= target)
    if not len(above):
        return None
    i = int(above[0])
    if i == 0:  # reached at the smallest lambda of the grid: an upper bound
        lam = grid[0]
    else:
        lam = grid[i - 1] + (target - power[i - 1]) / (power[i] - power[i - 1]) * (grid[i] - grid[i - 1])
    return round(float(lam * abs(effect_at_one)), 2)


def measure_power(study: PowerStudy, settings: Settings, *, declared: dict[str, DatasetDesign], alpha: float,
        family_size: int, primary_size: int, scenario: sim.Scenario | None = None) -> dict[str, Any]:
    """Simulate one held-out design; returns its part of ``power.json`` (see :func:`benchmark.stages.power.run`).
    ``family_size``: the methods compared with the reference (the permutation test's Holm step); ``primary_size``:
    the m hypotheses of the primary family (the rule's first step, alpha / m). ``scenario``: the file
    ``study.scenario`` already read by the caller (read here when None)."""
    if study.dataset not in declared:
        raise BenchmarkError(f"power: dataset {study.dataset!r} is not declared")
    design = declared[study.dataset]
    attribute = designs.attribute_of(design, study.attribute)
    layout, tasks = designs.layout(design, attribute), predictions.tasks(attribute.name)
    scenario = scenario or sim.read(study.scenario)
    train_name = study.train_dataset or coverage_study.other_dataset(study.dataset, declared)
    train = sim.sample_table(scenario, declared[train_name], seed=study.seed + TRAIN_SEED_OFFSET)
    truth_table = sim.sample_table(scenario, design, seed=study.seed + TRUTH_SEED_OFFSET, scale=study.truth_scale)
    rows = coverage_study.fitted_predictions(study.reference, settings, train, {"truth": truth_table}, attribute)
    truth = _cell_accuracy(rows["truth"], layout, tasks)
    levels = {"alpha": alpha, "holm": alpha / max(1, family_size)}  # the permutation test's
    rejected = {kind: {level: np.zeros((len(GRID), len(tasks))) for level in (*levels, "rule")} for kind in KINDS}
    # independent replicates, shared out in one contiguous block per core
    blocks = np.array_split(np.arange(study.replicates), workers(study))
    job = _Replicates(study, scenario, settings, design, train, attribute, truth, settled_at=max(levels.values()),
                      rule_level=1.0 - alpha / max(1, primary_size))
    subjects = int(sim.sample_table(scenario, design, seed=study.seed, scale=study.scale).frame["subject"].nunique())
    log.info("power: %s: %d replicates of %d subjects", study.dataset, study.replicates, subjects)
    for block in processes.map_on_cores(functools.partial(_replicates, job=job), [b.tolist() for b in blocks]):
        for result in block:
            for kind in KINDS:
                for level, value in levels.items():
                    rejected[kind][level] += result[kind]["p"] < value
                rejected[kind]["rule"] += result[kind]["rule"]
    effects = true_effects(truth, layout)
    out: dict[str, Any] = {"tasks": {}}
    for t, task in enumerate(tasks):
        slot = out["tasks"].setdefault(task, {})
        for kind, metric in KINDS.items():
            power = {level: (rejected[kind][level][:, t] / study.replicates) for level in rejected[kind]}
            slot[metric] = {
                "largest_effect": round(float(effects[kind][t]), 2),
                "mde_rule": minimum_detectable(power["rule"], effects[kind][t], study.target),
                "mde": minimum_detectable(power["alpha"], effects[kind][t], study.target),
                "mde_holm": minimum_detectable(power["holm"], effects[kind][t], study.target),
                "power": {level: [round(float(x), 3) for x in values] for level, values in power.items()},
            }
    out.update({"subjects": subjects, "reference_truth": {task: {"macro": round(float(truth[t].mean()), 2),
                                                                "average_gap": round(float(-effects["gap"][t]), 2)}
                                                         for t, task in enumerate(tasks)}})
    return out
