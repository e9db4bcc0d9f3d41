"""The tuning objective: subject-grouped CV inside the training dataset, several seeds per configuration.

It never sees the test dataset of the split: the folds it receives are built from the training dataset alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from benchmark.core import design as designs
from benchmark.core import metrics, predictions
from benchmark.core.design import Attribute
from benchmark.core.protocol import Fold
from benchmark.methods.method import FitTask, Method, Probabilities

if TYPE_CHECKING:  # a start-up batch's trial processes evaluate configurations without Optuna
    import optuna

#: objective name -> (directions, pruning allowed)
OBJECTIVES: dict[str, tuple[tuple[str, ...], bool]] = {
    "macro": (("maximize",), True),
    "macro_minus_gap": (("maximize",), True),
    "pareto": (("maximize", "minimize"), False),
}


#: the epochs a trial may train are the lower bound of the range plus multiples of this
EPOCH_STEP = 50


@dataclass(frozen=True)
class SearchSpace:
    """Ranges of the corrector's tunable parameters (inclusive; ``lr`` on a log scale)."""

    depth: tuple[int, int]
    width: tuple[int, int]
    dropout: tuple[float, float]
    attribute_weight: tuple[float, float]
    lr: tuple[float, float]
    epochs: tuple[int, int]
    batch_size: tuple[int, int]
    input: tuple[str, ...]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw one configuration; the names are the corrector's parameter names."""
        return {
            "depth": trial.suggest_int("depth", *self.depth),
            "width": trial.suggest_int("width", *self.width, log=True),
            "dropout": trial.suggest_float("dropout", *self.dropout),
            "attribute_weight": trial.suggest_float("attribute_weight", *self.attribute_weight),
            "lr": trial.suggest_float("lr", *self.lr, log=True),
            "epochs": trial.suggest_int("epochs", *self.epochs, step=EPOCH_STEP),
            "batch_size": trial.suggest_int("batch_size", *self.batch_size, log=True),
            "input": trial.suggest_categorical("input", list(self.input)),
        }


@dataclass(frozen=True)
class StrengthSpace:
    """The range of ``group_recalibration``'s fairness strength (inclusive, linear: it includes 0)."""

    strength: tuple[float, float]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw one strength; the name is the method's parameter name."""
        return {"strength": trial.suggest_float("strength", *self.strength)}


def cv_fold_scores(results: list[dict[str, Probabilities]], jobs: list[tuple[Fold, int]],
                   attribute: Attribute) -> pd.DataFrame:
    """CV (macro, average_gap) of one configuration per fold (rows in fold order), on each fold's held-out subjects.

    ``results[i]`` holds the predictions for the held-out ("test") table of ``jobs[i] = (fold, seed)``. Macro and gap
    are means over the two tasks (the attribute's, emotion) and the seeds, in percent.
    """
    rows = [predictions.make_rows(fold.evaluate["test"], attribute=attribute, split="cv", fold=fold.fold,
                                  method="trial", seed=seed, partition="test", group_probs=r["test"].attribute,
                                  emotion_probs=r["test"].emotion)
            .assign(split=f"fold{fold.fold}") for (fold, seed), r in zip(jobs, results)]
    design = jobs[0][0].train.design
    layouts = {design.name: designs.layout(design, attribute)}
    cells = metrics.cells_by_group(pd.concat(rows, ignore_index=True), tasks=predictions.tasks(attribute.name),
                                   layouts=layouts)
    summaries = metrics.summaries_by_group(cells)
    return summaries.groupby("split", sort=False)[["macro", "average_gap"]].mean()


def cv_scores(results: list[dict[str, Probabilities]], jobs: list[tuple[Fold, int]],
              attribute: Attribute) -> tuple[float, float]:
    """CV (macro, average gap) of one configuration: :func:`cv_fold_scores` averaged over the folds."""
    per_fold = cv_fold_scores(results, jobs, attribute)
    return float(per_fold["macro"].mean()), float(per_fold["average_gap"].mean())


@dataclass(frozen=True)
class Evaluation:
    """One configuration's CV result: the means over folds, the objective's value per fold (single objectives), and
    the score reported at each snapshot epoch (epoch -> score), in epoch order."""

    macro: float
    average_gap: float
    fold_values: tuple[float, ...]
    snapshots: tuple[tuple[int, float], ...]
    seconds: float | None = None  # training time, when the trial ran apart from its Optuna trial (a start-up batch)


class Objective:
    """Callable Optuna objective: suggest a configuration, train it on the CV folds, report, prune, return the score.

    The method is any :class:`~benchmark.methods.method.Method` that ``make_method`` builds from a suggested
    configuration (the corrector's variants, or ``group_recalibration`` at a strength). Every fold and seed of a
    configuration trains as one stack of models (per-step overhead dominates the corrector's training, so a stack of
    several costs little more than one). Pruning (single objective, when ``prune_epochs`` is not empty): after each
    epoch in ``prune_epochs`` below the trial's own epochs, the CV score of the networks at that epoch is reported at
    step = epoch and the pruner may stop the trial there. Steps are absolute epochs, so the pruner compares trials
    after equal training (a network's weights after epoch e do not depend on its total epochs).

    Parameters
    ----------
    folds : subject-grouped CV folds of the training dataset.
    attribute : the protected attribute.
    make_method : builds the method from a suggested configuration.
    space : the search space (``suggest(trial) -> configuration``): :class:`SearchSpace`, :class:`StrengthSpace`.
    seeds : seeds per configuration (trained together).
    objective : ``macro``, ``macro_minus_gap`` (macro - gap_weight * average gap) or ``pareto`` (macro, average gap).
    prune_epochs : the epochs at which a single-objective trial reports and may be pruned (the corrector's; empty for
        a method trained without epochs, whose trials are never pruned).
    """

    def __init__(self, folds: list[Fold], make_method: Callable[[dict[str, Any]], Method], *, attribute: Attribute,
                 space: SearchSpace | StrengthSpace, seeds: list[int], objective: str, gap_weight: float,
                 prune_epochs: Sequence[int] = ()) -> None:
        self.folds = folds
        self.attribute = attribute
        self.make_method = make_method
        self.space = space
        self.seeds = seeds
        self.objective = objective
        self.gap_weight = gap_weight
        self.prune_epochs = tuple(prune_epochs) if OBJECTIVES[objective][1] else ()

    def _score(self, macro: float, gap: float) -> float:
        return macro if self.objective == "macro" else macro - self.gap_weight * gap

    def evaluate(self, params: dict[str, Any],
                 on_snapshot: Callable[[int, float], None] | None = None) -> Evaluation:
        """Train ``params`` on every fold and seed; ``on_snapshot(epoch, score)`` after each snapshot epoch (it may
        raise :class:`optuna.TrialPruned` to stop training)."""
        jobs = [(fold, seed) for fold in self.folds for seed in self.seeds]
        tasks = [FitTask(fold.train, {"test": fold.evaluate["test"]}, seed, self.attribute) for fold, seed in jobs]
        snapshots: list[tuple[int, float]] = []

        def at_epoch(epoch: int, results: list[dict[str, Probabilities]]) -> None:
            snapshots.append((epoch, self._score(*cv_scores(results, jobs, self.attribute))))
            if on_snapshot is not None:
                on_snapshot(*snapshots[-1])

        method = self.make_method(params)
        results = (method.run(tasks, snapshot_epochs=self.prune_epochs, on_snapshot=at_epoch) if self.prune_epochs
                   else method.run(tasks))
        per_fold = cv_fold_scores(results, jobs, self.attribute)
        return Evaluation(float(per_fold["macro"].mean()), float(per_fold["average_gap"].mean()),
                          tuple(self._score(m, g) for m, g in zip(per_fold["macro"], per_fold["average_gap"])),
                          tuple(snapshots))

    def record(self, trial: optuna.Trial, params: dict[str, Any], result: Evaluation) -> float | tuple[float, float]:
        """Store ``result`` in ``trial`` (user attributes; the final report of a prunable trial); its value(s)."""
        trial.set_user_attr("cv_macro", result.macro)
        trial.set_user_attr("cv_average_gap", result.average_gap)
        trial.set_user_attr("cv_fold_values", list(result.fold_values))
        if result.seconds is not None:
            trial.set_user_attr("training_s", result.seconds)
        if self.objective == "pareto":
            return result.macro, result.average_gap
        if self.prune_epochs:
            trial.report(self._score(result.macro, result.average_gap), params["epochs"])
        return self._score(result.macro, result.average_gap)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        import optuna

        params = self.space.suggest(trial)

        def report(epoch: int, score: float) -> None:
            trial.report(score, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch}")

        return self.record(trial, params, self.evaluate(params, on_snapshot=report))
