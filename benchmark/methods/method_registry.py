"""Method names -> method factories: the one list of what ``train.methods`` may name, and plug-ins.

Built in: ``uncorrected``, ``label_mask``, ``unimodal``, ``crossmodal_linear``, ``corrector``, ``corrector_tuned``,
and the fairness post-processing baselines ``group_recalibration`` (also ``group_recalibration@<strength>``: the same
method at that fairness strength, so a list of them traces a curve), ``group_recalibration_tuned``,
``lp_equal_opportunity``, ``lp_equalized_odds`` and ``threshold_optimizer`` (docs/FAIRNESS_BASELINES.md; the last
needs the optional extra ``fairness``).
Any other method: ``module:factory`` or ``path/to/file.py:factory`` (:mod:`benchmark.infra.plugins`), a callable taking
the validated settings (and the keyword arguments of ``train.method_params[<spec>]``) and returning a
:class:`~benchmark.methods.method.Method`; the method's name in every result is the spec as written in
``train.methods``. The contract a method meets: :mod:`benchmark.methods.method` and docs/METHODS.md.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from benchmark.core.settings import Settings
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.optional import require
from benchmark.infra.plugins import is_spec, load_factory
from benchmark.methods.method import Method

EXPECTS = "a factory(settings, **train.method_params[spec]) -> benchmark.methods.method.Method"


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


def _group_recalibration(settings: Settings, strength: float | None = None) -> Method:
    from benchmark.methods.fair_recalibration import GroupRecalibration

    fairness = settings.train.fairness
    return GroupRecalibration(strength=fairness.strength if strength is None else strength, ridge=fairness.ridge)


def _group_recalibration_tuned(settings: Settings) -> Method:
    from benchmark.methods.fair_recalibration import TunedGroupRecalibration
    from benchmark.methods.tuned import tuned_for, tuned_strength

    path = settings.train.tuned_params
    return TunedGroupRecalibration(strength=tuned_strength(path), ridge=settings.train.fairness.ridge,
                                   tuned_for=tuned_for(path))


def _lp(constraint: str) -> Callable[[Settings], Method]:
    def factory(settings: Settings) -> Method:
        from benchmark.methods.lp_postprocess import LPPostprocess

        return LPPostprocess(constraint)

    return factory


def _threshold_optimizer(settings: Settings) -> Method:
    from benchmark.methods.threshold import ThresholdOptimizerMethod

    return ThresholdOptimizerMethod(objective=settings.train.fairness.threshold_objective)


METHODS: dict[str, Callable[[Settings], Method]] = {
    "uncorrected": _uncorrected,
    "label_mask": _label_mask,
    "unimodal": _unimodal,
    "crossmodal_linear": _crossmodal_linear,
    "corrector": _corrector,
    "corrector_tuned": _corrector_tuned,
    "group_recalibration": _group_recalibration,
    "group_recalibration_tuned": _group_recalibration_tuned,
    "lp_equal_opportunity": _lp("equal_opportunity"),
    "lp_equalized_odds": _lp("equalized_odds"),
    "threshold_optimizer": _threshold_optimizer,
}
#: built-in method -> the optional module it needs (benchmark.infra.optional names the extra that installs it)
NEEDS: dict[str, str] = {"threshold_optimizer": "fairlearn"}
#: built-in methods with a fairness strength: ``name@<strength>`` runs them at that strength
WITH_STRENGTH: dict[str, Callable[[Settings, float], Method]] = {"group_recalibration": _group_recalibration}
STRENGTH_SEPARATOR = "@"


def parse_strength(name: str, *, where: str = "train.methods") -> tuple[str, float] | None:
    """``group_recalibration@4`` -> ("group_recalibration", 4.0); None for a name without ``@``. One line naming
    ``where`` for a method without a strength or a value that is not a non-negative number."""
    if STRENGTH_SEPARATOR not in name or is_spec(name):
        return None
    base, _, value = name.partition(STRENGTH_SEPARATOR)
    if base not in WITH_STRENGTH:
        raise BenchmarkError(f"{where}: {name!r}: {base!r} takes no fairness strength; name{STRENGTH_SEPARATOR}strength "
                             f"works for {', '.join(WITH_STRENGTH)}")
    try:
        strength = float(value)
    except ValueError:
        strength = -1.0
    if not strength >= 0.0 or strength == float("inf"):
        raise BenchmarkError(f"{where}: {name!r}: the strength after {STRENGTH_SEPARATOR!r} must be a finite number "
                             f">= 0, got {value!r}")
    return base, strength


def check_method_name(name: str, *, where: str = "train.methods") -> None:
    """Raise BenchmarkError unless ``name`` is a built-in method or an importable plug-in spec."""
    if name in METHODS or parse_strength(name, where=where) is not None:
        if name in NEEDS:
            require(NEEDS[name], user=f"{where}: {name!r}")
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
    if (parsed := parse_strength(name)) is not None:
        return WITH_STRENGTH[parsed[0]](settings, parsed[1])
    where = f"train.methods: {name!r}"
    factory = load_factory(name, where="train.methods", expects=EXPECTS)
    kwargs = settings.train.method_params.get(name) or {}
    try:
        method = factory(settings, **kwargs)
    except TypeError as err:
        raise BenchmarkError(f"{where}: calling its factory failed ({err}); expected {EXPECTS}") from err
    if not isinstance(method, Method):
        raise BenchmarkError(f"{where}: its factory returned {type(method).__name__}, not a "
                             "benchmark.methods.method.Method (docs/METHODS.md)")
    if not isinstance(getattr(method, "stochastic", None), bool):
        raise BenchmarkError(f"{where}: its method's `stochastic` is {method.stochastic!r}; expected true or false")
    return method
