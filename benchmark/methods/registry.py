"""Method names -> method factories: the one list of what `train.methods` may name."""

from __future__ import annotations

from collections.abc import Callable

from benchmark.config import Settings
from benchmark.methods.base import Method
from benchmark.methods.baselines import Uncorrected

METHODS: dict[str, Callable[[Settings], Method]] = {
    "uncorrected": lambda settings: Uncorrected(),
}


def build_method(name: str, settings: Settings) -> Method:
    """Instantiate method ``name`` with its settings (``name`` was validated against METHODS by the config)."""
    return METHODS[name](settings)
