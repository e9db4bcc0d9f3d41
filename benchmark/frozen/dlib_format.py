"""Reader for dlib's binary serialization, as far as dlib's CNN (MMOD) face detector file needs it.

Written from dlib's ``serialize.h`` and the ``serialize``/``deserialize`` functions of ``dlib/dnn`` (core.h, layers.h,
input.h, loss.h), and checked byte for byte against ``mmod_human_face_detector.dat`` of the PyPI package
``face-recognition-models`` 0.3.0 (729,940 bytes: :func:`read_mmod` consumes exactly all of them).

Primitives
----------
- **integer**: one control byte, then 1-8 magnitude bytes, least significant first. The control byte's low 4 bits
  are the number of magnitude bytes, bit 7 is the sign (unsigned integers mask the control byte with 0x8F).
- **string**: an integer length, then that many bytes.
- **bool**: one ASCII byte, ``'1'`` or ``'0'``.
- **float and double**: two integers, a mantissa (int64) and an exponent (int16); the value is
  ``mantissa * 2**exponent`` (exponents 32000, 32001, 32002 stand for +inf, -inf, NaN).
- **tensor** (``resizable_tensor``): integer version (2), then the integers num_samples, k, nr, nc, then
  num_samples x k x nr x nc little-endian IEEE float32 values (version 1 stored each value as a dlib float).
- **alias_tensor** (a view into a layer's parameters): integer version (1), then num_samples, k, nr, nc.

The network, outermost object first
-----------------------------------
A dlib network type nests like ``loss<layer<layer<...<input>>>>``, and each level writes its subnetwork *before*
its own layer, so the file reads: loss options, then the layers from the input up to the output.

- ``add_loss_layer``: integer version 1; the loss (string ``"loss_mmod_"``, then ``mmod_options``); the subnetwork.
- ``mmod_options`` version 1: detector window width and height (integers); loss per false alarm, loss per missed
  target, truth-match IoU threshold (doubles); the non-max-suppression overlap test (IoU threshold, percent-covered
  threshold: doubles); the ignore overlap test (two doubles). Versions 2-4 hold a list of labelled windows and more
  fields; this file has version 1 (one 80 x 80 window).
- ``add_layer`` above another layer: integer version 2; the subnetwork; the layer's details; three bools
  (setup called, gradient stale, output disabled); three tensors (x_grad, cached_output, params_grad; empty here).
- ``add_layer`` on the input: integer version 3; the input layer; the layer's details; three bools; three tensors
  (x_grad, cached_output, grad_final); the sample expansion factor (integer).
- input layer: string ``"input_rgb_image_pyramid"``, then the red, green and blue means (floats) subtracted
  before dividing by 256; the pyramid type (``pyramid_down<6>``) is part of the C++ type, not of the file.
- ``con_4`` (convolution): the parameter tensor (filters (num_filters, k, nr, nc), then the biases); num_filters,
  nr, nc, stride_y, stride_x, padding_y, padding_x (integers); the filters and biases alias_tensors; four doubles
  (learning-rate and weight-decay multipliers).
- ``bn_con2`` (batch norm, convolutional mode): the parameter tensor (gamma, then beta); gamma and beta
  alias_tensors; the tensors means, invstds, running_means, running_variances; num_updates and
  running_stats_window_size (integers); four doubles (multipliers); eps (double). The deployed detector runs it as
  dlib's ``affine_`` layer, whose loader converts it: ``g = gamma / sqrt(running_variances + eps)`` and
  ``b = beta - g * running_means`` in float32.
- ``relu_``: the string alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.infra.errors import BenchmarkError

FLOAT_SPECIALS = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}


class Reader:
    """Sequential reader of dlib's primitives over the bytes of one file; errors name the file and the offset."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name
        self.pos = 0

    def fail(self, what: str) -> BenchmarkError:
        return BenchmarkError(f"{self.name}: not a dlib MMOD detector file as expected: {what} at byte {self.pos}")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"file ends inside a value ({n} byte(s) wanted)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8:
            raise self.fail(f"integer control byte {control:#04x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def string(self) -> str:
        return self.take(self.integer()).decode("latin-1")

    def boolean(self) -> bool:
        char = self.take(1)
        if char not in (b"0", b"1"):
            raise self.fail(f"bool byte {char!r}")
        return char == b"1"

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        if exponent in FLOAT_SPECIALS:
            return FLOAT_SPECIALS[exponent]
        return float(mantissa) * 2.0 ** exponent

    def tensor(self) -> np.ndarray:
        """A tensor as a float32 array of shape (num_samples, k, nr, nc)."""
        version = self.integer()
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        if version == 2:
            values = np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32)
        elif version == 1:
            values = np.array([self.real() for _ in range(count)], dtype=np.float32)
        else:
            raise self.fail(f"tensor version {version}")
        return values.reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.integer()
        if version != 1:
            raise self.fail(f"alias_tensor version {version}")
        return tuple(self.integer() for _ in range(4))  # type: ignore[return-value]

    def expect(self, text: str) -> None:
        start = self.pos
        found = self.string()
        if found != text:
            self.pos = start
            raise self.fail(f"{found!r} where {text!r} was expected")


@dataclass(frozen=True)
class Conv:
    """A convolution: ``weight`` float32 (out, in, kh, kw), ``bias`` float32 (out,), stride and padding (y, x)."""

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Affine:
    """Per-channel ``x * scale + shift`` (dlib's ``affine_``, converted from batch norm); float32 (channels,) each."""

    scale: np.ndarray
    shift: np.ndarray


@dataclass(frozen=True)
class Relu:
    """max(x, 0)."""


@dataclass(frozen=True)
class MmodFile:
    """What :func:`read_mmod` found: the layers from the input up, the input means and the detector options.

    ``window``: detector window (width, height) in pixels of the input tensor; ``nms``: (IoU threshold,
    percent-covered threshold) of the non-max suppression.
    """

    layers: list[Conv | Affine | Relu]
    channel_means: tuple[float, float, float]
    window: tuple[int, int]
    nms: tuple[float, float]
    options: dict[str, float] = field(default_factory=dict)


def _conv(reader: Reader) -> Conv:
    params = reader.tensor().reshape(-1)
    num_filters, nr, nc, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(7))
    filters, _ = reader.alias_tensor(), reader.alias_tensor()   # the bias alias: its shape follows from the filters
    for _ in range(4):
        reader.real()
    n_weights = int(np.prod(filters))
    if filters[0] != num_filters or filters[2:] != (nr, nc) or params.size != n_weights + num_filters:
        raise reader.fail(f"convolution shapes disagree (filters {filters}, {params.size} parameters)")
    weight = params[:n_weights].reshape(filters).copy()
    return Conv(weight, params[n_weights:].copy(), (stride_y, stride_x), (pad_y, pad_x))


def _batch_norm_as_affine(reader: Reader) -> Affine:
    params = reader.tensor().reshape(-1)
    reader.alias_tensor(), reader.alias_tensor()
    reader.tensor(), reader.tensor()   # the last training batch's means and inverse sds: not used at inference
    running_means, running_variances = reader.tensor().reshape(-1), reader.tensor().reshape(-1)
    reader.integer(), reader.integer()
    for _ in range(4):
        reader.real()
    eps = np.float32(reader.real())
    channels = running_means.size
    gamma, beta = params[:channels], params[channels:]
    scale = (gamma * (np.float32(1) / np.sqrt(running_variances + eps))).astype(np.float32)
    shift = (beta - scale * running_means).astype(np.float32)
    return Affine(scale, shift)


def _layer_details(reader: Reader) -> Conv | Affine | Relu:
    start = reader.pos
    kind = reader.string()
    if kind == "con_4":
        return _conv(reader)
    if kind == "bn_con2":
        return _batch_norm_as_affine(reader)
    if kind == "relu_":
        return Relu()
    reader.pos = start
    raise reader.fail(f"layer {kind!r} (this reader knows con_4, bn_con2 and relu_)")


def _layer_state(reader: Reader, *, on_input: bool) -> None:
    """The bookkeeping after a layer's details: 3 bools, 3 (empty) tensors, and on the input the expansion factor."""
    for _ in range(3):
        reader.boolean()
    for _ in range(3):
        reader.tensor()
    if on_input:
        reader.integer()


def _network(reader: Reader, layers: list[Conv | Affine | Relu]) -> tuple[float, float, float]:
    """Read one ``add_layer`` (recursively its subnetwork first); append its layer; return the input means."""
    version = reader.integer()
    if version == 3:
        reader.expect("input_rgb_image_pyramid")
        means = (reader.real(), reader.real(), reader.real())
        layers.append(_layer_details(reader))
        _layer_state(reader, on_input=True)
        return means
    if version != 2:
        raise reader.fail(f"add_layer version {version}")
    means = _network(reader, layers)
    layers.append(_layer_details(reader))
    _layer_state(reader, on_input=False)
    return means


def read_mmod(path: Path | str) -> MmodFile:
    """Parse a dlib ``loss_mmod`` network file (see the module docstring); every byte must be accounted for."""
    path = Path(path)
    reader = Reader(path.read_bytes(), str(path))
    if reader.integer() != 1:
        raise reader.fail("add_loss_layer version")
    reader.expect("loss_mmod_")
    if reader.integer() != 1:
        raise reader.fail("mmod_options version (only version 1, one detector window, is supported)")
    width, height = reader.integer(), reader.integer()
    names = ("loss_per_false_alarm", "loss_per_missed_target", "truth_match_iou_threshold", "nms_iou_thresh",
             "nms_percent_covered_thresh", "ignore_iou_thresh", "ignore_percent_covered_thresh")
    options = {name: reader.real() for name in names}
    layers: list[Conv | Affine | Relu] = []
    means = _network(reader, layers)
    if reader.pos != len(reader.data):
        raise reader.fail(f"{len(reader.data) - reader.pos} unread byte(s) after the network")
    return MmodFile(layers, means, (width, height), (options["nms_iou_thresh"], options["nms_percent_covered_thresh"]),
                    options)

