"""The pin of torch's CPU kernels (benchmark/infra/cpu_pin.py): the CPU trainer's bits do not depend on the kernels a
processor would make torch choose.

Another processor cannot be had in a test, but the choices it would make can be forced on this one through the
environment (``ATEN_CPU_CAPABILITY`` for torch's own kernels, ``MKL_CBWR`` for oneMKL's); each run is its own process
(tests/pinned_training.py), as torch reads them once per process. Without the pin those settings change the weights
(shown by a process that ran torch before importing ``benchmark``); with it none does, in this process or in the
trainer's worker processes. The recorded digest is the cross-machine check: it was written on an AMD EPYC (AVX2, no
AVX-512), and a machine where the pin does not hold fails it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.infra import cpu_pin

PROBE = Path(__file__).parent / "pinned_training.py"
REPO = Path(__file__).resolve().parents[2]
#: the weights tests/pinned_training.py trains under the pin, recorded on an AMD EPYC (AVX2 and FMA, no AVX-512)
RECORDED_WEIGHTS = "86c2b43d80b1064fec67ac52124b8085b914f8efcee01a8749e5495d376d54c4"
#: kernel choices the environment can force on an x86-64 processor with AVX2 (AVX-512 ones crash one without it);
#: MKL_CBWR=AVX2 is Intel's AVX2 branch, and on other processors oneMKL's AUTO branch
FORCED = ["ATEN_CPU_CAPABILITY=default", "MKL_CBWR=AUTO", "MKL_CBWR=AVX2,STRICT",
          "ATEN_CPU_CAPABILITY=default MKL_CBWR=SSE4_2"]
needs_avx2 = pytest.mark.skipif("ATEN_CPU_CAPABILITY" not in cpu_pin.settings(),
                                reason="this processor lacks AVX2 or FMA (or is not x86-64 Linux): nothing to pin")


def _train(forced: str = "", *args: str) -> tuple[dict, str]:
    """Run the probe with ``forced`` (``NAME=value`` words) in an environment otherwise free of both settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    env.update(word.split("=", 1) for word in forced.split())
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, str(PROBE), *args], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.fixture(scope="module")
def unforced() -> dict:
    return _train()[0]


@pytest.fixture(scope="module")
def torch_before_the_pin() -> tuple[dict, str]:
    """Torch ran an elementwise op and a batched product under forced settings before ``benchmark`` was imported."""
    return _train("ATEN_CPU_CAPABILITY=default MKL_CBWR=AUTO", "--torch-first")


@needs_avx2
@pytest.mark.parametrize("forced", FORCED)
def test_trained_weights_are_the_same_bits_whatever_kernels_the_environment_forces(unforced, forced):
    assert _train(forced)[0]["weights"] == unforced["weights"]


@needs_avx2
def test_the_forced_settings_change_the_weights_when_torch_read_them_before_the_pin(unforced, torch_before_the_pin):
    ran, _ = torch_before_the_pin
    assert (ran["capability"], ran["mkl_branch"]) == ("DEFAULT", 2)
    assert ran["weights"] != unforced["weights"]


@needs_avx2
def test_training_says_so_when_torch_chose_its_kernels_before_the_pin(torch_before_the_pin):
    _, stderr = torch_before_the_pin
    assert "may differ" in stderr and "DEFAULT, not AVX2" in stderr and "COMPATIBLE" in stderr


@needs_avx2
def test_the_pinned_trainer_gives_the_weights_recorded_on_another_processor(unforced):
    assert (unforced["capability"], unforced["mkl_branch"]) == ("AVX2", cpu_pin.MKL_BRANCH_CODE)
    assert unforced["weights"] == RECORDED_WEIGHTS
