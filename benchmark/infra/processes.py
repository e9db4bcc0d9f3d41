"""Process facts and signal handling the crash-safety code needs."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


def available_cores() -> list[int]:
    """The CPU cores this process may run on (its affinity; all cores where the platform has none)."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def _forked_worker() -> None:
    """A :func:`map_on_cores` worker: Ctrl-C is the parent's to handle (:func:`ignore_interrupts`), SIGTERM (the
    parent stopping it, :func:`stop_workers_on_error`) ends it at once instead of raising the parent's
    :class:`Terminated` in it (a traceback per worker before the parent's one error line), one BLAS thread. A
    worker computes and returns; it writes no file, so it has nothing to clean up."""
    import threadpoolctl

    ignore_interrupts()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threadpoolctl.threadpool_limits(1)


def map_on_cores(function: Callable[[Any], Any], items: Sequence[Any], *,
                 meanwhile: Callable[[], object] | None = None) -> list[Any]:
    """``[function(item) for item in items]``, in order, with one forked worker process per available core (each
    with one BLAS thread, so the workers fill the cores without oversubscribing them); in this process when there is
    one core or one item. For independent, deterministic pieces of work: the results are the same either way. An
    error or interrupt in this process stops the workers at once (:func:`stop_workers_on_error`).

    ``meanwhile()``, if given, runs once in this process while the workers work (before the items when there are
    none), for work of this process's own that would otherwise follow with the cores idle, such as a slow import; its
    result is discarded."""
    workers = min(len(items), len(available_cores()))
    meanwhile = meanwhile or (lambda: None)
    if workers <= 1:
        meanwhile()
        return [function(item) for item in items]
    with (ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                              initializer=_forked_worker) as pool,
          stop_workers_on_error(pool)):
        results = pool.map(function, items)  # every item submitted: the workers are forked and at work
        meanwhile()
        return list(results)


@dataclass(frozen=True)
class Job:
    """Independent pieces of work and how their results make one: ``combine([call() for call in calls])``. Each
    call takes no argument and pickles (a :func:`functools.partial` of a module-level function), so it can run in a
    worker; ``combine`` runs in this process."""

    calls: list[Callable[[], Any]]
    combine: Callable[[list[Any]], Any]


def _call(function: Callable[[], Any]) -> Any:
    return function()


def run_jobs(jobs: Sequence[Job], *, meanwhile: Callable[[], object] | None = None) -> list[Any]:
    """Each job's combined result, in ``jobs`` order. The calls of all jobs share one :func:`map_on_cores`
    pool, so a core that finishes one job's pieces takes another's instead of waiting for the slowest piece;
    ``meanwhile`` as there."""
    results = iter(map_on_cores(_call, [call for job in jobs for call in job.calls], meanwhile=meanwhile))
    return [job.combine([next(results) for _ in job.calls]) for job in jobs]


def die_with_parent() -> None:
    """Linux: ask the kernel to SIGKILL this process when its parent dies, so killing a stage stops its worker processes
    too (a tuning study's running trials are then failed by the heartbeat check and retried)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists on this machine (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: how long after a lost interrupt it is sent again (see :func:`sigterm_as_interrupt`)
REDELIVERY_DELAY_S = 0.01


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so a stage unwinds the same way: atomic
    writes discard their temporaries and MLflow runs end KILLED (see :func:`sigterm_as_interrupt`)."""


def interruption(err: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM behind ``err``: ``err`` itself, or one in its chain of causes and contexts. Library code
    interrupted inside its own clean-up may raise another error while handling the interrupt (Optuna's trial runner
    raised UnboundLocalError), and that is still an interrupt, not a bug of ours."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread instead of ending the process at once
    (Python's default), so ``finally`` clauses and context managers run; the previous handlers are restored after.

    A signal handler's exception is lost when the handler happens to run inside a garbage-collection callback or a
    ``__del__`` (Python reports it as "Exception ignored" and carries on; it happened once in about 20 interrupted
    tune runs). Within the block, such a lost Ctrl-C or SIGTERM is delivered again, so it lands in ordinary code.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signal.Signals(signum).name)

    resends: list[threading.Timer] = []

    def deliver_lost_interrupts(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            lost = signal.SIGTERM if isinstance(unraisable.exc_value, Terminated) else signal.SIGINT
            # from another thread, a moment later: sent from here, its handler would run (and be lost) right here
            resends.append(threading.Timer(REDELIVERY_DELAY_S, os.kill, args=(os.getpid(), lost)))
            resends[-1].daemon = True
            resends[-1].start()
            return
        previous_hook(unraisable)

    previous_handler = signal.signal(signal.SIGTERM, handler)
    previous_hook, sys.unraisablehook = sys.unraisablehook, deliver_lost_interrupts
    try:
        yield
    finally:
        for resend in resends:  # the block is over: nothing left to interrupt
            resend.cancel()
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous_handler)


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
        # ProcessPoolExecutor.terminate_workers() does this from Python 3.14; before, the workers are a private dict.
        # The call queue's feeder thread may be blocked writing a large piece of work into the pipe the workers read:
        # with them gone it never returns, and joining it at exit hung the process after its error (measured: 3 of 3
        # runs with 16 MB pieces). So it is not joined.
        queue = getattr(pool, "_call_queue", None)
        if queue is not None:
            queue.cancel_join_thread()
        workers = getattr(pool, "_processes", None) or {}
        for worker in list(workers.values()):
            worker.terminate()
        raise
