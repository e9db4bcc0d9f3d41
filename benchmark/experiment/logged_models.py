"""The train stage's corrector networks as MLflow models: one pyfunc model per (split, method) run that fitted
networks (:mod:`benchmark.experiment.corrector_model`, logged as code), with an input example and a signature taken
from the run's own rows; the run's metrics are linked to it and to the datasets they were measured on; the tuned
configuration's model is registered, and the alias :data:`TUNED_ALIAS` moved to its newest version."""

from __future__ import annotations

import json
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from benchmark.core import predictions, protocol
from benchmark.core.design import Attribute
from benchmark.core.outputs import OutputsTable
from benchmark.infra import cpu_pin

if TYPE_CHECKING:
    from benchmark.experiment.run_matrix import MethodRun

MODEL_CODE = Path(__file__).with_name("corrector_model.py")
#: the model's name within its run
MODEL_NAME = "corrector"
#: the alias of the registered tuned corrector's newest version
TUNED_ALIAS = "tuned"
#: rows of the input example (the first test rows of the run's first network)
EXAMPLE_ROWS = 5
#: what loading the model needs (pinned to this environment's versions)
REQUIREMENTS = ("mlflow", "numpy", "pandas", "torch")


def prepare() -> None:
    """What the first :func:`log_networks` of a process would otherwise spend seconds on, done ahead (the train stage
    runs it in a thread while the networks train): MLflow's pyfunc import and its map of installed packages, which
    ``log_model`` builds to check the model's requirements against this environment by listing every installed
    distribution's files (13 of the first call's 16 s in a profile under a load of 11-15 on two cores)."""
    import mlflow.pyfunc  # noqa: F401
    from mlflow.utils.requirements_utils import _init_packages_to_modules_map

    _init_packages_to_modules_map()


def has_networks(run: MethodRun) -> bool:
    """Whether the run fitted correction networks of its own (not a run sharing another's results)."""
    return not run.shared_with and bool(run.fitted) and "layer0.weight" in run.fitted[0]


def registered_name(experiment: str) -> str:
    """The registry name of an experiment's tuned corrector."""
    return f"{experiment}.corrector_tuned"


def _example(run: MethodRun, tables: dict[str, OutputsTable], attribute: Attribute,
             classes: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Input example (the outputs table's columns the model reads) and its output (the run's own predictions)."""
    fold, seed = run.jobs[0]
    rows = run.rows[(run.rows["fold"] == fold) & (run.rows["seed"] == seed) & (run.rows["partition"] == "test")]
    rows = rows.head(EXAMPLE_ROWS)
    dataset = protocol.parse_split(run.split).test
    frame = tables[dataset].frame.set_index("image_id").loc[rows["image_id"]]
    columns = [f"emo_{c}" for c in classes] + list(attribute.outputs)
    output = rows[[predictions.group_prob_column(g) for g in attribute.groups]
                  + [predictions.emotion_prob_column(c) for c in classes]]
    return frame[columns].reset_index(drop=True), output.reset_index(drop=True)


def log_networks(mlflow: Any, run: MethodRun, *, tables: dict[str, OutputsTable], attribute: Attribute,
                 corrector_input: str) -> str:
    """Log ``run``'s networks as the model :data:`MODEL_NAME` of the active run; returns its model id."""
    from mlflow.models import infer_signature

    classes = next(iter(tables.values())).emotion_classes
    fold, seed = run.jobs[0]
    config = {"emotion_classes": list(classes), "attribute_outputs": list(attribute.outputs),
              "groups": list(attribute.groups), "input": corrector_input, "fold": int(fold), "seed": int(seed),
              "cpu_kernels": cpu_pin.settings()}
    example, output = _example(run, tables, attribute, classes)
    signature = infer_signature(example, output, params={"fold": int(fold), "seed": int(seed)})
    with tempfile.TemporaryDirectory() as folder:
        networks = Path(folder) / "networks.npz"
        np.savez(networks, **{f"fold{f}.seed{s}.{name}": array
                              for (f, s), fitted in zip(run.jobs, run.fitted) for name, array in fitted.items()})
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME, python_model=str(MODEL_CODE), artifacts={"networks": str(networks)},
            model_config=config, signature=signature, input_example=example,
            pip_requirements=[f"{package}=={metadata.version(package)}" for package in REQUIREMENTS],
            params={"split": run.split, "method": run.method, "networks": json.dumps(run.jobs)})
    return info.model_id


def register_tuned(mlflow: Any, model_id: str, *, experiment: str) -> str:
    """Register the tuned corrector's model and point :data:`TUNED_ALIAS` at the new version; returns the version."""
    name = registered_name(experiment)
    version = mlflow.register_model(f"models:/{model_id}", name)
    mlflow.MlflowClient().set_registered_model_alias(name, TUNED_ALIAS, version.version)
    return str(version.version)
