"""Method names -> method factories: the one list of what ``train.methods`` may name, and plug-ins.

Built in: ``uncorrected``, ``label_mask``, ``unimodal``, ``crossmodal_linear``, ``corrector``, ``corrector_tuned``.
Any other method: ``module:factory`` or ``path/to/file.py:factory`` (:mod:`benchmark.plugins`), a callable taking
the validated settings (and the keyword arguments of ``train.method_params[<spec>]``) and returning a
:class:`~benchmark.methods.base.Method`; the method's name in every result is the spec as written in
``train.methods``. The contract a method meets: :mod:`benchmark.methods.base` and docs/METHODS.md.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from benchmark.config import Settings
from benchmark.errors import BenchmarkError
from benchmark.methods.base import Method
from benchmark.plugins import is_spec, load_factory

EXPECTS = "a factory(settings, **train.method_params[spec]) -> benchmark.methods.base.Method"


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

    return Corrector(settings.train.corrector, device=settings.train.device)


def _corrector_tuned(settings: Settings) -> Method:
    from benchmark.methods.corrector import TunedCorrector
    from benchmark.methods.tuned import tuned_corrector_settings, tuned_for

    path = settings.train.tuned_params
    return TunedCorrector(tuned_corrector_settings(settings.train.corrector, path), tuned_for=tuned_for(path),
                          device=settings.train.device)


METHODS: dict[str, Callable[[Settings], Method]] = {
    "uncorrected": _uncorrected,
    "label_mask": _label_mask,
    "unimodal": _unimodal,
    "crossmodal_linear": _crossmodal_linear,
    "corrector": _corrector,
    "corrector_tuned": _corrector_tuned,
}


def check_method_name(name: str, *, where: str = "train.methods") -> None:
    """Raise BenchmarkError unless ``name`` is a built-in method or an importable plug-in spec."""
    if name in METHODS:
        return
    if is_spec(name):
        load_factory(name, where=where, expects=EXPECTS)
        return
    close = difflib.get_close_matches(name, list(METHODS), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(METHODS)} or module:factory"
    raise BenchmarkError(f"{where} has unknown method {name!r}{hint}")


def build_method(name: str, settings: Settings) -> Method:
    """Instantiate method ``name`` with its settings; a plug-in is checked against the method contract."""
    if name in METHODS:
        return METHODS[name](settings)
    where = f"train.methods: {name!r}"
    factory = load_factory(name, where="train.methods", expects=EXPECTS)
    kwargs = settings.train.method_params.get(name) or {}
    try:
        method = factory(settings, **kwargs)
    except TypeError as err:
        raise BenchmarkError(f"{where}: calling its factory failed ({err}); expected {EXPECTS}") from err
    if not isinstance(method, Method):
        raise BenchmarkError(f"{where}: its factory returned {type(method).__name__}, not a "
                             "benchmark.methods.base.Method (docs/METHODS.md)")
    if not isinstance(getattr(method, "stochastic", None), bool):
        raise BenchmarkError(f"{where}: its method's `stochastic` is {method.stochastic!r}; expected true or false")
    return method
