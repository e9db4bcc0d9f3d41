"""FairFace (ResNet-34, 18 outputs) as the gender model of the paper.

Preprocessing as the FairFace and authors' code: the chip resized to 224 x 224 (PIL bilinear), scaled to [0, 1],
ImageNet mean/std. Outputs: race logits [0:7], gender logits [7:9] (male, female), age logits [9:18]
(``labels.FAIRFACE_RACES``, ``GENDERS``, ``FAIRFACE_AGES``); the gender probabilities are the softmax over [7:9], and
the age-bin probabilities (the softmax over [9:18]) are extras ``p_age_<bin>``, the outputs of the ``age_group``
attribute (FACES' declaration sums them into its age groups).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from benchmark.core.labels import AGE_COLUMNS, FAIRFACE_AGES, FAIRFACE_RACES, GENDERS
from benchmark.frozen.model import InputSpec, TorchModel
from benchmark.frozen.weights import load_strict, provenance, read_state_dict

INPUT_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
N_OUTPUTS = len(FAIRFACE_RACES) + len(GENDERS) + len(FAIRFACE_AGES)
GENDER_SLICE = slice(len(FAIRFACE_RACES), len(FAIRFACE_RACES) + len(GENDERS))
AGE_SLICE = slice(GENDER_SLICE.stop, GENDER_SLICE.stop + len(FAIRFACE_AGES))
WEIGHTS_HINT = ("download the FairFace model the authors used (fairface_alldata_20191111.pt, from the FairFace "
                "repository's model links), put it in models/ and set data.images.fairface_weights, or use "
                "data.images.gender_model: agegender (bundled)")


def build_network() -> nn.Module:
    """torchvision ResNet-34 with its classifier replaced by Linear(512, 18); random weights."""
    network = torchvision.models.resnet34(weights=None)
    network.fc = nn.Linear(network.fc.in_features, N_OUTPUTS)
    return network


class FairFaceModel(TorchModel):
    """FairFace's gender head: ``scores`` are softmax probabilities in ``GENDERS`` order (male, female); its age head's
    softmax probabilities are the extras ``p_age_<bin>``."""

    name = "fairface"
    task = "gender"
    classes = GENDERS
    extras = AGE_COLUMNS
    input_spec = InputSpec(size=INPUT_SIZE, resize="pil")

    def prepare(self, batch: torch.Tensor) -> torch.Tensor:
        x = super().prepare(batch)
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.module(x)
        ages = torch.softmax(logits[:, AGE_SLICE].float(), dim=1)
        return {"scores": torch.softmax(logits[:, GENDER_SLICE].float(), dim=1),
                **{column: ages[:, i] for i, column in enumerate(AGE_COLUMNS)}}


def load(path: Path | str, *, param: str = "data.images.fairface_weights") -> FairFaceModel:
    """FairFace with the user's weights (strict key and shape match)."""
    state = read_state_dict(path, param=param, hint=WEIGHTS_HINT)
    network = build_network()
    load_strict(network, state, path=path, param=param)
    return FairFaceModel(network, weights=provenance(path))
