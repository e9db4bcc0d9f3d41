"""The corrector's trained networks as an MLflow model (``mlflow.pyfunc``, logged from this file as code).

MLflow copies this file into the model and runs it to load the model, so it stands alone: numpy, pandas and torch,
nothing of the benchmark package. The model holds every network one train run fitted (``networks.npz``: arrays
``fold<f>.seed<s>.layer<l>.weight|bias``, float32, as the run's ``fitted.npz``) and its configuration (the emotion
classes, the attribute model's output columns and groups, the input transform). ``predict`` takes the frozen models'
outputs as the outputs table has them (``emo_<class>`` logits, then the attribute model's columns such as ``p_male``,
``p_female``) and returns the corrected probabilities as the predictions table has them (``pg_<group>``,
``pe_<class>``, float32) from the network chosen by the params ``fold`` and ``seed`` (default: the run's first). The
forward pass is :func:`benchmark.methods.network.predict`'s, operation for operation, and loading puts the run's pinned
CPU kernels (``cpu_kernels``: benchmark/infra/cpu_pin.py) in the environment before torch's first op, so for the same
rows in the same order the probabilities equal the run's predictions bit for bit (tested; a matrix product's last
rows can take another kernel, so another order can move a last bit).
"""

from __future__ import annotations

import os
from typing import Any

import mlflow
import numpy as np
import pandas as pd

#: the model's configuration keys (``model_config``)
CONFIG_KEYS = ("emotion_classes", "attribute_outputs", "groups", "input", "fold", "seed", "cpu_kernels")


def features(frame: pd.DataFrame, config: dict[str, Any]) -> np.ndarray:
    """The network's inputs, shape (n, n_emotion + n_attribute_outputs), float32: the emotion logits (or their softmax
    for ``input: probs``), then the attribute model's outputs (benchmark.methods.inputs.features)."""
    logits = frame[[f"emo_{c}" for c in config["emotion_classes"]]].to_numpy(dtype=np.float64)
    if config["input"] == "probs":
        z = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(z)
        logits = e / e.sum(axis=-1, keepdims=True)
    attribute = frame[list(config["attribute_outputs"])].to_numpy(dtype=np.float64)
    return np.hstack([logits, attribute]).astype(np.float32)


def forward(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, *, n_emotion: int) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation-mode forward pass: (group probabilities, emotion probabilities), float64 from float32 arithmetic."""
    import torch

    with torch.no_grad():
        h = torch.as_tensor(np.asarray(x, dtype=np.float32))
        for i, (w, b) in enumerate(layers):
            h = torch.addmm(torch.from_numpy(b), h, torch.from_numpy(w).T)
            if i < len(layers) - 1:
                h = torch.relu(h)
        emotion = torch.softmax(h[:, :n_emotion], dim=1)
        groups = torch.softmax(h[:, n_emotion:], dim=1)
    return groups.double().numpy(), emotion.double().numpy()


def layers_of(arrays: Any, fold: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The layers of network (fold, seed) from the arrays of ``networks.npz``."""
    prefix = f"fold{fold}.seed{seed}."
    count = sum(1 for name in arrays if name.startswith(prefix) and name.endswith(".weight"))
    if count == 0:
        raise ValueError(f"no network for fold {fold}, seed {seed} in this model")
    return [(np.asarray(arrays[f"{prefix}layer{i}.weight"]), np.asarray(arrays[f"{prefix}layer{i}.bias"]))
            for i in range(count)]


def predict_frame(arrays: Any, config: dict[str, Any], frame: pd.DataFrame, *, fold: int, seed: int) -> pd.DataFrame:
    """The corrected probabilities of network (fold, seed) for the rows of ``frame``."""
    groups, emotion = forward(layers_of(arrays, fold, seed), features(frame, config),
                              n_emotion=len(config["emotion_classes"]))
    return pd.DataFrame({**{f"pg_{g}": groups[:, i].astype(np.float32) for i, g in enumerate(config["groups"])},
                         **{f"pe_{c}": emotion[:, i].astype(np.float32)
                            for i, c in enumerate(config["emotion_classes"])}})


class CorrectorNetworks(mlflow.pyfunc.PythonModel):
    """Every network of one train run; ``predict`` uses the one params ``fold`` and ``seed`` name."""

    def load_context(self, context: Any) -> None:
        with np.load(context.artifacts["networks"]) as loaded:
            self.arrays = {name: loaded[name] for name in loaded.files}
        self.config = dict(context.model_config)
        # the CPU kernels the run's torch used (benchmark/infra/cpu_pin.py), in force from torch's first op on: in a
        # fresh process loading this model, the same bits as the run
        os.environ.update(self.config.get("cpu_kernels", {}))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        params = params or {}
        return predict_frame(self.arrays, self.config, model_input, fold=int(params.get("fold", self.config["fold"])),
                             seed=int(params.get("seed", self.config["seed"])))


mlflow.models.set_model(CorrectorNetworks())
