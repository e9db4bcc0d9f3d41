"""Method names -> method factories: the one list of what `train.methods` may name."""

from __future__ import annotations

from collections.abc import Callable

from benchmark.config import Settings
from benchmark.methods.base import Method


# Factories import their modules when called, so validating params.yaml does not load torch or scikit-learn.
def _uncorrected(settings: Settings) -> Method:
    from benchmark.methods.baselines import Uncorrected

    return Uncorrected()


def _label_mask(settings: Settings) -> Method:
    from benchmark.methods.baselines import LabelMask

    return LabelMask()


def _unimodal(settings: Settings) -> Method:
    from benchmark.methods.baselines import Unimodal

    return Unimodal(settings.train.linear)


def _crossmodal_linear(settings: Settings) -> Method:
    from benchmark.methods.baselines import CrossmodalLinear

    return CrossmodalLinear(settings.train.linear)


def _corrector(settings: Settings) -> Method:
    from benchmark.methods.corrector import Corrector

    return Corrector(settings.train.corrector)


def _corrector_tuned(settings: Settings) -> Method:
    from benchmark.methods.corrector import TunedCorrector
    from benchmark.tuning.summary import tuned_corrector_settings, tuned_for

    path = settings.train.tuned_params
    return TunedCorrector(tuned_corrector_settings(settings.train.corrector, path), tuned_for=tuned_for(path))


METHODS: dict[str, Callable[[Settings], Method]] = {
    "uncorrected": _uncorrected,
    "label_mask": _label_mask,
    "unimodal": _unimodal,
    "crossmodal_linear": _crossmodal_linear,
    "corrector": _corrector,
    "corrector_tuned": _corrector_tuned,
}


def build_method(name: str, settings: Settings) -> Method:
    """Instantiate method ``name`` with its settings (``name`` was validated against METHODS by the config)."""
    return METHODS[name](settings)
