"""Hyper-parameter studies over corrector variants (Optuna), each trial an MLflow child run.

- :mod:`~benchmark.tuning.objective`: the objective, a callable class that knows nothing of storage or sampler;
- :mod:`~benchmark.tuning.study`: storage, sampler, pruner, study creation, the worker loop, best parameters;
- :mod:`~benchmark.tuning.mlflow_trials`: one parent run per invocation, one nested run per finished trial;
- :mod:`~benchmark.tuning.worker`: the objective built from params, and a start-up trial trained in its own process
  (imports only what training needs).
"""
