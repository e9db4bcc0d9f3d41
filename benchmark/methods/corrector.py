"""The paper's correction network as methods: ``corrector`` (``train.corrector``) and ``corrector_tuned`` (the
configuration a study chose). The network and its randomness contract: :mod:`benchmark.methods.network`; the
vectorised trainer that fits all folds x seeds of a split in one loop: :mod:`benchmark.methods.trainer`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np

from benchmark.core.settings import CorrectorSettings
from benchmark.methods.device import resolve_device
from benchmark.methods.inputs import features
from benchmark.methods.method import FitTask, Method, Probabilities
from benchmark.methods.network import Architecture, TrainingData, Weights, predict
from benchmark.methods.trainer import train_many
from benchmark.methods.tuned import tuned_skip_reason


class Corrector(Method):
    """The paper's correction network (``train.corrector``); all tasks of a split are trained by one ``train_many``,
    on ``device`` (``train.device``: cpu, cuda or auto)."""

    name = "corrector"
    stochastic = True

    def __init__(self, settings: CorrectorSettings, *, device: str = "cpu") -> None:
        self.settings, self.device = settings, device
        self.fitted: list[Weights] = []

    def run(self, tasks: list[FitTask], *, snapshot_epochs: Sequence[int] = (),
            on_snapshot: Callable[[int, list[dict[str, Probabilities]]], None] | None = None,
            ) -> list[dict[str, Probabilities]]:
        """Train one network per task and predict its evaluation tables.

        ``on_snapshot(e, results)``: for each epoch e of ``snapshot_epochs`` below the configured epochs, the tasks'
        predictions by the networks after e epochs (the tuning objective prunes with them; what it raises stops
        training).
        """
        if not tasks:
            return []
        n_emotion, attribute = len(tasks[0].train.emotion_classes), tasks[0].attribute
        arch = Architecture.for_attribute(n_emotion, attribute, depth=self.settings.depth, width=self.settings.width)
        data = [TrainingData.from_table(t.train, attribute, input=self.settings.input) for t in tasks]

        def predict_all(weights: list[Weights]) -> list[dict[str, Probabilities]]:
            return [{part: Probabilities(*predict(w, features(table, attribute, input=self.settings.input),
                                                  n_emotion=n_emotion))
                     for part, table in task.evaluate.items()} for task, w in zip(tasks, weights)]

        relay = None if on_snapshot is None else (lambda epoch, weights: on_snapshot(epoch, predict_all(weights)))
        device = resolve_device(self.device, where="train.device")
        self.fitted = train_many(data, [t.seed for t in tasks], arch=arch, settings=self.settings, device=device,
                                 snapshot_epochs=snapshot_epochs, on_snapshot=relay)
        return predict_all(self.fitted)

    def configuration(self) -> Hashable:
        """The code that trains (a subclass that trains differently overrides ``run``), the network, its training and
        the device: a tuned corrector whose study chose ``train.corrector``'s configuration trains the same."""
        return (type(self).run, self.settings, self.device)

    def fitted_arrays(self) -> list[dict[str, np.ndarray]]:
        return [{f"layer{l}.{name}": arr for l, (w, b) in enumerate(weights.layers)
                 for name, arr in (("weight", w), ("bias", b))} for weights in self.fitted]


class TunedCorrector(Corrector):
    """The corrector with the configuration a study chose for split ``tuned_for`` (``corrector_tuned``), run on that
    split only. The study scored configurations by CV inside the split's training dataset: a split that tests on that
    dataset would report on the data that chose the configuration (optimistic), and another transfer is not what it
    was tuned for."""

    name = "corrector_tuned"

    def __init__(self, settings: CorrectorSettings, *, tuned_for: str, device: str = "cpu") -> None:
        super().__init__(settings, device=device)
        self.tuned_for = tuned_for

    def skip_reason(self, split: str) -> str | None:
        return tuned_skip_reason(split, self.tuned_for)
