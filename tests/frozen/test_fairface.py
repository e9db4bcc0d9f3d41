"""The FairFace adapter: architecture, strict loading with provenance, and the authors' preprocessing and softmax."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torchvision import transforms

from benchmark.frozen import fairface
from benchmark.frozen.extract import prepare_chip
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.hashing import sha256_file


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fairface") / "fairface.pt"
    torch.save(fairface.build_network().state_dict(), path)
    return path


def test_fairface_network_matches_torchvision_resnet34_with_18_outputs():
    network = fairface.build_network()
    state = network.state_dict()
    assert (len(state), sum(p.numel() for p in network.parameters())) == (218, 21_293_906)
    assert tuple(state["fc.weight"].shape) == (18, 512)


def test_fairface_load_records_path_and_sha256(weights_file):
    model = fairface.load(weights_file)
    assert model.metadata()["weights_sha256"] == sha256_file(weights_file)
    assert model.metadata()["classes"] == ["male", "female"]


def test_fairface_load_rejects_keys_of_another_architecture(tmp_path):
    path = tmp_path / "resnet18.pt"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(BenchmarkError, match=r"fairface_weights: .* does not match the ResNet architecture: .*missing keys layer1\.2"):
        fairface.load(path)


def test_fairface_gender_probabilities_equal_the_authors_pipeline_on_a_chip(weights_file, rng_chip):
    """Oracle: the authors' wrapper (ToPILImage, Resize((224, 224)), ToTensor, ImageNet Normalize, softmax of 7:9)."""
    model = fairface.load(weights_file)
    trans = transforms.Compose([transforms.ToPILImage(), transforms.Resize((224, 224)), transforms.ToTensor(),
                                transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    reference_net = fairface.build_network()
    reference_net.load_state_dict(torch.load(weights_file, weights_only=True))
    reference_net.eval()
    with torch.no_grad():
        logits = reference_net(trans(rng_chip).unsqueeze(0))[0].numpy()
    expected = np.exp(logits[7:9]) / np.exp(logits[7:9]).sum()
    x = torch.from_numpy(prepare_chip(rng_chip, model.input_spec, chip_padding=0.25))[None]
    with torch.inference_mode():
        got = model.predict(x)["scores"][0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.fixture
def rng_chip():
    """A smooth random 300 px RGB chip (FairFace's own default chip size), so the resize matters."""
    g = torch.Generator().manual_seed(3)
    coarse = torch.rand(1, 3, 6, 6, generator=g)
    return (torch.nn.functional.interpolate(coarse, size=(300, 300), mode="bilinear")[0].permute(1, 2, 0) * 255).byte().numpy()
