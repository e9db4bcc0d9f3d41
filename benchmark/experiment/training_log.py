"""MLflow records of the train stage: the stage run ``train`` and under it one run ``train:<split>:<method>`` per
(split, method).

Each of those carries the params (all of params.yaml, flattened), the tags of :mod:`benchmark.experiment.tracking` (source, split,
method, git commit, params hash), the paper's metrics per seed (stepped metrics, step = seed) and their seed mean and
sd, the training time, and what the method fitted as ``fitted.npz`` (arrays named ``fold<f>.seed<s>.<name>``); a run
that fitted correction networks also logs them as an MLflow model with its metrics linked to it and to the datasets
they were measured on (:mod:`benchmark.experiment.logged_models`), and the tuned configuration's model is registered.
Everything else of a run goes in one batched call, so logging stays a small part of the stage.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark import stats
from benchmark.core import metrics, protocol
from benchmark.core.design import CellLayout
from benchmark.core.settings import Settings, as_dict, flatten
from benchmark.experiment import logged_models, tracking
from benchmark.experiment.run_matrix import TrainInputs

if TYPE_CHECKING:
    from benchmark.experiment.run_matrix import MethodRun

_PARAMS_PER_BATCH = 100   # MLflow's log_batch limits
_METRICS_PER_BATCH = 1000


def metric_values(runs: list[MethodRun], *, attribute: str,
                  layouts: dict[str, CellLayout]) -> dict[tuple[str, str], dict[str, list[tuple[int, float]]]]:
    """(split, method) -> metric key -> [(seed, value)]: every headline metric row (:data:`metrics.HEADLINE`) per
    dataset, partition and task (``<dataset>_<partition>.<task>/<metric>``)."""
    out: dict[tuple[str, str], dict[str, list[tuple[int, float]]]] = {}
    for run in runs:
        for (partition, dataset), rows in run.rows.groupby(["partition", "dataset"], sort=True, observed=True):
            layout = layouts[dataset]
            seeds, values = stats.seed_values(rows, layout=layout, attribute=attribute)  # (T, K, M)
            columns = [(j, m.key((g, e))) for j, (name, g, e) in enumerate(stats.metric_entries(layout))
                       for m in metrics.HEADLINE if m.name == name]
            slot = out.setdefault((run.split, run.method), {})
            for t, task in enumerate((attribute, "emotion")):
                for j, key in columns:
                    name = tracking.metric_key(f"{dataset}_{partition}", task, key)
                    slot[name] = [(seed, float(v)) for seed, v in zip(seeds, values[t, :, j]) if not np.isnan(v)]
    return out


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)] or [[]]


def log_runs(settings: Settings, runs: list[MethodRun], *, source: str, attribute: str, train: TrainInputs,
             inputs: dict[str, Any]) -> None:
    """Log the stage run ``train`` and under it one MLflow run per (split, method) of the train stage; ``source`` is
    the data's (from its metadata); ``train`` the stage's resolved inputs (tables for the models' input examples,
    cells, each split's attribute); ``inputs`` (dataset -> MLflow dataset input,
    :func:`benchmark.experiment.tracking.table_inputs`) are the outputs tables, each run gets those of its split."""
    mlflow = tracking.setup(settings.tracking)
    from mlflow.entities import Param

    client = mlflow.MlflowClient()
    flat = flatten(as_dict(settings))
    params = [Param(k, str(v)[:500]) for k, v in sorted(flat.items())]
    common = {"source": source, "attribute": attribute, "params_hash": tracking.params_hash(flat), "stage": "train"}
    values = metric_values(runs, attribute=attribute, layouts=train.layouts)
    with tracking.stage_run(mlflow, settings.tracking, "train", stage="train", tags=common):
        tracking.log_inputs(mlflow, inputs.values())
        models: dict[tuple[str, str], str] = {}   # (split, method) -> the model of its networks
        for run in runs:
            model_id = _log_run(mlflow, client, run, settings=settings, tags=common, params=params,
                                values=values.get((run.split, run.method), {}), inputs=inputs, train=train)
            if model_id is not None:
                models[run.split, run.method] = model_id
            tuned = models.get((run.split, run.shared_with or run.method))
            if run.method == "corrector_tuned" and tuned is not None:   # a shared run's networks are the other's
                logged_models.register_tuned(mlflow, tuned, experiment=settings.tracking.experiment)


def _log_run(mlflow: Any, client: Any, run: MethodRun, *, settings: Settings, tags: dict[str, str], params: list[Any],
             values: dict[str, list[tuple[int, float]]], inputs: dict[str, Any], train: TrainInputs) -> str | None:
    """One (split, method)'s run, nested under the active stage run; returns its model's id, if it logged one."""
    from mlflow.entities import Metric

    from benchmark.methods.method_registry import build_method

    tags = {**tags, "split": run.split, "method": run.method, **({"shared_with": run.shared_with} if run.shared_with else {})}
    datasets = protocol.parse_split(run.split).datasets
    with tracking.mlflow_run(mlflow, f"train:{run.split}:{run.method}", tags=tags, nested=True) as active:
        run_id = active.info.run_id
        tracking.log_inputs(mlflow, [inputs[d] for d in datasets], run_id=run_id)
        model_id = None
        if logged_models.has_networks(run):
            method = build_method(run.method, settings)
            model_id = logged_models.log_networks(
                mlflow, run, tables=train.tables, attribute=train.splits[run.split],
                corrector_input=method.settings.input)

        now = int(time.time() * 1000)

        def metric(key: str, value: float, step: int) -> Metric:
            """A metric linked to the run's model and to the dataset it was measured on (``<dataset>_<partition>.``)."""
            if model_id is None:
                return Metric(key, value, now, step)
            dataset = inputs[key.split(".", 1)[0].rsplit("_", 1)[0]].dataset
            return Metric(key, value, now, step, model_id=model_id, dataset_name=dataset.name,
                          dataset_digest=dataset.digest)

        entries = [Metric("train_seconds", run.seconds, now, 0), Metric("n_models", float(len(run.jobs)), now, 0)]
        for key, per_seed in values.items():
            entries += [metric(key, v, seed) for seed, v in per_seed]
            seed_values = np.array([v for _, v in per_seed])
            sd = float(seed_values.std(ddof=1)) if len(seed_values) > 1 else 0.0
            entries += [metric(f"{key}_seed_mean", float(seed_values.mean()), 0),
                        metric(f"{key}_seed_sd", sd, 0)]
        param_chunks = _batches(params, _PARAMS_PER_BATCH)
        metric_chunks = _batches(entries, _METRICS_PER_BATCH - _PARAMS_PER_BATCH)
        for i in range(max(len(param_chunks), len(metric_chunks))):
            client.log_batch(run_id, params=param_chunks[i] if i < len(param_chunks) else [],
                             metrics=metric_chunks[i] if i < len(metric_chunks) else [])
        if any(run.fitted) and not run.shared_with:  # a shared run's weights are those of the run it names
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "fitted.npz"
                arrays = {f"fold{fold}.seed{seed}.{name}": arr
                          for (fold, seed), fitted in zip(run.jobs, run.fitted) for name, arr in fitted.items()}
                np.savez_compressed(path, **arrays)
                client.log_artifact(run_id, str(path))
    return model_id
