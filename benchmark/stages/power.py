"""Stage ``power``: the minimum detectable effects of every held-out design -> ``results/power.json``.

For each dataset some split tests on (``A->B``: B; ``cv:A``: A), :func:`benchmark.studies.power_study.measure_power` simulates the design
from ``power.scenario`` (at ``data.sim.scale`` subjects for simulated data, else the real design) and finds the
smallest difference in macro accuracy and in average gap that the evaluate stage's permutation test detects with
``power.target`` power, at ``evaluate.alpha`` and at Holm's first step over the methods compared with the reference.
It depends on the scenario, the design and the statistics settings only, so DVC reruns it rarely.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from benchmark.core.protocol import parse_split
from benchmark.core.settings import Settings
from benchmark.experiment import params
from benchmark.infra import atomic, paths
from benchmark.infra.errors import BenchmarkError
from benchmark.sources import sim
from benchmark.studies import power_study as library

log = logging.getLogger(__name__)


def held_out(settings: Settings) -> list[str]:
    """The datasets the splits test on, in the order of ``train.splits``."""
    return list(dict.fromkeys(parse_split(split).test for split in settings.train.splits))


def run(settings: Settings, target: Path = paths.POWER) -> Path:
    """Simulate every held-out design; write power.json atomically; return its path."""
    p, e = settings.power, settings.evaluate
    declared = params.catalogue(settings)
    scale = settings.data.sim.scale if settings.data.source == "sim" else 1
    family = max(1, len(settings.train.methods) - 1)
    scenario = sim.read(p.scenario)
    document: dict[str, Any] = {
        "scenario": scenario.name, "scenario_sha256": sim.sha256_of(p.scenario), "attribute": settings.data.attribute,
        "reference": e.reference, "alpha": e.alpha, "family_size": family, "n_permutations": e.n_permutations,
        "replicates": p.replicates, "target": p.target, "scale": scale, "designs": {}}
    for dataset in held_out(settings):
        try:
            sim.sample_table(scenario, declared[dataset], seed=p.seed, scale=1)
        except BenchmarkError as err:  # the scenario has no model of this dataset: say so in the report
            document["designs"][dataset] = {"not_simulated": str(err)}
            log.warning("power: %s not simulated: %s", dataset, err)
            continue
        study = library.PowerStudy(scenario=p.scenario, dataset=dataset, attribute=settings.data.attribute,
                                   reference=e.reference, scale=scale, replicates=p.replicates,
                                   truth_scale=p.truth_scale, target=p.target, seed=p.seed)
        document["designs"][dataset] = library.measure_power(study, settings, declared=declared, alpha=e.alpha,
                                                   family_size=family, scenario=scenario)
        log.info("power: %s simulated (%d replicates)", dataset, p.replicates)
    atomic.write_json(target, document)
    return target
