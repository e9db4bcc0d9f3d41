"""Optional dependencies: which pyproject extra provides each, and one line naming it when one is missing.

The fairness baselines and the training data's bias profile use third-party libraries of the extra ``fairness``
(``make setup`` installs it; docs/FAIRNESS_BASELINES.md). Nothing else needs them, so a core install runs every
other method and stage.
"""

from __future__ import annotations

import importlib.util

from benchmark.infra.errors import BenchmarkError

#: importable module -> (distribution, extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "fairlearn": ("fairlearn", "fairness"),
    "dataset_bias_metrics": ("dataset-bias-metrics", "fairness"),
}


def available(module: str) -> bool:
    """Whether ``module`` (a key of EXTRAS) can be imported here (without importing it)."""
    return importlib.util.find_spec(module) is not None


def require(module: str, *, user: str) -> None:
    """Raise BenchmarkError, one line naming ``user``, the missing distribution and the extra to install, unless
    ``module`` is importable."""
    if available(module):
        return
    distribution, extra = EXTRAS[module]
    raise BenchmarkError(f"{user} needs {distribution}, which is not installed: install the optional extra "
                         f"'{extra}' (pip install -c constraints.txt -e '.[{extra}]', or make setup)")
