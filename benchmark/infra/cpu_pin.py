"""The CPU kernels torch runs, pinned so that the CPU trainer's bits do not depend on the processor.

Left to itself torch picks kernels by processor: its own elementwise kernels (ReLU masks, softmax, addcmul, the fused
Adam update) come in a build per instruction set, chosen at the first op from what the processor has (AVX2 here,
AVX-512 on a recent Xeon), and its batched matrix products go to oneMKL (``cblas_sgemm_batch``), which picks its
kernels by vendor and instruction set too. Each choice sums or rounds in its own way, and a correction network's
training amplifies a one-bit difference into a different image now and then (docs/ARCHITECTURE.md).

The pin (:func:`settings`, set by :func:`apply` when the ``benchmark`` package is imported):

- ``MKL_CBWR=COMPATIBLE``: oneMKL's conditional numerical reproducibility on its one branch that is supported on
  Intel and non-Intel processors alike (SSE2 only, without the rcpps/rsqrtps approximations that differ between
  vendors); its reproducibility conditions (a fixed number of threads) hold, as the trainer runs one thread. A named
  branch such as AVX2 is Intel-only: on other processors oneMKL silently runs its AUTO branch instead.
- ``ATEN_CPU_CAPABILITY=avx2``: torch's AVX2 kernels on every processor that has AVX2 and FMA (torch does not check:
  a capability the processor lacks crashes at the first op, so it is set only where /proc/cpuinfo lists both).

Both are read by torch once, at its first op (ATen) or first oneMKL call, not at ``import torch``; so they must be in
the environment before a process runs any torch op, and a worker process inherits them. The package sets them,
overriding what the environment said, and :func:`warn_unless_in_force` says so when training finds torch running
other kernels (a script that ran torch ops before importing ``benchmark``). This module does not import torch.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import platform
from pathlib import Path

log = logging.getLogger(__name__)

#: oneMKL's CNR branch, as ``MKL_CBWR`` names it
MKL_BRANCH = "COMPATIBLE"
#: oneMKL's number for that branch (``MKL_CBWR_COMPATIBLE``), what ``mkl_cbwr_get(MKL_CBWR_BRANCH)`` returns
MKL_BRANCH_CODE = 3
#: torch's kernels, as ``ATEN_CPU_CAPABILITY`` names them, and as ``torch.backends.cpu.get_cpu_capability()`` reports
ATEN_CAPABILITY, ATEN_CAPABILITY_REPORTED = "avx2", "AVX2"
#: where the processor's flags are read (Linux)
CPUINFO = Path("/proc/cpuinfo")


def _has_avx2_and_fma(cpuinfo: Path = CPUINFO) -> bool:
    """Whether this is an x86-64 processor whose flags (Linux's /proc/cpuinfo) list AVX2 and FMA."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return {"avx2", "fma"} <= set(line.split(":", 1)[-1].split())
    return False


@functools.cache
def settings() -> dict[str, str]:
    """The environment variables of the pin on this machine."""
    pinned = {"MKL_CBWR": MKL_BRANCH}
    if _has_avx2_and_fma():
        pinned["ATEN_CPU_CAPABILITY"] = ATEN_CAPABILITY
    return pinned


def apply() -> None:
    """Put the pin in this process's environment (and so in every process it starts), overriding what was there."""
    os.environ.update(settings())


def _mkl_branch() -> int | None:
    """oneMKL's CNR branch in this process (:data:`MKL_BRANCH_CODE` when pinned), None where torch has no oneMKL
    whose branch can be read (not x86-64 Linux, or a build without it)."""
    import torch

    library = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        get = ctypes.CDLL(str(library)).mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return None
    get.argtypes, get.restype = [ctypes.c_int], ctypes.c_int
    return get(1)  # MKL_CBWR_BRANCH


def not_in_force() -> list[str]:
    """What of the pin this process's torch is not running under (empty: all of it). Imports torch."""
    import torch

    missing = []
    if "ATEN_CPU_CAPABILITY" in settings():
        capability = torch.backends.cpu.get_cpu_capability()
        if capability != ATEN_CAPABILITY_REPORTED:
            missing.append(f"torch's CPU kernels are {capability}, not {ATEN_CAPABILITY_REPORTED}")
    branch = _mkl_branch()
    if branch is not None and branch != MKL_BRANCH_CODE:
        missing.append(f"oneMKL's reproducibility branch is {branch}, not {MKL_BRANCH} ({MKL_BRANCH_CODE})")
    return missing


@functools.cache
def warn_unless_in_force() -> None:
    """Log once per process when the CPU trainer is about to run outside the pin, or on a processor it cannot pin."""
    missing = not_in_force()
    if "ATEN_CPU_CAPABILITY" not in settings():
        missing.append("this processor has no AVX2 and FMA, so torch's CPU kernels are its own choice")
    if missing:
        log.warning("the CPU trainer's results may differ from other machines' (%s): import "
                    "benchmark before running any torch op, so that its pin of torch's CPU kernels is read "
                    "(benchmark/infra/cpu_pin.py)", "; ".join(missing))
