"""Which pipeline run a stage process belongs to, so the MLflow runs of one ``dvc repro`` or ``dvc exp run`` nest
under one parent run although each stage is its own process.

- **Run by DVC** (DVC sets ``DVC_STAGE`` in every stage command's environment): the pipeline run is the DVC process
  that runs the stages, found by walking up from this process to the first ancestor whose environment lacks
  ``DVC_STAGE`` (the shell DVC starts in between has it). ``dvc repro``, ``dvc exp run`` and each experiment of
  ``dvc queue start -j N`` (one ``dvc exp exec-run`` process per experiment) are different processes, so experiments
  running at once never share a parent. The parent is named after the DVC experiment (``DVC_EXP_NAME``) or the
  command (``dvc repro``).
- **Run by hand** (``benchmark train``): the environment variable ``BENCHMARK_PIPELINE_RUN`` groups the stages that
  carry the same value (a script exports it once); without it each invocation is a pipeline run of its own.

The identity is ``host:pid:start time`` of that process (a pid is reused, with its start time it is not), hashed into
the tag :data:`KEY_TAG` that stage processes look the parent up by.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from benchmark.infra.hashing import sha256_bytes

#: environment variable naming a pipeline run for stages run by hand (same value, same parent run)
ENV_PIPELINE_RUN = "BENCHMARK_PIPELINE_RUN"
#: set by DVC in a stage command's environment (its stage's address), by DVC in experiments (their name and baseline)
DVC_STAGE, DVC_EXP_NAME, DVC_EXP_BASELINE_REV = "DVC_STAGE", "DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"
#: the tag that identifies a pipeline run's parent run (and marks it as one)
KEY_TAG = "benchmark.pipeline_run"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineRun:
    """One pipeline run: ``key`` (hex, unique per run), ``name`` (the parent run's name: the DVC experiment's name,
    the DVC command, or ``benchmark <stage>``) and the ``tags`` every run of it carries (DVC experiment and baseline)."""

    key: str
    name: str
    command: str
    tags: dict[str, str]


def _process_identity(process) -> str:
    return f"{socket.gethostname()}:{process.pid}:{int(process.create_time() * 1000)}"


def _dvc_process():
    """The DVC process that runs this stage (the nearest ancestor without ``DVC_STAGE``), or None when it cannot be
    seen (another user's process, or no process table)."""
    import psutil

    process = psutil.Process().parent()
    try:
        while process is not None and DVC_STAGE in process.environ():
            process = process.parent()
    except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    return process


def _command(process) -> str:
    """``dvc repro`` / ``dvc exp run --temp ...`` from a DVC process's command line (its interpreter path dropped)."""
    try:
        argv = process.cmdline()
    except Exception:  # a process that just ended or is not ours
        return "dvc"
    for i, arg in enumerate(argv):
        if os.path.basename(arg) == "dvc" or arg.endswith("/dvc/__main__.py"):
            return " ".join(["dvc", *argv[i + 1:]])
    return " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv))


def dvc_tags() -> dict[str, str]:
    """The DVC experiment's name and baseline revision, when DVC runs this stage in an experiment."""
    names = {DVC_EXP_NAME: "dvc.exp_name", DVC_EXP_BASELINE_REV: "dvc.baseline_rev"}
    return {tag: os.environ[var] for var, tag in names.items() if os.environ.get(var)}


def current(stage: str) -> PipelineRun:
    """The pipeline run of this process, whose stage is ``stage`` (for the name of a run by hand)."""
    import psutil

    tags = dvc_tags()
    if os.environ.get(DVC_STAGE):
        process = _dvc_process()
        if process is not None:
            command = _command(process)
            name = tags.get("dvc.exp_name") or command
            return PipelineRun(sha256_bytes(_process_identity(process).encode())[:32], name, command, tags)
        log.warning("MLflow: the DVC process running stage %s is not visible to this process; its runs get a "
                    "parent run of their own", os.environ[DVC_STAGE])
    if os.environ.get(ENV_PIPELINE_RUN):
        value = os.environ[ENV_PIPELINE_RUN]
        return PipelineRun(sha256_bytes(f"env:{value}".encode())[:32], value, f"benchmark {stage}", tags)
    identity = _process_identity(psutil.Process())
    return PipelineRun(sha256_bytes(identity.encode())[:32], f"benchmark {stage}", f"benchmark {stage}", tags)
