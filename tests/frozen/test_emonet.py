"""Our EmoNet against ../shared/specs/EMONET.md: the state_dict manifest, the counts, the golden forward, the loader."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from benchmark.frozen import emonet
from benchmark.frozen.emonet import EmoNet
from benchmark.infra.errors import BenchmarkError

BACKBONE_END = "conv1x1_input_emo_2"  # the first key of the emotion head


@pytest.fixture(scope="module")
def manifest(shared_dir):
    """Rows (key, shape, dtype) of emonet8_state_dict.tsv, in state_dict order."""
    with open(shared_dir / "specs" / "emonet8_state_dict.tsv", newline="") as fh:
        return [(r["key"], r["shape"], r["dtype"]) for r in csv.DictReader(fh, delimiter="\t")]


@pytest.fixture(scope="module")
def model():
    return EmoNet().eval()


def _shape(text: str) -> tuple[int, ...]:
    return () if text == "scalar" else tuple(int(d) for d in text.split("x"))


def golden_state(manifest) -> dict[str, torch.Tensor]:
    """The spec's fill: one generator seeded 0, keys in TSV order, int64 entries left at 0."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, shape_text, dtype in manifest:
        shape = _shape(shape_text)
        if dtype == "int64":
            state[key] = torch.zeros(shape, dtype=torch.int64)
            continue
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if key.endswith("running_var"):
            state[key] = r.abs() + 0.5
        elif key.endswith(("running_mean", "bias")):
            state[key] = 0.1 * r
        elif len(shape) == 1:
            state[key] = 1 + 0.1 * r
        else:
            state[key] = r / math.sqrt(r.numel() / shape[0])
    return state


def test_emonet_state_dict_matches_manifest_key_for_key_and_shape_for_shape(model, manifest):
    ours = [(k, "x".join(map(str, v.shape)) or "scalar", str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]
    assert ours == manifest


def test_emonet_parameter_counts_match_spec(model):
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    names = list(params)
    head = sum(p.numel() for n, p in params.items() if names.index(n) >= names.index(f"{BACKBONE_END}.weight"))
    by_group = {g: sum(p.numel() for n, p in params.items() if n.startswith(g + ".")) for g in ("conv1x1_input_emo_2", "emo_net_2", "emo_fc_2")}
    assert (total, total - head, head) == (13_963_410, 12_106_504, 1_856_906)
    assert by_group == {"conv1x1_input_emo_2": 196_864, "emo_net_2": 1_625_600, "emo_fc_2": 34_442}


def test_emonet_buffer_and_norm_counts_match_spec(model):
    buffers = dict(model.named_buffers())
    assert (len(dict(model.named_parameters())), len(buffers), sum(b.numel() for b in buffers.values())) == (349, 333, 31_983)
    kinds = [type(m).__name__ for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert (kinds.count("BatchNorm2d"), kinds.count("BatchNorm1d")) == (110, 1)


def test_emonet_five_class_variant_differs_only_in_last_layer():
    five = EmoNet(n_expression=5)
    assert sum(p.numel() for p in five.parameters()) == 13_963_023
    assert tuple(five.state_dict()["emo_fc_2.3.weight"].shape) == (7, 128)


def test_emonet_golden_forward_matches_spec(model, manifest):
    state = golden_state(manifest)
    assert state["conv1.weight"][0, 0, 0, :3].tolist() == pytest.approx([-0.0928577, -0.0950451, -0.0206674], rel=1e-5)
    assert state["emo_fc_2.3.bias"][0].item() == pytest.approx(0.2023437, rel=1e-5)
    net = EmoNet()
    net.load_state_dict(state, strict=True)
    net.eval()
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    assert x.sum().item() == pytest.approx(98358.742, rel=1e-6)
    with torch.no_grad():
        out = net(x)
    assert out["heatmap"].shape == (1, 68, 64, 64) and out["expression"].shape == (1, 8)
    assert out["valence"].shape == (1,) and out["arousal"].shape == (1,)
    expected = [47345.03, 44787.08, 3364.380, -5022.397, 4778.274, 23979.56, 51221.17, 48512.18]
    assert out["expression"][0].tolist() == pytest.approx(expected, rel=1e-3)
    assert (out["valence"].item(), out["arousal"].item()) == pytest.approx((-2447.93, 16096.33), rel=1e-3)
    assert (out["heatmap"].sum().item(), out["heatmap"].max().item()) == pytest.approx((2125617.8, 195.4107), rel=1e-3)


def test_emonet_rejects_input_sizes_the_hourglass_cannot_halve(model):
    with torch.no_grad(), pytest.raises(RuntimeError):
        model(torch.rand(1, 3, 224, 224))


@pytest.fixture
def saved_state(tmp_path, model):
    """The model's random state dict saved as a file, and a loader for variants of it."""
    def save(state: dict, name: str = "emonet.pth"):
        path = tmp_path / name
        torch.save(state, path)
        return path
    return model.state_dict(), save


def test_emonet_loader_strips_a_leading_module_prefix(saved_state):
    state, save = saved_state
    loaded = emonet.load(save({f"module.{k}": v for k, v in state.items()}))
    assert torch.equal(loaded.module.state_dict()["emo_fc_2.3.bias"], state["emo_fc_2.3.bias"])
    assert len(loaded.metadata()["weights_sha256"]) == 64


def test_emonet_loader_accepts_a_file_without_num_batches_tracked(saved_state):
    state, save = saved_state
    loaded = emonet.load(save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}))
    assert torch.equal(loaded.module.state_dict()["conv1.weight"], state["conv1.weight"])


def test_emonet_loader_names_missing_and_unexpected_keys(saved_state):
    state, save = saved_state
    bad = {k: v for k, v in state.items() if k != "emo_fc_2.3.bias"}
    bad["extra.weight"] = torch.zeros(1)
    with pytest.raises(BenchmarkError, match=r"missing keys emo_fc_2\.3\.bias; unexpected keys extra\.weight"):
        emonet.load(save(bad))


def test_emonet_loader_names_tensors_of_the_wrong_shape(saved_state):
    state, save = saved_state
    bad = dict(state, **{"emo_fc_2.3.weight": torch.zeros(7, 128)})
    with pytest.raises(BenchmarkError, match=r"emo_fc_2\.3\.weight \(7, 128\) \(expected \(10, 128\)\)"):
        emonet.load(save(bad))


def test_emonet_loader_rejects_a_missing_file_with_where_to_get_it(tmp_path):
    with pytest.raises(BenchmarkError, match=r"data\.images\.emonet_weights: weights file .*missing\.pth not found; get emonet_8\.pth"):
        emonet.load(tmp_path / "missing.pth")


def test_emonet_loader_rejects_a_pickle_that_is_not_weights_only(tmp_path):
    import pickle

    path = tmp_path / "object.pth"
    path.write_bytes(pickle.dumps(object(), protocol=2))
    with pytest.raises(BenchmarkError, match="not a loadable weights-only state dict"):
        emonet.load(path)
