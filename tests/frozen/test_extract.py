"""The extraction pipeline: per-model chip preparation, precision and device rules, batch and worker invariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from face_pictures import DETECTABLE, astronaut, lfw_photo, save
from PIL import Image

from benchmark.frozen import bundled, extract
from benchmark.frozen.chips import Aligner, ChipSettings
from benchmark.frozen.model import InputSpec
from benchmark.infra.errors import BenchmarkError


@pytest.fixture(scope="module")
def chip_files(tmp_path_factory):
    """Five 224 px chips (padding 0.25) of real faces saved as PNG."""
    folder = tmp_path_factory.mktemp("chips")
    aligner = Aligner(ChipSettings(detector="hog", upsample=0, max_side=0))
    pictures = [astronaut()] + [lfw_photo(i) for i in DETECTABLE[:4]]
    return [save(aligner(p)[0], folder / f"{i}.png") for i, p in enumerate(pictures)]


@pytest.fixture(scope="module")
def models():
    return [bundled.load_agegender(), bundled.load_fer()]


def _rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_prepare_chip_cv2_equals_opencv_resize(chip_files):
    import cv2

    rgb = _rgb(chip_files[0])
    got = extract.prepare_chip(rgb, InputSpec(size=256, resize="cv2"), chip_padding=0.25)
    np.testing.assert_array_equal(got, cv2.resize(rgb, (256, 256)).transpose(2, 0, 1))


def test_prepare_chip_grey_converts_before_resizing_as_fer(chip_files):
    import cv2

    rgb = _rgb(chip_files[0])
    got = extract.prepare_chip(rgb, InputSpec(size=64, resize="cv2", grayscale=True), chip_padding=0.25)
    np.testing.assert_array_equal(got[0], cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (64, 64)))


def test_crop_box_is_the_central_part_a_tighter_padding_covers():
    assert extract.crop_box(224, 0.25, 0.2) == pytest.approx((224 / 30, 224 / 30, 224 - 224 / 30, 224 - 224 / 30))
    assert extract.crop_box(224, 0.25, 0.25) is None and extract.crop_box(224, 0.25, None) is None


def test_cropped_chip_matches_dlib_cutting_the_tighter_chip_directly():
    """Oracle: dlib's own chip at padding 0.2 from the same landmarks."""
    import dlib

    from benchmark.frozen.chips import LANDMARKS_FILE, _package_file

    image = astronaut()
    rect = dlib.get_frontal_face_detector()(image, 0)[0]
    shape = dlib.shape_predictor(str(_package_file(*LANDMARKS_FILE)))(image, rect)
    wide = np.asarray(dlib.get_face_chip(image, shape, size=224, padding=0.25))
    direct = np.asarray(dlib.get_face_chip(image, shape, size=112, padding=0.2)).astype(float)
    ours = extract.prepare_chip(wide, InputSpec(size=112, padding=0.2), chip_padding=0.25).transpose(1, 2, 0).astype(float)
    shifted = extract.prepare_chip(wide, InputSpec(size=112, padding=None), chip_padding=0.25).transpose(1, 2, 0).astype(float)
    assert np.abs(ours - direct).mean() < 3.0  # resampling differences only (1.9 measured)
    assert np.abs(shifted - direct).mean() > 5 * np.abs(ours - direct).mean()  # without the crop: 19.6


def test_prepare_chip_rejects_a_model_wanting_a_wider_chip():
    with pytest.raises(BenchmarkError, match=r"padding 0.5, wider than data.images.padding 0.25; set data.images.padding >= 0.5"):
        extract.prepare_chip(np.zeros((224, 224, 3), np.uint8), InputSpec(size=32, padding=0.5), chip_padding=0.25)


@pytest.mark.parametrize("precision", ["bf16", "tf32"])
def test_reduced_precision_without_cuda_is_an_error(precision):
    with pytest.raises(BenchmarkError, match=rf"data.images.precision: {precision} needs a CUDA device \(got cpu\)"):
        extract.check_precision(precision, torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_a_gpu_is_an_error_and_auto_picks_cpu():
    with pytest.raises(BenchmarkError, match="cuda requested but torch sees no CUDA device"):
        extract.resolve_device("cuda")
    assert extract.resolve_device("auto") == torch.device("cpu")


def test_extract_results_do_not_depend_on_batch_size_or_workers(chip_files, models):
    one = extract.extract(chip_files, models, chip_padding=0.25, device=torch.device("cpu"), batch_size=1, progress=False)
    many = extract.extract(chip_files, models, chip_padding=0.25, device=torch.device("cpu"), batch_size=4,
                           num_workers=2, progress=False)
    for a, b in zip(one.outputs, many.outputs):
        assert a["scores"].shape == b["scores"].shape
        np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5, atol=1e-5)
    assert one.precision_check == {} and one.device == "cpu" and one.images_per_s > 0


def test_extract_gives_each_model_its_own_input(chip_files, models):
    result = extract.extract(chip_files[:1], models, chip_padding=0.25, device=torch.device("cpu"), progress=False)
    gender, emotion = result.outputs
    np.testing.assert_allclose(gender["scores"].sum(axis=1), 1.0, rtol=1e-5)
    assert gender["scores"].shape == (1, 2) and emotion["scores"].shape == (1, 7)
    assert gender["scores"][0, 0] > 0.9  # the astronaut, (female, male) order of the model


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_gpu_give_the_same_argmax_on_every_test_chip(chip_files, models):
    from benchmark.frozen import emonet, fairface

    torch.manual_seed(0)
    torch_models = [fairface.FairFaceModel(fairface.build_network(), weights={}), emonet.EmoNetModel(emonet.EmoNet(), weights={}), models[1]]
    cpu = extract.extract(chip_files, torch_models, chip_padding=0.25, device=torch.device("cpu"), progress=False)
    gpu = extract.extract(chip_files, torch_models, chip_padding=0.25, device=torch.device("cuda"), progress=False)
    for a, b in zip(cpu.outputs, gpu.outputs):
        np.testing.assert_array_equal(a["scores"].argmax(axis=1), b["scores"].argmax(axis=1))


@pytest.mark.filterwarnings("ignore:CUDA is not available:UserWarning")
@pytest.mark.parametrize("precision, tf32", [("fp32", False), ("tf32", True), ("bf16", False)])
def test_cuda_precision_mode_sets_tf32_inside_and_restores_it_after(precision, tf32):
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    with extract.precision_mode(precision, torch.device("cuda")):
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (tf32, tf32)
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before
