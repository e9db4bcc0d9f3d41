"""The tuning objective: subject-grouped CV inside the training dataset, several seeds per configuration.

It never sees the test dataset of the split: the folds it receives are built from the training dataset alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd

from benchmark import metrics, predictions
from benchmark.methods.base import FitTask, Method
from benchmark.protocol import Fold

#: objective name -> (directions, pruning allowed)
OBJECTIVES: dict[str, tuple[tuple[str, ...], bool]] = {
    "macro": (("maximize",), True),
    "macro_minus_gap": (("maximize",), True),
    "pareto": (("maximize", "minimize"), False),
}


@dataclass(frozen=True)
class SearchSpace:
    """Ranges of the corrector's tunable parameters (inclusive; ``lr`` on a log scale)."""

    depth: tuple[int, int]
    width: tuple[int, int]
    dropout: tuple[float, float]
    gender_weight: tuple[float, float]
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
            "gender_weight": trial.suggest_float("gender_weight", *self.gender_weight),
            "lr": trial.suggest_float("lr", *self.lr, log=True),
            "epochs": trial.suggest_int("epochs", *self.epochs, step=50),
            "batch_size": trial.suggest_int("batch_size", *self.batch_size, log=True),
            "input": trial.suggest_categorical("input", list(self.input)),
        }


def fold_scores(method: Method, folds: list[Fold], seeds: list[int]) -> list[tuple[float, float]]:
    """Train ``method`` on every fold with each seed, all as one batch of models; return (macro, average gap) per
    fold on its held-out subjects. Both are means over the two tasks (gender, emotion) and the seeds, in percent."""
    jobs = [(fold, seed) for fold in folds for seed in seeds]
    results = method.run([FitTask(fold.train, {"test": fold.evaluate["test"]}, seed) for fold, seed in jobs])
    rows = [predictions.make_rows(fold.evaluate["test"], split="cv", fold=fold.fold, method="trial", seed=seed,
                                  partition="test", gender_probs=r["test"].gender, emotion_probs=r["test"].emotion)
            .assign(split=f"fold{fold.fold}") for (fold, seed), r in zip(jobs, results)]
    summaries = metrics.summaries_by_group(metrics.cells_by_group(pd.concat(rows, ignore_index=True)))
    per_fold = summaries.groupby("split", sort=False)[["macro", "average_gap"]].mean()
    return [(float(per_fold.loc[f"fold{fold.fold}", "macro"]), float(per_fold.loc[f"fold{fold.fold}", "average_gap"]))
            for fold in folds]


class Objective:
    """Callable Optuna objective: suggest a configuration, train it on the CV folds, report, prune, return the score.

    Pruning across folds: the first fold is trained alone and reported; a trial the pruner stops there costs one
    fold's training. The remaining folds are trained together (one stack of models: per-step overhead, not
    arithmetic, dominates the corrector's training, so more models per stack are almost free).

    Parameters
    ----------
    folds : subject-grouped CV folds of the training dataset.
    make_method : builds the corrector from a suggested configuration.
    space : the search space.
    seeds : seeds per configuration (trained together).
    objective : ``macro``, ``macro_minus_gap`` (macro - gap_weight * average gap) or ``pareto`` (macro, average gap).
    """

    def __init__(self, folds: list[Fold], make_method: Callable[[dict[str, Any]], Method], *, space: SearchSpace,
                 seeds: list[int], objective: str, gap_weight: float) -> None:
        self.folds = folds
        self.make_method = make_method
        self.space = space
        self.seeds = seeds
        self.objective = objective
        self.gap_weight = gap_weight

    def _score(self, macro: float, gap: float) -> float:
        return macro if self.objective == "macro" else macro - self.gap_weight * gap

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        """Train the first fold alone (a cheap look that may prune the trial), then the other folds together."""
        method = self.make_method(self.space.suggest(trial))
        macros: list[float] = []
        gaps: list[float] = []
        for group in (self.folds[:1], self.folds[1:]):
            for macro, gap in fold_scores(method, group, self.seeds):
                macros.append(macro)
                gaps.append(gap)
            if self.objective != "pareto":
                trial.report(self._score(float(np.mean(macros)), float(np.mean(gaps))), len(macros) - 1)
                if trial.should_prune():
                    raise optuna.TrialPruned()
        trial.set_user_attr("cv_macro", float(np.mean(macros)))
        trial.set_user_attr("cv_average_gap", float(np.mean(gaps)))
        if self.objective == "pareto":
            return float(np.mean(macros)), float(np.mean(gaps))
        return self._score(float(np.mean(macros)), float(np.mean(gaps)))
