"""The contract between a frozen model and the extraction pipeline.

A model receives a batch of uint8 chips already resized (and, where it asks, re-cropped and converted to grey) by the
pipeline's worker processes, as a tensor of shape (B, C, size, size) on the model's device. It returns float32
scores of shape (B, n_classes) in its own class order: probabilities for a gender model, raw logits for an emotion
model, plus named extras of shape (B,) (EmoNet's valence and arousal).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import torch

TASKS: tuple[str, ...] = ("gender", "emotion")
RESIZE_METHODS: tuple[str, ...] = ("pil", "cv2")


@dataclass(frozen=True)
class InputSpec:
    """The chip a model expects.

    Attributes
    ----------
    size : int
        Side of the square input in pixels.
    padding : float or None, default=None
        The dlib face-chip padding the model was trained with. When it is smaller than the cached chip's padding the
        pipeline takes the matching central crop first (dlib chips are centred on the aligned face, so the geometry
        is exact); None uses the cached chip whole.
    resize : {'pil', 'cv2'}, default='pil'
        'pil': PIL bilinear with antialiasing (torchvision's Resize on PIL images); 'cv2': OpenCV INTER_LINEAR.
    grayscale : bool, default=False
        Convert to one grey channel (OpenCV's RGB2GRAY) before resizing, as FER does.
    """

    size: int
    padding: float | None = None
    resize: str = "pil"
    grayscale: bool = False

    def __post_init__(self) -> None:
        assert self.resize in RESIZE_METHODS, self.resize
        assert self.size > 0, self.size

    @property
    def channels(self) -> int:
        """1 for grey inputs, else 3."""
        return 1 if self.grayscale else 3


class FrozenModel(abc.ABC):
    """A pretrained model used as is.

    Attributes
    ----------
    name : str
        Registry name, recorded in the outputs table's metadata.
    task : {'gender', 'emotion'}
    classes : tuple of str
        Output classes in model order. A gender model's classes are the two canonical genders in any order.
    input_spec : InputSpec
    extras : tuple of str
        Names of the extra per-image outputs (e.g. valence, arousal).
    """

    name: str
    task: str
    classes: tuple[str, ...]
    input_spec: InputSpec
    extras: tuple[str, ...] = ()
    #: whether bf16/tf32 precision modes apply (models that run outside torch ignore them)
    uses_torch: bool = True

    device: torch.device = torch.device("cpu")

    def to(self, device: torch.device) -> FrozenModel:
        """Move the model to ``device``; returns self."""
        self.device = device
        return self

    @abc.abstractmethod
    def predict(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Scores for one batch.

        Parameters
        ----------
        batch : uint8 tensor of shape (B, C, size, size) on ``self.device``

        Returns
        -------
        dict
            ``scores``: float tensor (B, n_classes), probabilities (gender) or raw logits (emotion), model order;
            plus one float tensor (B,) per name in ``extras``.
        """

    def metadata(self) -> dict[str, Any]:
        """Provenance for the outputs table and MLflow: name, classes, weights path and sha256 where there are any."""
        return {"name": self.name, "task": self.task, "classes": list(self.classes)}


class TorchModel(FrozenModel):
    """A frozen model backed by a ``torch.nn.Module`` in eval mode, channels-last on every device.

    Subclasses implement :meth:`forward` on a float input already scaled by :meth:`prepare`.
    """

    def __init__(self, module: torch.nn.Module, *, weights: dict[str, Any]) -> None:
        self.module = module.eval().to(memory_format=torch.channels_last)
        self.weights = weights

    def to(self, device: torch.device) -> TorchModel:
        self.module.to(device)
        self.device = device
        return self

    def prepare(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float32 in [0, 1], channels-last. Subclasses add their normalisation."""
        return batch.float().div_(255.0).contiguous(memory_format=torch.channels_last)

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The network on a prepared batch; returns ``scores`` and the extras."""

    def predict(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward(self.prepare(batch))

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), **self.weights}
