"""Process facts and signal handling the crash-safety code needs."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists on this machine (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so a stage unwinds the same way: atomic
    writes discard their temporaries and MLflow runs end KILLED (see :func:`sigterm_as_interrupt`)."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread instead of ending the process at once
    (Python's default), so ``finally`` clauses and context managers run; the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def ignore_interrupts() -> None:
    """In a worker process: ignore Ctrl-C's SIGINT (sent to the whole process group), so the parent alone handles
    it, stopping the workers with :func:`stop_workers_on_error` instead of each printing a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def start_workers_ignoring_interrupts() -> Iterator[None]:
    """Worker processes started within the block ignore SIGINT from their first instruction, before they import
    anything: an ignored signal stays ignored across fork and exec, and Python then installs no KeyboardInterrupt
    handler. This process ignores SIGINT only for the block (while it starts workers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def stop_workers_on_error(pool: Executor) -> Iterator[None]:
    """Terminate the worker processes of ``pool`` (a ProcessPoolExecutor) when the block raises, an interrupt
    included, so the pool's shutdown does not wait for their work to finish before the error can propagate."""
    try:
        yield
    except BaseException:
        # ProcessPoolExecutor.terminate_workers() does this from Python 3.14; before, the workers are a private dict
        workers = getattr(pool, "_processes", None) or {}
        for worker in list(workers.values()):
            worker.terminate()
        raise
