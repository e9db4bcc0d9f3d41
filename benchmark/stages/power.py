"""Stage ``power``: the minimum detectable effects of every held-out design -> ``results/power.json``.

For each dataset some split tests on (``A->B``: B; ``cv:A``: A), :func:`benchmark.studies.power_study.measure_power` simulates the design
from a scenario (at ``data.sim.scale`` subjects for simulated data, else the scenario's design) and finds the
smallest difference in macro accuracy and in average gap that the evaluate stage's permutation test detects with
``power.target`` power, at ``evaluate.alpha`` and at Holm's first step over the methods compared with the reference.

The scenario is the first of ``power.scenario``, then the shipped scenarios (``paper``, ``null``, ``age``), that models
the dataset with the attribute in force (``data.attribute``): FACES' age groups come from ``age`` when
``power.scenario`` is the gender-only ``paper``. Each design's entry names the scenario it was simulated from and why
``power.scenario`` was passed over; a design no scenario models is written as ``not_simulated`` with the reason, which
the report repeats. The reference is fitted on a sample of the split's training dataset (``cv:A``: A itself), or of
the held-out dataset when no chosen scenario models the training one. Every design's simulation is checked against
this machine's memory (:func:`benchmark.studies.power_study.footprint`) before the first one starts. It depends on the
scenarios, the design and the statistics settings only, so DVC reruns it rarely.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.core import design as designs
from benchmark.core.design import DatasetDesign
from benchmark.core.protocol import parse_split
from benchmark.core.settings import Settings
from benchmark.experiment import params
from benchmark.infra import atomic, memory, paths
from benchmark.sources import sim
from benchmark.sources.sim_scenario import SHIPPED
from benchmark.stats.analysis import contrast_name
from benchmark.studies import power_study as library

log = logging.getLogger(__name__)


def held_out(settings: Settings) -> dict[str, str]:
    """Each dataset the splits test on -> the dataset the first such split trains on, in ``train.splits`` order."""
    out: dict[str, str] = {}
    for split in settings.train.splits:
        parsed = parse_split(split)
        out.setdefault(parsed.test, parsed.train)
    return out


@dataclass(frozen=True)
class Candidate:
    """A scenario the stage may simulate from: how it was named, the file read, and its sha256."""

    name: str
    scenario: sim.Scenario
    sha256: str


def candidates(configured: str) -> list[Candidate]:
    """``power.scenario``, then each shipped scenario with other bytes, in :data:`SHIPPED` order."""
    out = [Candidate(configured, sim.read(configured), sim.sha256_of(configured))]
    for name in SHIPPED:
        sha = sim.sha256_of(name)
        if all(c.sha256 != sha for c in out):
            out.append(Candidate(name, sim.read(name), sha))
    return out


def choose(options: list[Candidate], design: DatasetDesign, attribute: str) -> tuple[Candidate | None, list[str]]:
    """The first candidate that models ``design`` with ``attribute``, and why each one before it does not."""
    reasons = []
    for option in options:
        why = sim.unmodelled(option.scenario, design, attribute)
        if why is None:
            return option, reasons
        reasons.append(why)
    return None, reasons


def not_simulated(reasons: list[str], configured: str) -> str:
    """The one sentence power.json and the report give for a design no scenario models."""
    shipped = ", ".join(SHIPPED)
    return f"power.scenario {configured}: {reasons[0]}; no shipped scenario ({shipped}) models it either"


def primary_size(settings: Settings) -> int:
    """m, the hypotheses of the primary family in a held-out group where every configured method ran: the
    comparisons of ``evaluate.primary`` that are made there (a method other than the reference, or a configured
    contrast whose two methods run) x the two tasks x ``evaluate.primary_metrics`` (at least 1)."""
    e, methods = settings.evaluate, set(settings.train.methods)
    contrasts = {contrast_name(a, b) for a, b in e.contrasts if a in methods and b in methods}
    made = [c for c in e.primary if c in contrasts or (c in methods and c != e.reference)]
    return max(1, len(made) * 2 * len(e.primary_metrics))


def run(settings: Settings, target: Path = paths.POWER) -> Path:
    """Simulate every held-out design; write power.json atomically; return its path."""
    p, e = settings.power, settings.evaluate
    attribute = settings.data.attribute
    declared = params.catalogue(settings)
    scale = settings.data.sim.scale if settings.data.source == "sim" else 1
    family = max(1, len(settings.train.methods) - 1)
    primary = primary_size(settings)
    options = candidates(p.scenario)
    document: dict[str, Any] = {
        "scenario": options[0].scenario.name, "scenario_sha256": options[0].sha256, "attribute": attribute,
        "reference": e.reference, "alpha": e.alpha, "family_size": family, "primary_size": primary,
        "ci_method": e.ci_method, "rule_resamples": p.rule_resamples, "churn": p.churn,
        "n_permutations": e.n_permutations, "replicates": p.replicates, "target": p.target, "scale": scale,
        "designs": {}}
    planned = []  # every design's simulation checked against memory before any runs
    for dataset, train_dataset in held_out(settings).items():
        design = declared[dataset]
        chosen, reasons = choose(options, design, attribute)
        if chosen is None:
            document["designs"][dataset] = {"not_simulated": not_simulated(reasons, p.scenario)}
            log.warning("minimum detectable effects of %s not computed: %s", dataset,
                        document["designs"][dataset]["not_simulated"])
            continue
        if sim.unmodelled(chosen.scenario, declared[train_dataset], attribute) is not None:
            train_dataset = dataset
        study = library.PowerStudy(scenario=chosen.name, dataset=dataset, attribute=attribute,
                                   reference=e.reference, train_dataset=train_dataset, scale=scale,
                                   replicates=p.replicates, truth_scale=p.truth_scale, target=p.target, seed=p.seed,
                                   churn=p.churn, rule_resamples=p.rule_resamples)
        layout = designs.layout(design, designs.attribute_of(design, attribute))
        memory.check(library.footprint(study, sim.sample_table(chosen.scenario, design, seed=p.seed),
                                       n_cells=layout.n_cells, n_permutations=e.n_permutations),
                     what=f"the power simulation of {dataset}")
        entry = {"scenario": chosen.scenario.name, "scenario_sha256": chosen.sha256, "train_dataset": train_dataset}
        if reasons:
            entry["scenario_chosen_because"] = f"power.scenario {p.scenario}: {reasons[0]}"
            log.info("power: %s simulated from scenario %r (%s)", dataset, chosen.scenario.name, reasons[0])
        document["designs"][dataset] = entry
        planned.append((study, chosen))
    for study, chosen in planned:
        document["designs"][study.dataset].update(library.measure_power(
            study, settings, declared=declared, alpha=e.alpha, family_size=family, primary_size=primary,
            scenario=chosen.scenario))
        log.info("power: %s simulated (%d replicates)", study.dataset, p.replicates)
    atomic.write_json(target, document)
    return target
