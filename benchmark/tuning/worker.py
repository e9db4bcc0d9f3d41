"""What a trial process of a start-up batch needs: the objective built from params, and one configuration trained.

Kept apart from the stage (Optuna, its storage, MLflow), so a trial process imports only what training needs.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from benchmark.core import design as designs
from benchmark.core import outputs, protocol
from benchmark.core.settings import Settings, TuneSettings
from benchmark.infra import paths
from benchmark.infra.errors import BenchmarkError
from benchmark.methods.method import Method
from benchmark.tuning.objective import Evaluation, Objective, SearchSpace, StrengthSpace


def search_space(tune: TuneSettings) -> SearchSpace:
    """The search space of ``tune.space`` (ranges as tuples)."""
    space = tune.space
    return SearchSpace(depth=tuple(space.depth), width=tuple(space.width), dropout=tuple(space.dropout),
                       attribute_weight=tuple(space.attribute_weight), lr=tuple(space.lr), epochs=tuple(space.epochs),
                       batch_size=tuple(space.batch_size), input=tuple(space.input))


def build_objective(settings: Settings, outputs_dir: Path) -> Objective:
    """The objective over CV folds of the tuned split's training dataset (the test dataset is never read)."""
    tune = settings.tune
    train_dataset = protocol.parse_split(tune.split, where="tune.split").train
    if train_dataset not in settings.data.datasets:
        raise BenchmarkError(f"tune.split: {tune.split!r} tunes by CV inside {train_dataset!r}, which is not in "
                             f"data.datasets ({', '.join(settings.data.datasets)}); fetch it or set tune.split")
    table = outputs.read(paths.outputs_table(train_dataset, outputs_dir), attribute=settings.data.attribute)
    attribute = designs.attribute_of(table.design, settings.data.attribute)
    folds = protocol.make_folds(f"cv:{train_dataset}", {train_dataset: table}, attribute=attribute,
                                cv_folds=tune.cv_folds, cv_seed=tune.seed)
    base, ridge = settings.train.corrector, settings.train.fairness.ridge
    seeds = [tune.seed + i for i in range(tune.n_seeds)]
    if tune.method == "group_recalibration":  # deterministic and epoch-free: one seed, nothing to prune
        from benchmark.methods.fair_recalibration import GroupRecalibration  # scipy: imported where trials train

        return Objective(folds, lambda params: GroupRecalibration(strength=params["strength"], ridge=ridge),
                         attribute=attribute, space=StrengthSpace(tuple(tune.space.strength)), seeds=seeds[:1],
                         objective=tune.objective, gap_weight=tune.gap_weight)

    def make_method(params: dict[str, Any]) -> Method:
        from benchmark.methods.corrector import Corrector  # torch (seconds): imported only where trials train

        return Corrector(dataclasses.replace(base, **params), device=settings.train.device)

    return Objective(folds, make_method, attribute=attribute, space=search_space(tune), seeds=seeds,
                     objective=tune.objective, gap_weight=tune.gap_weight,
                     prune_epochs=sorted(set(tune.prune_epochs)) if tune.pruning else ())


def evaluate_in_worker(settings: Settings, outputs_dir: Path, params: dict[str, Any]) -> Evaluation:
    """One start-up trial's configuration trained in a worker process (single-threaded torch: the workers use the
    cores); nothing is pruned, the snapshot scores come back for the parent to report."""
    import torch

    torch.set_num_threads(1)
    objective = build_objective(settings, outputs_dir)
    start = time.perf_counter()  # the training alone, as a sequential trial's duration counts no table reading
    result = objective.evaluate(params)
    return dataclasses.replace(result, seconds=time.perf_counter() - start)
