"""dlib's CNN (MMOD) face detector, ported to torch: the same weights file, network, input pyramid and decisions.

What ``dlib.cnn_face_detection_model_v1(path)(image, upsample)`` does, and where each step lives here:

1. Upsample the image ``upsample`` times by 2 (``pyramid_up``; :func:`benchmark.frozen.dlib_pyramid.pyramid_up`).
2. Tile the image and its 5/6 reductions into one image (``input_rgb_image_pyramid<pyramid_down<6>>``;
   :func:`~benchmark.frozen.dlib_pyramid.tiled_pyramid`), then ``(pixel - channel mean) / 256`` in float32.
3. Run the network read from ``mmod_human_face_detector.dat`` (:mod:`benchmark.frozen.dlib_format`): three
   5 x 5 stride-2 convolutions (16, 32, 32 filters), three 5 x 5 convolutions (45 filters), each followed by a
   per-channel affine (batch norm folded in) and ReLU, and a 9 x 9 convolution to one score map
   (:class:`MmodNetwork`, any torch device).
4. Every score > 0 is a candidate: output (row, col) maps to input-tensor point (stride x col + offset, ...) through
   the convolutions' strides and paddings (x 8 + 14 here), the centre of the 80 x 80 detector window; the window is
   mapped from the tiled image back to the image through the pyramid level nearest its centre
   (:func:`~benchmark.frozen.dlib_pyramid.tiled_to_image`) and rounded to integer pixels.
5. Non-max suppression as ``loss_mmod_::to_label``: candidates by decreasing score; one is dropped when it overlaps
   an already kept one with IoU > 0.338 (the file's threshold) or covers more than 100 % of either (never).
   Areas are dlib's (inclusive pixels: width = right - left + 1).
6. Boxes map back through the upsampling (``rect_down``: p / 2 - (1.25, 0.75) per level) and are rounded.

The only intended difference from dlib is floating-point summation order inside the convolutions (dlib's own CPU
code against torch's CPU or CUDA kernels): the input tensor is identical, scores differ by float rounding, so a
candidate within rounding of the threshold, or two candidates with equal scores, can come out differently.
Measured agreement with dlib: docs/IMAGES.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmark.frozen import dlib_format, dlib_pyramid
from benchmark.frozen.dlib_format import Affine, Conv, Relu
from benchmark.frozen.extract import precision_mode


@dataclass(frozen=True)
class Detection:
    """One face: ``box`` (left, top, right, bottom), inclusive integer pixels of the given image; ``score`` > 0."""

    box: tuple[int, int, int, int]
    score: float


class MmodNetwork(nn.Module):
    """The detector's layers as torch modules; input (N, 3, H, W) float32, output (N, 1, H', W') scores.

    Weights and activations are channels-last."""

    def __init__(self, layers: list[Conv | Affine | Relu]) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        for layer in layers:
            if isinstance(layer, Conv):
                out_ch, in_ch, kh, kw = layer.weight.shape
                conv = nn.Conv2d(in_ch, out_ch, (kh, kw), stride=layer.stride, padding=layer.padding)
                conv.weight.data = torch.from_numpy(layer.weight.copy())
                conv.bias.data = torch.from_numpy(layer.bias.copy())
                modules.append(conv)
            elif isinstance(layer, Affine):
                modules.append(ChannelAffine(layer.scale, layer.shift))
            else:
                modules.append(nn.ReLU(inplace=True))
        self.layers = nn.Sequential(*modules)
        self.requires_grad_(False)
        self.eval()
        self.to(memory_format=torch.channels_last)  # 1.6x faster on the CPU (oneDNN) than NCHW, same values to 1e-5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.contiguous(memory_format=torch.channels_last))


class ChannelAffine(nn.Module):
    """x * scale[c] + shift[c] per channel (dlib's ``affine_`` in convolutional mode)."""

    def __init__(self, scale: np.ndarray, shift: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("scale", torch.from_numpy(scale.copy()).view(1, -1, 1, 1))
        self.register_buffer("shift", torch.from_numpy(shift.copy()).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul_(self.scale).add_(self.shift)


def output_to_input_map(layers: list[Conv | Affine | Relu]) -> tuple[int, int, int, int]:
    """(stride_x, offset_x, stride_y, offset_y) such that output column c is input column stride_x * c + offset_x.

    dlib's ``map_output_to_input`` per convolution, from the output layer down: p -> p * stride - padding + k // 2.
    """
    sx, ox, sy, oy = 1, 0, 1, 0
    for layer in reversed(layers):
        if isinstance(layer, Conv):
            (stride_y, stride_x), (pad_y, pad_x) = layer.stride, layer.padding
            kh, kw = layer.weight.shape[2:]
            ox, sx = ox * stride_x - pad_x + kw // 2, sx * stride_x
            oy, sy = oy * stride_y - pad_y + kh // 2, sy * stride_y
    return sx, ox, sy, oy


def _area(box: tuple[int, int, int, int]) -> int:
    return max(0, box[2] - box[0] + 1) * max(0, box[3] - box[1] + 1)


def overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int], iou: float, covered: float) -> bool:
    """dlib's ``test_box_overlap(iou, covered)`` on integer rectangles."""
    inner = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    if inner == 0:
        return False
    outer = _area((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])))
    return inner / outer > iou or inner / _area(a) > covered or inner / _area(b) > covered


class MmodDetector:
    """dlib's MMOD face detector from its ``.dat`` file, run by torch on ``device`` (see the module docstring)."""

    def __init__(self, path: Path | str, device: torch.device | str = "cpu") -> None:
        spec = dlib_format.read_mmod(path)
        self.device = torch.device(device)
        self.network = MmodNetwork(spec.layers).to(self.device)
        self.means = torch.tensor(spec.channel_means, dtype=torch.float32, device=self.device).view(3, 1, 1)
        self.window = spec.window
        self.nms = spec.nms
        self.stride_x, self.offset_x, self.stride_y, self.offset_y = output_to_input_map(spec.layers)

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """(pixel - channel mean) / 256 in float32, as dlib's input layer: (3, H, W) uint8 -> float32."""
        return (image.to(torch.float32) - self.means) / 256.0

    def scores(self, tiled: torch.Tensor) -> np.ndarray:
        """Score map (H', W') float32 of a tiled (3, H, W) float32 input tensor (IEEE fp32: no TF32 on CUDA)."""
        with precision_mode("fp32", self.device, autocast=False):
            return self.network(tiled.unsqueeze(0))[0, 0].cpu().numpy()

    def candidates(self, score_map: np.ndarray, rects: list[dlib_pyramid.Rect]) -> list[Detection]:
        """Every position scoring > 0 as a box in the (upsampled) image, by decreasing score (before NMS)."""
        rows, cols = np.nonzero(score_map > 0)
        values = score_map[rows, cols].astype(np.float64)
        order = np.argsort(-values, kind="stable")
        half_w, half_h = (self.window[0] - 1) / 2, (self.window[1] - 1) / 2
        found = []
        for i in order:
            x = float(self.stride_x * cols[i] + self.offset_x)
            y = float(self.stride_y * rows[i] + self.offset_y)
            box = dlib_pyramid.tiled_to_image(rects, (x - half_w, y - half_h, x + half_w, y + half_h))
            found.append(Detection(dlib_pyramid.round_rect(box), float(values[i])))
        return found

    def suppress(self, candidates: list[Detection]) -> list[Detection]:
        """Greedy non-max suppression in score order with the file's overlap thresholds."""
        kept: list[Detection] = []
        for candidate in candidates:
            if not any(overlaps(k.box, candidate.box, *self.nms) for k in kept):
                kept.append(candidate)
        return kept

    def __call__(self, rgb: np.ndarray, upsample: int = 0) -> list[Detection]:
        """Faces in an (H, W, 3) uint8 RGB image, as ``dlib.cnn_face_detection_model_v1(path)(rgb, upsample)``."""
        with torch.inference_mode():
            image = torch.from_numpy(np.require(rgb, np.uint8, ["C", "W"])).to(self.device).permute(2, 0, 1)
            for _ in range(upsample):
                image = dlib_pyramid.pyramid_up(image)
            tiled, rects = dlib_pyramid.tiled_pyramid(self.normalise(image))
            score_map = self.scores(tiled)
        kept = self.suppress(self.candidates(score_map, rects))
        return [Detection(dlib_pyramid.rect_down_2(d.box, upsample), d.score) for d in kept]
