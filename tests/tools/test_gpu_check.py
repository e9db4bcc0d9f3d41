"""scripts/gpu_check.sh: one JSON line; on a machine without CUDA it says so and times the CPU instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark.tools.gpu_check import synthetic_chips

REPO = Path(__file__).resolve().parents[2]


def test_synthetic_chips_are_deterministic_uint8_images():
    a, b = synthetic_chips(3, 32), synthetic_chips(3, 32)
    assert a.dtype == torch.uint8 and a.shape == (3, 3, 32, 32) and torch.equal(a, b)
    assert a.float().std() > 10  # not a flat image


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU path of the script; on a GPU run it by hand")
def test_gpu_check_script_prints_one_json_line_saying_cuda_is_unavailable(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh"), "--cpu-images", "1", "--pipeline-chips", "0",
                           "--fairface-weights", str(tmp_path / "none.pt"), "--emonet-weights", str(tmp_path / "none.pth")],
                          capture_output=True, text=True, env=env, timeout=600, check=True)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["cuda"] is False and result["weights"] == {"fairface": "random", "emonet": "random"}
    assert result["cpu_images_per_s"]["n_images"] == 1 and result["cpu_images_per_s"]["emonet"] > 0


def test_accelerator_path_runs_end_to_end_on_the_cpu_at_fp32(tmp_path):
    """The code a GPU run takes, on the CPU with a tiny budget, so a GPU session does not find its bugs."""
    from benchmark.tools.gpu_check import check

    result = check(batch=2, iters=1, cpu_images=1, pipeline_chips=2, fairface_weights=tmp_path / "none.pt",
                   emonet_weights=tmp_path / "none.pth", device=torch.device("cpu"), precisions=("fp32",))
    assert result["device"] == "cpu"
    assert {m: r["argmax_agreement"] for m, r in result["cpu_vs_device_fp32"].items()} == {"fairface": 1.0, "emonet": 1.0}
    assert set(result["images_per_s"]["fp32"]) == {"fairface", "emonet", "both"}
    assert result["pipeline_images_per_s"]["fp32"] > 0


def test_cpu_pipeline_timing_reports_chips_rate_and_seconds(tmp_path):
    from benchmark.tools.gpu_check import check

    result = check(batch=2, iters=1, cpu_images=1, pipeline_chips=0, fairface_weights=tmp_path / "none.pt",
                   emonet_weights=tmp_path / "none.pth", cpu_pipeline_chips=2)
    timing = result["cpu_pipeline"]
    assert timing["chips"] == 2 and timing["images_per_s"] > 0
    assert timing["seconds"] == pytest.approx(2 / timing["images_per_s"], rel=0.05, abs=0.05)
