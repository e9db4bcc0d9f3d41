"""The detector comparison helpers behind docs/IMAGES.md's agreement figures and gpu_check's --detector-images."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.tools import detector_bench


def test_box_iou_counts_inclusive_pixels_as_dlib():
    assert detector_bench.box_iou((0, 0, 9, 9), (0, 0, 9, 9)) == 1.0
    assert detector_bench.box_iou((0, 0, 9, 9), (0, 5, 9, 14)) == pytest.approx(50 / 150)
    assert detector_bench.box_iou((0, 0, 9, 9), (10, 0, 19, 9)) == 0.0


def test_faces_sized_pads_a_square_picture_to_portrait_and_resizes_it_to_faces_originals():
    picture = np.zeros((100, 100, 3), np.uint8)
    picture[40:60, 40:60] = 255
    out = detector_bench.faces_sized(picture)
    assert out.shape == (3543, 2835, 3) and out.dtype == np.uint8
    assert out[3543 // 2, 2835 // 2].min() > 200 and out[0, 0].max() == 0  # centred, not stretched off


@pytest.mark.slow
def test_detector_check_runs_on_the_cpu_with_small_pictures():
    """The code path of ``gpu_check.sh --detector-images``, tiny, so a GPU session does not find its bugs."""
    result = detector_bench.detector_check(2, device="cpu", workers=1, size=(512, 640), upsample=0, max_side=0)
    assert result["cnn_torch"]["images"] == 2 and result["cnn"]["images"] == 1
    assert result["cnn_torch"]["images_per_s"] > 0 and result["faces_2052_projected_s"]["cnn"] > 0
    assert result["agreement"]["box_iou"] == 1.0 and result["agreement"]["chip_max_abs"] == 0
