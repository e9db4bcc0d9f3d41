"""MLflow for studies: the stage opens one parent run per invocation; this callback adds one nested child run per
finished trial (params, CV metrics, the CV score at each pruning epoch, state and duration). Optuna's own MLflow callback does
not create the parent run, so we log the children ourselves."""

from __future__ import annotations

from typing import Any

import optuna

from benchmark.tuning.study import trial_seconds

#: trial state -> MLflow run status of its child run
RUN_STATUS = {
    optuna.trial.TrialState.COMPLETE: "FINISHED",
    optuna.trial.TrialState.PRUNED: "KILLED",
    optuna.trial.TrialState.FAIL: "FAILED",
}


class TrialRunLogger:
    """Optuna callback: log each finished trial as a child of the active MLflow parent run."""

    def __init__(self, mlflow: Any, *, parent_run_id: str, tags: dict[str, str], inputs: list[Any] | None = None) -> None:
        self.mlflow = mlflow
        self.inputs = inputs or []   # MLflow dataset inputs (the table the trials were scored on)
        self.parent_run_id = parent_run_id
        self.tags = tags

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        client = self.mlflow.MlflowClient()
        experiment_id = client.get_run(self.parent_run_id).info.experiment_id
        tags = {**self.tags, "mlflow.parentRunId": self.parent_run_id, "trial": str(trial.number),
                "state": trial.state.name, "mlflow.runName": f"trial-{trial.number:04d}"}
        run = client.create_run(experiment_id, tags=tags)
        run_id = run.info.run_id
        if self.inputs:
            client.log_inputs(run_id, datasets=self.inputs)
        for name, value in trial.params.items():
            client.log_param(run_id, name, value)
        metrics = {k: float(v) for k, v in trial.user_attrs.items() if isinstance(v, (int, float))}
        if trial.values is not None:
            names = ["value"] if len(trial.values) == 1 else ["cv_macro", "cv_average_gap"]
            metrics.update(dict(zip(names, map(float, trial.values))))
        if (seconds := trial_seconds(trial)) is not None:
            metrics["duration_s"] = seconds
        for name, value in metrics.items():
            client.log_metric(run_id, name, value)
        for step, value in sorted(trial.intermediate_values.items()):
            client.log_metric(run_id, "cv_score", float(value), step=step)   # step = epoch
        client.set_terminated(run_id, status=RUN_STATUS.get(trial.state, "FAILED"))
