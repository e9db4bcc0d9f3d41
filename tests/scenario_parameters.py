"""Every fitted number of a simulator scenario, flattened, for exact comparisons in tests."""

from __future__ import annotations

from benchmark.sources import sim_scenario


def scenario_parameters(scenario: sim_scenario.Scenario) -> dict:
    """(dataset, "subject_cov") and (dataset, cell key, mean | sd | noise_corr) -> value."""
    out = {}
    for d, model in scenario.datasets.items():
        out[(d, "subject_cov")] = model.subject_cov
        for key, cell in model.cells.items():
            for name in ("mean", "sd", "noise_corr"):
                out[(d, key, name)] = getattr(cell, name)
    return out
