"""One writer at a time: a lock per working copy and stage, so two invocations never interleave the same files.

A lock is ``.locks/<name>.lock`` under the working copy (the current directory, where every default path is rooted),
held with ``flock`` while the stage runs; the file records the holder's pid for the message. The kernel releases
the lock when its holder dies, however it dies (SIGKILL included), so a stale lock file left by a dead process is
simply taken over by the next stage: there is nothing to clean up by hand.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmark.infra import paths
from benchmark.infra.errors import BenchmarkError
from benchmark.infra.processes import pid_alive

POLL_S = 0.2


def _holder(path: Path) -> str:
    """The pid recorded in a lock file, with whether it still runs, for messages."""
    try:
        pid = path.read_text().strip()
    except OSError:
        return "unknown pid"
    if not pid.isdigit():
        return "unknown pid"
    return f"pid {pid}" if pid_alive(int(pid)) else f"pid {pid}, now gone; a process it started still holds the lock"


@contextmanager
def hold(name: str, *, folder: Path = paths.LOCKS_DIR, wait_s: float = 0.0, what: str | None = None) -> Iterator[Path]:
    """Hold the working copy's lock ``name`` for the duration of the block.

    ``wait_s`` 0 refuses at once when another process holds it: BenchmarkError naming ``what`` (default
    ``benchmark <name>``), the holder's pid and the lock file. A positive ``wait_s`` waits that long first (for short
    critical sections such as writing a summary).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BenchmarkError(
                        f"{path}: another `{what or 'benchmark ' + name}` ({_holder(path)}) is writing the same files "
                        f"in this working copy; wait for it to finish, or stop it") from None
                time.sleep(POLL_S)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)  # releases the lock
