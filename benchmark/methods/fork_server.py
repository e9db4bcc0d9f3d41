"""The fork server the CPU trainer's worker processes come from (:func:`benchmark.methods.trainer.train_many`).

It is a clean, single-threaded process that has imported the trainer (so torch) once; each worker is a fork of it.
This module does not import torch, so a stage can start the server first thing and let its imports overlap the
stage's own work instead of blocking the first training that needs a worker.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

#: the module every worker runs (preloaded by the fork server)
TRAINER_MODULE = "benchmark.methods.trainer"


def available() -> bool:
    """Whether this platform has a fork server (not on Windows)."""
    return "forkserver" in multiprocessing.get_all_start_methods()


def context() -> BaseContext:
    """The fork-server context whose server preloads :data:`TRAINER_MODULE` (started when a pool first uses it)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([TRAINER_MODULE])
    return ctx


def start() -> bool:
    """Start the fork server now, in the background (this call does not wait for its imports); nothing where the
    platform has none. Returns whether one is running. Idempotent: a running server is kept."""
    if not available():
        return False
    from multiprocessing import forkserver

    context()
    forkserver.ensure_running()
    return True
